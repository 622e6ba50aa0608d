package pkgzip

import (
	"archive/zip"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzOpen feeds arbitrary bytes to Open: it must never panic, and whatever
// it accepts must satisfy the Reader's promises.
func FuzzOpen(f *testing.F) {
	seeds := [][]zent{
		{{name: "VERSION", data: "1.0", mode: 0o644}},
		{{name: `bin\`, mode: fs.ModeDir | 0o755}, {name: `bin\a.exe`, data: strings.Repeat("ab", 300), mode: 0o755, method: zip.Deflate}},
		{{name: "../x", data: "x", mode: 0o644}},
		{{name: "A", data: "1", mode: 0o644}, {name: "a", data: "2", mode: 0o644}},
		{{name: "s", data: "stored", mode: 0o644, method: zip.Store}},
	}
	for _, ents := range seeds {
		data, err := os.ReadFile(buildZip(f, ents...))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
		f.Add(data[:len(data)-1])
		f.Add(data[:len(data)/2])
	}
	f.Add([]byte{})
	f.Add([]byte("PK\x05\x06" + strings.Repeat("\x00", 18)))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "f.zip")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := Open(p)
		if err != nil {
			return
		}
		defer r.Close()
		var names NameSet
		for i, e := range r.Entries {
			if err := CheckName(e.Name); err != nil {
				t.Fatalf("accepted unsafe name: %v", err)
			}
			if err := names.Add(e.Name, ""); err != nil {
				t.Fatalf("accepted colliding names: %v", err)
			}
			if i > 0 && r.Entries[i-1].Name >= e.Name {
				t.Fatalf("entries not sorted: %q before %q", r.Entries[i-1].Name, e.Name)
			}
			if e.Mode != ModeFile && e.Mode != ModeExec {
				t.Fatalf("%s: mode %v", e.Name, e.Mode)
			}
			if r.Lookup(e.Name) != e {
				t.Fatalf("Lookup(%q) failed", e.Name)
			}
		}
		digests, err := r.HashAll(context.Background(), 2, nil)
		if err != nil {
			return
		}
		for _, e := range r.Entries {
			if digests[e.Name].Size != e.Size {
				t.Fatalf("%s: hashed %d bytes, entry says %d", e.Name, digests[e.Name].Size, e.Size)
			}
		}
	})
}
