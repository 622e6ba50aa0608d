package daggerengine

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relcue/release/pipeline/engine"
	"github.com/relcue/release/pipeline/step"
)

// copyStep reads a file source, a directory source and a dependency's
// artifact at whatever paths its Input names, and writes what it read.
type copyStep struct{}

func (copyStep) Kind() string    { return "copy" }
func (copyStep) Version() string { return "1" }
func (copyStep) Run(_ context.Context, in *step.Input) ([]step.Artifact, error) {
	file, err := os.ReadFile(in.Sources["file"])
	if err != nil {
		return nil, err
	}
	tree, err := os.ReadFile(filepath.Join(in.Sources["tree"], "sub", "x"))
	if err != nil {
		return nil, err
	}
	dep := in.Deps["package/1.0.0"]
	a, _ := dep.Find("package")
	pkg, err := os.ReadFile(filepath.Join(dep.Dir, filepath.FromSlash(a.Path)))
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(in.Log, "read %d bytes\n", len(file)+len(tree)+len(pkg))
	in.Progress.SetTotal(3)
	in.Progress.Add(3)
	os.MkdirAll(filepath.Join(in.OutDir, "out"), 0o755)
	err = os.WriteFile(filepath.Join(in.OutDir, "out", "all.txt"), []byte(string(file)+string(tree)+string(pkg)+"\n"+string(in.Spec)), 0o644)
	return []step.Artifact{{Path: "out/all.txt", Kind: "copy"}}, err
}

type progressRecorder struct{ total, added int64 }

func (p *progressRecorder) SetTotal(n int64) { p.total = n }
func (p *progressRecorder) Add(n int64)      { p.added += n }

// TestPlanStepRunsInAContainerLayout plans a step's mounts, lays them out
// below a temporary root as a container would see them (symlinks standing
// in for bind mounts), runs the request there as `release step` does and
// reads the response back: the whole protocol except Dagger's API calls.
func TestPlanStepRunsInAContainerLayout(t *testing.T) {
	host := t.TempDir()
	os.WriteFile(filepath.Join(host, "input.bin"), []byte("F"), 0o644)
	os.MkdirAll(filepath.Join(host, "tree", "sub"), 0o755)
	os.WriteFile(filepath.Join(host, "tree", "sub", "x"), []byte("T"), 0o644)
	depDir := filepath.Join(host, "entry", "out")
	os.MkdirAll(filepath.Join(depDir, "packages"), 0o755)
	os.WriteFile(filepath.Join(depDir, "packages", "p.zip"), []byte("P"), 0o644)
	in := &step.Input{
		Target: "copy/1", Spec: json.RawMessage(`{"n":1}`), Workers: 3,
		Sources: map[string]string{"tree": filepath.Join(host, "tree"), "file": filepath.Join(host, "input.bin")},
		Deps:    map[string]step.Result{"package/1.0.0": {Dir: depDir, Artifacts: []step.Artifact{{Path: "packages/p.zip", Kind: "package"}}}},
	}
	p, err := PlanStep("copy", in, "/")
	if err != nil {
		t.Fatal(err)
	}
	want := []Mount{
		{Host: filepath.Join(host, "input.bin"), Container: "/in/src/0/input.bin"},
		{Host: filepath.Join(host, "tree"), Container: "/in/src/1", Dir: true},
		{Host: depDir, Container: "/in/deps/0", Dir: true},
	}
	if fmt.Sprint(p.Mounts) != fmt.Sprint(want) {
		t.Fatalf("mounts %+v, want %+v", p.Mounts, want)
	}
	if p.Request.Sources["file"] != "/in/src/0/input.bin" || p.Request.Deps["package/1.0.0"].Dir != "/in/deps/0" || p.Request.Workers != 3 || p.Request.Kind != "copy" {
		t.Fatalf("request %+v", p.Request)
	}

	// The same plan below a fake container root.
	root := t.TempDir()
	rp, err := PlanStep("copy", in, root)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range rp.Mounts {
		if !strings.HasPrefix(m.Container, root+"/in/") {
			t.Fatalf("mount %s escapes the root", m.Container)
		}
		os.MkdirAll(filepath.Dir(m.Container), 0o755)
		if err := os.Symlink(m.Host, m.Container); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(root, "out")
	os.MkdirAll(out, 0o755)
	var stderr strings.Builder
	steps := map[string]step.Step{"copy": copyStep{}}
	if err := engine.RunRequest(context.Background(), steps, &rp.Request, out, &stderr); err != nil {
		t.Fatal(err)
	}
	arts, err := engine.ReadResponse(out)
	if err != nil || len(arts) != 1 || arts[0].Path != "out/all.txt" {
		t.Fatalf("response %+v %v", arts, err)
	}
	if data, _ := os.ReadFile(filepath.Join(out, "out", "all.txt")); string(data) != "FTP\n{\"n\":1}" {
		t.Fatalf("output %q", data)
	}
	if _, err := os.Stat(filepath.Join(out, engine.ResultFile)); !os.IsNotExist(err) {
		t.Error("the response file stayed among the outputs")
	}
	var log strings.Builder
	prog := &progressRecorder{}
	engine.ReplayLog(stderr.String(), prog, &log)
	if log.String() != "read 3 bytes\n" || prog.total != 3 || prog.added != 3 {
		t.Fatalf("replayed log %q, progress %+v", log.String(), prog)
	}

	// An unknown kind and a response naming a missing file are errors.
	bad := rp.Request
	bad.Kind = "nope"
	if err := engine.RunRequest(context.Background(), steps, &bad, out, &stderr); err == nil || !strings.Contains(err.Error(), `no step of kind "nope"`) {
		t.Errorf("unknown kind: %v", err)
	}
	os.WriteFile(filepath.Join(out, engine.ResultFile), []byte(`{"artifacts":[{"path":"gone.txt","kind":"x"}]}`), 0o644)
	if _, err := engine.ReadResponse(out); err == nil || !strings.Contains(err.Error(), "gone.txt is not a regular file") {
		t.Errorf("missing artifact: %v", err)
	}
	os.WriteFile(filepath.Join(out, engine.ResultFile), []byte(`{"artifacts":[{"path":"../x","kind":"x"}]}`), 0o644)
	if _, err := engine.ReadResponse(out); err == nil || !strings.Contains(err.Error(), "not a clean relative path") {
		t.Errorf("escaping artifact: %v", err)
	}
}

func TestPlanStepRejectsRelativePaths(t *testing.T) {
	_, err := PlanStep("copy", &step.Input{Target: "t", Sources: map[string]string{"a": "rel/path"}}, "/")
	if err == nil || !strings.Contains(err.Error(), "not an absolute path") {
		t.Fatalf("%v", err)
	}
}
