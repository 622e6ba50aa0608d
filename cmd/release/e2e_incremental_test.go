package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relcue/release/pipeline/fingerprint"
)

type publishJSON struct {
	Publish struct {
		Kept, Written, Hashed int
		WrittenSize           int64
	} `json:"publish"`
}

func buildPublish(t *testing.T, dir, cache string) publishJSON {
	t.Helper()
	r := mustRun(t, "build", "-C", dir, "--cache", cache, "--format", "json")
	var p publishJSON
	if err := json.Unmarshal([]byte(r.stdout), &p); err != nil {
		t.Fatalf("build json: %v\n%s", err, r.stdout)
	}
	return p
}

func distSnapshot(t *testing.T, dist string) map[string]fingerprint.FP {
	t.Helper()
	out := map[string]fingerprint.FP{}
	err := filepath.WalkDir(dist, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fp, err := fingerprint.Stat(p)
		out[p] = fp
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A build that builds nothing writes nothing into dist/: every artifact,
// SHA256SUMS and artifacts.json keep their inode and times.
func TestNoOpBuildWritesNothingIntoDist(t *testing.T) {
	dir := copySample(t)
	cache := filepath.Join(t.TempDir(), "cache")
	first := buildPublish(t, dir, cache)
	if first.Publish.Written == 0 || first.Publish.Kept != 0 {
		t.Fatalf("first build published %+v", first.Publish)
	}
	dist := filepath.Join(dir, "dist")
	before := distSnapshot(t, dist)
	second := buildPublish(t, dir, cache)
	if second.Publish.Written != 0 || second.Publish.Hashed != 0 || second.Publish.Kept != first.Publish.Written {
		t.Fatalf("no-op build published %+v", second.Publish)
	}
	after := distSnapshot(t, dist)
	if len(after) != len(before) {
		t.Fatalf("dist/ had %d files, now %d", len(before), len(after))
	}
	for p, fp := range before {
		if after[p] != fp {
			t.Fatalf("no-op build touched %s", p)
		}
	}

	// A dist file edited by the user is put back from the cache; the cache
	// itself is unaffected (the next verify finds it intact).
	pkg := filepath.Join(dist, "packages", "k2s-1.5.0.zip")
	want := readFile(t, pkg)
	os.WriteFile(pkg, []byte("edited"), 0o644)
	if p := buildPublish(t, dir, cache); p.Publish.Written != 1 {
		t.Fatalf("after an edit in dist/: %+v", p.Publish)
	}
	if got := readFile(t, pkg); string(got) != string(want) {
		t.Fatal("edited dist file not restored")
	}
	r := mustRun(t, "cache", "verify", "-C", dir, "--cache", cache, "--format", "json")
	var v struct {
		Checked int      `json:"checked"`
		Corrupt []string `json:"corrupt"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v.Checked != sampleTotal || len(v.Corrupt) != 0 {
		t.Fatalf("cache verify: %v %+v\n%s", err, v, r.stdout)
	}
}

// An entry altered in place with its mtime restored is caught by its
// change time: never served, rebuilt to the right bytes; `cache verify`
// finds and evicts such an entry too.
func TestEntryAlteredWithRestoredMtimeIsRebuilt(t *testing.T) {
	dir := copySample(t)
	cache := filepath.Join(t.TempDir(), "cache")
	runBuild(t, dir, cache)
	good := readFile(t, filepath.Join(dir, "dist", "artifacts.json"))
	var hit string
	filepath.WalkDir(filepath.Join(cache, "v1", "entries"), func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, "k2s-1.4.1.zip") {
			hit = p
		}
		return nil
	})
	tamper := func() {
		info, err := os.Stat(hit)
		if err != nil {
			t.Fatal(err)
		}
		fp, _ := fingerprint.Stat(hit)
		for !fp.Settled(time.Now()) {
			time.Sleep(5 * time.Millisecond)
		}
		data := readFile(t, hit)
		data[len(data)/3] ^= 0x01
		os.WriteFile(hit, data, 0o644)
		os.Chtimes(hit, info.ModTime(), info.ModTime())
	}
	tamper()
	r := releaseCmd(t, nil, "build", "-C", dir, "--cache", cache, "--format", "json")
	if r.code != 0 || !strings.Contains(r.stderr, "package/1.4.1") || !strings.Contains(r.stderr, "is corrupt") {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	if got := readFile(t, filepath.Join(dir, "dist", "artifacts.json")); string(got) != string(good) {
		t.Fatal("rebuilt artifacts differ")
	}

	tamper()
	r = releaseCmd(t, nil, "cache", "verify", "--all", "--cache", cache)
	if r.code != 1 || !strings.Contains(r.stderr, "evicted") || !strings.Contains(r.stdout, "1 corrupt and evicted") {
		t.Fatalf("cache verify --all: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(hit); err == nil {
		t.Fatal("corrupt entry kept")
	}
}
