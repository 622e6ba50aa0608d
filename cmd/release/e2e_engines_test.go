package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relcue/release/pipeline/engine/daggerengine"
)

// buildWithEngine builds the sample copy in dir with an empty cache on the
// named engine and returns artifacts.json.
func buildWithEngine(t *testing.T, dir, eng string) ([]byte, buildJSON) {
	t.Helper()
	os.RemoveAll(filepath.Join(dir, "dist"))
	b := runBuild(t, dir, filepath.Join(t.TempDir(), "cache"), "--engine", eng)
	return readFile(t, filepath.Join(dir, "dist", "artifacts.json")), b
}

// The process engine runs every step as `release step` in its own
// process, through the request protocol the dagger engine uses in
// containers: the artifacts are byte-identical to the local engine's.
func TestProcessEngineMatchesLocal(t *testing.T) {
	dir := copySample(t)
	local, _ := buildWithEngine(t, dir, "local")
	proc, b := buildWithEngine(t, dir, "process")
	if !bytes.Equal(local, proc) {
		t.Fatalf("artifacts.json differs between local and process engines:\nlocal:\n%s\nprocess:\n%s", local, proc)
	}
	for id, s := range statuses(b) {
		if s != "built" {
			t.Errorf("%s: %s", id, s)
		}
	}
}

// failingConfig has one release whose existing zip is not a zip: the
// failure happens inside the step, not while planning.
func failingConfig(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "release.cue"), `package release
product: name: "k2s"
build: date: "2025-06-01T00:00:00Z"
releases: "1.0.0": zip: path: "broken.zip"
`)
	writeFile(t, filepath.Join(dir, "broken.zip"), "this is not a zip archive\n")
	return dir
}

func TestStepFailureInAnotherProcessNamesTheStep(t *testing.T) {
	dir := failingConfig(t)
	r := releaseCmd(t, nil, "build", "-C", dir, "--cache", filepath.Join(t.TempDir(), "c"), "--engine", "process")
	if r.code != 1 || !strings.Contains(r.stderr, "package/1.0.0") || !strings.Contains(r.stderr, "zip") {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "dist")); !os.IsNotExist(err) {
		t.Error("a failed build created dist/")
	}
}

// Without any way to reach an engine, --engine dagger fails at once and
// says what it tried; it never builds locally instead.
func TestDaggerEngineMissingFailsAtOnce(t *testing.T) {
	dir := copySample(t)
	empty := t.TempDir()
	env := []string{"PATH=" + empty, daggerengine.EnvRunnerHost + "=", daggerengine.EnvCLIBin + "=", daggerengine.EnvSessionPort + "="}
	r := releaseCmd(t, env, "build", "-C", dir, "--cache", filepath.Join(t.TempDir(), "c"), "--engine", "dagger")
	for _, want := range []string{"no Dagger engine found", daggerengine.EnvRunnerHost, daggerengine.EnvCLIBin, "dagger CLI on PATH", "docker on PATH", "--engine local"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if r.code != 2 {
		t.Errorf("exit %d, want 2", r.code)
	}
	if _, err := os.Stat(filepath.Join(dir, "dist")); !os.IsNotExist(err) {
		t.Error("dist/ was created")
	}
	r = releaseCmd(t, []string{daggerengine.EnvRunnerHost + "=localhost:1234"}, "build", "-C", dir, "--engine", "dagger")
	if r.code != 2 || !strings.Contains(r.stderr, "is not an engine address") {
		t.Errorf("bad runner host: exit %d\n%s", r.code, r.stderr)
	}
}

// requireDagger skips unless an engine is configured; these tests need a
// running Dagger engine, which cannot be built on every machine.
func requireDagger(t *testing.T) {
	t.Helper()
	if os.Getenv(daggerengine.EnvRunnerHost) == "" {
		t.Skipf("no Dagger engine: set %s (e.g. tcp://127.0.0.1:1234 or docker-container://dagger-engine) to run the dagger engine's integration tests", daggerengine.EnvRunnerHost)
	}
}

func TestDaggerEngineMatchesLocal(t *testing.T) {
	requireDagger(t)
	dir := copySample(t)
	local, _ := buildWithEngine(t, dir, "local")
	cache := filepath.Join(t.TempDir(), "cache")
	os.RemoveAll(filepath.Join(dir, "dist"))
	b := runBuild(t, dir, cache, "--engine", "dagger", "--step-binary", binPath)
	dag := readFile(t, filepath.Join(dir, "dist", "artifacts.json"))
	if !bytes.Equal(local, dag) {
		t.Fatalf("artifacts.json differs between local and dagger engines:\nlocal:\n%s\ndagger:\n%s", local, dag)
	}
	for id, s := range statuses(b) {
		if s != "built" {
			t.Errorf("first dagger build: %s %s", id, s)
		}
	}
	again := runBuild(t, dir, cache, "--engine", "dagger", "--step-binary", binPath)
	for id, s := range statuses(again) {
		if s != "cached" {
			t.Errorf("second dagger build: %s %s", id, s)
		}
	}
}

func TestDaggerEngineReportsFailedStepLogs(t *testing.T) {
	requireDagger(t)
	dir := failingConfig(t)
	r := releaseCmd(t, nil, "build", "-C", dir, "--cache", filepath.Join(t.TempDir(), "c"), "--engine", "dagger", "--step-binary", binPath)
	if r.code != 1 || !strings.Contains(r.stderr, "package/1.0.0") || !strings.Contains(r.stderr, "step failed in its container") || !strings.Contains(r.stderr, "zip") {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
}

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
