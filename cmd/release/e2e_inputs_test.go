package main

import (
	"archive/zip"
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// writeForeignZip writes a package the way another tool might: backslash
// separators and explicit directory entries.
func writeForeignZip(t *testing.T, p, version string, files map[string]string) string {
	t.Helper()
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	zw.Create(`bin\`)
	zw.Create(`bin\kube\`)
	files["VERSION"] = version
	for name, content := range files {
		w, err := zw.Create(strings.ReplaceAll(name, "/", `\`))
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(content))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	data, _ := os.ReadFile(p)
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

func configWithZip(t *testing.T, dir, zipPath, sum string) {
	t.Helper()
	// The node content and addons refer to releases not declared here.
	os.Remove(filepath.Join(dir, "node.cue"))
	os.Remove(filepath.Join(dir, "addons.cue"))
	os.Remove(filepath.Join(dir, "rollout.cue"))
	cfg := `package release
product: name: "k2s"
build: date: "2025-06-01T00:00:00Z"
releases: {
	"1.3.0": zip: {path: "` + zipPath + `", sha256: "` + sum + `"}
	"1.5.0": inputs: [{dir: "payload/common"}, {dir: "payload/1.5.0"}]
}
deltas: paths: [{from: "1.3.0", to: "1.5.0"}]
`
	if err := os.WriteFile(filepath.Join(dir, "release.cue"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestForeignZipReleaseAndDelta(t *testing.T) {
	dir := copySample(t)
	zp := filepath.Join(dir, "old.zip")
	sum := writeForeignZip(t, zp, "1.3.0", map[string]string{"bin/kube/kubelet.exe": "old kubelet", "LICENSE": "MIT License\n\nCopyright (c) Example\n"})
	configWithZip(t, dir, "old.zip", sum)
	b := runBuild(t, dir, filepath.Join(t.TempDir(), "cache"))
	// Two packages and the delta; each package's SBOM and provenance.
	if len(b.Artifacts) != 7 {
		t.Fatalf("artifacts %+v", b.Artifacts)
	}
	// The existing package is published byte for byte.
	if got := fileHash(t, filepath.Join(dir, "dist/packages/k2s-1.3.0.zip")); got != sum {
		t.Fatal("existing zip was not used as it is")
	}
	// The installation of 1.3.0, as an extractor on Windows lays it out.
	install := filepath.Join(t.TempDir(), "install")
	os.MkdirAll(filepath.Join(install, "bin", "kube"), 0o755)
	os.WriteFile(filepath.Join(install, "bin", "kube", "kubelet.exe"), []byte("old kubelet"), 0o644)
	os.WriteFile(filepath.Join(install, "LICENSE"), []byte("MIT License\n\nCopyright (c) Example\n"), 0o644)
	os.WriteFile(filepath.Join(install, "VERSION"), []byte("1.3.0"), 0o644)
	mustRun(t, "apply", filepath.Join(dir, "dist/deltas/k2s-delta-1.3.0-to-1.5.0.zip"), "--install-dir", install)
	want := filepath.Join(t.TempDir(), "want")
	unzipTo(t, filepath.Join(dir, "dist/packages/k2s-1.5.0.zip"), want)
	if treeHash(t, install) != treeHash(t, want) {
		t.Fatalf("apply from a foreign base:\n%s", diffTrees(t, install, want))
	}
}

func TestBadInputsFailCleanly(t *testing.T) {
	dir := copySample(t)
	zp := filepath.Join(dir, "old.zip")
	writeForeignZip(t, zp, "1.3.0", map[string]string{"bin/kube/kubelet.exe": "old"})
	cache := filepath.Join(t.TempDir(), "cache")

	// A checksum that does not match the file: a configuration error,
	// found when planning.
	configWithZip(t, dir, "old.zip", strings.Repeat("0", 64))
	r := releaseCmd(t, nil, "build", "-C", dir, "--cache", cache)
	if r.code != 2 || !strings.Contains(r.stderr, "sha256 mismatch for "+zp) || !strings.Contains(r.stderr, "update its sha256") {
		t.Fatalf("wrong sha256: exit %d\n%s", r.code, r.stderr)
	}
	assertNoDist(t, dir)

	// A truncated zip with its (matching) checksum.
	data, _ := os.ReadFile(zp)
	os.WriteFile(zp, data[:len(data)/2], 0o644)
	h := sha256.Sum256(data[:len(data)/2])
	configWithZip(t, dir, "old.zip", hex.EncodeToString(h[:]))
	r = releaseCmd(t, nil, "build", "-C", dir, "--cache", cache)
	if r.code != 1 || !strings.Contains(r.stderr, "old.zip") || !strings.Contains(r.stderr, "package/1.3.0") {
		t.Fatalf("truncated zip: exit %d\n%s", r.code, r.stderr)
	}
	assertNoDist(t, dir)

	// An entry escaping the installation.
	f, _ := os.Create(zp)
	zw := zip.NewWriter(f)
	w, _ := zw.Create("VERSION")
	w.Write([]byte("1.3.0"))
	w, _ = zw.Create(`..\..\evil.exe`)
	w.Write([]byte("x"))
	zw.Close()
	f.Close()
	data, _ = os.ReadFile(zp)
	h = sha256.Sum256(data)
	configWithZip(t, dir, "old.zip", hex.EncodeToString(h[:]))
	r = releaseCmd(t, nil, "build", "-C", dir, "--cache", cache)
	if r.code != 1 || !strings.Contains(r.stderr, "evil.exe") {
		t.Fatalf("traversal: exit %d\n%s", r.code, r.stderr)
	}
	assertNoDist(t, dir)
	if out := mustRun(t, "cache", "ls", "--cache", cache, "--format", "json").stdout; strings.Contains(out, "package/1.3.0") {
		t.Fatalf("a failed target left a cache entry:\n%s", out)
	}
}

func assertNoDist(t *testing.T, dir string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, "dist")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("a failed build wrote dist/")
	}
}

// Ctrl-C during a long step: exit 130, no dist/, no cache entry, no temp
// files left in the cache.
func TestInterruptLeavesNothingHalfWritten(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 256 MiB")
	}
	dir := t.TempDir()
	payload := filepath.Join(dir, "payload")
	os.MkdirAll(payload, 0o755)
	r := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 1<<20)
	for i := 0; i < 4; i++ {
		f, _ := os.Create(filepath.Join(payload, "blob"+string(rune('a'+i))))
		for j := 0; j < 64; j++ {
			for k := range buf {
				buf[k] = byte(r.Uint32())
			}
			f.Write(buf)
		}
		f.Close()
	}
	os.WriteFile(filepath.Join(dir, "release.cue"), []byte(`package release
product: name: "big"
build: date: "2025-06-01T00:00:00Z"
releases: "1.0.0": inputs: [{dir: "payload"}]
`), 0o644)
	cache := filepath.Join(t.TempDir(), "cache")
	cmd := exec.Command(binPath, "build", "-C", dir, "--cache", cache, "-j", "1")
	cmd.Env = append(os.Environ(), "CI=true")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	started := false
	for sc.Scan() {
		if strings.Contains(sc.Text(), "start  build") {
			started = true
			time.Sleep(50 * time.Millisecond)
			cmd.Process.Signal(syscall.SIGINT)
			break
		}
	}
	for sc.Scan() {
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	if !started || !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("interrupted build: started=%v err=%v", started, err)
	}
	assertNoDist(t, dir)
	for _, sub := range []string{"v1/tmp", "v1/entries"} {
		ents, _ := os.ReadDir(filepath.Join(cache, sub))
		if len(ents) != 0 {
			t.Fatalf("%s not empty after interrupt: %v", sub, ents)
		}
	}
}

// An existing .deb whose checksum does not match: a configuration error
// found when planning (exit 2), naming the place in the config, and
// nothing reaches dist/.
func TestExistingDebChecksumMismatch(t *testing.T) {
	dir := copySample(t)
	cfg := filepath.Join(dir, "node.cue")
	src := strings.Replace(string(readFile(t, cfg)), "ff84f77c552fd72bd650361d67bce7fce231db7dbfb7161209a7a657586a5ee8", strings.Repeat("0", 64), 1)
	os.WriteFile(cfg, []byte(src), 0o644)
	r := releaseCmd(t, nil, "build", "-C", dir, "--cache", filepath.Join(t.TempDir(), "cache"), "--target", "node/debian12/1.5.0")
	if r.code != 2 || !strings.Contains(r.stderr, "node.cue:") || !strings.Contains(r.stderr, "sha256 mismatch for "+filepath.Join(dir, "node", "k2s-node-tools_1.0.0_all.deb")) {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	assertNoDist(t, dir)
}

// A tampered node package is caught by release verify.
func TestVerifyCatchesTamperedNodePackage(t *testing.T) {
	dir := copySample(t)
	runBuild(t, dir, filepath.Join(t.TempDir(), "cache"), "--target", "node/debian12/1.5.0")
	p := filepath.Join(dir, "dist", "nodes", "k2s-node-debian12-1.5.0.zip")
	mustRun(t, "verify", p)
	zr, err := zip.OpenReader(p)
	if err != nil {
		t.Fatal(err)
	}
	// Corrupt the stored bytes of the first .deb inside the zip.
	var off int64
	for _, f := range zr.File {
		if strings.HasSuffix(f.Name, ".deb") {
			off, _ = f.DataOffset()
			break
		}
	}
	zr.Close()
	data := readFile(t, p)
	data[off+40] ^= 0xff
	os.WriteFile(p, data, 0o644)
	r := releaseCmd(t, nil, "verify", p)
	if r.code != 1 || !strings.Contains(r.stderr, ".deb") {
		t.Fatalf("tampered node package: exit %d\n%s", r.code, r.stderr)
	}
}
