package cache

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/relcue/release/pipeline/fingerprint"
)

// reopen is the store as another process sees it: nothing verified yet.
func reopen(t *testing.T, s *Store) *Store {
	t.Helper()
	s2, err := Open(filepath.Dir(s.Root()))
	if err != nil {
		t.Fatal(err)
	}
	return s2
}

func built(t *testing.T, files map[string]string) (*Store, string) {
	t.Helper()
	s, _ := Open(t.TempDir())
	e, _, err := s.Build(context.Background(), key('f'), Info{Target: "t"}, 2, write(files))
	if err != nil {
		t.Fatal(err)
	}
	dir := e.Dir
	e.Release()
	return s, dir
}

// get reads the entry in a fresh store and says how many files it hashed.
func get(t *testing.T, s *Store) (*Entry, int64, error) {
	t.Helper()
	s2 := reopen(t, s)
	e, err := s2.Get(context.Background(), key('f'), 2)
	if e != nil {
		t.Cleanup(e.Release)
	}
	return e, s2.Stats().Rehashed, err
}

func settle(t *testing.T, p string) {
	t.Helper()
	fp, err := fingerprint.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	for !fp.Settled(time.Now()) {
		time.Sleep(5 * time.Millisecond)
	}
}

func TestEntryTrustedByFingerprint(t *testing.T) {
	s, _ := built(t, map[string]string{"a.zip": "alpha", "d/b.tar": "beta"})
	for range 3 {
		e, n, err := get(t, s)
		if err != nil || n != 0 {
			t.Fatalf("get: %v, %d files hashed (want 0)", err, n)
		}
		if _, ok := e.Fingerprint("d/b.tar"); !ok {
			t.Fatal("no fingerprint for a trusted file")
		}
	}
}

func TestEntryAlteredInPlaceIsNeverServed(t *testing.T) {
	s, dir := built(t, map[string]string{"a.zip": "alpha"})
	p := filepath.Join(dir, "a.zip")
	info, _ := os.Stat(p)
	settle(t, p)
	// Same size, mtime restored: only the change time tells.
	if err := os.WriteFile(p, []byte("ALPHA"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, info.ModTime(), info.ModTime()); err != nil {
		t.Fatal(err)
	}
	_, n, err := get(t, s)
	var ce *CorruptError
	if !errors.As(err, &ce) || n != 1 {
		t.Fatalf("tampered entry: %v (%d hashed)", err, n)
	}
}

func TestEntryTouchedIsVerifiedThenTrusted(t *testing.T) {
	s, dir := built(t, map[string]string{"a.zip": "alpha", "b.zip": "beta"})
	later := time.Now().Add(time.Hour)
	os.Chtimes(filepath.Join(dir, "a.zip"), later, later)
	if _, n, err := get(t, s); err != nil || n != 2 {
		t.Fatalf("touched entry: %v (%d hashed, want 2)", err, n)
	}
	if _, n, err := get(t, s); err != nil || n != 0 {
		t.Fatalf("after re-verifying: %v (%d hashed, want 0)", err, n)
	}
	// No record at all (an entry from an older release): hashed once.
	os.Remove(filepath.Join(filepath.Dir(dir), fpName))
	if _, n, _ := get(t, s); n != 2 {
		t.Fatalf("no record: %d hashed", n)
	}
	if _, n, _ := get(t, s); n != 0 {
		t.Fatalf("record not rewritten: %d hashed", n)
	}
	// A damaged record is doubt, not trust.
	os.WriteFile(filepath.Join(filepath.Dir(dir), fpName), []byte(`{"a.zip":{}}`), 0o644)
	if _, n, _ := get(t, s); n != 2 {
		t.Fatalf("damaged record: %d hashed", n)
	}
}

func TestVerifyRehashesAndEvicts(t *testing.T) {
	s, dir := built(t, map[string]string{"a.zip": "alpha"})
	s2 := reopen(t, s)
	if err := s2.Verify(context.Background(), key('f'), 1); err != nil {
		t.Fatal(err)
	}
	if n := s2.Stats().Rehashed; n != 1 {
		t.Fatalf("verify hashed %d files", n)
	}
	keys, err := s2.Keys()
	if err != nil || len(keys) != 1 || keys[0] != key('f') {
		t.Fatalf("keys %v %v", keys, err)
	}
	os.WriteFile(filepath.Join(dir, "a.zip"), []byte("evil!"), 0o644)
	var ce *CorruptError
	if err := s2.Verify(context.Background(), key('f'), 1); !errors.As(err, &ce) {
		t.Fatalf("verify of a corrupt entry: %v", err)
	}
	if s2.Has(key('f')) {
		t.Fatal("corrupt entry kept")
	}
	if err := s2.Verify(context.Background(), key('f'), 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("verify of a missing entry: %v", err)
	}
}
