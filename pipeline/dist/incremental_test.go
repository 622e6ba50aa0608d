package dist

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relcue/release/pipeline/cache"
	"github.com/relcue/release/pipeline/fingerprint"
)

type fixture struct {
	store *cache.Store
	items []Item
	dir   string
	state string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	s, _ := cache.Open(t.TempDir())
	a := entry(t, s, 'a', map[string]string{"packages/p-1.zip": strings.Repeat("one", 1000)})
	b := entry(t, s, 'b', map[string]string{"deltas/d.zip": "delta", "nodes/n.zip": "node"})
	dir := filepath.Join(t.TempDir(), "dist")
	state, err := StatePath(filepath.Join(t.TempDir(), "state"), dir)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{store: s, items: []Item{{"package/1", a}, {"delta/x", b}}, dir: dir, state: state}
}

func (f *fixture) publish(t *testing.T) Stats {
	t.Helper()
	res, err := Publish(context.Background(), f.dir, f.items, Options{State: f.state, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	return res.Stats
}

// snapshot is every dist file's fingerprint: equal snapshots mean nothing
// was written, renamed or replaced.
func snapshot(t *testing.T, dir string) map[string]fingerprint.FP {
	t.Helper()
	out := map[string]fingerprint.FP{}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fp, err := fingerprint.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(dir, p)
		out[rel] = fp
		return nil
	})
	return out
}

func same(a, b map[string]fingerprint.FP) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestRepublishWritesNothing(t *testing.T) {
	f := newFixture(t)
	st := f.publish(t)
	if st.Written != 3 || st.Kept != 0 {
		t.Fatalf("first publish: %+v", st)
	}
	before := snapshot(t, f.dir)
	st = f.publish(t)
	if st.Written != 0 || st.Kept != 3 || st.Hashed != 0 {
		t.Fatalf("second publish: %+v", st)
	}
	if !same(before, snapshot(t, f.dir)) {
		t.Fatal("a no-op publish touched dist/")
	}
}

func TestRepublishVerifiesOnDoubt(t *testing.T) {
	f := newFixture(t)
	f.publish(t)
	p := filepath.Join(f.dir, "packages/p-1.zip")

	// Touched: the content is right, so it is hashed and kept, not copied.
	later := time.Now().Add(time.Hour)
	os.Chtimes(p, later, later)
	settleFile(t, p) // else the new record is racy, and hashed again next time
	st := f.publish(t)
	if st.Written != 0 || st.Hashed != 1 {
		t.Fatalf("touched: %+v", st)
	}
	if st := f.publish(t); st.Hashed != 0 {
		t.Fatalf("touched file not re-recorded: %+v", st)
	}

	// Altered in place with its mtime restored: replaced.
	info, _ := os.Stat(p)
	settleFile(t, p)
	os.WriteFile(p, []byte(strings.Repeat("ONE", 1000)), 0o644)
	os.Chtimes(p, info.ModTime(), info.ModTime())
	if st := f.publish(t); st.Written != 1 {
		t.Fatalf("altered: %+v", st)
	}
	if got, _ := os.ReadFile(p); string(got) != strings.Repeat("one", 1000) {
		t.Fatal("altered dist file not replaced")
	}

	// Deleted, or without a state record (another cache): identical
	// files are hashed and kept, missing ones written.
	os.Remove(filepath.Join(f.dir, "nodes/n.zip"))
	res, err := Publish(context.Background(), f.dir, f.items, Options{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stats.Written != 1 || res.Stats.Hashed != 2 || res.Stats.Kept != 2 {
		t.Fatalf("no state: %+v", res.Stats)
	}
}

func settleFile(t *testing.T, p string) {
	t.Helper()
	fp, _ := fingerprint.Stat(p)
	for !fp.Settled(time.Now()) {
		time.Sleep(5 * time.Millisecond)
	}
}

func TestDistNeverAliasesTheCache(t *testing.T) {
	for _, m := range []string{"", MethodCopyFileRange, MethodCopy} {
		t.Run("method="+m, func(t *testing.T) {
			forceMethod = m
			defer func() { forceMethod = "" }()
			f := newFixture(t)
			st := f.publish(t)
			if m != "" && st.Methods[m] != 3 {
				t.Fatalf("methods %v, want 3 × %s", st.Methods, m)
			}
			for _, it := range f.items {
				for _, file := range it.Entry.Meta.Files {
					src := filepath.Join(it.Entry.Dir, file.Path)
					dst := filepath.Join(f.dir, file.Path)
					a, _ := fingerprint.Stat(src)
					b, _ := fingerprint.Stat(dst)
					if a.Ino == b.Ino && a.Dev == b.Dev {
						t.Fatalf("%s is the cache's file", file.Path)
					}
					want, _ := os.ReadFile(src)
					if got, _ := os.ReadFile(dst); string(got) != string(want) {
						t.Fatalf("%s: wrong content", file.Path)
					}
					// A user's edit in dist/ leaves the cache intact.
					os.WriteFile(dst, []byte("edited"), 0o644)
				}
			}
			for _, it := range f.items {
				if err := f.store.Verify(context.Background(), it.Entry.Key, 1); err != nil {
					t.Fatalf("cache entry after dist edits: %v", err)
				}
			}
		})
	}
}

func TestFailedPublishLeavesDistAsItWas(t *testing.T) {
	f := newFixture(t)
	f.publish(t)
	before := snapshot(t, f.dir)
	// One artifact's dist copy is missing and its cache copy is damaged:
	// nothing may change, not even the artifacts that could be placed.
	os.Remove(filepath.Join(f.dir, "nodes/n.zip"))
	os.Remove(filepath.Join(f.dir, "deltas/d.zip"))
	delete(before, "nodes/n.zip")
	delete(before, "deltas/d.zip")
	os.WriteFile(filepath.Join(f.items[1].Entry.Dir, "nodes/n.zip"), []byte("evil"), 0o644)
	_, err := Publish(context.Background(), f.dir, f.items, Options{State: f.state, Workers: 1})
	if err == nil || !strings.Contains(err.Error(), "cached copy changed") {
		t.Fatalf("publish from a damaged entry: %v", err)
	}
	if !same(before, snapshot(t, f.dir)) {
		t.Fatalf("failed publish changed dist/: %v", snapshot(t, f.dir))
	}
}

func TestPublishCancelled(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Publish(ctx, f.dir, f.items, Options{State: f.state}); err == nil {
		t.Fatal("cancelled publish succeeded")
	}
	if ents, _ := os.ReadDir(f.dir); len(ents) != 0 {
		t.Fatalf("cancelled publish wrote %v", ents)
	}
}
