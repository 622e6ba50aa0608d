package nodedelta_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/relcue/release/modules/nodedelta"
	"github.com/relcue/release/modules/nodepkg"
	"github.com/relcue/release/modules/nodepkg/nodepkgtest"
	"github.com/relcue/release/modules/pkgzip"
)

// fixture holds node packages of the three test releases, built once.
type fixture struct {
	dir   string
	arch  string
	nodes map[string]string // version -> node package zip
}

var (
	fixOnce sync.Once
	fix     fixture
	fixErr  string
)

// nodes builds the node packages of nodepkgtest.Releases once per test
// binary (the .debs with dpkg-deb, for the machine's architecture so that
// the chroot test can install them).
func nodes(t *testing.T) fixture {
	t.Helper()
	fixOnce.Do(func() {
		dir, err := os.MkdirTemp("", "nodedelta-fixture-*")
		if err != nil {
			fixErr = err.Error()
			return
		}
		fix = fixture{dir: dir, arch: nodepkgtest.HostArch(t), nodes: map[string]string{}}
		for _, r := range nodepkgtest.Releases(fix.arch) {
			fix.nodes[r.Version] = nodepkgtest.NodePackage(t, dir, r)
		}
	})
	if fixErr != "" {
		t.Fatal(fixErr)
	}
	if len(fix.nodes) != 3 {
		t.Fatal("the node package fixture failed to build in an earlier test")
	}
	return fix
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fix.dir != "" {
		os.RemoveAll(fix.dir)
	}
	os.Exit(code)
}

