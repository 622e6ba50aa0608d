package nodepkg_test

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relcue/release/modules/deb"
	"github.com/relcue/release/modules/image"
	"github.com/relcue/release/modules/nodepkg"
	"github.com/relcue/release/modules/nodepkg/nodepkgtest"
	"github.com/relcue/release/modules/pkgzip"
	"github.com/relcue/release/pipeline/config"
	"github.com/relcue/release/pipeline/step"
)

func model() *config.Model {
	pos := func(line int) config.Pos { return config.Pos{File: "release.cue", Line: line, Col: 3} }
	m := &config.Model{
		Product:  config.Product{Name: "k2s"},
		Build:    config.Build{Date: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), CompressionLevel: 9},
		Releases: map[string]*config.Release{"1.4.0": {Version: "1.4.0"}, "1.5.0": {Version: "1.5.0"}},
		Versions: []string{"1.4.0", "1.5.0"},
		OS: map[string]*config.OSTarget{
			"debian13": {Name: "debian13", Arch: []string{"amd64"}, Versions: []string{"1.5.0"}, Releases: map[string]*config.NodeRelease{
				"1.5.0": {Version: "1.5.0", Pos: pos(40)},
			}},
			"debian12": {Name: "debian12", Dir: "deb12", Arch: []string{"amd64"}, ControlPlane: true, Pos: pos(10), Versions: []string{"1.4.0", "1.5.0"},
				Releases: map[string]*config.NodeRelease{
					"1.4.0": {Version: "1.4.0", Pos: pos(11)},
					"1.5.0": {Version: "1.5.0", Pos: pos(20)},
				}},
		},
	}
	m.SetSection(deb.SectionName, &deb.Config{Nodes: map[string]map[string][]deb.Entry{"debian12": {
		"1.4.0": {
			{Group: "kubernetes", Build: &deb.BuildConfig{Name: "kubelet", Version: "1.31.4-1", Arch: "amd64"}, Pos: pos(12)},
			{Group: "tools", File: &config.Source{Path: "/src/k2s-node-tools_1.0.0_all.deb", SHA256: sha('a')}, Pos: pos(13)},
		},
		"1.5.0": {
			{Group: "kubernetes", Build: &deb.BuildConfig{Name: "kubelet", Version: "1.31.6-1", Arch: "amd64"}, Pos: pos(21)},
		},
	}}})
	m.SetSection(image.SectionName, &image.SectionConfig{Nodes: map[string]map[string][]image.Config{"debian12": {
		"1.4.0": {{Ref: "registry.k8s.io/pause:3.9", Pos: pos(14)}},
	}}})
	return m
}

// debs140 are the .debs of debian12's 1.4.0, for cases to change.
func debs140(m *config.Model) []deb.Entry {
	return config.SectionOf[*deb.Config](m, deb.SectionName).Nodes["debian12"]["1.4.0"]
}

