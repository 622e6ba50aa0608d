package plan

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relcue/release/pipeline/step"
)

type nopStep struct{ kind, version string }

func (s nopStep) Kind() string    { return s.kind }
func (s nopStep) Version() string { return s.version }
func (nopStep) Run(context.Context, *step.Input) ([]step.Artifact, error) {
	return nil, nil
}

var steps = map[string]step.Step{"k": nopStep{"k", "1"}}

func build(t *testing.T, ts []step.Target) *Graph {
	t.Helper()
	g, err := Build(context.Background(), ts, Options{Steps: steps, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, c := range files {
		full := filepath.Join(dir, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestKeysChangeExactlyWithInputs(t *testing.T) {
	dir := writeTree(t, map[string]string{"VERSION": "1.0.0", "bin/a": "a"})
	mk := func(spec any, src string) []step.Target {
		return []step.Target{
			{ID: "p", Kind: "k", Spec: spec, Sources: []step.Source{{Name: "s", Path: src, Dir: true}}},
			{ID: "q", Kind: "k", Spec: map[string]int{"z": 1, "a": 2}, Deps: []string{"p"}},
		}
	}
	base := build(t, mk(map[string]string{"v": "1"}, dir))
	same := build(t, mk(map[string]string{"v": "1"}, dir))
	if base.Nodes["p"].Key != same.Nodes["p"].Key || base.Nodes["q"].Key != same.Nodes["q"].Key {
		t.Fatal("same inputs gave different keys")
	}
	spec := build(t, mk(map[string]string{"v": "2"}, dir))
	if spec.Nodes["p"].Key == base.Nodes["p"].Key || spec.Nodes["q"].Key == base.Nodes["q"].Key {
		t.Fatal("a spec change must change the key and its dependents' keys")
	}
	os.WriteFile(filepath.Join(dir, "bin/a"), []byte("b"), 0o644)
	content := build(t, mk(map[string]string{"v": "1"}, dir))
	if content.Nodes["p"].Key == base.Nodes["p"].Key {
		t.Fatal("a source content change must change the key")
	}
	os.Chmod(filepath.Join(dir, "bin/a"), 0o755)
	mode := build(t, mk(map[string]string{"v": "1"}, dir))
	if mode.Nodes["p"].Key == content.Nodes["p"].Key {
		t.Fatal("an exec bit change must change the key")
	}
	old := steps["k"]
	steps["k"] = nopStep{"k", "2"}
	defer func() { steps["k"] = old }()
	ver := build(t, mk(map[string]string{"v": "1"}, dir))
	if ver.Nodes["p"].Key == mode.Nodes["p"].Key {
		t.Fatal("a step version change must change the key")
	}
}

func TestCanonicalSortsKeys(t *testing.T) {
	a, _ := Canonical(map[string]any{"b": 1, "a": []any{map[string]int{"y": 1, "x": 2}}})
	b, _ := Canonical(struct {
		B int   `json:"b"`
		A []any `json:"a"`
	}{1, []any{struct {
		Y int `json:"y"`
		X int `json:"x"`
	}{1, 2}}})
	if !bytes.Equal(a, b) || string(a) != `{"a":[{"x":2,"y":1}],"b":1}` {
		t.Fatalf("canonical forms differ: %s vs %s", a, b)
	}
}

func TestGraphErrors(t *testing.T) {
	cases := []struct {
		name string
		ts   []step.Target
		want string
	}{
		{"cycle", []step.Target{{ID: "a", Kind: "k", Deps: []string{"b"}}, {ID: "b", Kind: "k", Deps: []string{"a"}}}, "dependency cycle among targets: a, b"},
		{"unknown dep", []step.Target{{ID: "a", Kind: "k", Deps: []string{"zz"}, Pos: "r.cue:3:1"}}, "r.cue:3:1: target a depends on zz, which is not a target"},
		{"duplicate", []step.Target{{ID: "a", Kind: "k"}, {ID: "a", Kind: "k"}}, "target a is declared twice"},
		{"same output", []step.Target{{ID: "node/debian12/1", Kind: "k", Outputs: []string{"n.zip"}, Pos: "r.cue:4:2"}, {ID: "node/deb/1", Kind: "k", Outputs: []string{"n.zip"}, Pos: "r.cue:9:2"}},
			"r.cue:9:2: targets node/debian12/1 (r.cue:4:2) and node/deb/1 both write n.zip"},
		{"unknown kind", []step.Target{{ID: "a", Kind: "nope"}}, `no step of kind "nope"`},
		{"missing source", []step.Target{{ID: "a", Kind: "k", Sources: []step.Source{{Name: "s", Path: "/does/not/exist", Dir: true, Pos: "x.cue:9:4"}}}}, "x.cue:9:4: target a: input /does/not/exist"},
		{"url without sha", []step.Target{{ID: "a", Kind: "k", Sources: []step.Source{{Name: "s", URL: "https://h/x"}}}}, "declare it so the download can be verified"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Build(context.Background(), c.ts, Options{Steps: steps})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestSymlinkInSourceIsRejected(t *testing.T) {
	dir := writeTree(t, map[string]string{"a": "a"})
	os.Symlink("a", filepath.Join(dir, "link"))
	_, err := Build(context.Background(), []step.Target{{ID: "p", Kind: "k", Sources: []step.Source{{Name: "s", Path: dir, Dir: true}}}}, Options{Steps: steps})
	if err == nil || !strings.Contains(err.Error(), "link: not a regular file") {
		t.Fatalf("err = %v", err)
	}
}

func TestSelectClosureAndOrder(t *testing.T) {
	g := build(t, []step.Target{
		{ID: "package/1", Kind: "k"}, {ID: "package/2", Kind: "k"}, {ID: "package/3", Kind: "k"},
		{ID: "delta/1..3", Kind: "k", Deps: []string{"package/1", "package/3"}},
		{ID: "delta/2..3", Kind: "k", Deps: []string{"package/2", "package/3"}},
	})
	all, roots, err := g.Select([]string{"delta/1..3"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(all, " ") != "package/1 package/3 delta/1..3" || strings.Join(roots, " ") != "delta/1..3" {
		t.Fatalf("all=%v roots=%v", all, roots)
	}
	all, _, _ = g.Select([]string{"delta/*"}, false)
	if len(all) != 5 {
		t.Fatalf("delta/* selected %v", all)
	}
	g2 := build(t, []step.Target{{ID: "deb/debian12/kubelet_1_amd64", Kind: "k"}, {ID: "debx/y", Kind: "k"}})
	if all, _, _ := g2.Select([]string{"deb/*"}, false); len(all) != 1 || all[0] != "deb/debian12/kubelet_1_amd64" {
		t.Fatalf("deb/* selected %v", all)
	}
	if _, _, err := g.Select([]string{"nope/*"}, false); err == nil || !strings.Contains(err.Error(), "matches no target; targets are: package/1") {
		t.Fatalf("err = %v", err)
	}
}

func TestRenderFormats(t *testing.T) {
	g := build(t, []step.Target{{ID: "package/1.0.0", Kind: "k"}, {ID: "delta/0.9.0..1.0.0", Kind: "k", Deps: []string{"package/1.0.0"}}})
	views := g.View(g.Order, func(n *Node) Status { return Status{Cached: n.ID == "package/1.0.0"} })
	var b bytes.Buffer
	for _, f := range Formats {
		b.Reset()
		if err := Render(&b, f, views); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out := b.String()
		switch f {
		case "text":
			if !strings.Contains(out, "2 targets: 1 cached, 1 to build") {
				t.Errorf("text:\n%s", out)
			}
		case "json":
			var v struct{ Targets []TargetView }
			if err := json.Unmarshal(b.Bytes(), &v); err != nil || len(v.Targets) != 2 || !v.Targets[0].Cached {
				t.Errorf("json: %v\n%s", err, out)
			}
		case "mermaid":
			if !strings.Contains(out, "t_package_1_0_0 --> t_delta_0_9_0__1_0_0") {
				t.Errorf("mermaid:\n%s", out)
			}
		case "dot":
			if !strings.Contains(out, `"package/1.0.0" -> "delta/0.9.0..1.0.0";`) {
				t.Errorf("dot:\n%s", out)
			}
		case "github-matrix":
			var m struct{ Include []MatrixEntry }
			// Only the roots: package/1.0.0 is built by the delta's job.
			if err := json.Unmarshal(b.Bytes(), &m); err != nil || len(m.Include) != 1 || m.Include[0].Target != "delta/0.9.0..1.0.0" || m.Include[0].Needs != 1 {
				t.Errorf("matrix: %v\n%s", err, out)
			}
		}
	}
	if err := Render(&b, "yaml", views); err == nil {
		t.Error("unknown format accepted")
	}
}

func TestSelectLeavesEffectsOutUnlessAsked(t *testing.T) {
	steps := map[string]step.Step{"fake": nopStep{"fake", "1"}}
	ts := []step.Target{
		{ID: "addon/a/1.0.0", Kind: "fake", Spec: map[string]string{"x": "1"}},
		{ID: "push/addon/a/1.0.0", Kind: "fake", Spec: map[string]string{"x": "2"}, Deps: []string{"addon/a/1.0.0"}, Effect: true},
	}
	g, err := Build(context.Background(), ts, Options{Steps: steps})
	if err != nil {
		t.Fatal(err)
	}
	all, _, _ := g.Select(nil, false)
	if strings.Join(all, " ") != "addon/a/1.0.0" {
		t.Fatalf("plain selection = %v, want the addon only", all)
	}
	all, roots, _ := g.Select(nil, true)
	if len(all) != 2 || len(roots) != 2 {
		t.Fatalf("selection with effects = %v / %v, want both", all, roots)
	}
	if _, _, err := g.Select([]string{"push/*"}, false); err == nil || !strings.Contains(err.Error(), "build --push") {
		t.Fatalf("selecting only pushes without effects: err = %v, want a hint at --push", err)
	}
	if _, roots, err := g.Select([]string{"push/*"}, true); err != nil || len(roots) != 1 {
		t.Fatalf("push/* with effects = %v, %v", roots, err)
	}
	// Nothing may be built from an effect.
	bad := append(ts, step.Target{ID: "x", Kind: "fake", Spec: 1, Deps: []string{"push/addon/a/1.0.0"}})
	if _, err := Build(context.Background(), bad, Options{Steps: steps}); err == nil || !strings.Contains(err.Error(), "effects outside the build") {
		t.Fatalf("dependency on an effect: err = %v", err)
	}
}
