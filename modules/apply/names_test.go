package apply

import (
	"os"
	"path/filepath"
	"testing"
)

// TestEntryName covers entryName and lexistsExact where the file system
// tells names apart by case (Linux here): a name resolves to itself, and
// another case of it to nothing. The case-insensitive side is proven
// under Wine (cmd/release TestWineCaseOnlyRenameCRLF); this kernel has no
// casefolded directory to test it natively.
func TestEntryName(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "Foo.psm1")
	if err := os.WriteFile(p, []byte("x\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if name, ok := entryName(p); !ok || name != "Foo.psm1" {
		t.Fatalf("entryName(%s) = %q, %v", p, name, ok)
	}
	if !lexistsExact(p) {
		t.Fatalf("lexistsExact(%s) = false", p)
	}
	other := filepath.Join(dir, "foo.psm1")
	if _, ok := entryName(other); ok {
		t.Fatalf("entryName(%s) found an entry on a case-sensitive file system", other)
	}
	if lexistsExact(other) {
		t.Fatalf("lexistsExact(%s) = true", other)
	}
	if _, ok := entryName(filepath.Join(dir, "missing", "x")); ok {
		t.Fatal("entryName of a path in a missing directory")
	}
}
