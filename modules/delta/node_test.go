package delta_test

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/relcue/release/modules/delta"
	"github.com/relcue/release/modules/delta/deltatest"
	"github.com/relcue/release/modules/nodepkg"
	"github.com/relcue/release/modules/nodepkg/nodepkgtest"
	"github.com/relcue/release/modules/pkgzip"
	"github.com/relcue/release/pipeline/config"
	"github.com/relcue/release/pipeline/step"
)

// withOS adds OS targets to the model: debian12 is the control plane and
// has node contents for 1.4.0 and 1.5.0 (not 1.4.1); debian13 has all
// three but is not the control plane.
func withOS(m *config.Model) *config.Model {
	rel := func(v string) *config.NodeRelease { return &config.NodeRelease{Version: v} }
	m.OS = map[string]*config.OSTarget{
		"debian12": {Name: "debian12", ControlPlane: true, Pos: config.Pos{File: "os.cue", Line: 3, Col: 1},
			Releases: map[string]*config.NodeRelease{"1.4.0": rel("1.4.0"), "1.5.0": rel("1.5.0")}},
		"debian13": {Name: "debian13", Pos: config.Pos{File: "os.cue", Line: 30, Col: 1},
			Releases: map[string]*config.NodeRelease{"1.4.0": rel("1.4.0"), "1.4.1": rel("1.4.1"), "1.5.0": rel("1.5.0")}},
	}
	return m
}

func TestTargetsControlPlane(t *testing.T) {
	targets, err := delta.SignedTargets(nil)(withOS(model()))
	if err != nil {
		t.Fatal(err)
	}
	if len(targets) != 2 {
		t.Fatalf("%d targets", len(targets))
	}
	if want := []string{"package/1.4.0", "package/1.5.0", "node/debian12/1.4.0", "node/debian12/1.5.0"}; !slices.Equal(targets[0].Deps, want) {
		t.Errorf("deps %v, want %v", targets[0].Deps, want)
	}
	spec, _ := json.Marshal(targets[0].Spec)
	if !strings.HasSuffix(string(spec), `,"nodeOS":"debian12"}`) {
		t.Errorf("spec %s lacks nodeOS", spec)
	}
	// debian12 has no 1.4.1: that delta stays as it was, spec bytes (and so
	// cache keys) included.
	plain, err := delta.SignedTargets(nil)(model())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(targets[1], plain[1]) {
		t.Errorf("delta without control-plane node packages changed:\n%+v\nwas\n%+v", targets[1], plain[1])
	}
	// Without a control plane, OS targets change nothing.
	m := withOS(model())
	m.OS["debian12"].ControlPlane = false
	noCP, err := delta.SignedTargets(nil)(m)
	if err != nil || !reflect.DeepEqual(noCP, plain) {
		t.Errorf("targets without a control-plane OS differ: %v", err)
	}
	m.OS["debian12"].ControlPlane = true
	m.OS["debian13"].ControlPlane = true
	if _, err := delta.SignedTargets(nil)(m); err == nil || err.Error() != "os.cue:30:1: os debian12 and os debian13 both set controlPlane; at most one OS target fills the cluster deltas' package and image diffs" {
		t.Errorf("two control planes: %v", err)
	}
}

func sha(c byte) string { return strings.Repeat(string(c), 64) }

