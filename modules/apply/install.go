package apply

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/relcue/release/internal/parallel"
	"github.com/relcue/release/modules/delta"
	"github.com/relcue/release/modules/pkgmanifest"
	"github.com/relcue/release/modules/pkgzip"
)

// InstallOptions configures Install.
type InstallOptions struct {
	// Nested are the archives of the package the product's installer
	// unpacks (K2s: bin/WindowsNodeArtifacts.zip into bin/kube, bin/cni,
	// ...); their members are written where the installer puts them, as
	// the deltas expect to find them.
	Nested []delta.Nested
	// Workers bounds parallel writing; < 1 means 1.
	Workers int
	// Progress receives bytes written; may be nil.
	Progress func(int64)
	// Log receives human-readable detail lines; may be nil.
	Log io.Writer
	// Paths is the policy for the paths installed; "" is
	// pkgzip.PathsWindows.
	Paths pkgzip.PathPolicy
	// Skip and SkipNames are the product's skip rules (Layout), kept in
	// the installation's record: the files they name belong to the
	// cluster or change by other means, and verify leaves them alone.
	Skip      []string
	SkipNames []string
}

// installFile is one file Install writes.
type installFile struct {
	path  string
	entry *pkgzip.Entry
	// want is the digest the package manifest gives the file, when it
	// has one.
	want *pkgzip.Digest
}

// Install lays out the full package at zipPath in dir as the product's
// installer does: every file of the package, each checked against the
// package's package-manifest.json (when it has one) as it is written, and
// the members of its nested archives where the installer puts them. dir
// must not exist or be empty: the installation is assembled beside it and
// renamed into place, so it appears complete or not at all. The
// installation's record (delta.InstallRecord) lists every file written,
// for release apply to keep up to date and release verify to check.
func Install(ctx context.Context, zipPath, dir string, opts InstallOptions) (*Report, error) {
	rep, err := install(ctx, zipPath, dir, opts)
	if err != nil {
		return nil, fmt.Errorf("install %s into %s: %w", filepath.Base(zipPath), dir, err)
	}
	return rep, nil
}

func install(ctx context.Context, zipPath, dir string, opts InstallOptions) (*Report, error) {
	paths, err := pkgzip.ParsePathPolicy(string(opts.Paths))
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := checkEmpty(abs); err != nil {
		return nil, err
	}
	r, err := pkgzip.Open(zipPath)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	files, version, closeNested, err := installFiles(r, opts.Nested)
	defer closeNested()
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		if err := paths.Check(f.path); err != nil {
			return nil, pkgzip.Hint(fmt.Errorf("%s: %w", r.Path, err), "install it with --paths posix if the product is never installed on Windows")
		}
	}
	tmp, err := os.MkdirTemp(filepath.Dir(abs), "."+filepath.Base(abs)+".install-")
	if err != nil {
		return nil, err
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()
	var written atomic.Int64
	progress := serialize(opts.Progress)
	digests, err := parallel.Map(ctx, max(opts.Workers, 1), files, func(ctx context.Context, _ int, f installFile) (pkgzip.Digest, error) {
		d, err := writeInstalled(ctx, tmp, f, progress)
		written.Add(d.Size)
		return d, err
	})
	if err != nil {
		return nil, err
	}
	if err := writeInstallRecord(tmp, zipPath, version, files, digests, opts); err != nil {
		return nil, err
	}
	// An empty directory that was there is replaced; Rename cannot
	// replace a directory on every system.
	if err := os.Remove(abs); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err := os.Rename(tmp, abs); err != nil {
		return nil, err
	}
	done = true
	if opts.Log != nil {
		fmt.Fprintf(opts.Log, "installed %s: %d files\n", version, len(files))
	}
	return &Report{Operation: "install", Path: zipPath, InstallDir: abs, TargetVersion: version,
		FilesWritten: len(files), BytesWritten: written.Load()}, nil
}

// checkEmpty refuses an existing dir that is not an empty directory.
func checkEmpty(dir string) error {
	ents, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case len(ents) > 0:
		return fmt.Errorf("%s is not empty; install into a new directory (release apply updates an installation)", dir)
	}
	return nil
}

