package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A name Windows cannot hold fails the build, naming the input file and
// both ways out, and leaves no package; build.paths: "posix" builds it,
// and then apply refuses the delta unless told the installation is not on
// Windows. The standalone delta command says how to opt out with its flag.
func TestWindowsNamesThroughCLI(t *testing.T) {
	dir := copySample(t)
	for _, f := range []string{"node.cue", "addons.cue", "rollout.cue"} {
		os.Remove(filepath.Join(dir, f))
	}
	bad := filepath.Join(dir, "payload", "1.5.0", "lib", "CON.psm1")
	if err := os.WriteFile(bad, []byte("# a module Windows cannot hold\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(t.TempDir(), "cache")
	r := releaseCmd(t, nil, "build", "-C", dir, "--cache", cache)
	for _, want := range []string{"package/1.5.0: input layer1: " + bad + `: package path "lib/CON.psm1" has "CON.psm1", which Windows opens as the device CON`,
		`a Windows installation cannot hold it: rename it, or set build: paths: "posix" if the product is never installed on Windows`} {
		if r.code != 1 || !strings.Contains(r.stderr, want) {
			t.Fatalf("build: exit %d, want 1 and stderr containing %q\n%s", r.code, want, r.stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "dist", "packages", "k2s-1.5.0.zip")); !os.IsNotExist(err) {
		t.Fatalf("the refused package was written: %v", err)
	}

	cue := filepath.Join(dir, "release.cue")
	src, err := os.ReadFile(cue)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cue, []byte(strings.Replace(string(src), "build: {", "build: {\n\tpaths: \"posix\"", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	runBuild(t, dir, cache)
	dist := filepath.Join(dir, "dist")
	d := filepath.Join(dist, "deltas", "k2s-delta-1.4.0-to-1.5.0.zip")
	install := filepath.Join(t.TempDir(), "k2s")
	unzipTo(t, filepath.Join(dist, "packages", "k2s-1.4.0.zip"), install)
	before := treeHash(t, install)
	r = releaseCmd(t, nil, "apply", d, "--install-dir", install)
	if r.code != 1 || !strings.Contains(r.stderr, `package path "lib/CON.psm1" has "CON.psm1"`) || !strings.Contains(r.stderr, "nothing was changed, or pass --paths posix if this installation is not on Windows") {
		t.Fatalf("apply: exit %d\n%s", r.code, r.stderr)
	}
	if treeHash(t, install) != before {
		t.Fatal("the refused apply changed the installation")
	}
	mustRun(t, "apply", d, "--install-dir", install, "--paths", "posix")
	if _, err := os.Stat(filepath.Join(install, "lib", "CON.psm1")); err != nil {
		t.Fatal(err)
	}

	out := filepath.Join(t.TempDir(), "d.zip")
	r = releaseCmd(t, nil, "delta", "--from", filepath.Join(dist, "packages", "k2s-1.4.0.zip"), "--to", filepath.Join(dist, "packages", "k2s-1.5.0.zip"), "-o", out)
	if r.code != 1 || !strings.Contains(r.stderr, "rename it, or pass --paths posix if the product is never installed on Windows") {
		t.Fatalf("delta: exit %d\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("the refused delta was written: %v", err)
	}
	mustRun(t, "delta", "--from", filepath.Join(dist, "packages", "k2s-1.4.0.zip"), "--to", filepath.Join(dist, "packages", "k2s-1.5.0.zip"), "-o", out, "--paths", "posix")
	if r := releaseCmd(t, nil, "delta", "--from", "a.zip", "--to", "b.zip", "-o", out, "--paths", "dos"); r.code != 2 || !strings.Contains(r.stderr, `--paths: path policy "dos"`) {
		t.Fatalf("delta --paths dos: exit %d\n%s", r.code, r.stderr)
	}
}
