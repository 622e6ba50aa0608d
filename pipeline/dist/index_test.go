package dist

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/relcue/release/pipeline/cache"
)

// distFiles lists the files below dir (slash paths), sorted.
func distFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	sort.Strings(out)
	return out
}

// checkTruth asserts what FIRST-USE findings 1 and 2 asked: artifacts.json
// and SHA256SUMS list every file of dir (but themselves), each with its
// real SHA-256, and nothing else.
func checkTruth(t *testing.T, dir string) []string {
	t.Helper()
	var listed []Artifact
	raw, err := os.ReadFile(filepath.Join(dir, IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &listed); err != nil {
		t.Fatal(err)
	}
	var paths []string
	var sums bytes.Buffer
	for _, a := range listed {
		paths = append(paths, a.Path)
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(a.Path)))
		if err != nil {
			t.Errorf("artifacts.json lists %s: %v", a.Path, err)
			continue
		}
		sum := sha256.Sum256(data)
		if hex.EncodeToString(sum[:]) != a.SHA256 {
			t.Errorf("%s: listed with a sha256 it does not have", a.Path)
		}
		sums.WriteString(a.SHA256 + "  " + a.Path + "\n")
	}
	if got, _ := os.ReadFile(filepath.Join(dir, SumsFile)); string(got) != sums.String() {
		t.Errorf("SHA256SUMS:\n%s\nwant:\n%s", got, sums.String())
	}
	var want []string
	for _, f := range distFiles(t, dir) {
		if f != IndexFile && f != SumsFile {
			want = append(want, f)
		}
	}
	if !slices.Equal(paths, want) {
		t.Errorf("artifacts.json lists %v; dist holds %v", paths, want)
	}
	return paths
}

// A build of some targets adds to what earlier builds published, and
// everything stays listed (FIRST-USE 1: `--target package/1.5.0` or
// `--push --target 'push/*'` shrank SHA256SUMS to the subset).
func TestPublishSubsetMerges(t *testing.T) {
	s, _ := cache.Open(t.TempDir())
	p1 := entry(t, s, 'a', map[string]string{"packages/p-1.zip": "one", "packages/p-1.zip.cdx.json": "{}"})
	p2 := entry(t, s, 'b', map[string]string{"packages/p-2.zip": "two"})
	push := entry(t, s, 'c', map[string]string{"pushes/addon-x.json": "{}"})
	dir := filepath.Join(t.TempDir(), "dist")
	ctx := context.Background()
	if _, err := Publish(ctx, dir, []Item{{"package/1", p1}, {"package/2", p2}}, Options{}); err != nil {
		t.Fatal(err)
	}
	res, err := Publish(ctx, dir, []Item{{"push/addon/x", push}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Artifacts) != 1 || len(res.Index) != 4 || res.Stats.Carried != 3 {
		t.Errorf("artifacts %d, index %d, carried %d; want 1, 4, 3", len(res.Artifacts), len(res.Index), res.Stats.Carried)
	}
	if got := checkTruth(t, dir); len(got) != 4 {
		t.Errorf("listed %v", got)
	}
	// Rebuilding one package keeps the rest listed.
	p2b := entry(t, s, 'd', map[string]string{"packages/p-2.zip": "two, again"})
	if _, err := Publish(ctx, dir, []Item{{"package/2", p2b}}, Options{}); err != nil {
		t.Fatal(err)
	}
	if got := checkTruth(t, dir); len(got) != 4 {
		t.Errorf("listed %v", got)
	}
}

// FIRST-USE 2: artifacts of a release removed from the configuration,
// files a target no longer produces, and artifacts published for a key
// the target no longer has (an SBOM of a package since rebuilt) leave
// dist/.
func TestPublishRemovesStale(t *testing.T) {
	s, _ := cache.Open(t.TempDir())
	p1 := entry(t, s, 'a', map[string]string{"packages/p-1.zip": "one"})
	p2 := entry(t, s, 'b', map[string]string{"packages/p-2.zip": "two"})
	sbom := entry(t, s, 'e', map[string]string{"packages/p-1.zip.cdx.json": "{}"})
	layout := entry(t, s, 'c', map[string]string{"addons/x/index.json": "1", "addons/x/blobs/sha256/aaaa": "a"})
	dir := filepath.Join(t.TempDir(), "dist")
	state := filepath.Join(t.TempDir(), "state.json")
	ctx := context.Background()
	keys := map[string]string{"package/1": p1.Key, "package/2": p2.Key, "sbom/package/1": sbom.Key, "addon/x": layout.Key}
	current := func(id string) (string, bool) { k, ok := keys[id]; return k, ok }
	items := []Item{{"package/1", p1}, {"package/2", p2}, {"sbom/package/1", sbom}, {"addon/x", layout}}
	if _, err := Publish(ctx, dir, items, Options{State: state, CurrentKey: current}); err != nil {
		t.Fatal(err)
	}
	// Release 2 is withdrawn; the addon is rebuilt with another blob.
	layout2 := entry(t, s, 'd', map[string]string{"addons/x/index.json": "2", "addons/x/blobs/sha256/bbbb": "b"})
	delete(keys, "package/2")
	keys["addon/x"] = layout2.Key
	res, err := Publish(ctx, dir, []Item{{"addon/x", layout2}}, Options{State: state, CurrentKey: current})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"addons/x/blobs/sha256/aaaa", "packages/p-2.zip"}
	if !slices.Equal(res.Stats.Removed, want) {
		t.Errorf("removed %v, want %v", res.Stats.Removed, want)
	}
	if got := checkTruth(t, dir); !slices.Equal(got, []string{"addons/x/blobs/sha256/bbbb", "addons/x/index.json", "packages/p-1.zip", "packages/p-1.zip.cdx.json"}) {
		t.Errorf("listed %v", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "addons/x/blobs/sha256/aaaa")); !errors.Is(err, fs.ErrNotExist) {
		t.Error("the old blob is still there")
	}

	// Package 1 changes and is rebuilt alone: its SBOM target now has
	// another key, so the SBOM of the old bytes leaves with them.
	p1b := entry(t, s, 'f', map[string]string{"packages/p-1.zip": "one, changed"})
	keys["package/1"] = p1b.Key
	keys["sbom/package/1"] = strings.Repeat("9", 64)
	res, err = Publish(ctx, dir, []Item{{"package/1", p1b}}, Options{State: state, CurrentKey: current})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Stats.Removed, []string{"packages/p-1.zip.cdx.json"}) {
		t.Errorf("removed %v", res.Stats.Removed)
	}
	checkTruth(t, dir)
}

