package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relcue/release/internal/peers"
)

var updateGolden = flag.Bool("update-golden", false, "rewrite testdata/github from the current output")

// ghRun runs release as a GitHub Actions step would: GITHUB_ACTIONS=true,
// fresh summary and output files, the workspace at dir.
func ghRun(t *testing.T, dir string, args ...string) (stdout, summary, outputs string, code int) {
	t.Helper()
	tmp := t.TempDir()
	sum, out := filepath.Join(tmp, "summary.md"), filepath.Join(tmp, "output.txt")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CI=true", "GITHUB_ACTIONS=true", "GITHUB_STEP_SUMMARY="+sum, "GITHUB_OUTPUT="+out, "GITHUB_WORKSPACE="+dir)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	code = cmd.ProcessState.ExitCode()
	if err != nil && code <= 0 {
		t.Fatalf("release %v: %v\n%s", args, err, se.String())
	}
	s, _ := os.ReadFile(sum)
	o, _ := os.ReadFile(out)
	return so.String(), string(s), string(o), code
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", "github", name)
	if *updateGolden {
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (go test ./cmd/release -run GitHub -update-golden creates it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (rerun with -update-golden and review):\n%s", name, got)
	}
}

func TestGitHubPlanSummaryAndOutputs(t *testing.T) {
	dir := copySample(t)
	_, summary, outputs, code := ghRun(t, dir, "plan", "-C", ".", "--cache", filepath.Join(t.TempDir(), "c"))
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	golden(t, "plan-summary.md", summary)
	golden(t, "plan-outputs.txt", outputs)
	if !strings.Contains(summary, "```mermaid\ngraph LR") {
		t.Error("no Mermaid graph in the summary")
	}
}

func TestGitHubAnnotatesConfigErrors(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "release.cue"), `package release
product: name: "k2s"
build: date: "2025-06-01T00:00:00Z"
releases: "1.0.0": inputs: [{dir: "payload"}]
deltas: paths: [{from: "0.9.0", to: "1.0.0"}]
rollout: r: {engine: "flux", releases: "1.0.0": image: "registry.example.com/u:1"}
`)
	stdout, _, _, code := ghRun(t, dir, "vet", "-C", ".")
	if code != 2 {
		t.Fatalf("exit %d", code)
	}
	golden(t, "vet-annotations.txt", stdout)
}

func TestGitHubBuildSummaryAndOutputs(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "payload"), 0o755)
	writeFile(t, filepath.Join(dir, "payload", "README"), "k2s\n")
	writeFile(t, filepath.Join(dir, "release.cue"), `package release
product: name: "k2s"
build: date: "2025-06-01T00:00:00Z"
releases: "1.0.0": inputs: [{dir: "payload"}]
releases: "1.1.0": inputs: [{dir: "payload"}]
deltas: paths: [{from: "1.0.0", to: "1.1.0"}]
`)
	_, summary, outputs, code := ghRun(t, dir, "build", "-C", ".", "--cache", filepath.Join(t.TempDir(), "c"), "--dist", "out", "-q")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	golden(t, "build-summary.md", summary)
	golden(t, "build-outputs.txt", strings.ReplaceAll(outputs, dir, "$WORKSPACE"))

	// A failing build annotates the target that failed.
	writeFile(t, filepath.Join(dir, "payload", "VERSION"), "9.9.9\n")
	stdout, _, _, code := ghRun(t, dir, "build", "-C", ".", "--cache", filepath.Join(t.TempDir(), "c"), "-q")
	if code != 1 || !strings.Contains(stdout, "::error title=release%3A package/1.0.0 failed::") {
		t.Fatalf("exit %d, stdout:\n%s", code, stdout)
	}
}