func TestNodeDiffs(t *testing.T) {
	p := func(name, version string, s byte) nodepkg.Package {
		return nodepkg.Package{Group: "g", Path: "g/" + name + "_" + version + "_all.deb", Package: name, Version: version, Architecture: "all", SHA256: sha(s), Size: 1}
	}
	i := func(ref string, d byte, platforms ...string) nodepkg.Image {
		return nodepkg.Image{File: ref + ".tar", Ref: ref, Digest: "sha256:" + sha(d), ImageId: "sha256:" + sha(d), Platforms: platforms, SHA256: sha(d), Size: 1}
	}
	base := &nodepkg.Manifest{
		Packages: []nodepkg.Package{p("common", "1.0-1", '1'), p("kubelet", "1.31.4-1", '2'), p("flannel", "0.25-1", '3'), p("rebuilt", "2.0-1", '4')},
		Images:   []nodepkg.Image{i("pause:3.9", 'a'), i("tools:latest", 'b', "linux/amd64"), i("same:1", 'c')},
	}
	target := &nodepkg.Manifest{
		Packages: []nodepkg.Package{p("common", "1.0-1", '1'), p("kubelet", "1:1.31.6-1", '5'), p("crio", "1.32-1", '6'), p("rebuilt", "2.0-1", '7')},
		Images:   []nodepkg.Image{i("pause:3.10", 'd', "linux/arm64"), i("tools:latest", 'e', "windows/amd64"), i("same:1", 'c')},
	}
	deb, img := delta.NodeDiffs(base, target)
	wantDeb := delta.DebianPackageDiff{Processed: true,
		Added: []string{"crio=1.32-1"}, Removed: []string{"flannel=0.25-1"}, Changed: []string{"kubelet: 1.31.4-1 -> 1:1.31.6-1"},
		AddedCount: 1, RemovedCount: 1, ChangedCount: 1}
	if !reflect.DeepEqual(deb, wantDeb) {
		t.Errorf("DebianPackageDiff = %+v\nwant %+v", deb, wantDeb)
	}
	wantImg := delta.ContainerImageDiff{
		AddedImages:   []delta.Image{{FullName: "pause:3.10", Platform: "linux"}},
		RemovedImages: []delta.Image{{FullName: "pause:3.9", Platform: "linux"}},
		// Same tag, new digest: changed.
		ChangedImages: []delta.Image{{FullName: "tools:latest", Platform: "windows"}},
		AddedCount:    1, RemovedCount: 1, ChangedCount: 1,
	}
	if !reflect.DeepEqual(img, wantImg) {
		t.Errorf("ContainerImageDiff = %+v\nwant %+v", img, wantImg)
	}
	deb, img = delta.NodeDiffs(base, base)
	if !deb.Processed || deb.AddedCount+deb.RemovedCount+deb.ChangedCount+img.AddedCount+img.RemovedCount+img.ChangedCount != 0 || deb.Added == nil || img.AddedImages == nil {
		t.Errorf("no change: %+v %+v", deb, img)
	}
}

// nodeFixture writes full packages for 1.4.0 and 1.5.0 and debian12 node
// packages for 1.4.0, 1.5.0 and (for a mismatch) 1.6.0.
type nodeFixture struct {
	base, target string
	nodes        map[string]string
}

func writeNodeFixture(t *testing.T, dir string) nodeFixture {
	t.Helper()
	s := deltatest.Generate(3)
	s.Base["VERSION"] = deltatest.File{Data: []byte("1.4.0")}
	s.Target["VERSION"] = deltatest.File{Data: []byte("1.5.0")}
	f := nodeFixture{nodes: map[string]string{}}
	f.base, f.target = packages(t, dir, s, true)
	for _, r := range nodepkgtest.Releases("amd64") {
		f.nodes[r.Version] = nodepkgtest.NodePackage(t, dir, r)
	}
	return f
}

