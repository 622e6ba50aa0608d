//go:build linux

package main

// End-to-end tests of release.exe (GOOS=windows) run for real under Wine:
// the transactional apply on a Windows file system API (share modes,
// read-only attributes, case-insensitive names, long paths), killed for
// real part-way. internal/winetest says where Wine differs from Windows.

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relcue/release/internal/winetest"
	"github.com/relcue/release/modules/delta"
)

// crashMarker is what RELEASE_TEST_CRASH=<point>:<i>:hang|pause prints to
// stderr when the point is reached (modules/apply/crash.go).
const crashMarker = "release: test crash point reached: "

var (
	winBinsOnce             sync.Once
	winRelease, winHoldfile string
	winBinsErr              error
)

// windowsBinaries builds release.exe and the holdfile helper for
// windows/amd64, once per test binary, beside the native binary (TestMain
// removes them).
func windowsBinaries(t *testing.T) (release, holdfile string) {
	t.Helper()
	winBinsOnce.Do(func() {
		dir := filepath.Dir(binPath)
		winRelease, winHoldfile = filepath.Join(dir, "release.exe"), filepath.Join(dir, "holdfile.exe")
		for _, b := range []struct{ out, pkg string }{{winRelease, "."}, {winHoldfile, "../../internal/winetest/holdfile"}} {
			if winBinsErr = winetest.BuildWindows(b.out, b.pkg); winBinsErr != nil {
				return
			}
		}
	})
	if winBinsErr != nil {
		t.Fatal(winBinsErr)
	}
	return winRelease, winHoldfile
}

// wineEnv is the shared Wine prefix and the Windows binaries, for one test.
type wineEnv struct {
	t                 *testing.T
	pfx               *winetest.Prefix
	release, holdfile string
}

func newWine(t *testing.T) *wineEnv {
	t.Helper()
	pfx := winetest.Shared(t)
	r, h := windowsBinaries(t)
	return &wineEnv{t: t, pfx: pfx, release: r, holdfile: h}
}

// run runs release.exe with args under Wine to its end.
func (w *wineEnv) run(env []string, args ...string) result {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := w.pfx.Command(ctx, w.release, args...)
	cmd.Env = append(append(cmd.Env, "CI=true"), env...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		w.t.Fatalf("wine release.exe %s: still running after 2 minutes\nstderr:\n%s", strings.Join(args, " "), errb.String())
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		w.t.Fatal(err)
	}
	return result{out.String(), errb.String(), code}
}

func (w *wineEnv) mustRun(args ...string) result {
	w.t.Helper()
	r := w.run(nil, args...)
	if r.code != 0 {
		w.t.Fatalf("wine release.exe %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// applyArgs are the arguments of `release apply` of d onto install, as
// Windows paths.
func applyArgs(d, install string, extra ...string) []string {
	return append([]string{"apply", winetest.WinPath(d), "--install-dir", winetest.WinPath(install)}, extra...)
}

// wineProc is a Windows program running under Wine in the background,
// its stdout and stderr read line by line.
type wineProc struct {
	w     *wineEnv
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
	mu    sync.Mutex
	out   strings.Builder
	done  chan struct{}
}

// start starts exe under Wine; the test's end kills it if it still runs.
func (w *wineEnv) start(env []string, exe string, args ...string) *wineProc {
	w.t.Helper()
	p := &wineProc{w: w, name: filepath.Base(exe), lines: make(chan string, 1000), done: make(chan struct{})}
	p.cmd = w.pfx.Command(context.Background(), exe, args...)
	p.cmd.Env = append(append(p.cmd.Env, "CI=true"), env...)
	stdin, err := p.cmd.StdinPipe()
	if err != nil {
		w.t.Fatal(err)
	}
	p.stdin = stdin
	r, wr, err := os.Pipe()
	if err != nil {
		w.t.Fatal(err)
	}
	p.cmd.Stdout, p.cmd.Stderr = wr, wr
	if err := p.cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	wr.Close()
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			p.mu.Lock()
			p.out.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			select {
			case p.lines <- sc.Text():
			default:
			}
		}
		r.Close()
		close(p.lines)
	}()
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	w.t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *wineProc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// waitFor waits for a line containing s.
func (p *wineProc) waitFor(s string) {
	p.w.t.Helper()
	timeout := time.After(time.Minute)
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				<-p.done
				p.w.t.Fatalf("%s ended (%v) before printing %q:\n%s", p.name, p.cmd.ProcessState, s, p.output())
			}
			if strings.Contains(line, s) {
				return
			}
		case <-timeout:
			p.w.t.Fatalf("%s did not print %q within a minute:\n%s", p.name, s, p.output())
		}
	}
}