func buildDelta(t *testing.T, from, to, out string, workers int) *nodedelta.Manifest {
	t.Helper()
	f := nodes(t)
	m, err := nodedelta.Build(context.Background(), nodedelta.Options{
		Base: f.nodes[from], Target: f.nodes[to], BaseVersion: from, TargetVersion: to,
		Output: out, Date: nodepkgtest.Date, Workers: workers,
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func entryData(t *testing.T, r *pkgzip.Reader, name string) []byte {
	t.Helper()
	e := r.Lookup(name)
	if e == nil {
		t.Fatalf("no entry %s in %s", name, r.Path)
	}
	rc, err := e.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBuild(t *testing.T) {
	f := nodes(t)
	out := filepath.Join(t.TempDir(), "d.zip")
	m := buildDelta(t, "1.4.0", "1.5.0", out, 2)
	kubelet := func(v string) string { return "kubernetes/relcue-kubelet_" + v + "_" + f.arch + ".deb" }

	r, err := pkgzip.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var names []string
	for _, e := range r.Entries {
		names = append(names, e.Name)
		wantExec := e.Name == "apply-node-delta.sh" || e.Name == "verify-node-delta.sh"
		if (e.Mode&0o111 != 0) != wantExec {
			t.Errorf("%s has mode %v", e.Name, e.Mode)
		}
	}
	want := []string{
		"SHA256SUMS",
		"apply-node-delta.sh",
		"delta-manifest.json",
		"images.removed",
		"images/registry.example.com_k2s_tools__latest.tar",
		"images/registry.k8s.io_pause__3.10.tar",
		"packages.base",
		"packages.removed",
		"packages.target",
		"packages/debian12/" + kubelet("1.31.6-1"),
		"packages/debian12/runtime/relcue-crio_1.32.0-1_all.deb",
		"verify-node-delta.sh",
	}
	if !slices.Equal(names, want) {
		t.Fatalf("entries:\n%s\nwant (only changed and added payload):\n%s", strings.Join(names, "\n"), strings.Join(want, "\n"))
	}
	// Shipped payload is the target's, byte for byte.
	tr, err := pkgzip.Open(f.nodes["1.5.0"])
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	for _, n := range names {
		if strings.Contains(n, "/") && !bytes.Equal(entryData(t, r, n), entryData(t, tr, n)) {
			t.Errorf("%s differs from the target node package's", n)
		}
	}

	text := func(name string) string { return string(entryData(t, r, name)) }
	if got := text("packages.removed"); got != "cni/relcue-flannel_0.25.0-1_all.deb\n"+kubelet("1.31.4-1")+"\n" {
		t.Errorf("packages.removed = %q", got)
	}
	if got := text("images.removed"); got != "registry.k8s.io_pause__3.9.tar\n" {
		t.Errorf("images.removed = %q", got)
	}
	if got := text("packages.base"); got != "relcue-common=1.0-1\nrelcue-flannel=0.25.0-1\nrelcue-kubelet=1.31.4-1\n" {
		t.Errorf("packages.base = %q", got)
	}
	if got := text("packages.target"); got != "relcue-common=1.0-1\nrelcue-crio=1.32.0-1\nrelcue-kubelet=1.31.6-1\n" {
		t.Errorf("packages.target = %q", got)
	}
	if !bytes.Equal(entryData(t, r, "verify-node-delta.sh"), mustRead(t, "scripts/verify-node-delta.sh")) ||
		!bytes.Equal(entryData(t, r, "apply-node-delta.sh"), mustRead(t, "scripts/apply-node-delta.sh")) {
		t.Error("the scripts are not shipped as they are")
	}

	// The manifest: K2s's fields and release's, as parsed back strictly.
	raw := entryData(t, r, "delta-manifest.json")
	pm, err := nodedelta.ParseManifest(raw)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := pm.Marshal(); !bytes.Equal(again, raw) {
		t.Error("manifest does not round-trip canonically")
	}
	rm, err := nodedelta.ReadManifest(r)
	if err != nil {
		t.Fatal(err)
	}
	if rm.DeltaType != "node-package" || rm.ManifestVersion != "2.0" || rm.GeneratedUtc != "2026-03-01T12:00:00Z" ||
		rm.BasePackage != "k2s-node-debian12-1.4.0.zip" || rm.TargetPackage != "k2s-node-debian12-1.5.0.zip" ||
		rm.BaseVersion != "1.4.0" || rm.TargetVersion != "1.5.0" || rm.OS != "debian12" || rm.DebianDeltaRelativePath != "packages/debian12" {
		t.Errorf("manifest header = %+v", rm)
	}
	eq := func(what string, got, want []string) {
		t.Helper()
		if !slices.Equal(got, want) {
			t.Errorf("%s = %q\nwant %q", what, got, want)
		}
	}
	eq("Added", m.Added, []string{"images/registry.k8s.io_pause__3.10.tar", "packages/debian12/" + kubelet("1.31.6-1"), "packages/debian12/runtime/relcue-crio_1.32.0-1_all.deb"})
	eq("Changed", m.Changed, []string{"images/registry.example.com_k2s_tools__latest.tar"})
	eq("Removed", m.Removed, []string{"images/registry.k8s.io_pause__3.9.tar", "packages/debian12/cni/relcue-flannel_0.25.0-1_all.deb", "packages/debian12/" + kubelet("1.31.4-1")})
	d := m.DebianPackageDiff
	eq("DebianPackageDiff.Added", d.Added, []string{"runtime/relcue-crio_1.32.0-1_all.deb"})
	eq("DebianPackageDiff.Removed", d.Removed, []string{"cni/relcue-flannel_0.25.0-1_all.deb"})
	eq("DebianPackageDiff.Changed", d.Changed, []string{kubelet("1.31.6-1")})
	if !d.Processed || d.AddedCount != 1 || d.RemovedCount != 1 || d.ChangedCount != 1 || m.AddedCount != 3 || m.ChangedCount != 1 || m.RemovedCount != 3 {
		t.Errorf("counts: %+v, %d/%d/%d", d, m.AddedCount, m.ChangedCount, m.RemovedCount)
	}
	ci := m.ContainerImageDiff
	if len(ci.AddedImages) != 1 || len(ci.ChangedImages) != 1 || len(ci.RemovedImages) != 1 || ci.AddedCount != 1 || ci.ChangedCount != 1 || ci.RemovedCount != 1 {
		t.Fatalf("ContainerImageDiff = %+v", ci)
	}
	var tm *nodepkg.Manifest
	if tm, err = nodepkg.ReadManifest(tr); err != nil {
		t.Fatal(err)
	}
	var tools nodepkg.Image
	for _, i := range tm.Images {
		if i.Ref == "registry.example.com/k2s/tools:latest" {
			tools = i
		}
	}
	got := ci.ChangedImages["registry.example.com_k2s_tools__latest.tar"]
	if got.FullName != tools.Ref || got.ImageId != tools.ImageId[len("sha256:"):][:12] || got.Size != nodedelta.HumanSize(tools.Size) {
		t.Errorf("ChangedImages entry %+v does not describe %+v", got, tools)
	}
	if ci.RemovedImages["registry.k8s.io_pause__3.9.tar"].FullName != "registry.k8s.io/pause:3.9" || ci.AddedImages["registry.k8s.io_pause__3.10.tar"].FullName != "registry.k8s.io/pause:3.10" {
		t.Errorf("ContainerImageDiff = %+v", ci)
	}
	// K2s's field order and names, and the empty lists K2s writes.
	var ordered map[string]json.RawMessage
	if err := json.Unmarshal(raw, &ordered); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"ManifestVersion", "DeltaType", "GeneratedUtc", "BasePackage", "TargetPackage", "BaseVersion", "TargetVersion",
		"WholeDirectories", "WholeDirectoriesCount", "SpecialSkippedFiles", "SpecialSkippedFilesCount", "Added", "Changed", "Removed",
		"AddedCount", "ChangedCount", "RemovedCount", "HashAlgorithm", "DebianPackageDiff", "DebianDeltaRelativePath", "ContainerImageDiff", "OS", "OSDir", "Files"} {
		if _, ok := ordered[k]; !ok {
			t.Errorf("manifest lacks %s", k)
		}
	}
	if string(ordered["WholeDirectories"]) != "[]" || string(ordered["SpecialSkippedFiles"]) != "[]" {
		t.Errorf("WholeDirectories %s, SpecialSkippedFiles %s", ordered["WholeDirectories"], ordered["SpecialSkippedFiles"])
	}
	// Files has every entry but the manifest; SHA256SUMS every entry but
	// itself and the manifest, and sha256sum (an independent peer) agrees.
	if len(m.Files) != len(names)-1 {
		t.Errorf("Files has %d entries, the zip %d besides the manifest", len(m.Files), len(names)-1)
	}
	dir := extract(t, out)
	nodepkgtest.NeedTool(t, "sha256sum", "coreutils")
	cmd := exec.Command("sha256sum", "--strict", "-c", "SHA256SUMS")
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("sha256sum -c SHA256SUMS: %v\n%s", err, b)
	} else if n := strings.Count(string(b), ": OK"); n != len(names)-2 {
		t.Errorf("sha256sum checked %d files, want %d:\n%s", n, len(names)-2, b)
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// extract unpacks a zip with Go (there is no unzip on a minimal node)
// into a new directory, keeping the executable bits.
func extract(t *testing.T, zipPath string) string {
	t.Helper()
	dir := t.TempDir()
	extractTo(t, zipPath, dir)
	return dir
}

func extractTo(t *testing.T, zipPath, dir string) {
	t.Helper()
	r, err := pkgzip.Open(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, e := range r.Entries {
		dst := filepath.Join(dir, filepath.FromSlash(e.Name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, entryData(t, r, e.Name), fs.FileMode(e.Mode)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestBuildReproducible(t *testing.T) {
	dir := t.TempDir()
	a := filepath.Join(dir, "a.zip")
	b := filepath.Join(dir, "b", "b.zip")
	buildDelta(t, "1.4.0", "1.5.0", a, 1)
	buildDelta(t, "1.4.0", "1.5.0", b, 4)
	if !bytes.Equal(mustRead(t, a), mustRead(t, b)) {
		t.Error("two builds of the same node delta differ")
	}
}

func TestBuildNoChange(t *testing.T) {
	// 1.5.0 -> 1.6.0 changes one package and no image.
	f := nodes(t)
	out := filepath.Join(t.TempDir(), "d.zip")
	m := buildDelta(t, "1.5.0", "1.6.0", out, 2)
	if !slices.Equal(m.DebianPackageDiff.Changed, []string{"kubernetes/relcue-kubelet_1.32.2-1_" + f.arch + ".deb"}) ||
		len(m.DebianPackageDiff.Added)+len(m.DebianPackageDiff.Removed) != 0 ||
		m.ContainerImageDiff.AddedCount+m.ContainerImageDiff.ChangedCount+m.ContainerImageDiff.RemovedCount != 0 {
		t.Errorf("diff = %+v %+v", m.DebianPackageDiff, m.ContainerImageDiff)
	}
	r, err := pkgzip.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got := string(entryData(t, r, "images.removed")); got != "" {
		t.Errorf("images.removed = %q, want empty", got)
	}
	for _, e := range r.Entries {
		if strings.HasPrefix(e.Name, "images/") {
			t.Errorf("unchanged image %s shipped", e.Name)
		}
	}
}

func TestBuildErrors(t *testing.T) {
	f := nodes(t)
	other := filepath.Join(t.TempDir(), "other-os.zip")
	rel := nodepkgtest.Releases(f.arch)[1]
	debs, images := nodepkgtest.Inputs(t, f.dir, rel)
	if _, err := nodepkg.Build(context.Background(), nodepkg.Options{Product: "k2s", Version: "1.5.0", OS: "debian13", OSDir: "debian13",
		Debs: debs, Images: images, Output: other}); err != nil {
		t.Fatal(err)
	}
	notNode := filepath.Join(t.TempDir(), "full.zip")
	zf, _ := os.Create(notNode)
	w := pkgzip.NewWriter(zf, pkgzip.WriterOptions{})
	w.AddBytes("VERSION", []byte("1.5.0"), pkgzip.ModeFile)
	w.Close(context.Background())
	zf.Close()

	cases := []struct {
		name string
		o    nodedelta.Options
		want string
	}{
		{"same release", nodedelta.Options{Base: f.nodes["1.5.0"], Target: f.nodes["1.5.0"]}, "both release 1.5.0"},
		{"two OS targets", nodedelta.Options{Base: f.nodes["1.4.0"], Target: other}, "base is for OS debian12 (debian12) but target for OS debian13"},
		{"unexpected version", nodedelta.Options{Base: f.nodes["1.4.0"], Target: f.nodes["1.5.0"], BaseVersion: "1.4.1"}, "is release 1.4.0, expected 1.4.1"},
		{"not a node package", nodedelta.Options{Base: notNode, Target: f.nodes["1.5.0"]}, "no node-manifest.json at the root"},
		{"missing zip", nodedelta.Options{Base: filepath.Join(f.dir, "nope.zip"), Target: f.nodes["1.5.0"]}, "nope.zip"},
		{"no output", nodedelta.Options{Base: f.nodes["1.4.0"], Target: f.nodes["1.5.0"]}, "all required"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			outDir := filepath.Join(t.TempDir(), "deltas")
			if c.name != "no output" {
				c.o.Output = filepath.Join(outDir, "d.zip")
			}
			_, err := nodedelta.Build(context.Background(), c.o)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "node delta ") {
				t.Errorf("error %v, want node delta ...%s", err, c.want)
			}
			if _, err := os.Stat(outDir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a failed build left %s", outDir)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	outDir := filepath.Join(t.TempDir(), "deltas")
	_, err := nodedelta.Build(ctx, nodedelta.Options{Base: f.nodes["1.4.0"], Target: f.nodes["1.5.0"], Output: filepath.Join(outDir, "d.zip")})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	if _, err := os.Stat(outDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a cancelled build left %s", outDir)
	}
}

func TestHumanSize(t *testing.T) {
	for _, c := range []struct {
		n    int64
		want string
	}{{0, "0 B"}, {1023, "1023 B"}, {1024, "1 KB"}, {1536, "2 KB"}, {2560, "3 KB"}, {500 << 10, "500 KB"}, {1 << 20, "1.0 MB"},
		{1572864, "1.5 MB"}, {1234567890, "1,177.4 MB"}} {
		if got := nodedelta.HumanSize(c.n); got != c.want {
			t.Errorf("HumanSize(%d) = %q, want %q", c.n, got, c.want)
		}
	}
}
