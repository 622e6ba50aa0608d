package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relcue/release/internal/peers"
)

// samplePushes are the sample's push targets: planned, never built by a
// plain build.
var samplePushes = []string{"push/addon/ingress/1.4.0", "push/addon/metrics/0.7.2"}

func TestPushesRunOnlyWhenAskedFor(t *testing.T) {
	dir := copySample(t)
	cache := filepath.Join(t.TempDir(), "cache")
	var plan struct {
		Targets []struct {
			ID     string `json:"id"`
			Effect bool   `json:"effect"`
			Cached bool   `json:"cached"`
		} `json:"targets"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, "plan", "-C", dir, "--cache", cache, "--format", "json").stdout), &plan); err != nil {
		t.Fatal(err)
	}
	var effects []string
	for _, tg := range plan.Targets {
		if tg.Effect {
			effects = append(effects, tg.ID)
		}
	}
	if strings.Join(effects, " ") != strings.Join(samplePushes, " ") {
		t.Fatalf("effects in the plan: %v, want %v", effects, samplePushes)
	}
	b := runBuild(t, dir, cache)
	for _, tg := range b.Targets {
		if strings.HasPrefix(tg.ID, "push/") {
			t.Fatalf("a plain build ran %s", tg.ID)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "dist", "pushes")); !os.IsNotExist(err) {
		t.Fatalf("a plain build wrote push records: %v", err)
	}
	r := releaseCmd(t, nil, "build", "-C", dir, "--cache", cache, "--target", "push/*")
	if r.code != 2 || !strings.Contains(r.stderr, "build --push") {
		t.Fatalf("--target push/* without --push: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	r = releaseCmd(t, nil, "build", "-C", dir, "--cache", cache, "--push", "--registry", "http://127.0.0.1:5000")
	if r.code != 2 || !strings.Contains(r.stderr, "--registry") {
		t.Fatalf("--registry with a scheme: exit %d, stderr:\n%s", r.code, r.stderr)
	}
}

func TestBuildPushesToARealRegistry(t *testing.T) {
	oras := peers.Tool(t, "oras")
	reg := peers.StartRegistry(t)
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	dir := copySample(t)
	cache := filepath.Join(t.TempDir(), "cache")
	env := []string{"DOCKER_CONFIG=" + os.Getenv("DOCKER_CONFIG")}

	args := []string{"build", "-C", dir, "--cache", cache, "--format", "json", "--push", "--registry", reg.Host, "--target", "push/*"}
	r := releaseCmd(t, env, args...)
	if r.code != 0 {
		t.Fatalf("build --push: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	var b buildJSON
	if err := json.Unmarshal([]byte(r.stdout), &b); err != nil {
		t.Fatal(err)
	}
	pushed := map[string]string{}
	for _, tg := range b.Targets {
		pushed[tg.ID] = tg.Status
	}
	for _, id := range samplePushes {
		if pushed[id] != "built" {
			t.Fatalf("%s: %q, want built (%v)", id, pushed[id], pushed)
		}
	}
	rec := readFile(t, filepath.Join(dir, "dist", "pushes", "addon-metrics-0.7.2.json"))
	var record struct {
		Registry string `json:"registry"`
		Pushed   []struct{ Reference, Digest string }
	}
	if err := json.Unmarshal(rec, &record); err != nil || len(record.Pushed) != 1 || record.Pushed[0].Reference != reg.Host+"/addons/metrics:v0.7.2" {
		t.Fatalf("push record: %v\n%s", err, rec)
	}
	out, err := exec.Command(oras, "manifest", "fetch", "--plain-http", "--descriptor", reg.Host+"/addons/metrics:v0.7.2").CombinedOutput()
	if err != nil || !strings.Contains(string(out), record.Pushed[0].Digest) {
		t.Fatalf("oras resolves the pushed tag to %s (%v), want %s", out, err, record.Pushed[0].Digest)
	}
	for _, repo := range []string{"addons/ingress-nginx", "addons/ingress-traefik"} {
		out, err := exec.Command(oras, "repo", "tags", "--plain-http", reg.Host+"/"+repo).CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "v1.4.0" {
			t.Fatalf("%s tags: %s %v", repo, out, err)
		}
	}

	// Pushes are never served from the cache: a second build pushes again
	// and writes the same record.
	r = releaseCmd(t, env, args...)
	if r.code != 0 || !strings.Contains(r.stdout, `"status": "built"`) {
		t.Fatalf("second build --push: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if again := readFile(t, filepath.Join(dir, "dist", "pushes", "addon-metrics-0.7.2.json")); string(again) != string(rec) {
		t.Fatalf("push record changed between pushes:\n%s\n%s", rec, again)
	}

	// A registry that is down fails the build with a clear message and
	// leaves dist/ as it was.
	before := readFile(t, filepath.Join(dir, "dist", "artifacts.json"))
	reg.Stop()
	r = releaseCmd(t, env, args...)
	if r.code != 1 || !strings.Contains(r.stderr, "registry "+reg.Host+" is unreachable") {
		t.Fatalf("registry down: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	if after := readFile(t, filepath.Join(dir, "dist", "artifacts.json")); string(after) != string(before) {
		t.Fatal("a failed push changed dist/artifacts.json")
	}
}