// kill kills the Windows process for real (SIGKILL to the Linux process
// that it is) and waits until the wineserver has noticed, so that its
// handles and its lock on the installation are gone.
func (p *wineProc) kill() {
	p.w.t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		p.w.t.Fatal(err)
	}
	<-p.done
	if ws, ok := p.cmd.ProcessState.Sys().(interface{ Signaled() bool }); !ok || !ws.Signaled() {
		p.w.t.Fatalf("%s was not killed: %v\n%s", p.name, p.cmd.ProcessState, p.output())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.w.pfx.WaitGone(ctx, p.name); err != nil {
		p.w.t.Fatal(err)
	}
}

// finish closes the program's stdin and waits for it to exit.
func (p *wineProc) finish() (code int, output string) {
	p.w.t.Helper()
	p.stdin.Close()
	select {
	case <-p.done:
	case <-time.After(time.Minute):
		p.w.t.Fatalf("%s still running a minute after its stdin was closed:\n%s", p.name, p.output())
	}
	for range p.lines {
	}
	return p.cmd.ProcessState.ExitCode(), p.output()
}

// hold starts holdfile.exe on the installed file p and waits until it has
// it open (share mode FILE_SHARE_READ only).
func (w *wineEnv) hold(p string) *wineProc {
	w.t.Helper()
	h := w.start(nil, w.holdfile, winetest.WinPath(p))
	h.waitFor("held")
	return h
}

// sampleDist builds the sample natively and returns its dist directory.
func sampleDist(t *testing.T) string {
	t.Helper()
	dir := copySample(t)
	runBuild(t, dir, filepath.Join(t.TempDir(), "cache"))
	return filepath.Join(dir, "dist")
}

// extracted unzips a package into a new directory named name.
func extracted(t *testing.T, zipPath, name string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	unzipTo(t, zipPath, dir)
	return dir
}

// assertSameTree fails unless got holds exactly want's files and bytes
// and no apply state is left.
func assertSameTree(t *testing.T, got, want string) {
	t.Helper()
	if treeHash(t, got) != treeHash(t, want) {
		t.Fatalf("%s differs from %s:\n%s", got, want, diffTrees(t, got, want))
	}
	for _, n := range []string{delta.ApplyStateDir, delta.ApplyLockFile} {
		if _, err := os.Lstat(filepath.Join(got, n)); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%s is left in %s (%v)", n, got, err)
		}
	}
}

type applyJSON struct {
	TargetVersion  string   `json:"targetVersion"`
	AlreadyApplied bool     `json:"alreadyApplied"`
	FilesWritten   int      `json:"filesWritten"`
	FilesRemoved   int      `json:"filesRemoved"`
	Warnings       []string `json:"warnings"`
	Recovery       *struct {
		Action string `json:"action"`
	} `json:"recovery"`
}

func parseApply(t *testing.T, r result) applyJSON {
	t.Helper()
	var a applyJSON
	if err := json.Unmarshal([]byte(r.stdout), &a); err != nil {
		t.Fatalf("apply --format json: %v\n%s", err, r.stdout)
	}
	return a
}

const sampleDelta = "deltas/k2s-delta-1.4.0-to-1.5.0.zip"

