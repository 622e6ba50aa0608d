package apply

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/relcue/release/internal/filekind"
	"github.com/relcue/release/internal/parallel"
	"github.com/relcue/release/modules/delta"
	"github.com/relcue/release/modules/pkgzip"
)

// Problems a Difference reports.
const (
	Missing = "missing"
	Extra   = "extra"
	Changed = "changed"
)

// Difference is one file where an installation is not what it should be.
type Difference struct {
	Path string `json:"path"`
	// Problem is Missing, Extra or Changed.
	Problem        string `json:"problem"`
	ExpectedSHA256 string `json:"expectedSHA256,omitempty"`
	ExpectedSize   *int64 `json:"expectedSize,omitempty"`
	ActualSHA256   string `json:"actualSHA256,omitempty"`
	ActualSize     *int64 `json:"actualSize,omitempty"`
	// Detail says what the hashes cannot: a directory or symbolic link
	// where a file should be, a file that cannot be read.
	Detail string `json:"detail,omitempty"`
}

// InstallCheck is what checking an installation against what it should
// hold found: every difference, not only the first.
type InstallCheck struct {
	Operation  string `json:"operation"`
	InstallDir string `json:"installDir"`
	// Basis is what the expectation came from: "record" (the
	// installation's own record), "packages" (the package and deltas
	// given) or "package-manifest.json" (the installed one, for an
	// installation without a record).
	Basis string `json:"basis"`
	// Against are the package and deltas the expectation follows.
	Against []string `json:"against"`
	// Version is the version the installation should be at.
	Version string `json:"version"`
	OK      bool   `json:"ok"`
	// FilesChecked and BytesChecked count the installed files hashed.
	FilesChecked int   `json:"filesChecked"`
	BytesChecked int64 `json:"bytesChecked"`
	// Ignored counts installed files the skip rules leave to the product
	// (cluster-local configuration, addons/ under K2s, ...).
	Ignored int `json:"ignored"`
	// Unlisted counts installed files in directories the expectation
	// cannot list completely (Record.Unlisted): neither checked nor extra.
	Unlisted    int          `json:"unlisted"`
	Missing     int          `json:"missing"`
	Extra       int          `json:"extra"`
	Changed     int          `json:"changed"`
	Differences []Difference `json:"differences"`
}

// CheckOptions configures VerifyInstallation.
type CheckOptions struct {
	// Sources are a full package and then the deltas applied to it, in
	// order, or deltas only (the first one's target package manifest is
	// the start). Empty: the installation's record, or without one its
	// package-manifest.json.
	Sources []string
	// Layout is how the full package was installed (the --profile or
	// configuration given to release install), and the layout used for an
	// installed package-manifest.json; nil is the generic profile's. A
	// delta brings its own skip rules and profile.
	Layout *Layout
	// Workers bounds parallel hashing; < 1 means 1.
	Workers int
	// Progress receives bytes hashed; may be nil.
	Progress func(int64)
}

// VerifyInstallation checks the installation in dir against what it
// should hold and reports every missing, extra and changed file. It
// changes nothing. An error means the check could not be done; a check
// that found differences is no error (see InstallCheck.OK).
func VerifyInstallation(ctx context.Context, dir string, opts CheckOptions) (*InstallCheck, error) {
	chk, err := verifyInstallation(ctx, dir, opts)
	if err != nil {
		return nil, fmt.Errorf("verify installation %s: %w", dir, err)
	}
	return chk, nil
}

func verifyInstallation(ctx context.Context, dirArg string, opts CheckOptions) (*InstallCheck, error) {
	dir, err := installRoot(dirArg)
	if err != nil {
		return nil, err
	}
	if state := filepath.Join(dir, delta.ApplyStateDir); lexists(state) {
		// Half an apply would be reported as differences that the
		// recovery makes go away.
		return nil, fmt.Errorf("an apply is running or was interrupted (%s exists); let it finish, or run release apply --recover --install-dir %s, then verify", state, dirArg)
	}
	layout, err := defaultLayout(dir, opts.Layout)
	if err != nil {
		return nil, err
	}
	rec, basis, err := expectation(ctx, dir, opts, layout)
	if err != nil {
		return nil, err
	}
	chk, err := checkTree(ctx, dir, rec, opts.Workers, opts.Progress)
	if err != nil {
		return nil, err
	}
	chk.Basis = basis
	return chk, nil
}