func TestBuildWithNodePackages(t *testing.T) {
	dir := t.TempDir()
	f := writeNodeFixture(t, dir)
	out := filepath.Join(dir, "d.zip")
	m, err := delta.Build(context.Background(), delta.Options{
		Base: f.base, Target: f.target, BaseNode: f.nodes["1.4.0"], TargetNode: f.nodes["1.5.0"],
		Output: out, WholeDirectories: []string{"bin/cni"}, Date: deltatest.Date, Workers: 2, Log: io.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	wantDeb := delta.DebianPackageDiff{Processed: true,
		Added: []string{"relcue-crio=1.32.0-1"}, Removed: []string{"relcue-flannel=0.25.0-1"}, Changed: []string{"relcue-kubelet: 1.31.4-1 -> 1.31.6-1"},
		AddedCount: 1, RemovedCount: 1, ChangedCount: 1}
	if !reflect.DeepEqual(m.DebianPackageDiff, wantDeb) {
		t.Errorf("DebianPackageDiff = %+v\nwant %+v", m.DebianPackageDiff, wantDeb)
	}
	wantImg := delta.ContainerImageDiff{
		AddedImages:   []delta.Image{{FullName: "registry.k8s.io/pause:3.10", Platform: "linux"}},
		RemovedImages: []delta.Image{{FullName: "registry.k8s.io/pause:3.9", Platform: "linux"}},
		ChangedImages: []delta.Image{{FullName: "registry.example.com/k2s/tools:latest", Platform: "linux"}},
		AddedCount:    1, RemovedCount: 1, ChangedCount: 1,
	}
	if !reflect.DeepEqual(m.ContainerImageDiff, wantImg) {
		t.Errorf("ContainerImageDiff = %+v\nwant %+v", m.ContainerImageDiff, wantImg)
	}
	// What is in the zip is what apply reads back, strictly.
	r, err := pkgzip.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	read, err := delta.ReadManifest(r)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(read.DebianPackageDiff, wantDeb) || !reflect.DeepEqual(read.ContainerImageDiff, wantImg) {
		t.Errorf("manifest in the zip: %+v %+v", read.DebianPackageDiff, read.ContainerImageDiff)
	}
	// The file part of the delta does not depend on the node packages.
	plain, err := delta.Build(context.Background(), delta.Options{
		Base: f.base, Target: f.target, Output: filepath.Join(dir, "plain.zip"), WholeDirectories: []string{"bin/cni"}, Date: deltatest.Date,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(plain.Files, m.Files) || !slices.Equal(plain.Changed, m.Changed) || plain.DebianPackageDiff.Processed {
		t.Errorf("node packages changed the file diff, or the plain delta has node diffs")
	}

	for _, c := range []struct {
		name       string
		base, targ string
		want       string
	}{
		{"only one", f.nodes["1.4.0"], "", "give both node packages (base and target) or neither"},
		{"wrong release", f.nodes["1.4.0"], f.nodes["1.6.0"], "target node package " + f.nodes["1.6.0"] + " is release 1.6.0, but the target package is 1.5.0"},
		{"not a node package", f.base, f.nodes["1.5.0"], "base node package: " + f.base + ": no node-manifest.json"},
	} {
		t.Run(c.name, func(t *testing.T) {
			outDir := filepath.Join(t.TempDir(), "deltas")
			_, err := delta.Build(context.Background(), delta.Options{Base: f.base, Target: f.target, BaseNode: c.base, TargetNode: c.targ, Output: filepath.Join(outDir, "d.zip")})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v\nwant %s", err, c.want)
			}
			if _, err := os.Stat(outDir); err == nil {
				t.Errorf("a failed build left %s", outDir)
			}
		})
	}
}

func TestStepRunWithNodePackages(t *testing.T) {
	dir := t.TempDir()
	f := writeNodeFixture(t, dir)
	m := withOS(model())
	m.Deltas = m.Deltas[:1]
	targets, err := delta.SignedTargets(nil)(m)
	if err != nil {
		t.Fatal(err)
	}
	spec, _ := json.Marshal(targets[0].Spec)
	res := func(p, kind string) step.Result {
		return step.Result{Dir: filepath.Dir(p), Artifacts: []step.Artifact{{Path: filepath.Base(p), Kind: kind}}}
	}
	in := &step.Input{
		Target: targets[0].ID, Spec: spec, OutDir: filepath.Join(dir, "out"), Workers: 2, Progress: step.Discard, Log: io.Discard,
		Deps: map[string]step.Result{
			"package/1.4.0":       res(f.base, "package"),
			"package/1.5.0":       res(f.target, "package"),
			"node/debian12/1.4.0": res(f.nodes["1.4.0"], nodepkg.ArtifactKind),
			"node/debian12/1.5.0": res(f.nodes["1.5.0"], nodepkg.ArtifactKind),
		},
	}
	arts, err := delta.Step{}.Run(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	r, err := pkgzip.Open(filepath.Join(in.OutDir, arts[0].Path))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	dm, err := delta.ReadManifest(r)
	if err != nil {
		t.Fatal(err)
	}
	if !dm.DebianPackageDiff.Processed || dm.DebianPackageDiff.ChangedCount != 1 || dm.ContainerImageDiff.ChangedCount != 1 {
		t.Errorf("step did not fill the node diffs: %+v %+v", dm.DebianPackageDiff, dm.ContainerImageDiff)
	}
	delete(in.Deps, "node/debian12/1.5.0")
	in.OutDir = filepath.Join(dir, "out2")
	if _, err := (delta.Step{}).Run(context.Background(), in); err == nil || !strings.Contains(err.Error(), "dependency node/debian12/1.5.0 was not provided") {
		t.Errorf("missing node dependency: %v", err)
	}
}