// A file edited after it was published no longer holds what the index
// says: it leaves dist/ rather than be listed with a wrong checksum.
func TestPublishDropsChangedFiles(t *testing.T) {
	s, _ := cache.Open(t.TempDir())
	p1 := entry(t, s, 'a', map[string]string{"packages/p-1.zip": "one"})
	p2 := entry(t, s, 'b', map[string]string{"packages/p-2.zip": "two"})
	dir := filepath.Join(t.TempDir(), "dist")
	state := filepath.Join(t.TempDir(), "state.json")
	ctx := context.Background()
	if _, err := Publish(ctx, dir, []Item{{"package/1", p1}, {"package/2", p2}}, Options{State: state}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "packages/p-1.zip"), []byte("ONE"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := Publish(ctx, dir, []Item{{"package/2", p2}}, Options{State: state})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Stats.Removed, []string{"packages/p-1.zip"}) {
		t.Errorf("removed %v", res.Stats.Removed)
	}
	checkTruth(t, dir)
}

// A dist/ holding files release did not publish is refused, before and at
// publishing; --clean (Options.Clean) removes them.
func TestPublishForeignFiles(t *testing.T) {
	s, _ := cache.Open(t.TempDir())
	p1 := entry(t, s, 'a', map[string]string{"packages/p-1.zip": "one"})
	dir := filepath.Join(t.TempDir(), "dist")
	ctx := context.Background()
	if err := CheckOwned(dir); err != nil {
		t.Errorf("a missing dist: %v", err)
	}
	os.MkdirAll(filepath.Join(dir, "notes"), 0o755)
	os.WriteFile(filepath.Join(dir, "notes/todo.txt"), []byte("mine"), 0o644)
	var fe *ForeignError
	if err := CheckOwned(dir); !errors.As(err, &fe) || !slices.Equal(fe.Files, []string{"notes/todo.txt"}) || !strings.Contains(err.Error(), "--clean") {
		t.Errorf("CheckOwned: %v", err)
	}
	if _, err := Publish(ctx, dir, []Item{{"package/1", p1}}, Options{}); !errors.As(err, &fe) {
		t.Errorf("Publish: %v, want a ForeignError", err)
	}
	if got := distFiles(t, dir); !slices.Equal(got, []string{"notes/todo.txt"}) {
		t.Errorf("a refused publish left %v", got)
	}
	res, err := Publish(ctx, dir, []Item{{"package/1", p1}}, Options{Clean: true})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Stats.Removed, []string{"notes/todo.txt"}) {
		t.Errorf("removed %v", res.Stats.Removed)
	}
	if _, err := os.Stat(filepath.Join(dir, "notes")); !errors.Is(err, fs.ErrNotExist) {
		t.Error("the emptied directory is still there")
	}
	checkTruth(t, dir)
	if err := CheckOwned(dir); err != nil {
		t.Errorf("after publishing: %v", err)
	}
}

// D5: the temporary files of a publish killed before its renames are
// removed by the next publish.
func TestPublishRemovesLeftovers(t *testing.T) {
	s, _ := cache.Open(t.TempDir())
	p1 := entry(t, s, 'a', map[string]string{"packages/p-1.zip": "one"})
	dir := filepath.Join(t.TempDir(), "dist")
	os.MkdirAll(filepath.Join(dir, "packages"), 0o755)
	for _, name := range []string{"packages/.p-1.zip.tmp-1089678388", ".artifacts.json.tmp-42", "packages/.p-0.zip.tmp-7"} {
		os.WriteFile(filepath.Join(dir, filepath.FromSlash(name)), []byte("partial"), 0o644)
	}
	if err := CheckOwned(dir); err != nil {
		t.Errorf("leftovers are not foreign: %v", err)
	}
	res, err := Publish(context.Background(), dir, []Item{{"package/1", p1}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Stats.Removed) != 3 {
		t.Errorf("removed %v", res.Stats.Removed)
	}
	checkTruth(t, dir)
}
