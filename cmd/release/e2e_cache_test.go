package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCorruptCacheEntryIsRebuiltThroughCLI(t *testing.T) {
	dir := copySample(t)
	cache := filepath.Join(t.TempDir(), "cache")
	runBuild(t, dir, cache)
	first := readFile(t, filepath.Join(dir, "dist", "artifacts.json"))

	// Flip bytes in the cached 1.5.0 package, behind release's back.
	var hit string
	filepath.WalkDir(filepath.Join(cache, "v1", "entries"), func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, "k2s-1.5.0.zip") {
			hit = p
		}
		return nil
	})
	if hit == "" {
		t.Fatal("cached package not found")
	}
	data := readFile(t, hit)
	data[len(data)/2] ^= 0xff
	os.WriteFile(hit, data, 0o644)

	r := releaseCmd(t, nil, "build", "-C", dir, "--cache", cache, "--format", "json")
	if r.code != 0 || !strings.Contains(r.stderr, "package/1.5.0") || !strings.Contains(r.stderr, "is corrupt") {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	var b buildJSON
	json.Unmarshal([]byte(r.stdout), &b)
	if st := statuses(b); st["package/1.5.0"] != "built" || st["package/1.4.0"] != "cached" {
		t.Fatalf("statuses %v", st)
	}
	if again := readFile(t, filepath.Join(dir, "dist", "artifacts.json")); !bytes.Equal(first, again) {
		t.Fatal("rebuilt artifacts differ")
	}
}

func TestCacheLsAndGC(t *testing.T) {
	dir := copySample(t)
	cache := filepath.Join(t.TempDir(), "cache")
	runBuild(t, dir, cache)
	var list []struct {
		Key, Target, Kind string
		Size              int64
	}
	if err := json.Unmarshal([]byte(mustRun(t, "cache", "ls", "--cache", cache, "--format", "json").stdout), &list); err != nil || len(list) != sampleTotal {
		t.Fatalf("cache ls: %v %+v", err, list)
	}
	text := mustRun(t, "cache", "ls", "--cache", cache).stdout
	if !strings.Contains(text, "delta/1.4.0..1.5.0") || !strings.Contains(text, fmt.Sprintf("%d entries", sampleTotal)) {
		t.Fatalf("cache ls text:\n%s", text)
	}
	dry := mustRun(t, "cache", "gc", "--all", "--dry-run", "--cache", cache).stdout
	if !strings.Contains(dry, fmt.Sprintf("would remove %d entries", sampleTotal)) {
		t.Fatalf("dry run: %s", dry)
	}
	mustRun(t, "cache", "gc", "--all", "--cache", cache)
	for _, tg := range runPlan(t, dir, cache).Targets {
		if tg.Cached {
			t.Fatalf("%s still cached after gc --all", tg.ID)
		}
	}
	if r := releaseCmd(t, nil, "cache", "gc", "--max-size", "lots", "--cache", cache); r.code != 2 {
		t.Fatalf("bad --max-size: exit %d", r.code)
	}
}
