package fingerprint

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestFingerprintChanges(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := os.WriteFile(p, []byte("one"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Date(2020, 1, 2, 3, 4, 5, 6, time.UTC)
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}
	a, err := Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := Stat(p); b != a {
		t.Fatalf("unstable fingerprint: %+v then %+v", a, b)
	}
	if a.Mtime != old.UnixNano() || a.Size != 3 || a.Ino == 0 {
		t.Fatalf("fingerprint %+v", a)
	}

	// Same size, mtime restored (touch -r): the change time still moves.
	waitTick(t, a)
	if err := os.WriteFile(p, []byte("two"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}
	b, _ := Stat(p)
	if b.Mtime != a.Mtime || b.Size != a.Size {
		t.Fatalf("setup: %+v vs %+v", a, b)
	}
	if b == a {
		t.Fatal("content change with restored mtime kept the fingerprint")
	}

	// Replaced by another file with the same bytes and times: new inode.
	q := filepath.Join(dir, "g")
	os.WriteFile(q, []byte("two"), 0o644)
	os.Chtimes(q, old, old)
	if err := os.Rename(q, p); err != nil {
		t.Fatal(err)
	}
	c, _ := Stat(p)
	if c.Ino == b.Ino {
		t.Fatalf("replaced file kept inode %d", c.Ino)
	}
}

// waitTick waits until the clock has left fp's change time behind, so the
// next change gets a different stamp on coarse clocks too.
func waitTick(t *testing.T, fp FP) {
	t.Helper()
	for time.Now().UnixNano()-fp.Ctime < int64(fp.granule()) {
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSettled(t *testing.T) {
	fine := FP{Mtime: 1_000_000_123, Ctime: 2_000_000_456}
	if fine.Settled(time.Unix(0, fine.Ctime+int64(FineGranule)-1)) {
		t.Fatal("a record made within the granule is trusted")
	}
	if !fine.Settled(time.Unix(0, fine.Ctime+int64(FineGranule))) {
		t.Fatal("a record made a granule later is not trusted")
	}
	coarse := FP{Mtime: 5e9, Ctime: 6e9} // whole seconds: a coarse file system
	if coarse.Settled(time.Unix(7, 0)) || !coarse.Settled(time.Unix(8, 0)) {
		t.Fatal("coarse stamps need two seconds")
	}
}

func TestNotRegular(t *testing.T) {
	dir := t.TempDir()
	if _, err := Stat(dir); err == nil {
		t.Fatal("a directory has a fingerprint")
	}
	if err := os.Symlink("x", filepath.Join(dir, "l")); err == nil {
		if _, err := Stat(filepath.Join(dir, "l")); err == nil {
			t.Fatal("a symlink has a fingerprint")
		}
	}
}