// defaultLayout is the layout given, else the one the installation's
// record says it was installed with, else the generic profile's: a
// package given without --profile is then laid out as it was installed.
func defaultLayout(dir string, given *Layout) (Layout, error) {
	if given != nil {
		return *given, nil
	}
	if rec, err := readRecord(dir); err == nil && rec != nil {
		return Layout{Nested: rec.Nested, Skip: rec.SkipRules, SkipNames: rec.SkipNames}, nil
	}
	return LayoutOf("")
}

// expectation is what dir should hold: from the sources given, else its
// record, else its package-manifest.json.
func expectation(ctx context.Context, dir string, opts CheckOptions, layout Layout) (*Record, string, error) {
	if len(opts.Sources) > 0 {
		rec, err := recordFromSources(ctx, opts.Sources, opts.Layout, layout, opts.Workers, opts.Progress)
		return rec, "packages", err
	}
	rec, err := readRecord(dir)
	if err != nil {
		return nil, "", err
	}
	if rec != nil {
		installed, err := readVersion(dir)
		if err != nil {
			return nil, "", err
		}
		if installed != rec.Version {
			return nil, "", fmt.Errorf("its record (%s) is for %s but the installation is %s: something other than release changed it (K2s's own upgrade, say); verify it against the package and deltas it came from, e.g. release verify --install-dir %s %s",
				delta.InstallRecord, rec.Version, orUnversioned(installed), dir, strings.Join(rec.Sources, " "))
		}
		return rec, "record", nil
	}
	if rec, err = recordFromInstalledManifest(dir, layout); err != nil || rec != nil {
		return rec, "package-manifest.json", err
	}
	return nil, "", fmt.Errorf("it has neither a record (%s, written by release install and release apply) nor a %s, so there is nothing to check it against; name the package it came from and the deltas applied since, e.g. release verify --install-dir %s k2s-1.4.0.zip k2s-delta-1.4.0-to-1.5.0.zip",
		delta.InstallRecord, delta.PackageManifestName, dir)
}

// recordFromSources folds the sources into one expectation: a full
// package (laid out with layout) or a delta first, then each delta
// applied to the result. A first delta takes the directories its
// product's archives unpack into from given, or else from its profile.
func recordFromSources(ctx context.Context, sources []string, given *Layout, layout Layout, workers int, progress func(int64)) (*Record, error) {
	var rec *Record
	for i, src := range sources {
		r, err := pkgzip.Open(src)
		if err != nil {
			return nil, err
		}
		e := r.Lookup(delta.ManifestName)
		if e != nil && isNodeDelta(e) {
			r.Close()
			return nil, fmt.Errorf("%s is a node delta, which changes a node's packages and images, not an installation directory", src)
		}
		if e == nil {
			r.Close()
			if i > 0 {
				return nil, fmt.Errorf("%s is a full package, which replaces an installation rather than changing it; give it first, then the deltas applied to it", src)
			}
			if rec, err = recordFromPackage(ctx, src, layout, workers, progress); err != nil {
				return nil, err
			}
			continue
		}
		m, pm, err := readDeltaManifests(r)
		r.Close()
		if err != nil {
			return nil, err
		}
		name := filepath.Base(src)
		if rec == nil {
			var dl Layout
			if given != nil {
				dl = *given
			} else {
				if dl, err = LayoutOf(m.Profile); err != nil {
					return nil, fmt.Errorf("%s: %w", src, err)
				}
			}
			rec = recordFromDelta(m, pm, dl, name)
			continue
		}
		if rec.Version != m.BaseVersion {
			return nil, fmt.Errorf("%s goes from %s to %s, but %s leaves the installation at %s; give the deltas in the order they were applied", name, m.BaseVersion, m.TargetVersion, sources[i-1], rec.Version)
		}
		rec = rec.advance(m, name)
	}
	return rec, nil
}

