package main

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A delta path with mode "binary" in CUE builds a delta whose rebuilt
// binary ships as a patch; release verify accepts it and release apply
// turns the base installation into the target, file for file.
func TestBinaryModeDeltaThroughCLI(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(5, 5))
	bin := make([]byte, 1<<20)
	for i := range bin {
		bin[i] = byte(rng.UintN(256))
	}
	for _, v := range []string{"1.0.0", "1.1.0"} {
		os.MkdirAll(filepath.Join(dir, "tree", v, "bin"), 0o755)
		writeFile(t, filepath.Join(dir, "tree", v, "VERSION"), v+"\n")
		writeFile(t, filepath.Join(dir, "tree", v, "bin", "kubelet.exe"), string(bin))
		copy(bin[1000:], "a rebuilt binary differs in a few places")
	}
	writeFile(t, filepath.Join(dir, "release.cue"), `package release
product: name: "k2s"
build: date: "2025-06-01T00:00:00Z"
releases: {
	"1.0.0": inputs: [{dir: "tree/1.0.0"}]
	"1.1.0": inputs: [{dir: "tree/1.1.0"}]
}
deltas: paths: [{from: "1.0.0", to: "1.1.0", mode: "binary"}]
`)
	runBuild(t, dir, filepath.Join(t.TempDir(), "cache"))
	d := filepath.Join(dir, "dist", "deltas", "k2s-delta-1.0.0-to-1.1.0.zip")
	r := mustRun(t, "verify", d, "--format", "json")
	if !strings.Contains(r.stdout, `"delta"`) {
		t.Fatalf("verify: %s", r.stdout)
	}
	unpacked := filepath.Join(t.TempDir(), "d")
	unzipTo(t, d, unpacked)
	var m struct {
		DeltaMode string
		Patches   map[string]struct{ Entry string }
	}
	data := readFile(t, filepath.Join(unpacked, "delta-manifest.json"))
	if err := json.Unmarshal(data, &m); err != nil || m.DeltaMode != "binary" || m.Patches["bin/kubelet.exe"].Entry != ".release-patches/bin/kubelet.exe.patch" {
		t.Fatalf("manifest: %v %+v", err, m)
	}
	if fi, err := os.Stat(filepath.Join(unpacked, ".release-patches", "bin", "kubelet.exe.patch")); err != nil || fi.Size() > 10<<10 {
		t.Fatalf("patch entry: %v %v", fi, err)
	}
	if _, err := os.Stat(filepath.Join(unpacked, "bin", "kubelet.exe")); !os.IsNotExist(err) {
		t.Fatal("the patched binary is also shipped whole")
	}

	install := filepath.Join(t.TempDir(), "k2s")
	unzipTo(t, filepath.Join(dir, "dist", "packages", "k2s-1.0.0.zip"), install)
	want := filepath.Join(t.TempDir(), "want")
	unzipTo(t, filepath.Join(dir, "dist", "packages", "k2s-1.1.0.zip"), want)
	mustRun(t, "apply", d, "--install-dir", install)
	if treeHash(t, install) != treeHash(t, want) {
		t.Fatal("the installation after a binary delta is not the target package")
	}

	// The standalone command makes the same delta.
	out := filepath.Join(t.TempDir(), "d.zip")
	r = mustRun(t, "delta", "--from", filepath.Join(dir, "dist", "packages", "k2s-1.0.0.zip"), "--to", filepath.Join(dir, "dist", "packages", "k2s-1.1.0.zip"),
		"-o", out, "--mode", "binary", "--date", "2025-06-01T00:00:00Z", "-q")
	if !strings.Contains(r.stdout, "2 changed (1 as patches)") {
		t.Fatalf("delta: %s", r.stdout)
	}
	if string(readFile(t, out)) != string(readFile(t, d)) {
		t.Error("release delta --mode binary differs from the configured binary delta")
	}
}

func TestFlagMistakesAreUsageErrors(t *testing.T) {
	dir := copySample(t)
	for _, c := range []struct {
		args []string
		want string
		env  []string
	}{
		{[]string{"delta", "--from", "a.zip", "--to", "b.zip", "-o", "d.zip", "--mode", "binary", "--patch-threshold", "-1"}, "cannot be negative", nil},
		{[]string{"delta", "--from", "a.zip", "--to", "b.zip", "-o", "d.zip", "--mode", "bsdiff"}, `--mode "bsdiff"`, nil},
		{[]string{"build", "-C", dir, "--step-binary", "/bin/release"}, "--step-binary", nil},
		{[]string{"build", "-C", dir, "--remote-cache", "https://example.com/cache"}, "use oci://host[:port]/repository", nil},
		{[]string{"build", "-C", dir, "--remote-cache-plain-http"}, "need --remote-cache", nil},
		{[]string{"build", "-C", dir, "--net-timeout", "0s"}, "--net-timeout must be positive", nil},
		{[]string{"build", "-C", dir, "--net-low-speed", "fast"}, `--net-low-speed: "fast" is not a rate`, nil},
		{[]string{"build", "-C", dir, "--net-attempts", "0"}, "--net-attempts must be at least 1", nil},
		{[]string{"build", "-C", dir}, `$RELEASE_NET_TIMEOUT="60": want a positive duration`, []string{"RELEASE_NET_TIMEOUT=60"}},
	} {
		r := releaseCmd(t, c.env, c.args...)
		if r.code != 2 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("release %v: exit %d, %s", c.args, r.code, r.stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "dist")); !os.IsNotExist(err) {
		t.Error("a refused build wrote dist/")
	}
}
