package digest

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/relcue/release/pipeline/fingerprint"
)

var old = time.Date(2021, 3, 4, 5, 6, 7, 8, time.UTC)

// tree writes files with an old mtime and returns its root.
func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, c := range files {
		write(t, filepath.Join(root, p), c)
	}
	return root
}

func write(t *testing.T, p, c string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}
}

// settledIndex is an index whose clock runs a second ahead, so every
// record it makes is settled (the racy-clean test moves it back).
func settledIndex(t *testing.T) *Index {
	x := OpenIndex(t.TempDir())
	x.now = func() time.Time { return time.Now().Add(time.Second) }
	return x
}

// treeRun hashes root with x and says how many files it had to read.
func treeRun(t *testing.T, x *Index, root string) (string, int64) {
	t.Helper()
	before := x.Stats().Hashed
	sum, _, err := x.Tree(context.Background(), root, 4)
	if err != nil {
		t.Fatal(err)
	}
	return sum, x.Stats().Hashed - before
}

func TestIndexReusesUnchangedFiles(t *testing.T) {
	root := tree(t, map[string]string{"a": "alpha", "d/b": "beta", "d/e/c": "gamma"})
	plain, _, err := Tree(context.Background(), root, 2)
	if err != nil {
		t.Fatal(err)
	}
	x := settledIndex(t)
	sum, n := treeRun(t, x, root)
	if sum != plain || n != 3 {
		t.Fatalf("first run: %s (%d hashed), want %s (3)", sum, n, plain)
	}
	sum, n = treeRun(t, x, root)
	if sum != plain || n != 0 {
		t.Fatalf("second run: %s (%d hashed), want %s (0)", sum, n, plain)
	}
	// A fresh Index on the same directory: records outlive the process.
	y := OpenIndex(x.dir)
	y.now = x.now
	if sum, n = treeRun(t, y, root); sum != plain || n != 0 {
		t.Fatalf("new index: %s (%d hashed)", sum, n)
	}
}

func TestIndexInvalidation(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, root string)
		hashed int64
	}{
		{"same size, mtime restored (touch -r)", func(t *testing.T, root string) {
			waitSettled(t, filepath.Join(root, "d/b"))
			write(t, filepath.Join(root, "d/b"), "BETA")
		}, 1},
		{"replaced by a new inode with the same bytes and times", func(t *testing.T, root string) {
			write(t, filepath.Join(root, "tmp"), "beta")
			if err := os.Rename(filepath.Join(root, "tmp"), filepath.Join(root, "d/b")); err != nil {
				t.Fatal(err)
			}
		}, 1},
		{"chmod +x", func(t *testing.T, root string) {
			waitSettled(t, filepath.Join(root, "a"))
			os.Chmod(filepath.Join(root, "a"), 0o755)
		}, 1},
		{"file added", func(t *testing.T, root string) { write(t, filepath.Join(root, "new"), "n") }, 1},
		{"file removed", func(t *testing.T, root string) { os.Remove(filepath.Join(root, "a")) }, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := tree(t, map[string]string{"a": "alpha", "d/b": "beta"})
			x := settledIndex(t)
			before, _ := treeRun(t, x, root)
			tc.change(t, root)
			after, n := treeRun(t, x, root)
			plain, _, err := Tree(context.Background(), root, 1)
			if err != nil {
				t.Fatal(err)
			}
			if after != plain {
				t.Fatalf("index digest %s, plain digest %s", after, plain)
			}
			if n != tc.hashed {
				t.Fatalf("hashed %d files, want %d", n, tc.hashed)
			}
			if tc.name != "replaced by a new inode with the same bytes and times" && after == before {
				t.Fatal("digest did not change")
			}
			if _, n := treeRun(t, x, root); n != 0 {
				t.Fatalf("third run hashed %d files", n)
			}
		})
	}
}

// waitSettled waits until a change to p gets a change time other than its
// current one on any clock.
func waitSettled(t *testing.T, p string) {
	t.Helper()
	fp, err := fingerprint.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	for !fp.Settled(time.Now()) {
		time.Sleep(5 * time.Millisecond)
	}
}

// A record made within the timestamp granule of the file's last change
// cannot tell that version from one written right after it, so it is not
// trusted: the file is hashed again, and the new record (made once the
// file settled) is.
func TestIndexRacyClean(t *testing.T) {
	root := t.TempDir()
	p := filepath.Join(root, "f")
	if err := os.WriteFile(p, []byte("racy"), 0o644); err != nil {
		t.Fatal(err)
	}
	fp, err := fingerprint.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	x := OpenIndex(t.TempDir())
	x.now = func() time.Time { return time.Unix(0, fp.Ctime+int64(time.Millisecond)) }
	if _, n := treeRun(t, x, root); n != 1 {
		t.Fatalf("first run hashed %d", n)
	}
	if _, n := treeRun(t, x, root); n != 1 {
		t.Fatal("a racy record was trusted")
	}
	x.now = func() time.Time { return time.Unix(0, fp.Ctime+int64(time.Second)) }
	treeRun(t, x, root)
	if _, n := treeRun(t, x, root); n != 0 {
		t.Fatalf("a settled record was not trusted (%d hashed)", n)
	}

	// The same holds for single files.
	x.now = func() time.Time { return time.Unix(0, fp.Ctime) }
	before := x.Stats().Hashed
	for range 2 {
		if _, _, err := x.File(p); err != nil {
			t.Fatal(err)
		}
	}
	if got := x.Stats().Hashed - before; got != 2 {
		t.Fatalf("racy single file hashed %d times, want 2", got)
	}
}

func TestIndexFile(t *testing.T) {
	root := tree(t, map[string]string{"f": "content"})
	p := filepath.Join(root, "f")
	want, _, _ := File(p)
	x := settledIndex(t)
	for i := range 3 {
		sum, n, err := x.File(p)
		if err != nil || sum != want || n != 7 {
			t.Fatalf("run %d: %s %d %v", i, sum, n, err)
		}
	}
	if h := x.Stats().Hashed; h != 1 {
		t.Fatalf("hashed %d times", h)
	}
	waitSettled(t, p)
	write(t, p, "CONTENT")
	if sum, _, _ := x.File(p); sum == want {
		t.Fatal("changed file served from the index")
	}
}

func TestIndexDamagedRecords(t *testing.T) {
	root := tree(t, map[string]string{"a": "alpha"})
	x := settledIndex(t)
	plain, _ := treeRun(t, x, root)
	abs, _ := filepath.Abs(root)
	rec := x.path(abs)
	for _, junk := range []string{"", "{", `{"root":"/elsewhere","files":{}}`, `{"root":` + `"x"}`} {
		os.WriteFile(rec, []byte(junk), 0o644)
		if sum, n := treeRun(t, x, root); sum != plain || n != 1 {
			t.Fatalf("record %q: %s, %d hashed", junk, sum, n)
		}
	}
}