// The release workflow's fan-out on one machine: plan the matrix, run each
// entry as its own process with an empty local cache and the shared
// registry, then the publish job; it pulls everything, builds nothing and
// publishes the same artifacts.json as one process building it all.
func TestFanOutThroughRemoteCache(t *testing.T) {
	reg := peers.StartRegistry(t)
	remote := "oci://" + reg.Host + "/release/cache"
	dir := copySample(t)
	single := runBuild(t, dir, filepath.Join(t.TempDir(), "single"), "--dist", filepath.Join(t.TempDir(), "single-dist"))
	want := artifactsJSON(t, single)

	var m struct {
		Include []struct{ Target string } `json:"include"`
	}
	r := mustRun(t, "plan", "-C", dir, "--cache", filepath.Join(t.TempDir(), "p"), "--format", "github-matrix")
	if err := json.Unmarshal([]byte(r.stdout), &m); err != nil || len(m.Include) < 5 {
		t.Fatalf("matrix: %v\n%s", err, r.stdout)
	}
	fanOut := func() (built int) {
		for _, e := range m.Include {
			b := runBuild(t, dir, filepath.Join(t.TempDir(), "job"), "--target", e.Target, "--dist", filepath.Join(t.TempDir(), "dist"),
				"--remote-cache", remote, "--remote-cache-plain-http")
			for _, s := range statuses(b) {
				if s == "built" {
					built++
				}
			}
		}
		return built
	}
	if built := fanOut(); built == 0 || built > len(single.Targets) {
		t.Fatalf("the first fan-out built %d targets", built)
	}
	collect := func() buildJSON {
		return runBuild(t, dir, filepath.Join(t.TempDir(), "publish"), "--dist", filepath.Join(t.TempDir(), "publish-dist"),
			"--remote-cache", remote, "--remote-cache-plain-http")
	}
	pub := collect()
	for id, s := range statuses(pub) {
		if s != "cached" {
			t.Errorf("publish job: %s %s (everything should come from the remote cache)", id, s)
		}
	}
	if got := artifactsJSON(t, pub); got != want {
		t.Fatalf("the fan-out's artifacts differ from a single build's:\n%s\nwant:\n%s", got, want)
	}
	if built := fanOut(); built != 0 {
		t.Errorf("re-running the fan-out built %d targets", built)
	}

	// A tampered entry is refused and the target rebuilt, correctly.
	var deltaSum string
	for _, a := range single.Artifacts {
		if a.Path == "deltas/k2s-delta-1.4.1-to-1.5.0.zip" {
			deltaSum = a.SHA256
		}
	}
	blob := filepath.Join(reg.Dir, "docker", "registry", "v2", "blobs", "sha256", deltaSum[:2], deltaSum, "data")
	data, err := os.ReadFile(blob)
	if err != nil {
		t.Fatalf("the delta's blob is not in the registry: %v", err)
	}
	data[len(data)/2] ^= 0xff
	os.WriteFile(blob, data, 0o644)
	r = releaseCmd(t, nil, "build", "-C", dir, "--cache", filepath.Join(t.TempDir(), "tampered"), "--dist", filepath.Join(t.TempDir(), "tampered-dist"),
		"--remote-cache", remote, "--remote-cache-plain-http", "--format", "json", "--target", "delta/1.4.1..1.5.0")
	var tb buildJSON
	json.Unmarshal([]byte(r.stdout), &tb)
	if r.code != 0 || statuses(tb)["delta/1.4.1..1.5.0"] != "built" || !strings.Contains(r.stderr, "refused") || len(tb.Artifacts) != 1 || tb.Artifacts[0].SHA256 != deltaSum {
		t.Fatalf("tampered entry: exit %d, %+v\n%s", r.code, tb, r.stderr)
	}

	// A registry that is down leaves the build correct.
	reg.Stop()
	r = releaseCmd(t, nil, "build", "-C", dir, "--cache", filepath.Join(t.TempDir(), "down"), "--dist", filepath.Join(t.TempDir(), "down-dist"),
		"--remote-cache", remote, "--remote-cache-plain-http", "--format", "json", "--target", "delta/1.4.1..1.5.0")
	if r.code != 0 || !strings.Contains(r.stderr, "unreachable") {
		t.Fatalf("registry down: exit %d\n%s", r.code, r.stderr)
	}
}

func artifactsJSON(t *testing.T, b buildJSON) string {
	t.Helper()
	data, err := json.MarshalIndent(b.Artifacts, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
