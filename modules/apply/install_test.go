package apply

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relcue/release/modules/delta"
	"github.com/relcue/release/modules/delta/deltatest"
)

// TestInstall: a package is installed complete and verified, or not at
// all: into a new or empty directory only, never over an installation,
// and a package whose file is not what its manifest says leaves nothing.
func TestInstall(t *testing.T) {
	dir := t.TempDir()
	tree := deltatest.Tree{
		"VERSION":          {Data: []byte("1.4.0")},
		"bin/k2s.exe":      {Data: []byte("exe"), Exec: true},
		"lib/ünïcode.psm1": {Data: []byte("# module\r\n")},
		"bin/tools.zip": {Data: deltatest.NestedZip(t, map[string][]byte{
			"kubetools/kubelet.exe": []byte("kubelet"), "other/x.txt": []byte("not installed"),
		})},
	}
	pkg := filepath.Join(dir, "k2s-1.4.0.zip")
	deltatest.WritePackage(t, pkg, tree, true)
	nested := []delta.Nested{{Archive: "bin/tools.zip", Folders: []delta.NestedFolder{{From: "kubetools", To: "bin/kube", Whole: true}}}}

	got := filepath.Join(dir, "installed")
	rep, err := Install(context.Background(), pkg, got, InstallOptions{Nested: nested, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	want := tree.Clone()
	want["package-manifest.json"] = deltatest.ReadTree(t, got)["package-manifest.json"]
	want["bin/kube/kubelet.exe"] = deltatest.File{Data: []byte("kubelet")}
	want[delta.InstallRecord] = deltatest.ReadTree(t, got)[delta.InstallRecord] // TestRecord* check it
	if d := deltatest.Diff(want, deltatest.ReadTree(t, got)); d != "" {
		t.Errorf("installed:\n%s", d)
	}
	if rep.FilesWritten != 6 || !strings.Contains(rep.String(), "installed 1.4.0: 6 files") {
		t.Errorf("report: %s", rep)
	}
	// Generic: the package's files only.
	plain := filepath.Join(dir, "plain")
	if _, err := Install(context.Background(), pkg, plain, InstallOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(plain, "bin/kube")); err == nil {
		t.Error("without nested archives, bin/kube was installed")
	}

	// Not over an installation.
	if _, err := Install(context.Background(), pkg, got, InstallOptions{}); err == nil || !strings.Contains(err.Error(), "is not empty; install into a new directory") {
		t.Errorf("install over an installation: %v", err)
	}
	// An empty directory is fine.
	empty := filepath.Join(dir, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Install(context.Background(), pkg, empty, InstallOptions{}); err != nil {
		t.Errorf("install into an empty directory: %v", err)
	}

	// A file that is not what the manifest says: nothing is left.
	bad := filepath.Join(dir, "bad.zip")
	rewriteEntry(t, pkg, bad, "lib/ünïcode.psm1", func(b []byte) []byte { return append([]byte("X"), b[1:]...) })
	target := filepath.Join(dir, "sub", "bad")
	if err := os.Mkdir(filepath.Dir(target), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Install(context.Background(), bad, target, InstallOptions{Workers: 2}); err == nil {
		t.Fatal("a corrupt package was installed")
	}
	if ents, _ := os.ReadDir(filepath.Dir(target)); len(ents) != 0 {
		t.Errorf("a failed install left %v", ents)
	}

	// A nested member installed over a package file is refused.
	clash := []delta.Nested{{Archive: "bin/tools.zip", Folders: []delta.NestedFolder{{From: "kubetools", To: "bin", Rename: map[string]string{"kubelet.exe": "K2S.EXE"}}}}}
	if _, err := Install(context.Background(), pkg, filepath.Join(dir, "clash"), InstallOptions{Nested: clash}); err == nil || !strings.Contains(err.Error(), "are both installed as bin/K2S.EXE") {
		t.Errorf("a member over a package file: %v", err)
	}
}