// installFiles lists what Install writes: the package's files (with the
// package manifest's digests, which must describe this zip) and the nested
// archives' installed members. The returned function closes the nested
// archives.
func installFiles(r *pkgzip.Reader, nested []delta.Nested) ([]installFile, string, func(), error) {
	var readers []*pkgzip.Reader
	closeAll := func() {
		for _, nr := range readers {
			nr.Close()
		}
	}
	version, err := packageVersion(r)
	if err != nil {
		return nil, "", closeAll, err
	}
	var digests map[string]pkgzip.Digest
	pm, ok, err := pkgmanifest.Read(r)
	if err != nil {
		return nil, "", closeAll, err
	}
	if ok {
		if err := pkgmanifest.Check(r, pm); err != nil {
			return nil, "", closeAll, err
		}
		digests = pm.Digests()
	}
	var files []installFile
	taken := map[string]string{} // lower-case path -> what provides it
	for _, e := range r.Entries {
		f := installFile{path: e.Name, entry: e}
		if d, ok := digests[e.Name]; ok {
			f.want = &d
		}
		files = append(files, f)
		taken[strings.ToLower(e.Name)] = e.Name
	}
	for _, n := range nested {
		e := r.Lookup(n.Archive)
		if e == nil {
			continue
		}
		nr, err := e.OpenZip("")
		if err != nil {
			return nil, "", closeAll, err
		}
		readers = append(readers, nr)
		for _, m := range nr.Entries {
			p, ok := n.InstallPath(m.Name)
			if !ok {
				continue
			}
			from := n.Archive + "!" + m.Name
			if err := delta.CheckPath(p); err != nil {
				return nil, "", closeAll, fmt.Errorf("%s: %s is installed as %s: %w", r.Path, from, p, err)
			}
			if other, dup := taken[strings.ToLower(p)]; dup {
				return nil, "", closeAll, fmt.Errorf("%s: %s and %s are both installed as %s", r.Path, other, from, p)
			}
			taken[strings.ToLower(p)] = from
			files = append(files, installFile{path: p, entry: m})
		}
	}
	return files, version, closeAll, nil
}

// packageVersion is the package's trimmed VERSION.
func packageVersion(r *pkgzip.Reader) (string, error) {
	e := r.Lookup(delta.VersionFile)
	if e == nil {
		return "", fmt.Errorf("%s has no %s at its root; it is not a full package", r.Path, delta.VersionFile)
	}
	rc, err := e.Open()
	if err != nil {
		return "", err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, 4097))
	if err != nil {
		return "", err
	}
	v := strings.TrimSpace(string(data))
	if v == "" || len(data) > 4096 || strings.ContainsAny(v, "\r\n\x00") {
		return "", fmt.Errorf("%s: %s must hold one non-empty line", r.Path, delta.VersionFile)
	}
	return v, nil
}

// writeInstallRecord writes the record of a new installation at root:
// every file written, with the digest it was written with.
func writeInstallRecord(root, zipPath, version string, files []installFile, digests []pkgzip.Digest, opts InstallOptions) error {
	rec := &Record{
		RecordVersion: recordVersion,
		Version:       version,
		Sources:       []string{filepath.Base(zipPath)},
		SkipRules:     opts.Skip,
		SkipNames:     opts.SkipNames,
		Nested:        opts.Nested,
		Files:         make(map[string]pkgzip.Digest, len(files)),
	}
	for i, f := range files {
		rec.Files[f.path] = digests[i]
	}
	data, err := rec.marshal()
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(root, delta.InstallRecord), data, 0o644); err != nil {
		return fmt.Errorf("write the installation record: %w", err)
	}
	return nil
}

// writeInstalled writes one file below root, hashing it on the way, and
// refuses content that is not what the package manifest says.
func writeInstalled(ctx context.Context, root string, f installFile, progress func(int64)) (pkgzip.Digest, error) {
	dst := filepath.Join(root, filepath.FromSlash(f.path))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return pkgzip.Digest{}, err
	}
	rc, err := f.entry.Open()
	if err != nil {
		return pkgzip.Digest{}, err
	}
	defer rc.Close()
	mode := os.FileMode(0o644)
	if f.entry.Mode&0o111 != 0 {
		mode = 0o755
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return pkgzip.Digest{}, err
	}
	h := sha256.New()
	n, err := copyCtx(ctx, io.MultiWriter(out, h), rc, progress)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	got := pkgzip.Digest{SHA256: hex.EncodeToString(h.Sum(nil)), Size: n}
	if err != nil {
		return got, fmt.Errorf("%s: %w", f.path, err)
	}
	if f.want != nil && got != *f.want {
		return got, fmt.Errorf("%s has sha256 %s (%d bytes) but %s says %s (%d bytes); the package is corrupt, obtain it again",
			f.path, got.SHA256, got.Size, pkgmanifest.Name, f.want.SHA256, f.want.Size)
	}
	return got, nil
}
