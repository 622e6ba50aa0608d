package delta_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/relcue/release/modules/delta"
	"github.com/relcue/release/modules/delta/deltatest"
	"github.com/relcue/release/pipeline/config"
	"github.com/relcue/release/pipeline/step"
)

func model() *config.Model {
	return &config.Model{
		Product: config.Product{Name: "k2s"},
		Build:   config.Build{Date: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), CompressionLevel: 9},
		Releases: map[string]*config.Release{
			"1.4.0": {Version: "1.4.0"}, "1.4.1": {Version: "1.4.1"}, "1.5.0": {Version: "1.5.0"},
		},
		Versions: []string{"1.4.0", "1.4.1", "1.5.0"},
		Deltas: []config.DeltaPath{
			{From: "1.4.0", To: "1.5.0", Mode: "file", WholeDirectories: []string{"bin/cni"}, Skip: []string{"etc/kubernetes/pki/*", "addons"}, Origin: "explicit"},
			{From: "1.4.1", To: "1.5.0", Mode: "file", WholeDirectories: []string{"bin/cni"}, Origin: "policy 0"},
		},
	}
}

func TestTargets(t *testing.T) {
	targets, err := delta.SignedTargets(nil)(model())
	if err != nil {
		t.Fatal(err)
	}
	if len(targets) != 2 {
		t.Fatalf("%d targets, want 2", len(targets))
	}
	tg := targets[0]
	if tg.ID != "delta/1.4.0..1.5.0" || tg.Kind != "delta" || !reflect.DeepEqual(tg.Deps, []string{"package/1.4.0", "package/1.5.0"}) {
		t.Errorf("target = %+v", tg)
	}
	spec, err := json.Marshal(tg.Spec)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"product":"k2s","from":"1.4.0","to":"1.5.0","output":"deltas/k2s-delta-1.4.0-to-1.5.0.zip","date":"2026-03-01T12:00:00Z","level":9,"mode":"file","wholeDirectories":["bin/cni"],"skip":["addons","etc/kubernetes/pki/*"]}`
	if string(spec) != want {
		t.Errorf("spec = %s\nwant %s", spec, want)
	}
	if got := delta.OutputPath("k2s", "1.4.1", "1.5.0"); got != "deltas/k2s-delta-1.4.1-to-1.5.0.zip" {
		t.Errorf("OutputPath = %s", got)
	}

	bad := []struct {
		mutate func(*config.DeltaPath)
		want   string
	}{
		{func(d *config.DeltaPath) { d.From = "1.3.0" }, "release 1.3.0 is not defined"},
		{func(d *config.DeltaPath) { d.Mode = "bsdiff" }, `mode "bsdiff": want "file" or "binary"`},
		{func(d *config.DeltaPath) { d.Skip = []string{"/abs"} }, "skip rule"},
		{func(d *config.DeltaPath) { d.WholeDirectories = []string{".."} }, "wholesale directory"},
		{func(d *config.DeltaPath) { d.To = d.From }, "same version"},
	}
	for _, b := range bad {
		m := model()
		m.Deltas[0].Pos = config.Pos{File: "release.cue", Line: 12, Col: 3}
		b.mutate(&m.Deltas[0])
		_, err := delta.SignedTargets(nil)(m)
		if err == nil || !strings.Contains(err.Error(), b.want) || !strings.HasPrefix(err.Error(), "release.cue:12:3: ") {
			t.Errorf("error %v, want release.cue:12:3: ... %s", err, b.want)
		}
	}
}

type progress struct{ n int64 }

func (p *progress) SetTotal(int64) {}
func (p *progress) Add(n int64)    { p.n += n }

func TestStepRun(t *testing.T) {
	dir := t.TempDir()
	s := deltatest.Generate(5)
	for _, v := range []struct{ dir, tree string }{{"p140", "base"}, {"p150", "target"}} {
		if err := os.MkdirAll(filepath.Join(dir, v.dir, "packages"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	deltatest.WritePackage(t, filepath.Join(dir, "p140", "packages", "k2s-1.4.0.zip"), s.Base, true)
	deltatest.WritePackage(t, filepath.Join(dir, "p150", "packages", "k2s-1.5.0.zip"), s.Target, true)
	m := model()
	m.Deltas = m.Deltas[:1]
	m.Deltas[0].Skip = s.Skip
	targets, err := delta.SignedTargets(nil)(m)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := json.Marshal(targets[0].Spec)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	p := &progress{}
	in := &step.Input{
		Target: targets[0].ID,
		Spec:   spec,
		Deps: map[string]step.Result{
			"package/1.4.0": {Dir: filepath.Join(dir, "p140"), Artifacts: []step.Artifact{{Path: "packages/k2s-1.4.0.zip", Kind: "package"}}},
			"package/1.5.0": {Dir: filepath.Join(dir, "p150"), Artifacts: []step.Artifact{{Path: "packages/k2s-1.5.0.zip", Kind: "package"}}},
		},
		OutDir: out, Workers: 2, Progress: p, Log: &log,
	}
	arts, err := delta.Step{}.Run(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if want := []step.Artifact{{Path: "deltas/k2s-delta-1.4.0-to-1.5.0.zip", Kind: "delta"}}; !reflect.DeepEqual(arts, want) {
		t.Errorf("artifacts = %+v", arts)
	}
	data, err := os.ReadFile(filepath.Join(out, "deltas", "k2s-delta-1.4.0-to-1.5.0.zip"))
	if err != nil {
		t.Fatal(err)
	}
	if p.n == 0 || !strings.Contains(log.String(), "added") {
		t.Errorf("no progress (%d) or log (%q)", p.n, log.String())
	}

	// The same inputs through Build directly give the same bytes: the step
	// adds nothing machine-specific.
	direct := filepath.Join(dir, "direct", "d.zip")
	if _, err := delta.Build(context.Background(), delta.Options{
		Base: filepath.Join(dir, "p140", "packages", "k2s-1.4.0.zip"), Target: filepath.Join(dir, "p150", "packages", "k2s-1.5.0.zip"),
		Output: direct, WholeDirectories: []string{"bin/cni"}, Skip: s.Skip, Date: m.Build.Date, Level: 9,
	}); err != nil {
		t.Fatal(err)
	}
	if d2, _ := os.ReadFile(direct); !bytes.Equal(data, d2) {
		t.Errorf("step output differs from Build's")
	}

	delete(in.Deps, "package/1.4.0")
	if _, err := (delta.Step{}).Run(context.Background(), in); err == nil || !strings.Contains(err.Error(), "dependency package/1.4.0 was not provided") {
		t.Errorf("missing dependency: %v", err)
	}
}
