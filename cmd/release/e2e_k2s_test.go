package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relcue/release/internal/peers"
)

// TestK2sSampleDeltas: the sample is a K2s product, and its deltas are K2s
// deltas end to end: release verify checks every entry of both, the
// upgrade tooling's too; the Apply-Delta.ps1 each carries is PowerShell the
// grammar parses; and release install lays out an installation only in a
// new directory.
func TestK2sSampleDeltas(t *testing.T) {
	dir := copySample(t)
	runBuild(t, dir, filepath.Join(t.TempDir(), "cache"), "--target", "delta/*", "--target", "package/*")
	dist := filepath.Join(dir, "dist")
	deltas, _ := filepath.Glob(filepath.Join(dist, "deltas", "*.zip"))
	if len(deltas) != 2 {
		t.Fatalf("deltas %v", deltas)
	}
	v := mustRun(t, append([]string{"verify"}, deltas...)...)
	if strings.Count(v.stdout, " OK: ") != 2 {
		t.Fatalf("verify:\n%s", v.stdout)
	}
	var scripts []string
	for i, d := range deltas {
		p := filepath.Join(t.TempDir(), "Apply-Delta.ps1")
		if err := os.WriteFile(p, unzipEntry(t, d, "Apply-Delta.ps1"), 0o644); err != nil {
			t.Fatal(err)
		}
		scripts = append(scripts, p)
		if m := unzipEntry(t, d, "delta-manifest.json"); !strings.HasPrefix(string(m), "\uFEFF{") {
			t.Errorf("%s: delta-manifest.json has no byte order mark", filepath.Base(deltas[i]))
		}
	}
	for f, problems := range peers.PowerShellProblems(t, scripts...) {
		t.Errorf("%s does not parse: %v", f, problems)
	}

	// release install refuses an existing installation, changing nothing.
	install := installed(t, filepath.Join(dist, "packages/k2s-1.4.0.zip"), "k2s")
	before := treeHash(t, install)
	r := releaseCmd(t, nil, "install", filepath.Join(dist, "packages/k2s-1.5.0.zip"), "--install-dir", install, "--profile", "k2s")
	if r.code != 1 || !strings.Contains(r.stderr, "is not empty; install into a new directory (release apply updates an installation)") {
		t.Fatalf("install over an installation: exit %d\n%s", r.code, r.stderr)
	}
	if treeHash(t, install) != before {
		t.Fatal("a refused install changed the installation")
	}
	// The nested archive's members are where K2s's installer puts them,
	// and the configuration's mapping (-C) is the profile's.
	for _, p := range []string{"bin/kube/kubelet.exe", "bin/cni/flannel.exe", "bin/containerd/containerd.exe", "bin/nssm.exe", "bin/WindowsNodeArtifacts.zip"} {
		if _, err := os.Stat(filepath.Join(install, p)); err != nil {
			t.Errorf("the installation lacks %s: %v", p, err)
		}
	}
	viaConfig := filepath.Join(t.TempDir(), "c")
	mustRun(t, "install", filepath.Join(dist, "packages/k2s-1.4.0.zip"), "--install-dir", viaConfig, "-C", dir, "-q")
	if treeHash(t, viaConfig) != before {
		t.Errorf("install -C differs from --profile k2s:\n%s", diffTrees(t, viaConfig, install))
	}
	if r := releaseCmd(t, nil, "install", filepath.Join(dist, "packages/k2s-1.4.0.zip"), "--install-dir", t.TempDir()+"/x", "--profile", "k3s"); r.code != 2 {
		t.Errorf("--profile k3s: exit %d\n%s", r.code, r.stderr)
	}
}