// TestWineApplyAndVerify applies the sample's delta with release.exe
// under Wine, checks the result is 1.5.0 byte for byte, verifies the
// package, the delta and the installation under Wine, and logs the wall
// time against the native binary's.
func TestWineApplyAndVerify(t *testing.T) {
	w := newWine(t)
	dist := sampleDist(t)
	d := filepath.Join(dist, sampleDelta)
	want := appliedWant(t, filepath.Join(dist, "packages/k2s-1.4.0.zip"), filepath.Join(dist, "packages/k2s-1.5.0.zip"), d)

	install := installed(t, filepath.Join(dist, "packages/k2s-1.4.0.zip"), "k2s")
	start := time.Now()
	a := parseApply(t, w.mustRun(applyArgs(d, install, "--format", "json")...))
	wineWall := time.Since(start)
	// Warnings would mean, here, that the staging area could not be
	// removed (Wine 8.0 and os.RemoveAll: see modules/apply/removeall_windows.go).
	if a.TargetVersion != "1.5.0" || a.AlreadyApplied || a.FilesWritten != 14 || a.FilesRemoved != 2 || len(a.Warnings) > 0 || a.Recovery != nil {
		t.Fatalf("apply under Wine: %+v", a)
	}
	assertSameTree(t, install, want)

	native := installed(t, filepath.Join(dist, "packages/k2s-1.4.0.zip"), "native")
	start = time.Now()
	mustRun(t, "apply", d, "--install-dir", native, "-q")
	nativeWall := time.Since(start)
	assertSameTree(t, native, want)
	t.Logf("release apply %s: native %v, release.exe under Wine %v (Wine's process start included)", filepath.Base(d), nativeWall.Round(time.Millisecond), wineWall.Round(time.Millisecond))

	// The package and the delta verify under Wine.
	v := w.mustRun("verify", winetest.WinPath(filepath.Join(dist, "packages/k2s-1.5.0.zip")), winetest.WinPath(d))
	if !strings.Contains(v.stdout, "k2s-1.5.0.zip") || !strings.Contains(v.stdout, filepath.Base(d)) {
		t.Fatalf("verify under Wine:\n%s", v.stdout)
	}
	// The installation verifies: an apply onto the target version hashes
	// every file the delta wrote and checks every removed one is gone.
	if a := parseApply(t, w.mustRun(applyArgs(d, install, "--format", "json")...)); !a.AlreadyApplied {
		t.Fatalf("re-apply under Wine: %+v", a)
	}
	// And that check can fail: a changed file is named.
	k2s := filepath.Join(install, "k2s.exe")
	orig := readFile(t, k2s)
	if err := os.WriteFile(k2s, append(orig, '!'), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := w.run(nil, applyArgs(d, install)...); r.code != 1 || !strings.Contains(r.stderr, "k2s.exe") {
		t.Fatalf("re-apply onto a damaged 1.5.0 under Wine: exit %d\n%s", r.code, r.stderr)
	}
}

// TestWineApplyKilled kills release.exe for real, while staging and in the
// middle of the commit, and checks that the next run finishes the job.
func TestWineApplyKilled(t *testing.T) {
	w := newWine(t)
	dist := sampleDist(t)
	d := filepath.Join(dist, sampleDelta)
	want := appliedWant(t, filepath.Join(dist, "packages/k2s-1.4.0.zip"), filepath.Join(dist, "packages/k2s-1.5.0.zip"), d)

	t.Run("staging", func(t *testing.T) {
		w := *w
		w.t = t
		install := installed(t, filepath.Join(dist, "packages/k2s-1.4.0.zip"), "k2s")
		before := treeHashWithout(t, install, delta.ApplyStateDir, delta.ApplyLockFile)
		p := w.start([]string{"RELEASE_TEST_CRASH=staged:1:hang"}, w.release, applyArgs(d, install)...)
		p.waitFor(crashMarker + "staged:1")
		p.kill()
		if _, err := os.Stat(filepath.Join(install, delta.ApplyStateDir, "stage")); err != nil {
			t.Fatalf("the killed apply left no staging area: %v", err)
		}
		if treeHashWithout(t, install, delta.ApplyStateDir, delta.ApplyLockFile) != before {
			t.Fatal("an apply killed while staging changed the installation")
		}
		a := parseApply(t, w.mustRun(applyArgs(d, install, "--format", "json")...))
		if a.Recovery == nil || a.Recovery.Action != "discarded-stage" || a.TargetVersion != "1.5.0" || a.AlreadyApplied {
			t.Fatalf("apply after the kill: %+v", a)
		}
		assertSameTree(t, install, want)
	})
	t.Run("commit", func(t *testing.T) {
		w := *w
		w.t = t
		install := installed(t, filepath.Join(dist, "packages/k2s-1.4.0.zip"), "k2s")
		p := w.start([]string{"RELEASE_TEST_CRASH=commit:2:hang"}, w.release, applyArgs(d, install)...)
		p.waitFor(crashMarker + "commit:2")
		p.kill()
		// Two renames done: the installation is neither version.
		if treeHash(t, install) == treeHash(t, want) {
			t.Fatal("the apply killed mid-commit had finished")
		}
		rec := w.mustRun("apply", "--recover", "--install-dir", winetest.WinPath(install), "--format", "json")
		if a := parseApply(t, rec); a.Recovery == nil || a.Recovery.Action != "rolled-forward" {
			t.Fatalf("recover after the kill: %s", rec.stdout)
		}
		assertSameTree(t, install, want)
		if a := parseApply(t, w.mustRun(applyArgs(d, install, "--format", "json")...)); !a.AlreadyApplied || a.Recovery != nil {
			t.Fatalf("apply after the recovery: %+v", a)
		}
	})
}

// TestWineApplyHeldFile holds a file the delta replaces open in another
// Windows program, sharing it for reading only: the apply refuses before
// its commit point and changes nothing; once the program has closed it,
// the apply succeeds. A program that opens a file after that check makes
// the commit fail part-way, and the commit is rolled back, read-only files
// included.
func TestWineApplyHeldFile(t *testing.T) {
	w := newWine(t)
	dist := sampleDist(t)
	d := filepath.Join(dist, sampleDelta)
	want := appliedWant(t, filepath.Join(dist, "packages/k2s-1.4.0.zip"), filepath.Join(dist, "packages/k2s-1.5.0.zip"), d)

	t.Run("before", func(t *testing.T) {
		w := *w
		w.t = t
		install := installed(t, filepath.Join(dist, "packages/k2s-1.4.0.zip"), "k2s")
		before := treeHash(t, install)
		h := w.hold(filepath.Join(install, "bin", "kube", "kubelet.exe"))
		r := w.run(nil, applyArgs(d, install)...)
		if r.code != 1 || !strings.Contains(r.stderr, "bin/kube/kubelet.exe is open in another program") ||
			!strings.Contains(r.stderr, "close the program that holds it and run apply again") || !strings.Contains(r.stderr, "nothing was changed") {
			t.Fatalf("apply with a held file: exit %d\n%s", r.code, r.stderr)
		}
		if treeHash(t, install) != before {
			t.Fatalf("the refused apply changed the installation:\n%s", diffTrees(t, install, want))
		}
		assertNoState(t, install)
		if code, out := h.finish(); code != 0 {
			t.Fatalf("holdfile: exit %d\n%s", code, out)
		}
		w.mustRun(applyArgs(d, install)...)
		assertSameTree(t, install, want)
	})

	t.Run("during-commit", func(t *testing.T) {
		w := *w
		w.t = t
		install := installed(t, filepath.Join(dist, "packages/k2s-1.4.0.zip"), "k2s")
		// Read-only files the commit moves to the backup before it
		// reaches the held one (renames go in path order): the rollback
		// must bring them back as they were.
		readOnly := []string{"bin/plink.exe", "k2s.exe"}
		for _, p := range readOnly {
			if err := os.Chmod(filepath.Join(install, p), 0o444); err != nil {
				t.Fatal(err)
			}
		}
		before := treeHash(t, install)
		// Paused at its commit point, after the check that every file can
		// be moved; the file is held from then on.
		a := w.start([]string{"RELEASE_TEST_CRASH=committing:0:pause"}, w.release, applyArgs(d, install)...)
		a.waitFor(crashMarker + "committing:0")
		h := w.hold(filepath.Join(install, "smallsetup", "InstallK8s.ps1"))
		code, out := a.finish()
		if code != 1 || !strings.Contains(out, "move smallsetup/InstallK8s.ps1 to the backup") || !strings.Contains(out, "the installation was rolled back to 1.4.0") {
			t.Fatalf("apply whose file was taken during the commit: exit %d\n%s", code, out)
		}
		if treeHash(t, install) != before {
			t.Fatal("the rolled-back apply left the installation changed")
		}
		assertNoState(t, install)
		for _, p := range readOnly {
			// Read-only is what Windows sees: no write bit. (Wine
			// also sets or clears the execute bits when a file is
			// renamed to or from an .exe name, so k2s.exe comes back
			// from backup/ as 0o555.)
			if fi, err := os.Stat(filepath.Join(install, p)); err != nil || fi.Mode().Perm()&0o222 != 0 {
				t.Fatalf("%s after the rollback: %v %v; want the read-only original", p, fi.Mode(), err)
			}
		}
		if code, out := h.finish(); code != 0 {
			t.Fatalf("holdfile: exit %d\n%s", code, out)
		}
		w.mustRun(applyArgs(d, install)...)
		assertSameTree(t, install, want)
	})
}

// TestWineApplyReadOnly applies over a read-only file the delta changes
// and one it removes.
func TestWineApplyReadOnly(t *testing.T) {
	w := newWine(t)
	dist := sampleDist(t)
	d := filepath.Join(dist, sampleDelta)
	want := appliedWant(t, filepath.Join(dist, "packages/k2s-1.4.0.zip"), filepath.Join(dist, "packages/k2s-1.5.0.zip"), d)
	install := installed(t, filepath.Join(dist, "packages/k2s-1.4.0.zip"), "k2s")
	for _, p := range []string{"bin/plink.exe", "k2s.exe"} {
		if err := os.Chmod(filepath.Join(install, p), 0o444); err != nil {
			t.Fatal(err)
		}
	}
	// Wine shows a file without write bits as FILE_ATTRIBUTE_READONLY.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	attrib, err := w.pfx.Command(ctx, "cmd", "/c", "attrib", winetest.WinPath(filepath.Join(install, "k2s.exe"))).CombinedOutput()
	if i := strings.Index(string(attrib), `Z:\`); err != nil || i < 0 || !strings.Contains(string(attrib[:i]), "R") {
		t.Fatalf("attrib of the read-only k2s.exe: %v\n%s", err, attrib)
	}
	a := parseApply(t, w.mustRun(applyArgs(d, install, "--format", "json")...))
	if a.TargetVersion != "1.5.0" || len(a.Warnings) > 0 {
		t.Fatalf("apply over read-only files: %+v", a)
	}
	// The new k2s.exe has the mode the package gives it: the read-only
	// attribute of the file it replaced is not carried over.
	assertSameTree(t, install, want)
}

// TestWineCaseOnlyRenameCRLF applies a delta that renames lib/Foo.psm1 to
// lib/foo.psm1 (and changes it) and lib/Bar.psd1 to lib/bar.psd1 (same
// bytes) on Wine's case-insensitive view of the installation, rolled back
// once and then through, and checks that shipped CRLF files are hashed
// and installed byte for byte.
func TestWineCaseOnlyRenameCRLF(t *testing.T) {
	w := newWine(t)
	oldFoo := "function Get-Foo {\r\n    'old'\r\n}\r\n"
	newFoo := "function Get-Foo {\r\n    'new'\r\n}\r\nExport-ModuleMember -Function Get-Foo\r\n"
	bar := "@{\r\n    ModuleVersion = '1.0'\r\n}\r\n"
	setup := "Write-Host 'setup 1.1.0'\r\n"
	dist := tinyDist(t, map[string]map[string]string{
		"1.0.0": {"lib/Foo.psm1": oldFoo, "lib/Bar.psd1": bar, "Setup.ps1": "Write-Host 'setup 1.0.0'\r\n"},
		"1.1.0": {"lib/foo.psm1": newFoo, "lib/bar.psd1": bar, "Setup.ps1": setup},
	})
	d := filepath.Join(dist, "deltas/tiny-delta-1.0.0-to-1.1.0.zip")
	target := filepath.Join(dist, "packages/tiny-1.1.0.zip")

	// Hashes are over the bytes as shipped: CRLF, unconverted.
	for _, c := range []struct{ path, content string }{{"Setup.ps1", setup}, {"lib/foo.psm1", newFoo}} {
		if got, want := manifestSHA256(t, target, c.path), sha256Hex([]byte(c.content)); got != want {
			t.Fatalf("package-manifest.json says %s has sha256 %s; its CRLF bytes hash to %s", c.path, got, want)
		}
	}

	base := extracted(t, filepath.Join(dist, "packages/tiny-1.0.0.zip"), "base")
	install := extracted(t, filepath.Join(dist, "packages/tiny-1.0.0.zip"), "tiny")

	// A commit that fails after the new lib/bar.psd1 and lib/foo.psm1
	// are in place (the staged installation record, .release-installed.json,
	// placed last, is held open) is rolled back to exactly the old names
	// and bytes.
	a := w.start([]string{"RELEASE_TEST_CRASH=committing:0:pause"}, w.release, applyArgs(d, install)...)
	a.waitFor(crashMarker + "committing:0")
	staged := dirNames(t, filepath.Join(install, delta.ApplyStateDir, "stage"))
	h := w.hold(filepath.Join(install, delta.ApplyStateDir, "stage", staged[len(staged)-1]))
	// The held staged file cannot be removed either (Windows refuses to
	// delete a file open without FILE_SHARE_DELETE): the journal stays.
	if code, out := a.finish(); code != 1 || !strings.Contains(out, "move new "+delta.InstallRecord+" into place") ||
		!strings.Contains(out, "the installation was rolled back to 1.0.0 but remove") || !strings.Contains(out, "apply again or run apply --recover") {
		t.Fatalf("apply whose last staged file was held: exit %d\n%s", code, out)
	}
	if names := dirNames(t, filepath.Join(install, "lib")); strings.Join(names, " ") != "Bar.psd1 Foo.psm1" {
		t.Fatalf("lib/ holds %v after the rollback; want exactly Bar.psd1 and Foo.psm1", names)
	}
	if treeHashWithout(t, install, delta.ApplyStateDir, delta.ApplyLockFile) != treeHash(t, base) {
		t.Fatalf("the installation after the rollback is not 1.0.0:\n%s", diffTrees(t, install, base))
	}
	if code, out := h.finish(); code != 0 {
		t.Fatalf("holdfile: exit %d\n%s", code, out)
	}
	rec := w.mustRun("apply", "--recover", "--install-dir", winetest.WinPath(install), "--format", "json")
	if a := parseApply(t, rec); a.Recovery == nil || a.Recovery.Action != "rolled-back" {
		t.Fatalf("recover after the held rollback: %s", rec.stdout)
	}
	assertSameTree(t, install, base)

	w.mustRun(applyArgs(d, install)...)
	names := dirNames(t, filepath.Join(install, "lib"))
	if strings.Join(names, " ") != "bar.psd1 foo.psm1" {
		t.Fatalf("lib/ holds %v after the apply; want exactly bar.psd1 and foo.psm1", names)
	}
	for p, want := range map[string]string{"lib/foo.psm1": newFoo, "lib/bar.psd1": bar, "Setup.ps1": setup} {
		if got := string(readFile(t, filepath.Join(install, p))); got != want {
			t.Fatalf("%s after the apply is %q; want the shipped bytes %q", p, got, want)
		}
	}
	assertSameTree(t, install, extracted(t, target, "want"))
	w.mustRun("verify", winetest.WinPath(target), winetest.WinPath(d))
	// The installation verifies as 1.1.0: lib/Foo.psm1, which the delta
	// removed, is not mistaken for lib/foo.psm1.
	if a := parseApply(t, w.mustRun(applyArgs(d, install, "--format", "json")...)); !a.AlreadyApplied {
		t.Fatalf("re-apply: %+v", a)
	}
}

// TestWineLongPath applies a delta whose files' installed paths are longer
// than 300 characters, beyond Windows's MAX_PATH (260).
func TestWineLongPath(t *testing.T) {
	w := newWine(t)
	deep := "modules/" + strings.Repeat("d", 150) + "/" + strings.Repeat("e", 120)
	dist := tinyDist(t, map[string]map[string]string{
		"1.0.0": {deep + "/Changed.psm1": "old\r\n", deep + "/Removed.ps1": "gone\r\n"},
		"1.1.0": {deep + "/Changed.psm1": "new\r\n", deep + "/Added/" + strings.Repeat("f", 40) + ".psm1": "added\r\n"},
	})
	install := extracted(t, filepath.Join(dist, "packages/tiny-1.0.0.zip"), "tiny")
	if n := len(winetest.WinPath(filepath.Join(install, deep, "Changed.psm1"))); n <= 300 {
		t.Fatalf("the installed path is only %d characters", n)
	}
	d := filepath.Join(dist, "deltas/tiny-delta-1.0.0-to-1.1.0.zip")
	a := parseApply(t, w.mustRun(applyArgs(d, install, "--format", "json")...))
	// Changed.psm1, the added file, VERSION and package-manifest.json.
	if a.FilesWritten != 4 || a.FilesRemoved != 1 || len(a.Warnings) > 0 {
		t.Fatalf("apply of long paths: %+v", a)
	}
	assertSameTree(t, install, extracted(t, filepath.Join(dist, "packages/tiny-1.1.0.zip"), "want"))
	if a := parseApply(t, w.mustRun(applyArgs(d, install, "--format", "json")...)); !a.AlreadyApplied {
		t.Fatalf("re-apply: %+v", a)
	}
}

// TestWineRefusesWindowsNames applies, on Windows, a delta built for a
// product that declared itself never installed there (build.paths
// "posix") and holds lib/CON.psm1, which Windows (and Wine) would open as
// the console: apply refuses it before touching anything, and refuses the
// posix policy itself on Windows.
func TestWineRefusesWindowsNames(t *testing.T) {
	w := newWine(t)
	dist := tinyDistWith(t, map[string]map[string]string{
		"1.0.0": {"Setup.ps1": "old\r\n"},
		"1.1.0": {"Setup.ps1": "new\r\n", "lib/CON.psm1": "# the console\r\n", "lib/trail.": "x"},
	}, "build: paths: \"posix\"\n")
	install := extracted(t, filepath.Join(dist, "packages/tiny-1.0.0.zip"), "tiny")
	before := treeHash(t, install)
	d := filepath.Join(dist, "deltas/tiny-delta-1.0.0-to-1.1.0.zip")
	r := w.run(nil, applyArgs(d, install)...)
	if r.code != 1 || !strings.Contains(r.stderr, `package path "lib/CON.psm1" has "CON.psm1", which Windows opens as the device CON`) ||
		!strings.Contains(r.stderr, "a Windows installation cannot hold it: rename it, or pass --paths posix if this installation is not on Windows; nothing was changed") {
		t.Fatalf("apply: exit %d, want 1 and the name refused\n%s", r.code, r.stderr)
	}
	r = w.run(nil, applyArgs(d, install, "--paths", "posix")...)
	if r.code != 1 || !strings.Contains(r.stderr, `path policy "posix" cannot be used on Windows`) {
		t.Fatalf("apply --paths posix: exit %d, want 1 and the policy refused on Windows\n%s", r.code, r.stderr)
	}
	if treeHash(t, install) != before {
		t.Fatalf("a refused apply changed the installation:\n%s", diffTrees(t, install, extracted(t, filepath.Join(dist, "packages/tiny-1.0.0.zip"), "want")))
	}
	if _, err := os.Lstat(filepath.Join(install, delta.ApplyStateDir)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a refused apply left %s: %v", delta.ApplyStateDir, err)
	}
}

// tinyDist builds, natively, a product "tiny" with the given releases
// (version -> path -> content) and a delta from the first to the second.
func tinyDist(t *testing.T, releases map[string]map[string]string) string {
	t.Helper()
	return tinyDistWith(t, releases, "")
}

// tinyDistWith is tinyDist with more configuration (CUE) appended.
func tinyDistWith(t *testing.T, releases map[string]map[string]string, extra string) string {
	t.Helper()
	dir := t.TempDir()
	var versions []string
	for v, files := range releases {
		versions = append(versions, v)
		for p, content := range files {
			f := filepath.Join(dir, "payload", v, filepath.FromSlash(p))
			if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(f, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	versions = sorted(versions)
	if len(versions) != 2 {
		t.Fatalf("tinyDist needs two releases, got %v", versions)
	}
	cfg := fmt.Sprintf(`package release
product: name: "tiny"
build: date: "2025-06-01T00:00:00Z"
releases: {
	%q: inputs: [{dir: "payload/%s"}]
	%q: inputs: [{dir: "payload/%s"}]
}
deltas: paths: [{from: %q, to: %q}]
`, versions[0], versions[0], versions[1], versions[1], versions[0], versions[1]) + extra
	if err := os.WriteFile(filepath.Join(dir, "release.cue"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	runBuild(t, dir, filepath.Join(t.TempDir(), "cache"))
	return filepath.Join(dir, "dist")
}

// dirNames are the real names in dir, as Linux sees them.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func assertNoState(t *testing.T, install string) {
	t.Helper()
	if _, err := os.Lstat(filepath.Join(install, delta.ApplyStateDir)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("%s is left behind (%v)", delta.ApplyStateDir, err)
	}
}

// treeHashWithout is treeHash of dir without the top-level entries skip.
func treeHashWithout(t *testing.T, dir string, skip ...string) string {
	t.Helper()
	h := sha256.New()
	filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		for _, s := range skip {
			if rel == s {
				if e.IsDir() {
					return fs.SkipDir
				}
				return nil
			}
		}
		if e.IsDir() {
			return nil
		}
		io.WriteString(h, filepath.ToSlash(rel)+"\x00")
		h.Write(readFile(t, p))
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))
}
