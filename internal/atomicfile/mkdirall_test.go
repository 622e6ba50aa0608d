package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

func TestWriteFuncMkdirAllCreatesParents(t *testing.T) {
	root := t.TempDir()
	path := filepath.Join(root, "a", "b", "out.zip")
	err := WriteFuncMkdirAll(path, 0o644, true, func(f *os.File) error {
		_, err := f.WriteString("content")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != "content" {
		t.Fatalf("read %s: %q, %v; want %q", path, got, err, "content")
	}
	if runtime.GOOS != "windows" {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o644 {
			t.Errorf("mode %v, want 0644", st.Mode().Perm())
		}
	}
	assertEntries(t, filepath.Dir(path), "out.zip")
}

func TestWriteFuncMkdirAllFailureLeavesNothing(t *testing.T) {
	root := t.TempDir()
	boom := errors.New("boom")
	path := filepath.Join(root, "a", "b", "out.zip")
	err := WriteFuncMkdirAll(path, 0o644, false, func(f *os.File) error {
		if _, err := f.WriteString("half"); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("error %v, want %v", err, boom)
	}
	// The directories it created are gone, the one that was there stays.
	assertEntries(t, root)
}

func TestWriteFuncMkdirAllFailureKeepsOldFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.zip")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := WriteFuncMkdirAll(path, 0o644, false, func(f *os.File) error {
		f.WriteString("new, but not finished")
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("error %v, want %v", err, boom)
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != "old" {
		t.Fatalf("read %s: %q, %v; want the old content", path, got, err)
	}
	assertEntries(t, dir, "out.zip")
}

// assertEntries fails unless dir holds exactly the names given (no
// temporary files either).
func assertEntries(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if len(got) != len(names) {
		t.Fatalf("%s holds %q, want %q", dir, got, names)
	}
	for i := range got {
		if got[i] != names[i] {
			t.Fatalf("%s holds %q, want %q", dir, got, names)
		}
	}
}
