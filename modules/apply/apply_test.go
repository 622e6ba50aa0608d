package apply

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/relcue/release/internal/glob"
	"github.com/relcue/release/modules/delta"
	"github.com/relcue/release/modules/delta/deltatest"
	"github.com/relcue/release/modules/pkgmanifest"
	"github.com/relcue/release/modules/pkgzip"
)

// fixture is a base and a target package, the delta between them and an
// installation of the base with some local files.
type fixture struct {
	dir                 string
	s                   deltatest.Scenario
	baseZip, targetZip  string
	deltaZip            string
	m                   *delta.Manifest
	targetPM            *pkgmanifest.Manifest
	install             string
	before, want        deltatest.Tree
	baseVer, targetVer  string
	withPackageManifest bool
}

func newFixture(t *testing.T, seed uint64, withManifest bool) *fixture {
	t.Helper()
	return newFixtureMode(t, seed, withManifest, delta.ModeFile, nil)
}

// newFixtureMode is newFixture with a delta mode and a change to the
// generated scenario before the packages are written.
func newFixtureMode(t *testing.T, seed uint64, withManifest bool, mode string, edit func(*deltatest.Scenario)) *fixture {
	t.Helper()
	f := &fixture{dir: t.TempDir(), s: deltatest.Generate(seed), withPackageManifest: withManifest}
	if edit != nil {
		edit(&f.s)
	}
	f.baseZip = filepath.Join(f.dir, "k2s-base.zip")
	f.targetZip = filepath.Join(f.dir, "k2s-target.zip")
	deltatest.WritePackage(t, f.baseZip, f.s.Base, withManifest)
	deltatest.WritePackage(t, f.targetZip, f.s.Target, withManifest)
	f.deltaZip = filepath.Join(f.dir, "k2s-delta.zip")
	m, err := delta.Build(context.Background(), delta.Options{
		Base: f.baseZip, Target: f.targetZip, Output: f.deltaZip,
		WholeDirectories: f.s.Whole, Skip: f.s.Skip, Date: deltatest.Date, Workers: 2, Mode: mode,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.m = m
	f.baseVer, f.targetVer = m.BaseVersion, m.TargetVersion
	if withManifest {
		f.targetPM = readPM(t, f.targetZip)
	}

	f.install = filepath.Join(f.dir, "install")
	deltatest.Extract(t, f.baseZip, f.install)
	deltatest.WriteTree(t, f.install, f.s.Local)
	f.before = deltatest.ReadTree(t, f.install)

	// After the apply: the target package, except that skip-rule paths
	// keep whatever the installation had, and local files in the wholesale
	// directory that no rule protects are gone.
	extracted := filepath.Join(f.dir, "target-extracted")
	deltatest.Extract(t, f.targetZip, extracted)
	f.want = deltatest.ReadTree(t, extracted)
	for p := range f.want {
		if f.skipped(p) {
			delete(f.want, p)
		}
	}
	for p, file := range f.before {
		if f.skipped(p) {
			f.want[p] = file
		}
	}
	return f
}

func (f *fixture) skipped(p string) bool {
	for _, r := range f.s.Skip {
		if glob.MatchPrefix(r, p) {
			return true
		}
	}
	return false
}

// reset puts the installation back to its state before any apply.
func (f *fixture) reset(t *testing.T) {
	t.Helper()
	if err := os.RemoveAll(f.install); err != nil {
		t.Fatal(err)
	}
	deltatest.WriteTree(t, f.install, f.before)
}

func readPM(t *testing.T, zipPath string) *pkgmanifest.Manifest {
	t.Helper()
	r, err := pkgzip.Open(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	pm, ok, err := pkgmanifest.Read(r)
	if err != nil || !ok {
		t.Fatalf("read package manifest of %s: %v %v", zipPath, ok, err)
	}
	return pm
}

// assertTree fails unless the installation holds exactly want, with no
// apply state, no lock file and no directory without files left behind.
func assertTree(t *testing.T, dir string, want deltatest.Tree) {
	t.Helper()
	// The record of what the installation should hold is apply's own
	// (TestRecord* check it); want is the files.
	got := deltatest.ReadTree(t, dir)
	delete(got, delta.InstallRecord)
	if d := deltatest.Diff(want, got); d != "" {
		t.Fatalf("installation differs:\n%s", d)
	}
	needed := map[string]bool{}
	for p := range want {
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			needed[d] = true
		}
	}
	for _, d := range deltatest.Dirs(t, dir) {
		if !needed[d] {
			t.Errorf("directory %s is left behind", d)
		}
	}
}

// stateFree drops what an interrupted apply leaves: its state and lock.
func stateFree(tree deltatest.Tree) deltatest.Tree {
	c := tree.Clone()
	for p := range c {
		if delta.Reserved(p) {
			delete(c, p)
		}
	}
	return c
}

func TestApplyRoundTrip(t *testing.T) {
	cases := []struct {
		seed         uint64
		withManifest bool
		workers      int
	}{{1, true, 1}, {2, true, 4}, {3, true, 2}, {4, false, 3}, {5, true, 1}, {6, false, 1}}
	for _, c := range cases {
		t.Run(fmt.Sprintf("seed%d", c.seed), func(t *testing.T) {
			f := newFixture(t, c.seed, c.withManifest)
			ctx := context.Background()

			dry, err := Apply(ctx, f.deltaZip, f.install, Options{DryRun: true, Workers: c.workers})
			if err != nil {
				t.Fatalf("dry run: %v", err)
			}
			assertTree(t, f.install, f.before)

			var log bytes.Buffer
			var progressed int64
			rep, err := Apply(ctx, f.deltaZip, f.install, Options{Workers: c.workers, Log: &log, Progress: func(n int64) { progressed += n }})
			if err != nil {
				t.Fatal(err)
			}
			assertTree(t, f.install, f.want)

			var wantBytes int64
			for _, d := range f.m.Files.Target {
				wantBytes += d.Size
			}
			if rep.FilesWritten != len(f.m.Files.Target) || rep.BytesWritten != wantBytes || rep.BaseVersion != f.baseVer || rep.TargetVersion != f.targetVer {
				t.Errorf("report = %+v, want %d files / %d bytes", rep, len(f.m.Files.Target), wantBytes)
			}
			if rep.Added != f.m.AddedCount || rep.Changed != f.m.ChangedCount || rep.Removed != f.m.RemovedCount || rep.Recovery != nil || rep.AlreadyApplied {
				t.Errorf("report = %+v", rep)
			}
			if rep.FilesRemoved < f.m.RemovedCount+1 { // +1: the stale wholesale plugin
				t.Errorf("FilesRemoved = %d, want at least %d", rep.FilesRemoved, f.m.RemovedCount+1)
			}
			if dry.FilesWritten != rep.FilesWritten || dry.FilesRemoved != rep.FilesRemoved || dry.BytesWritten != rep.BytesWritten || !dry.DryRun {
				t.Errorf("dry run report %+v differs from the apply's %+v", dry, rep)
			}
			if progressed < wantBytes {
				t.Errorf("progress %d < %d bytes written", progressed, wantBytes)
			}
			if !strings.Contains(log.String(), "applied "+f.baseVer+" -> "+f.targetVer) {
				t.Errorf("log = %q", log.String())
			}

			again, err := Apply(ctx, f.deltaZip, f.install, Options{Workers: c.workers})
			if err != nil || !again.AlreadyApplied {
				t.Fatalf("second apply: %+v, %v", again, err)
			}
			assertTree(t, f.install, f.want)
		})
	}
}

func TestApplyForceAndConflicts(t *testing.T) {
	f := newFixture(t, 21, true)
	ctx := context.Background()
	// An added file that is there already with other content.
	added := f.m.Added[0]
	write(t, f.install, added, "not what the delta adds")
	_, err := Apply(ctx, f.deltaZip, f.install, Options{})
	wantSHA := f.m.Files.Target[added].SHA256
	if err == nil || !strings.Contains(err.Error(), added+" has sha256 "+sha("not what the delta adds")) || !strings.Contains(err.Error(), "the file the delta adds is sha256 "+wantSHA) {
		t.Fatalf("error %v, want a conflict on %s naming both hashes", err, added)
	}
	rep, err := Apply(ctx, f.deltaZip, f.install, Options{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], added) || !rep.Forced {
		t.Errorf("warnings = %q", rep.Warnings)
	}
	assertTree(t, f.install, f.want)

	// The same file already there with the same content is no conflict.
	f.reset(t)
	write(t, f.install, added, string(f.s.Target[added].Data))
	if _, err := Apply(ctx, f.deltaZip, f.install, Options{}); err != nil {
		t.Fatal(err)
	}
	assertTree(t, f.install, f.want)

	// A wrong version is refused, and --force applies anyway.
	f.reset(t)
	write(t, f.install, "VERSION", "1.4.999\n")
	if _, err := Apply(ctx, f.deltaZip, f.install, Options{Force: true}); err != nil {
		t.Fatal(err)
	}
	assertTree(t, f.install, f.want)
}

func write(t *testing.T, dir, rel, content string) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// zent is an entry for craftZip.
type zent struct {
	name string
	body []byte
}

// craftZip writes a zip with exactly these entries through archive/zip, so
// that names and contents can be anything.
func craftZip(t *testing.T, dst string, ents []zent) {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range ents {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: e.name, Method: zip.Deflate})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// entries reads every entry of a zip.
func entries(t *testing.T, src string) []zent {
	t.Helper()
	zr, err := zip.OpenReader(src)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var out []zent
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if _, err := b.ReadFrom(rc); err != nil {
			t.Fatal(err)
		}
		rc.Close()
		out = append(out, zent{f.Name, b.Bytes()})
	}
	return out
}

// largestShipped is the biggest file the delta carries besides manifests.
func (f *fixture) largestShipped() string {
	best := ""
	for p, d := range f.m.Files.Target {
		if p != delta.PackageManifestName && (best == "" || d.Size > f.m.Files.Target[best].Size) {
			best = p
		}
	}
	return best
}

func TestApplyRefusesBadInput(t *testing.T) {
	f := newFixture(t, 31, true)
	ctx := context.Background()
	good := entries(t, f.deltaZip)
	crafted := func(name string, edit func([]zent) []zent) string {
		p := filepath.Join(f.dir, name+".zip")
		craftZip(t, p, edit(slices.Clone(good)))
		return p
	}
	big := f.largestShipped()
	changed := f.m.Changed[slices.IndexFunc(f.m.Changed, func(p string) bool { return p != "VERSION" })]
	var unchanged string
	for _, file := range f.targetPM.Files {
		if _, ok := f.m.Files.Target[file.Path]; !ok && !f.skipped(file.Path) {
			unchanged = file.Path
			break
		}
	}

	raw, err := os.ReadFile(f.deltaZip)
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(f.dir, "truncated.zip")
	if err := os.WriteFile(truncated, raw[:len(raw)*2/3], 0o644); err != nil {
		t.Fatal(err)
	}
	corrupt := filepath.Join(f.dir, "corrupt.zip")
	{
		zr, err := zip.OpenReader(f.deltaZip)
		if err != nil {
			t.Fatal(err)
		}
		var off int64
		var size uint64
		for _, e := range zr.File {
			if e.Name == big {
				off, _ = e.DataOffset()
				size = e.CompressedSize64
			}
		}
		zr.Close()
		c := slices.Clone(raw)
		c[off+int64(size/2)] ^= 0xff
		if err := os.WriteFile(corrupt, c, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	cases := []struct {
		name    string
		zip     string
		prepare func(t *testing.T)
		want    []string
	}{
		{name: "truncated", zip: truncated, want: []string{"not a readable zip"}},
		{name: "corrupt data", zip: corrupt, want: []string{big, "corrupt"}},
		{name: "dot-dot entry", zip: crafted("dotdot", func(e []zent) []zent { return append(e, zent{"../evil.txt", []byte("x")}) }),
			want: []string{`"../evil.txt"`, `".." segment`}},
		{name: "absolute entry", zip: crafted("abs", func(e []zent) []zent { return append(e, zent{"/etc/evil", []byte("x")}) }),
			want: []string{`"/etc/evil"`, "absolute path"}},
		{name: "duplicate entry", zip: crafted("dup", func(e []zent) []zent { return append(e, zent{big, []byte("x")}) }),
			want: []string{"the same path twice"}},
		{name: "manifest missing", zip: crafted("nomanifest", func(e []zent) []zent {
			return slices.DeleteFunc(e, func(z zent) bool { return z.name == delta.ManifestName })
		}), want: []string{"no delta-manifest.json at the root"}},
		{name: "manifest path with dot-dot", zip: crafted("manifestdotdot", func(e []zent) []zent {
			for i := range e {
				if e[i].name == delta.ManifestName {
					e[i].body = bytes.Replace(e[i].body, []byte(`"`+f.m.Removed[0]+`"`), []byte(`"../../outside"`), -1)
				}
			}
			return e
		}), want: []string{`".." segment`}},
		{name: "unlisted entry", zip: crafted("unlisted", func(e []zent) []zent { return append(e, zent{"extra/file.txt", []byte("x")}) }),
			want: []string{"entry extra/file.txt is not listed"}},
		{name: "tampered file in delta", zip: crafted("tampered", func(e []zent) []zent {
			for i := range e {
				if e[i].name == big {
					e[i].body = slices.Clone(e[i].body)
					e[i].body[0] ^= 1
				}
			}
			return e
		}), want: []string{"entry " + big, "but delta-manifest.json says " + f.m.Files.Target[big].SHA256, "the delta is corrupt"}},
		{name: "wrong version", zip: f.deltaZip, prepare: func(t *testing.T) { write(t, f.install, "VERSION", "1.4.1\n") },
			want: []string{"installation is 1.4.1 but the delta is for " + f.baseVer + "; use a delta from 1.4.1 to " + f.targetVer + " or install the full package k2s-target.zip",
				"--force would apply this delta anyway, which is dangerous"}},
		{name: "tampered changed file", zip: f.deltaZip, prepare: func(t *testing.T) { write(t, f.install, changed, "tampered") },
			want: []string{changed + " has sha256 " + sha("tampered"), f.m.Files.Base[changed].SHA256, "restore those files from " + f.baseVer + "'s full package k2s-base.zip", "--force would write the delta's files over them anyway, which is dangerous"}},
		{name: "tampered unchanged file", zip: f.deltaZip, prepare: func(t *testing.T) { write(t, f.install, unchanged, "tampered") },
			want: []string{unchanged + " has sha256 " + sha("tampered"), "unchanged file of " + f.baseVer}},
		{name: "removed file missing", zip: f.deltaZip, prepare: func(t *testing.T) {
			if err := os.Remove(filepath.Join(f.install, filepath.FromSlash(f.m.Removed[0]))); err != nil {
				t.Fatal(err)
			}
		}, want: []string{f.m.Removed[0] + " is missing"}},
		{name: "symlinked directory", zip: f.deltaZip, prepare: func(t *testing.T) {
			dir := path.Dir(f.m.Added[len(f.m.Added)-1])
			if dir == "." {
				t.Skip("added file at the root")
			}
			p := filepath.Join(f.install, filepath.FromSlash(dir))
			moved := filepath.Join(f.dir, "moved-away")
			os.RemoveAll(moved)
			if err := os.Rename(p, moved); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(moved, p); err != nil {
				t.Fatal(err)
			}
		}, want: []string{"is a symbolic link"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f.reset(t)
			if c.prepare != nil {
				c.prepare(t)
			}
			before := deltatest.ReadTree(t, f.install)
			_, err := Apply(ctx, c.zip, f.install, Options{Workers: 2})
			if err == nil {
				t.Fatalf("no error, want %q", c.want)
			}
			t.Log(err)
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if !strings.HasPrefix(err.Error(), "apply "+filepath.Base(c.zip)+" to ") {
				t.Errorf("error %q does not say what was applied where", err)
			}
			assertTree(t, f.install, before)
		})
	}
}

func TestApplyIsLocked(t *testing.T) {
	f := newFixture(t, 41, true)
	dir, _ := filepath.Abs(f.install)
	lock, err := acquireLock(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Apply(context.Background(), f.deltaZip, f.install, Options{})
	if err == nil || !strings.Contains(err.Error(), "another release apply is running") {
		t.Errorf("error %v, want the installation to be locked", err)
	}
	if _, err := Recover(context.Background(), f.install); err == nil || !strings.Contains(err.Error(), "another release apply is running") {
		t.Errorf("Recover: %v, want the installation to be locked", err)
	}
	lock.release()
	assertTree(t, f.install, f.before)
	if _, err := Apply(context.Background(), f.deltaZip, f.install, Options{}); err != nil {
		t.Fatal(err)
	}
	assertTree(t, f.install, f.want)
}

// withHook installs a crash hook for the duration of the test.
func withHook(t *testing.T, hook func(point string, i int) error) {
	t.Helper()
	crashHook = hook
	t.Cleanup(func() { crashHook = nil })
}

func TestApplyCrashAndRecover(t *testing.T) {
	f := newFixture(t, 51, true)
	ctx := context.Background()
	dry, err := Apply(ctx, f.deltaZip, f.install, Options{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	writes := dry.FilesWritten
	type point struct {
		name string
		i    int
	}
	points := []point{
		{pointStaged, 1}, {pointStaged, writes},
		{pointJournal, 0}, {pointCommitting, 0},
		{pointCommit, 1}, {pointCommit, writes / 2}, {pointCommit, writes + dry.FilesRemoved},
		{pointCommitted, 0}, {pointCleanup, 0},
	}
	committed := func(p point) bool { return p.name != pointStaged && p.name != pointJournal }
	for _, p := range points {
		for _, viaApply := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s:%d/apply=%v", p.name, p.i, viaApply), func(t *testing.T) {
				f.reset(t)
				fired := false
				withHook(t, func(name string, i int) error {
					if name == p.name && i == p.i {
						fired = true
						return errCrash
					}
					return nil
				})
				_, err := Apply(ctx, f.deltaZip, f.install, Options{Workers: 3})
				if !fired || !isCrash(err) {
					t.Fatalf("crash point not reached (fired %v): %v", fired, err)
				}
				crashHook = nil
				if !lexists(filepath.Join(f.install, delta.ApplyStateDir)) {
					t.Fatalf("the simulated crash cleaned up after itself")
				}
				if !committed(p) {
					// Before the commit point the installation is untouched.
					if d := deltatest.Diff(f.before, stateFree(deltatest.ReadTree(t, f.install))); d != "" {
						t.Fatalf("installation changed before the commit point:\n%s", d)
					}
				}

				var rep *Report
				if viaApply {
					rep, err = Apply(ctx, f.deltaZip, f.install, Options{Workers: 2})
				} else {
					rep, err = Recover(ctx, f.install)
				}
				if err != nil {
					t.Fatal(err)
				}
				if rep.Recovery == nil {
					t.Fatalf("no recovery reported: %+v", rep)
				}
				action := map[bool]string{true: "rolled-forward", false: "rolled-back"}[committed(p)]
				if p.name == pointStaged {
					action = "discarded-stage"
				}
				if rep.Recovery.Action != action {
					t.Errorf("recovery %+v, want %s", rep.Recovery, action)
				}
				switch {
				case viaApply:
					// Whatever the recovery did, the apply then finishes.
					assertTree(t, f.install, f.want)
					if rep.AlreadyApplied != committed(p) {
						t.Errorf("AlreadyApplied = %v after a %s", rep.AlreadyApplied, action)
					}
				case committed(p):
					assertTree(t, f.install, f.want)
					again, err := Apply(ctx, f.deltaZip, f.install, Options{})
					if err != nil || !again.AlreadyApplied {
						t.Fatalf("apply after the roll forward: %+v %v", again, err)
					}
				default:
					assertTree(t, f.install, f.before)
				}
			})
		}
	}
}

// TestRecoverFinishesInterruptedRecovery crashes an apply in its commit,
// then crashes the recovery's roll forward too; the next recovery still ends
// at the target version.
func TestRecoverFinishesInterruptedRecovery(t *testing.T) {
	f := newFixture(t, 52, true)
	ctx := context.Background()
	withHook(t, func(name string, i int) error {
		if name == pointCommit && i == 3 {
			return errCrash
		}
		return nil
	})
	if _, err := Apply(ctx, f.deltaZip, f.install, Options{}); !isCrash(err) {
		t.Fatal(err)
	}
	// The recovery redoes the renames that are missing; crash at its second.
	withHook(t, func(name string, i int) error {
		if name == pointCommit && i == 2 {
			return errCrash
		}
		return nil
	})
	if _, err := Recover(ctx, f.install); !isCrash(err) {
		t.Fatalf("recovery did not reach its second rename: %v", err)
	}
	crashHook = nil
	rep, err := Recover(ctx, f.install)
	if err != nil || rep.Recovery == nil || rep.Recovery.Action != "rolled-forward" {
		t.Fatalf("%+v %v", rep, err)
	}
	assertTree(t, f.install, f.want)
}

func TestApplyRollsBackOnCommitError(t *testing.T) {
	f := newFixture(t, 61, true)
	ctx := context.Background()
	dry, err := Apply(ctx, f.deltaZip, f.install, Options{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	injected := errors.New("injected disk error")
	for _, p := range []struct {
		name string
		i    int
	}{
		{pointStaged, 2}, {pointJournal, 0}, {pointCommitting, 0},
		{pointCommit, 1}, {pointCommit, dry.FilesWritten}, {pointCommit, dry.FilesWritten + dry.FilesRemoved},
		{pointCommitted, 0}, {pointCleanup, 0},
	} {
		t.Run(fmt.Sprintf("%s:%d", p.name, p.i), func(t *testing.T) {
			f.reset(t)
			fired := false
			withHook(t, func(name string, i int) error {
				if name == p.name && i == p.i {
					fired = true
					return injected
				}
				return nil
			})
			_, err := Apply(ctx, f.deltaZip, f.install, Options{Workers: 2})
			if !fired || !errors.Is(err, injected) {
				t.Fatalf("fired %v, error %v", fired, err)
			}
			if p.name != pointStaged && p.name != pointJournal && !strings.Contains(err.Error(), "the installation was rolled back to "+f.baseVer) {
				t.Errorf("error %q does not say it rolled back", err)
			}
			assertTree(t, f.install, f.before)
		})
	}
}

func TestApplyCancelled(t *testing.T) {
	f := newFixture(t, 71, true)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	withHook(t, func(name string, i int) error {
		if name == pointStaged && i == 1 {
			cancel()
		}
		return nil
	})
	_, err := Apply(ctx, f.deltaZip, f.install, Options{Workers: 1})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want cancellation", err)
	}
	assertTree(t, f.install, f.before)
}

func TestDryRunRefusesPendingState(t *testing.T) {
	f := newFixture(t, 72, true)
	if err := os.Mkdir(filepath.Join(f.install, delta.ApplyStateDir), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := Apply(context.Background(), f.deltaZip, f.install, Options{DryRun: true})
	if err == nil || !strings.Contains(err.Error(), "was interrupted") {
		t.Errorf("error %v", err)
	}
	// A state directory without a journal is an apply that died while
	// staging: a real apply discards it and goes on.
	rep, err := Apply(context.Background(), f.deltaZip, f.install, Options{})
	if err != nil || rep.Recovery == nil || rep.Recovery.Action != "discarded-stage" {
		t.Fatalf("%+v %v", rep, err)
	}
	assertTree(t, f.install, f.want)
}

// TestMain lets the crash test run Apply in a child process that really
// exits in the middle (RELEASE_TEST_CRASH), as kill -9 would stop it.
func TestMain(m *testing.M) {
	if os.Getenv("APPLY_TEST_CHILD") == "1" {
		_, err := Apply(context.Background(), os.Getenv("APPLY_TEST_DELTA"), os.Getenv("APPLY_TEST_INSTALL"), Options{Workers: 2})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestCrashEnvironmentKillsProcess(t *testing.T) {
	f := newFixture(t, 81, true)
	for _, c := range []struct {
		crash string
		want  deltatest.Tree
	}{{"staged:2", f.before}, {"journal:0", f.before}, {"commit:3", f.want}, {"committed:0", f.want}} {
		t.Run(c.crash, func(t *testing.T) {
			f.reset(t)
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "APPLY_TEST_CHILD=1", "APPLY_TEST_DELTA="+f.deltaZip, "APPLY_TEST_INSTALL="+f.install, crashEnv+"="+c.crash)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 137 {
				t.Fatalf("child: %v\n%s", err, out)
			}
			if !bytes.Contains(out, []byte("exiting at "+c.crash)) {
				t.Errorf("child output %q", out)
			}
			rep, err := Recover(context.Background(), f.install)
			if err != nil || rep.Recovery == nil {
				t.Fatalf("%+v %v", rep, err)
			}
			assertTree(t, f.install, c.want)
		})
	}
}

func TestVerify(t *testing.T) {
	f := newFixture(t, 91, true)
	ctx := context.Background()
	rep, err := VerifySigned(ctx, f.deltaZip, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Kind != "delta" || rep.FilesVerified != len(f.m.Files.Target)+1 || rep.TargetVersion != f.targetVer {
		t.Errorf("report = %+v", rep)
	}
	rep, err = VerifySigned(ctx, f.targetZip, 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Kind != "package" || rep.TargetVersion != f.targetVer || rep.FilesVerified != len(f.s.Target)+1 {
		t.Errorf("report = %+v", rep)
	}

	big := f.largestShipped()
	tamper := func(src, name string, e []zent) string {
		p := filepath.Join(f.dir, name)
		for i := range e {
			if e[i].name == big {
				e[i].body = slices.Clone(e[i].body)
				e[i].body[len(e[i].body)/2] ^= 1
			}
		}
		craftZip(t, p, e)
		return p
	}
	noManifest := filepath.Join(f.dir, "plain.zip")
	craftZip(t, noManifest, []zent{{"VERSION", []byte("1\n")}})
	for _, c := range []struct {
		zip  string
		want string
	}{
		{tamper(f.deltaZip, "tampered-delta.zip", entries(t, f.deltaZip)), "the delta is corrupt: entry " + big},
		{tamper(f.targetZip, "tampered-package.zip", entries(t, f.targetZip)), `package-manifest.json does not match the package: "` + big + `" has SHA256`},
		{noManifest, "nothing to verify against"},
	} {
		_, err := VerifySigned(ctx, c.zip, 2, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("VerifySigned(%s): %v, want %q", filepath.Base(c.zip), err, c.want)
		}
	}
}

func TestReportJSON(t *testing.T) {
	data, err := json.Marshal(&Report{Operation: "apply", BaseVersion: "1.4.0", Recovery: &Recovery{Action: "rolled-forward"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`"operation":"apply"`, `"baseVersion":"1.4.0"`, `"filesWritten":0`, `"recovery":{"action":"rolled-forward"}`, `"alreadyApplied":false`} {
		if !bytes.Contains(data, []byte(k)) {
			t.Errorf("%s lacks %s", data, k)
		}
	}
}

// TestInterruptedRollback fails a commit, kills the rollback half way and
// recovers. With the journal saying "rolling-back" the recovery finishes the
// undo; if that mark was lost (the journal still says "committing") the
// recovery can still finish forward, because the rollback put the new files
// back into the stage instead of deleting them.
func TestInterruptedRollback(t *testing.T) {
	f := newFixture(t, 62, true)
	ctx := context.Background()
	injected := errors.New("injected disk error")
	// Count the commit's renames; failing at the last one means every new
	// file is in place when the rollback starts.
	renames := 0
	withHook(t, func(name string, i int) error {
		if name == pointCommit {
			renames = i
		}
		return nil
	})
	if _, err := Apply(ctx, f.deltaZip, f.install, Options{}); err != nil {
		t.Fatal(err)
	}
	for _, markLost := range []bool{false, true} {
		t.Run(fmt.Sprintf("markLost=%v", markLost), func(t *testing.T) {
			f.reset(t)
			reached := false
			withHook(t, func(name string, i int) error {
				switch {
				case name == pointCommit && i == renames:
					return injected
				case name == pointRollback && i == 4:
					reached = true
					return errCrash
				}
				return nil
			})
			if _, err := Apply(ctx, f.deltaZip, f.install, Options{}); !isCrash(err) || !reached {
				t.Fatalf("rollback crash not reached (%v): %v", reached, err)
			}
			crashHook = nil
			jp := filepath.Join(f.install, delta.ApplyStateDir, journalName)
			data, err := os.ReadFile(jp)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(data, []byte(`"state": "rolling-back"`)) {
				t.Fatalf("journal not marked rolling-back:\n%.300s", data)
			}
			want, action := f.before, "rolled-back"
			if markLost {
				data = bytes.Replace(data, []byte(`"state": "rolling-back"`), []byte(`"state": "committing"`), 1)
				if err := os.WriteFile(jp, data, 0o644); err != nil {
					t.Fatal(err)
				}
				want, action = f.want, "rolled-forward"
			}
			rep, err := Recover(ctx, f.install)
			if err != nil || rep.Recovery == nil || rep.Recovery.Action != action {
				t.Fatalf("%+v %v", rep, err)
			}
			assertTree(t, f.install, want)
		})
	}
}

func TestReportString(t *testing.T) {
	for _, c := range []struct {
		r    Report
		want string
	}{
		{Report{Operation: "apply", InstallDir: "/opt/k2s", BaseVersion: "1.4.0", TargetVersion: "1.5.0", FilesWritten: 3, BytesWritten: 3 << 20, FilesRemoved: 1, Added: 1, Changed: 2, Removed: 1},
			"/opt/k2s: 1.4.0 -> 1.5.0: wrote 3 files (3.0 MiB), removed 1 (delta: 1 added, 2 changed, 1 removed)"},
		{Report{Operation: "apply", InstallDir: "/opt/k2s", DryRun: true, BaseVersion: "1.4.0", TargetVersion: "1.5.0", BytesWritten: 10},
			"dry run: /opt/k2s: 1.4.0 -> 1.5.0: would write 0 files (10 B), would remove 0"},
		{Report{Operation: "apply", InstallDir: "/opt/k2s", AlreadyApplied: true, TargetVersion: "1.5.0",
			Recovery: &Recovery{Action: "rolled-forward", Delta: "d.zip", BaseVersion: "1.4.0", TargetVersion: "1.5.0"}},
			"recovered an interrupted apply (rolled-forward d.zip, 1.4.0 -> 1.5.0); /opt/k2s: already at 1.5.0"},
		{Report{Operation: "verify", Path: "k.zip", Kind: "package", TargetVersion: "1.5.0", FilesVerified: 2, BytesVerified: 2048},
			"k.zip: package 1.5.0 OK: 2 files, 2.0 KiB verified"},
		{Report{Operation: "recover", InstallDir: "/opt/k2s"}, "/opt/k2s: nothing to recover"},
		{Report{Operation: "apply", InstallDir: "/opt/k2s", Forced: true, BaseVersion: "1.4.0", InstalledVersion: "1.4.0", TargetVersion: "1.5.0", Warnings: []string{"a", "b"}},
			"/opt/k2s: 1.4.0 -> 1.5.0: wrote 0 files (0 B), removed 0 (delta: 0 added, 0 changed, 0 removed); 2 warning(s) overridden by --force"},
		{Report{Operation: "apply", InstallDir: "/opt/k2s", BaseVersion: "1.4.0", TargetVersion: "1.5.0", Warnings: []string{"remove /opt/k2s/.release-apply: denied"}},
			"/opt/k2s: 1.4.0 -> 1.5.0: wrote 0 files (0 B), removed 0 (delta: 0 added, 0 changed, 0 removed); warning: remove /opt/k2s/.release-apply: denied"},
	} {
		if got := c.r.String(); !strings.HasPrefix(got, c.want) {
			t.Errorf("String() = %q\nwant prefix %q", got, c.want)
		}
	}
}

// Cancelled before it starts, apply changes nothing, whatever the delta
// has to stage (a delta that only removes files stages nothing).
func TestApplyCancelledBeforeStart(t *testing.T) {
	f := newFixture(t, 73, true)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Apply(ctx, f.deltaZip, f.install, Options{Workers: 2})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want cancellation", err)
	}
	assertTree(t, f.install, f.before)
	if _, err := os.Stat(filepath.Join(f.install, delta.ApplyStateDir)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("state left behind: %v", err)
	}
}

// A journal release did not write as it reads it (a field it does not
// know, something after the object) is refused, not acted on, and the
// error names the journal so that it can be inspected by hand.
func TestDamagedJournalIsRefused(t *testing.T) {
	f := newFixture(t, 74, true)
	ctx := context.Background()
	withHook(t, func(name string, i int) error {
		if name == pointCommit && i == 2 {
			return errCrash
		}
		return nil
	})
	if _, err := Apply(ctx, f.deltaZip, f.install, Options{}); !isCrash(err) {
		t.Fatal(err)
	}
	crashHook = nil
	jp := filepath.Join(f.install, delta.ApplyStateDir, journalName)
	good, err := os.ReadFile(jp)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, want string
		data       []byte
	}{
		{"trailing data", "unexpected data after the JSON object", append(slices.Clone(good), []byte(`{"state":"prepared"}`)...)},
		{"unknown field", `unknown field "extra"`, bytes.Replace(good, []byte("{"), []byte(`{"extra": 1,`), 1)},
		{"empty", "EOF", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := os.WriteFile(jp, c.data, 0o644); err != nil {
				t.Fatal(err)
			}
			before := deltatest.ReadTree(t, f.install)
			_, err := Recover(ctx, f.install)
			if err == nil || !strings.Contains(err.Error(), "journal "+jp+" is damaged (") || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Recover: %v, want the damaged journal %s named, and %q", err, jp, c.want)
			}
			if d := deltatest.Diff(stateFree(before), stateFree(deltatest.ReadTree(t, f.install))); d != "" {
				t.Fatalf("a damaged journal was acted on:\n%s", d)
			}
		})
	}
	if err := os.WriteFile(jp, good, 0o644); err != nil {
		t.Fatal(err)
	}
	if rep, err := Recover(ctx, f.install); err != nil || rep.Recovery.Action != "rolled-forward" {
		t.Fatalf("%+v %v", rep, err)
	}
	assertTree(t, f.install, f.want)
}
