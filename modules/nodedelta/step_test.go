package nodedelta_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relcue/release/modules/nodedelta"
	"github.com/relcue/release/modules/nodepkg"
	"github.com/relcue/release/pipeline/config"
	"github.com/relcue/release/pipeline/step"
)

func model() *config.Model {
	rel := func(v string) *config.NodeRelease { return &config.NodeRelease{Version: v} }
	return &config.Model{
		Product:  config.Product{Name: "k2s"},
		Build:    config.Build{Date: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)},
		Releases: map[string]*config.Release{"1.4.0": {}, "1.4.1": {}, "1.5.0": {}},
		Versions: []string{"1.4.0", "1.4.1", "1.5.0"},
		Deltas: []config.DeltaPath{
			{From: "1.4.0", To: "1.5.0", Pos: config.Pos{File: "release.cue", Line: 20, Col: 3}},
			{From: "1.4.1", To: "1.5.0", Pos: config.Pos{File: "release.cue", Line: 21, Col: 3}},
		},
		OS: map[string]*config.OSTarget{
			"debian13": {Name: "debian13", Dir: "trixie", Releases: map[string]*config.NodeRelease{"1.4.1": rel("1.4.1"), "1.5.0": rel("1.5.0")}},
			"debian12": {Name: "debian12", Dir: "debian12", Releases: map[string]*config.NodeRelease{"1.4.0": rel("1.4.0"), "1.4.1": rel("1.4.1"), "1.5.0": rel("1.5.0")}},
			"legacy":   {Name: "legacy", Releases: map[string]*config.NodeRelease{"1.4.0": rel("1.4.0")}},
		},
	}
}

func TestTargets(t *testing.T) {
	targets, err := nodedelta.Targets(model())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, tg := range targets {
		ids = append(ids, tg.ID)
	}
	// Only the paths whose both releases the OS has.
	want := []string{"node-delta/debian12/1.4.0..1.5.0", "node-delta/debian12/1.4.1..1.5.0", "node-delta/debian13/1.4.1..1.5.0"}
	if !slices.Equal(ids, want) {
		t.Fatalf("targets %v\nwant %v", ids, want)
	}
	tg := targets[2]
	if tg.Kind != "nodedelta" || !slices.Equal(tg.Deps, []string{"node/debian13/1.4.1", "node/debian13/1.5.0"}) || tg.Pos != "release.cue:21:3" ||
		!slices.Equal(tg.Outputs, []string{"node-deltas/k2s-node-delta-trixie-1.4.1-to-1.5.0.zip"}) {
		t.Errorf("target %+v", tg)
	}
	spec, _ := json.Marshal(tg.Spec)
	if string(spec) != `{"product":"k2s","os":"debian13","osDir":"trixie","from":"1.4.1","to":"1.5.0","output":"node-deltas/k2s-node-delta-trixie-1.4.1-to-1.5.0.zip","date":"2026-03-01T12:00:00Z","level":6}` {
		t.Errorf("spec %s", spec)
	}
	m := model()
	m.OS = nil
	if targets, err := nodedelta.Targets(m); err != nil || len(targets) != 0 {
		t.Errorf("no OS targets: %v, %v", targets, err)
	}
}

type progress struct{ n int64 }

func (p *progress) SetTotal(int64) {}
func (p *progress) Add(n int64)    { p.n += n }

func TestStepRun(t *testing.T) {
	f := nodes(t)
	dep := func(v string) step.Result {
		rel := nodepkg.OutputPath("k2s", "debian12", v)
		dir := t.TempDir()
		dst := filepath.Join(dir, filepath.FromSlash(rel))
		os.MkdirAll(filepath.Dir(dst), 0o755)
		if err := os.WriteFile(dst, mustRead(t, f.nodes[v]), 0o644); err != nil {
			t.Fatal(err)
		}
		return step.Result{Dir: dir, Artifacts: []step.Artifact{{Path: rel, Kind: nodepkg.ArtifactKind}}}
	}
	spec := nodedelta.Spec{Product: "k2s", OS: "debian12", OSDir: "debian12", From: "1.4.0", To: "1.5.0",
		Output: nodedelta.OutputPath("k2s", "debian12", "1.4.0", "1.5.0"), Date: "2026-03-01T12:00:00Z", Level: 6}
	in := &step.Input{Target: nodedelta.TargetID("debian12", "1.4.0", "1.5.0"),
		Deps:   map[string]step.Result{"node/debian12/1.4.0": dep("1.4.0"), "node/debian12/1.5.0": dep("1.5.0")},
		OutDir: t.TempDir(), Workers: 2, Progress: &progress{}, Log: io.Discard}
	in.Spec, _ = json.Marshal(spec)
	arts, err := nodedelta.Step{}.Run(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if len(arts) != 1 || arts[0] != (step.Artifact{Path: "node-deltas/k2s-node-delta-debian12-1.4.0-to-1.5.0.zip", Kind: "node-delta"}) {
		t.Fatalf("artifacts %+v", arts)
	}
	// The step's bytes are Build's bytes.
	direct := filepath.Join(t.TempDir(), "k2s-node-delta-debian12-1.4.0-to-1.5.0.zip")
	buildDelta(t, "1.4.0", "1.5.0", direct, 1)
	if !bytes.Equal(mustRead(t, filepath.Join(in.OutDir, filepath.FromSlash(arts[0].Path))), mustRead(t, direct)) {
		t.Error("the step's output differs from Build's for the same inputs")
	}

	for _, c := range []struct {
		mutate func(*nodedelta.Spec, *step.Input)
		want   string
	}{
		{func(s *nodedelta.Spec, in *step.Input) { delete(in.Deps, "node/debian12/1.4.0") }, "dependency node/debian12/1.4.0 was not provided"},
		{func(s *nodedelta.Spec, in *step.Input) {
			r := in.Deps["node/debian12/1.5.0"]
			r.Artifacts = nil
			in.Deps["node/debian12/1.5.0"] = r
		}, `dependency node/debian12/1.5.0 has no "node-package" artifact`},
		{func(s *nodedelta.Spec, in *step.Input) {
			in.Deps["node/debian12/1.5.0"] = in.Deps["node/debian12/1.4.0"]
		}, "is release 1.4.0, expected 1.5.0"},
		{func(s *nodedelta.Spec, in *step.Input) { s.Level = 10 }, "level 10 is out of range"},
		{func(s *nodedelta.Spec, in *step.Input) { s.Date = "" }, "bad spec: date"},
		{func(s *nodedelta.Spec, in *step.Input) { s.Output = "/abs.zip" }, "bad spec: output"},
	} {
		s2 := spec
		in2 := *in
		in2.Deps = map[string]step.Result{}
		for k, v := range in.Deps {
			in2.Deps[k] = v
		}
		in2.OutDir = t.TempDir()
		c.mutate(&s2, &in2)
		in2.Spec, _ = json.Marshal(s2)
		_, err := nodedelta.Step{}.Run(context.Background(), &in2)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("error %v, want %q", err, c.want)
		}
		if ents, _ := os.ReadDir(in2.OutDir); len(ents) != 0 {
			t.Errorf("a failed run left %d entries in OutDir", len(ents))
		}
	}
	var bad step.Input = *in
	bad.Spec = json.RawMessage(`{"product":"k2s","extra":1}`)
	if _, err := (nodedelta.Step{}).Run(context.Background(), &bad); err == nil || !strings.Contains(err.Error(), `unknown field "extra"`) {
		t.Errorf("unknown spec field: %v", err)
	}
}
