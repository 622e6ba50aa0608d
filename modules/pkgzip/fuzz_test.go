package pkgzip

import (
	"archive/zip"
	"cmp"
	"context"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/relcue/release/modules/pkgzip/ziptest"
)

// FuzzOpen feeds arbitrary bytes to Open: it must never panic, and whatever
// it accepts must satisfy the Reader's promises: among them, no two entries
// read from the same bytes, and whatever reads without error matches its
// recorded CRC-32 (0 included).
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
	for _, data := range hostileSeeds() {
		f.Add(data)
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
		checkDisjoint(t, r)
		digests, err := r.HashAll(context.Background(), 2, nil)
		if err != nil {
			return
		}
		for _, e := range r.Entries {
			if digests[e.Name].Size != e.Size {
				t.Fatalf("%s: hashed %d bytes, entry says %d", e.Name, digests[e.Name].Size, e.Size)
			}
			if sum := crcOf(t, e); sum != e.File.CRC32 {
				t.Fatalf("%s: read without error, CRC-32 %08x, recorded %08x", e.Name, sum, e.File.CRC32)
			}
		}
	})
}

// checkDisjoint fails if two accepted entries' data overlap, as
// archive/zip locates it (independently of package layout).
func checkDisjoint(t *testing.T, r *Reader) {
	type rng struct {
		start, end int64
		name       string
	}
	var rs []rng
	for _, e := range r.Entries {
		off, err := e.File.DataOffset()
		if err != nil {
			continue // unreadable: fails when read
		}
		rs = append(rs, rng{off, off + int64(e.File.CompressedSize64), e.Name})
	}
	slices.SortFunc(rs, func(a, b rng) int { return cmp.Compare(a.start, b.start) })
	for i := 1; i < len(rs); i++ {
		if rs[i].start < rs[i-1].end && rs[i].end > rs[i].start {
			t.Fatalf("accepted overlapping entries %q and %q", rs[i-1].name, rs[i].name)
		}
	}
}

func crcOf(t *testing.T, e *Entry) uint32 {
	rc, err := e.Open()
	if err != nil {
		t.Fatalf("%s: opened once, not twice: %v", e.Name, err)
	}
	defer rc.Close()
	h := crc32.NewIEEE()
	if _, err := io.Copy(h, rc); err != nil {
		t.Fatalf("%s: read once, not twice: %v", e.Name, err)
	}
	return h.Sum32()
}

// hostileSeeds are the layouts of review D6-D8 and the well-formed ones
// next to them (data descriptors, zip64, a stub before the zip), so that
// the fuzzer starts at the borders the layout checks draw.
func hostileSeeds() [][]byte {
	version := ziptest.Entry{Name: "VERSION", Data: []byte("1.0.0")}
	text := []byte(strings.Repeat("0123456789", 10))
	one := func(e ziptest.Entry) []byte {
		e.Name, e.Data = "bin/c.txt", text
		return ziptest.Build(version, e)
	}
	zeroCRC := func(h *ziptest.Header) { h.CRC32 = 0 }
	return [][]byte{
		one(ziptest.Entry{Deflate: true, Local: func(h *ziptest.Header) { h.Name = "../../zzz" }}),
		one(ziptest.Entry{Deflate: true, Local: func(h *ziptest.Header) { h.UncompressedSize++ }}),
		one(ziptest.Entry{Deflate: true, Local: zeroCRC, Central: zeroCRC}),
		one(ziptest.Entry{Deflate: true, Flags: ziptest.FlagDescriptor}),
		one(ziptest.Entry{Flags: ziptest.FlagDescriptor, NoDescriptorSignature: true}),
		one(ziptest.Entry{Deflate: true, Zip64: true}),
		one(ziptest.Entry{Deflate: true, Zip64: true, Flags: ziptest.FlagDescriptor}),
		ziptest.Build(version, ziptest.Entry{Name: "a", Data: text, Deflate: true}, ziptest.Entry{Name: "b", Data: text, Deflate: true, SameAs: 2}),
		ziptest.Build(version, ziptest.Entry{Name: "c", Data: text, IntoCentral: true}),
		ziptest.BuildWith(ziptest.Options{Prefix: []byte("stub\n")}, version, ziptest.Entry{Name: "d", Data: text}),
	}
}