func TestTargets(t *testing.T) {
	targets, err := nodepkg.Targets(model())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, tg := range targets {
		ids = append(ids, tg.ID)
	}
	if !slices.Equal(ids, []string{"node/debian12/1.4.0", "node/debian12/1.5.0", "node/debian13/1.5.0"}) {
		t.Fatalf("targets %v", ids)
	}
	tg := targets[0]
	wantDeps := []string{deb.TargetID("debian12", "kubelet", "1.31.4-1", "amd64"), image.TargetID("debian12", "registry.k8s.io/pause:3.9")}
	if tg.Kind != "nodepkg" || !slices.Equal(tg.Deps, wantDeps) || tg.Pos != "release.cue:11:3" ||
		!slices.Equal(tg.Outputs, []string{"nodes/k2s-node-deb12-1.4.0.zip"}) {
		t.Errorf("target = %+v", tg)
	}
	if len(tg.Sources) != 1 || tg.Sources[0] != (step.Source{Name: "deb1", Path: "/src/k2s-node-tools_1.0.0_all.deb", SHA256: sha('a'), Pos: "release.cue:13:3"}) {
		t.Errorf("sources = %+v", tg.Sources)
	}
	spec, _ := json.Marshal(tg.Spec)
	want := `{"product":"k2s","os":"debian12","osDir":"deb12","version":"1.4.0","output":"nodes/k2s-node-deb12-1.4.0.zip","date":"2026-03-01T12:00:00Z","level":9,` +
		`"debs":[{"group":"kubernetes","target":"deb/debian12/kubelet_1.31.4-1_amd64"},{"group":"tools","source":"deb1"}],` +
		`"images":[{"ref":"registry.k8s.io/pause:3.9","target":"` + image.TargetID("debian12", "registry.k8s.io/pause:3.9") + `"}]}`
	if string(spec) != want {
		t.Errorf("spec = %s\nwant %s", spec, want)
	}
	if _, err := nodepkg.ParseSpec(spec); err != nil {
		t.Errorf("ParseSpec of a planned spec: %v", err)
	}
	if got := targets[2].Outputs[0]; got != "nodes/k2s-node-debian13-1.5.0.zip" {
		t.Errorf("default OS dir: output %s", got)
	}

	bad := []struct {
		mutate func(*config.Model)
		want   string
	}{
		{func(m *config.Model) { delete(m.Releases, "1.4.0") }, "release.cue:11:3: os debian12 release 1.4.0: release 1.4.0 is not defined under releases"},
		{func(m *config.Model) {
			d := &debs140(m)[0]
			d.File = &config.Source{Path: "/x.deb"}
		}, "release.cue:12:3: os debian12 release 1.4.0: deb 1 has both build and file"},
		{func(m *config.Model) { debs140(m)[1].File = nil }, "release.cue:13:3: os debian12 release 1.4.0: deb 2 has neither build nor file"},
		{func(m *config.Model) {
			r := config.SectionOf[*deb.Config](m, deb.SectionName).Nodes["debian12"]
			r["1.4.0"] = append(r["1.4.0"], deb.Entry{Group: "more", Build: &deb.BuildConfig{Name: "kubelet", Version: "1.32.0-1", Arch: "amd64"}, Pos: config.Pos{File: "release.cue", Line: 15, Col: 3}})
		}, "release.cue:15:3: os debian12 release 1.4.0: package kubelet is listed twice (also at release.cue:12:3)"},
		{func(m *config.Model) {
			r := config.SectionOf[*image.SectionConfig](m, image.SectionName).Nodes["debian12"]
			r["1.4.0"] = append(r["1.4.0"], image.Config{Ref: "registry.k8s.io/pause:3.9", Pos: config.Pos{File: "release.cue", Line: 16, Col: 3}})
		}, "release.cue:16:3: os debian12 release 1.4.0: image registry.k8s.io/pause:3.9 is listed twice (also at release.cue:14:3)"},
		{func(m *config.Model) { debs140(m)[0].Group = "a/b" }, `release.cue:12:3: os debian12 release 1.4.0: deb 1: group "a/b" must be one folder name`},
		{func(m *config.Model) { m.OS["debian12"].Dir = "deb 12" }, `release.cue:10:3: os debian12 release 1.4.0: OS folder "deb 12"`},
		{func(m *config.Model) { debs140(m)[0].Build.Arch = "" }, "deb 1: build needs name, version and arch"},
	}
	for _, b := range bad {
		m := model()
		b.mutate(m)
		_, err := nodepkg.Targets(m)
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("error %v\nwant %s", err, b.want)
		}
	}
}

type countProgress struct{ n int64 }

func (p *countProgress) SetTotal(int64) {}
func (p *countProgress) Add(n int64)    { p.n += n }

// placeArtifact copies src into a fresh dependency directory at rel.
func placeArtifact(t *testing.T, src, rel, kind string) step.Result {
	t.Helper()
	dir := t.TempDir()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return step.Result{Dir: dir, Artifacts: []step.Artifact{{Path: rel, Kind: kind}}}
}