// checkTree compares the installation in dir (absolute) with rec.
func checkTree(ctx context.Context, dir string, rec *Record, workers int, progress func(int64)) (*InstallCheck, error) {
	found, err := listInstalled(dir)
	if err != nil {
		return nil, err
	}
	chk := &InstallCheck{Operation: "verify-install", InstallDir: dir, Against: slices.Clone(rec.Sources), Version: rec.Version}
	type job struct {
		path string
		want *pkgzip.Digest
	}
	var jobs []job
	for _, p := range sortedKeys(rec.Files) {
		want := rec.Files[p]
		typ, ok := found[p]
		switch {
		case rec.skips(p):
			if ok {
				chk.Ignored++
			}
		case !ok:
			d := Difference{Path: p, Problem: Missing, ExpectedSHA256: want.SHA256, ExpectedSize: &want.Size}
			if fi, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(p))); err == nil && fi.IsDir() {
				d.Detail = "a directory is there instead"
			}
			chk.add(d)
		case !typ.IsRegular():
			chk.add(Difference{Path: p, Problem: Changed, ExpectedSHA256: want.SHA256, ExpectedSize: &want.Size, Detail: "is " + "a " + filekind.Name(typ) + ", not a file"})
		default:
			jobs = append(jobs, job{p, &want})
		}
	}
	for _, p := range sortedKeys(found) {
		if _, listed := rec.Files[p]; listed {
			continue
		}
		switch typ := found[p]; {
		case rec.skips(p):
			chk.Ignored++
		case rec.unlisted(p):
			chk.Unlisted++
		case !typ.IsRegular():
			chk.add(Difference{Path: p, Problem: Extra, Detail: "a " + filekind.Name(typ)})
		default:
			jobs = append(jobs, job{p, nil})
		}
	}
	var bytes atomic.Int64
	progress = serialize(progress)
	got, err := parallel.Map(ctx, max(workers, 1), jobs, func(ctx context.Context, _ int, j job) (*Difference, error) {
		d, err := hashFile(ctx, filepath.Join(dir, filepath.FromSlash(j.path)), progress)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		bytes.Add(d.Size)
		return judge(j.path, j.want, d, err), nil
	})
	if err != nil {
		return nil, err
	}
	chk.FilesChecked, chk.BytesChecked = len(jobs), bytes.Load()
	for _, d := range got {
		if d != nil {
			chk.add(*d)
		}
	}
	slices.SortFunc(chk.Differences, func(a, b Difference) int {
		if c := strings.Compare(a.Path, b.Path); c != 0 {
			return c
		}
		return strings.Compare(a.Problem, b.Problem)
	})
	chk.OK = len(chk.Differences) == 0
	if chk.Differences == nil {
		chk.Differences = []Difference{}
	}
	return chk, nil
}

// judge compares one hashed file with what it should be (want nil: a
// file that should not be there at all).
func judge(p string, want *pkgzip.Digest, got pkgzip.Digest, err error) *Difference {
	d := &Difference{Path: p, Problem: Changed}
	if want == nil {
		d.Problem = Extra
	} else {
		d.ExpectedSHA256, d.ExpectedSize = want.SHA256, &want.Size
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// Removed while the check ran.
		if want == nil {
			return nil
		}
		d.Problem = Missing
	case err != nil:
		d.Detail = "cannot be read: " + err.Error()
	case want != nil && got == *want:
		return nil
	default:
		d.ActualSHA256, d.ActualSize = got.SHA256, &got.Size
	}
	return d
}

func (c *InstallCheck) add(d Difference) {
	c.Differences = append(c.Differences, d)
	switch d.Problem {
	case Missing:
		c.Missing++
	case Extra:
		c.Extra++
	default:
		c.Changed++
	}
}

// listInstalled is every non-directory below dir by relative path, but
// for release's own state at the root (the apply state and lock, the
// record): what the installation holds.
func listInstalled(dir string) (map[string]fs.FileMode, error) {
	found := map[string]fs.FileMode{}
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if !strings.Contains(rel, "/") && delta.Reserved(rel) {
			if e.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !e.IsDir() {
			found[rel] = e.Type()
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list the installation: %w", err)
	}
	return found, nil
}

func orUnversioned(v string) string {
	if v == "" {
		return "unversioned (no " + delta.VersionFile + " file)"
	}
	return v
}
