package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
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

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