func TestStepRun(t *testing.T) {
	dir := t.TempDir()
	rel := nodepkgtest.Releases("amd64")[0]
	debs, images := nodepkgtest.Inputs(t, dir, rel)
	spec := nodepkg.Spec{Product: "k2s", OS: "debian12", OSDir: "debian12", Version: "1.4.0", Output: "nodes/k2s-node-debian12-1.4.0.zip",
		Date: "2026-03-01T12:00:00Z", Level: 6}
	in := &step.Input{Target: "node/debian12/1.4.0", Sources: map[string]string{}, Deps: map[string]step.Result{},
		OutDir: t.TempDir(), Workers: 2, Progress: &countProgress{}, Log: io.Discard}
	for i, d := range debs {
		if i == 0 { // an existing file
			spec.Debs = append(spec.Debs, nodepkg.SpecDeb{Group: d.Group, Source: "deb0"})
			in.Sources["deb0"] = d.Path
			continue
		}
		id := "deb/debian12/" + filepath.Base(filepath.Dir(d.Path))
		spec.Debs = append(spec.Debs, nodepkg.SpecDeb{Group: d.Group, Target: id})
		in.Deps[id] = placeArtifact(t, d.Path, "debs/debian12/x.deb", deb.ArtifactKind)
	}
	for _, img := range images {
		id := image.TargetID("debian12", img.Ref)
		spec.Images = append(spec.Images, nodepkg.SpecImage{Ref: img.Ref, Target: id})
		in.Deps[id] = placeArtifact(t, img.Path, image.OutputPath("debian12", img.Ref), image.ArtifactKind)
	}
	in.Spec, _ = json.Marshal(spec)
	arts, err := nodepkg.Step{}.Run(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if len(arts) != 1 || arts[0] != (step.Artifact{Path: spec.Output, Kind: "node-package"}) {
		t.Fatalf("artifacts %+v", arts)
	}
	r, err := pkgzip.Open(filepath.Join(in.OutDir, spec.Output))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	m, err := nodepkg.ReadManifest(r)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Packages) != 3 || len(m.Images) != 3 || m.Version != "1.4.0" {
		t.Errorf("manifest %+v", m)
	}
	if in.Progress.(*countProgress).n == 0 {
		t.Error("no progress reported")
	}
	if (nodepkg.Step{}).Kind() != nodepkg.Kind || (nodepkg.Step{}).Version() != nodepkg.StepVersion {
		t.Error("Kind/Version")
	}

	// A missing dependency or source, and bad specs, are named.
	for _, c := range []struct {
		mutate func(*nodepkg.Spec, *step.Input)
		want   string
	}{
		{func(s *nodepkg.Spec, in *step.Input) { delete(in.Sources, "deb0") }, `spec uses source "deb0" but the pipeline provided none`},
		{func(s *nodepkg.Spec, in *step.Input) { s.Images[0].Target = "image/debian12/nope" }, "dependency image/debian12/nope was not provided"},
		{func(s *nodepkg.Spec, in *step.Input) { s.Debs[0].Target = "x" }, "deb 1 needs exactly one of target and source"},
		{func(s *nodepkg.Spec, in *step.Input) { s.Level = 0 }, "level 0 is out of range"},
		{func(s *nodepkg.Spec, in *step.Input) { s.Output = "../x.zip" }, "output"},
		{func(s *nodepkg.Spec, in *step.Input) { s.Date = "yesterday" }, "date"},
	} {
		s2 := spec
		s2.Debs, s2.Images = slices.Clone(spec.Debs), slices.Clone(spec.Images)
		in2 := *in
		in2.Sources = map[string]string{"deb0": in.Sources["deb0"]}
		in2.OutDir = t.TempDir()
		c.mutate(&s2, &in2)
		in2.Spec, _ = json.Marshal(s2)
		_, err := nodepkg.Step{}.Run(context.Background(), &in2)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "node/debian12/1.4.0: ") {
			t.Errorf("error %v, want node/debian12/1.4.0: ...%s", err, c.want)
		}
		if ents, _ := os.ReadDir(in2.OutDir); len(ents) != 0 {
			t.Errorf("a failed run left %d entries in OutDir", len(ents))
		}
	}
}

func TestParseSpecIsStrict(t *testing.T) {
	good := `{"product":"k2s","os":"debian12","osDir":"deb12","version":"1.4.0","output":"nodes/k2s-node-deb12-1.4.0.zip","date":"2026-03-01T12:00:00Z","level":9,` +
		`"debs":[{"group":"tools","source":"deb1"}],"images":[]}`
	if _, err := nodepkg.ParseSpec(json.RawMessage(good)); err != nil {
		t.Fatalf("ParseSpec of a valid spec: %v", err)
	}
	for name, c := range map[string]struct{ raw, want string }{
		"unknown field": {strings.Replace(good, `"level":9`, `"level":9,"extra":1`, 1), `bad nodepkg spec: json: unknown field "extra"`},
		"trailing data": {good + "{}", "bad nodepkg spec: unexpected data after the JSON object"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := nodepkg.ParseSpec(json.RawMessage(c.raw))
			if err == nil || err.Error() != c.want {
				t.Errorf("error %v, want %q", err, c.want)
			}
		})
	}
}

// An existing .deb is named in errors by its configuration position and
// URL (review D12): the step reads a download's blob in the cache, whose
// path tells nothing.
func TestStepNamesExistingDebByItsLabel(t *testing.T) {
	blob := filepath.Join(t.TempDir(), "4f2a9c")
	if err := os.WriteFile(blob, []byte("not a deb"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := nodepkg.Spec{Product: "k2s", OS: "debian12", OSDir: "debian12", Version: "1.4.0", Output: "nodes/k2s-node-debian12-1.4.0.zip",
		Date: "2026-03-01T12:00:00Z", Level: 6, Debs: []nodepkg.SpecDeb{{Group: "kubernetes", Source: "deb0"}}}
	const label = "node.cue:12:9: input deb0 (https://example.com/pool/kubelet.deb)"
	in := &step.Input{Target: "node/debian12/1.4.0", Sources: map[string]string{"deb0": blob}, SourceLabels: map[string]string{"deb0": label},
		Deps: map[string]step.Result{}, OutDir: t.TempDir(), Workers: 1, Progress: &countProgress{}, Log: io.Discard}
	in.Spec, _ = json.Marshal(spec)
	_, err := nodepkg.Step{}.Run(context.Background(), in)
	if err == nil || !strings.Contains(err.Error(), label) {
		t.Fatalf("error %v\nwant one naming %q", err, label)
	}
}
