package pkgzip

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relcue/release/modules/pkgzip/ziptest"
)

// goZip writes entries with archive/zip's own writer: Create streams each
// entry and ends it with a data descriptor (bit 3, zeros in the local
// header), as .NET and Info-ZIP do when writing to a pipe.
func goZip(t testing.TB, method uint16, files ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for i := 0; i < len(files); i += 2 {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: files[i], Method: method})
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, files[i+1])
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// openErr opens data as a zip and returns Open's error and the zip's path.
func openErr(t *testing.T, data []byte) (string, error) {
	t.Helper()
	p := saveZip(t, data)
	r, err := Open(p)
	if err == nil {
		r.Close()
	}
	return p, err
}

func wantRefused(t *testing.T, p string, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("Open accepted the zip")
	}
	for _, w := range append([]string{p + ": ", "re-create it with a standard zip tool"}, want...) {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("error does not say %q:\n%v", w, err)
		}
	}
}

// TestOpenRefusesLocalNameMismatch is review D6: the local header of
// bin/zzzzz says ../../zzz, which tools that read local headers (BusyBox
// unzip) extract instead.
func TestOpenRefusesLocalNameMismatch(t *testing.T) {
	data := goZip(t, zip.Deflate, "VERSION", "1.0.0", "bin/zzzzz", "payload\n")
	// The first occurrence is the local header, as in the reproduction.
	data = bytes.Replace(data, []byte("bin/zzzzz"), []byte("../../zzz"), 1)
	p, err := openErr(t, data)
	wantRefused(t, p, err, `entry "bin/zzzzz": its local header names it "../../zzz"`)
}

// TestOpenRefusesLocalHeaderMismatch covers the other fields a local
// header repeats: each disagreement is refused, naming the entry.
func TestOpenRefusesLocalHeaderMismatch(t *testing.T) {
	payload := []byte(strings.Repeat("0123456789", 10))
	cases := []struct {
		name  string
		entry ziptest.Entry
		want  string
	}{
		{"method", ziptest.Entry{Deflate: true, Local: func(h *ziptest.Header) { h.Method = 0 }}, "compression method 0, the central directory 8"},
		{"crc", ziptest.Entry{Local: func(h *ziptest.Header) { h.CRC32 ^= 1 }}, "CRC-32"},
		{"compressed size", ziptest.Entry{Deflate: true, Local: func(h *ziptest.Header) { h.CompressedSize-- }}, "compressed size"},
		{"size", ziptest.Entry{Deflate: true, Local: func(h *ziptest.Header) { h.UncompressedSize = 7 }}, "has size 7, the central directory 100"},
		{"encrypted only locally", ziptest.Entry{Local: func(h *ziptest.Header) { h.Flags |= 0x1 }}, "flags 0x0001, the central directory 0x0000"},
		{"descriptor only locally", ziptest.Entry{Local: func(h *ziptest.Header) { h.Flags |= 0x8 }}, "flags 0x0008"},
		{"utf-8 only centrally", ziptest.Entry{Name: "docs/ü.txt", Flags: 0x800, Local: func(h *ziptest.Header) { h.Flags = 0 }}, "flags 0x0000, the central directory 0x0800"},
		// Zeros stand for the values only with a data descriptor.
		{"zeros without descriptor", ziptest.Entry{Local: func(h *ziptest.Header) { h.CRC32, h.CompressedSize, h.UncompressedSize = 0, 0, 0 }}, "CRC-32 00000000"},
		{"zip64 size", ziptest.Entry{Zip64: true, Local: func(h *ziptest.Header) { h.Extra = ziptest.Zip64Extra(1000, 100) }}, "has size 1000, the central directory 100"},
		{"zip64 compressed size", ziptest.Entry{Zip64: true, Deflate: true, Local: func(h *ziptest.Header) {
			h.Extra = ziptest.Zip64Extra(100, binary.LittleEndian.Uint64(h.Extra[12:])+1)
		}}, "compressed size"},
		{"descriptor with a wrong size", ziptest.Entry{Flags: ziptest.FlagDescriptor, Local: func(h *ziptest.Header) { h.UncompressedSize = 99 }}, "has size 99"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := c.entry
			if e.Name == "" {
				e.Name = "bin/c.txt"
			}
			e.Data = payload
			p, err := openErr(t, ziptest.Build(ziptest.Entry{Name: "VERSION", Data: []byte("1.0.0")}, e))
			wantRefused(t, p, err, "entry "+quote(e.Name)+": ", c.want)
		})
	}
}

func quote(s string) string { return `"` + s + `"` }

// TestOpenRefusesMismatchAmongMany: headers read a window at a time are
// checked one by one all the same.
func TestOpenRefusesMismatchAmongMany(t *testing.T) {
	ents := []ziptest.Entry{{Name: "VERSION", Data: []byte("1.0.0")}}
	for i := range 500 {
		e := ziptest.Entry{Name: fmt.Sprintf("bin/f%03d.txt", i), Data: []byte(strings.Repeat("x", i))}
		if i == 300 {
			e.Local = func(h *ziptest.Header) { h.Name = "bin/f999.txt" }
		}
		ents = append(ents, e)
	}
	p, err := openErr(t, ziptest.Build(ents...))
	wantRefused(t, p, err, `entry "bin/f300.txt": its local header names it "bin/f999.txt"`)
}

// TestOpenRefusesOverlappingEntries is review D7: records that share
// bytes, the zip-bomb layout Info-ZIP refuses as "overlapped components".
func TestOpenRefusesOverlappingEntries(t *testing.T) {
	zeros := make([]byte, 1<<20)
	version := ziptest.Entry{Name: "VERSION", Data: []byte("1.0.0")}
	// As in the reproduction: 40 names, one stream.
	bomb := []ziptest.Entry{version, {Name: "bin/o00.bin", Data: zeros, Deflate: true}}
	for i := 1; i < 40; i++ {
		bomb = append(bomb, ziptest.Entry{Name: "bin/o" + string(rune('0'+i/10)) + string(rune('0'+i%10)) + ".bin", Data: zeros, Deflate: true, SameAs: 2})
	}
	// Inside another entry's data: a stored entry holds a whole local
	// header and data, and a second record points there (the layout of
	// the overlapping bombs that quote headers).
	inner := ziptest.Build(ziptest.Entry{Name: "bin/b", Data: []byte("quoted")})
	innerLen := bytes.Index(inner, []byte("PK\x01\x02"))
	nested := []ziptest.Entry{
		version,
		{Name: "bin/a", Data: inner[:innerLen]},
		{Name: "bin/b", Data: []byte("quoted"), SameAs: 2, Central: func(h *ziptest.Header) { h.Offset += 30 + uint32(len("bin/a")) }},
	}
	cases := []struct {
		name string
		ents []ziptest.Entry
		want string
	}{
		{"same data", bomb, `entries "bin/o00.bin" and "bin/o01.bin" overlap`},
		{"inside another entry", nested, `entries "bin/a" and "bin/b" overlap`},
		{"record into the central directory", []ziptest.Entry{version, {Name: "bin/c", Data: []byte("c"), IntoCentral: true}}, `entry "bin/c": its record points into the central directory`},
		{"data into the central directory", []ziptest.Entry{version, {Name: "bin/c", Data: []byte("c"), Central: func(h *ziptest.Header) { h.CompressedSize = 40 }}}, `entry "bin/c": its data runs into the central directory`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := openErr(t, ziptest.Build(c.ents...))
			wantRefused(t, p, err, c.want)
		})
	}
}

// TestZeroCRCIsChecked is review D8: archive/zip skips the check of a
// recorded CRC-32 of 0, so a non-empty entry whose CRC-32 fields were
// zeroed was read without one. Reading it now fails, naming the entry.
func TestZeroCRCIsChecked(t *testing.T) {
	data := goZip(t, zip.Deflate, "VERSION", "1.0.0", "bin/c.txt", strings.Repeat("0123456789", 10))
	// Zero the CRC-32 in the local header and the central record, as the
	// reproduction does (archive/zip wrote a data descriptor; clear it
	// too, since a descriptor's CRC-32 is checked even when it is 0).
	data = zeroCRC(t, data, "bin/c.txt")
	p := saveZip(t, data)
	r := mustOpen(t, p)
	_, err := r.HashAll(context.Background(), 2, nil)
	if err == nil || !errors.Is(err, zip.ErrChecksum) {
		t.Fatalf("HashAll: %v, want a checksum error", err)
	}
	for _, w := range []string{p + ": ", `entry "bin/c.txt"`, "recorded CRC-32 is 00000000", "obtain a fresh copy"} {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("error does not say %q:\n%v", w, err)
		}
	}
	// The same through Open, read by hand.
	rc, err := r.Lookup("bin/c.txt").Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if _, err := io.ReadAll(rc); !errors.Is(err, zip.ErrChecksum) {
		t.Fatalf("ReadAll: %v, want a checksum error", err)
	}
}

// zeroCRC rewrites the zip archive/zip wrote so that name has no data
// descriptor and a CRC-32 of 0 in both headers (sizes written in).
func zeroCRC(t *testing.T, data []byte, name string) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	var ents []ziptest.Entry
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		if err != nil {
			t.Fatal(err)
		}
		e := ziptest.Entry{Name: f.Name, Data: b, Deflate: f.Method == zip.Deflate}
		if f.Name == name {
			zero := func(h *ziptest.Header) { h.CRC32 = 0 }
			e.Local, e.Central = zero, zero
		}
		ents = append(ents, e)
	}
	return ziptest.Build(ents...)
}

// crcZeroSuffix returns 4 bytes that make the CRC-32 of prefix+suffix 0,
// by solving for them: the CRC is affine in the suffix's bits.
func crcZeroSuffix(prefix []byte) []byte {
	sum := func(x uint32) uint32 {
		b := append(append([]byte{}, prefix...), byte(x), byte(x>>8), byte(x>>16), byte(x>>24))
		return crc32.ChecksumIEEE(b)
	}
	c0 := sum(0)
	// Columns: the effect of each suffix bit on the CRC.
	var cols [32]uint32
	for i := range cols {
		cols[i] = sum(1<<i) ^ c0
	}
	// Gaussian elimination over GF(2): find x with XOR of cols[i] for set
	// bits i equal to c0.
	var basis [32]uint32 // by leading bit: column combination value
	var combo [32]uint32 // which suffix bits make it
	for i, v := range cols {
		m := uint32(1) << i
		for b := 31; b >= 0 && v != 0; b-- {
			if v&(1<<b) == 0 {
				continue
			}
			if basis[b] == 0 {
				basis[b], combo[b] = v, m
				break
			}
			v ^= basis[b]
			m ^= combo[b]
		}
	}
	var x uint32
	v := c0
	for b := 31; b >= 0; b-- {
		if v&(1<<b) != 0 && basis[b] != 0 {
			v ^= basis[b]
			x ^= combo[b]
		}
	}
	return []byte{byte(x), byte(x >> 8), byte(x >> 16), byte(x >> 24)}
}

// TestOpenAcceptsWellFormedLayouts: zips as real writers make them must
// still open and read, with their data descriptors, zip64 fields, stubs
// before the zip and CRC-32s that are 0 for good reason.
func TestOpenAcceptsWellFormedLayouts(t *testing.T) {
	text := []byte(strings.Repeat("some text\n", 50))
	crcZero := append([]byte("data whose CRC-32 is 0: "), 0, 0, 0, 0)
	copy(crcZero[len(crcZero)-4:], crcZeroSuffix(crcZero[:len(crcZero)-4]))
	if crc32.ChecksumIEEE(crcZero) != 0 {
		t.Fatal("crcZeroSuffix did not make a CRC-32 of 0")
	}
	version := ziptest.Entry{Name: "VERSION", Data: []byte("1.0.0")}
	entry := func(e ziptest.Entry) []ziptest.Entry {
		e.Name, e.Data = "bin/t.txt", text
		return []ziptest.Entry{version, e}
	}
	// Our own writer's shape for entries of 4 GiB and more: bit 3, zeros
	// in the local header and no zip64 field there, zip64 sizes in the
	// central record.
	bigShape := func(h *ziptest.Header) { h.CompressedSize, h.UncompressedSize, h.Extra = 0, 0, nil }
	own, _ := writeZip(t, WriterOptions{Date: testDate, Level: 6, Workers: 2}, testPayloads(), nil)
	stub := []byte("#!/bin/sh\necho self-extracting stub\nexit 0\n")
	cases := map[string][]byte{
		"pkgzip writer":                 own,
		"archive/zip deflate, streamed": goZip(t, zip.Deflate, "VERSION", "1.0.0", "bin/t.txt", string(text), "empty", ""),
		"archive/zip store, streamed":   goZip(t, zip.Store, "VERSION", "1.0.0", "bin/t.txt", string(text), "empty", ""),
		"descriptor":                    ziptest.Build(entry(ziptest.Entry{Deflate: true, Flags: ziptest.FlagDescriptor})...),
		"descriptor without signature":  ziptest.Build(entry(ziptest.Entry{Deflate: true, Flags: ziptest.FlagDescriptor, NoDescriptorSignature: true})...),
		"descriptor, values in local": ziptest.Build(entry(ziptest.Entry{Flags: ziptest.FlagDescriptor, Local: func(h *ziptest.Header) {
			h.CRC32, h.CompressedSize, h.UncompressedSize = crc32.ChecksumIEEE(text), uint32(len(text)), uint32(len(text))
		}})...),
		"zip64":                         ziptest.Build(entry(ziptest.Entry{Deflate: true, Zip64: true})...),
		"zip64 descriptor":              ziptest.Build(entry(ziptest.Entry{Deflate: true, Zip64: true, Flags: ziptest.FlagDescriptor})...),
		"zip64 descriptor, local zeros": ziptest.Build(entry(ziptest.Entry{Deflate: true, Zip64: true, Flags: ziptest.FlagDescriptor, Local: bigShape})...),
		// Read past the window of neighbouring headers: a long extra
		// field before the zip64 one, in the last entry.
		"zip64 after a long extra": ziptest.Build(entry(ziptest.Entry{Zip64: true, Deflate: true, Local: func(h *ziptest.Header) {
			h.Extra = append(append([]byte{0xfe, 0xca, 200, 0}, make([]byte, 200)...), h.Extra...)
		}})...),
		// The format's local zip64 field holds both sizes, whichever is
		// saturated.
		"zip64, both sizes, compressed saturated": ziptest.Build(entry(ziptest.Entry{Zip64: true, Deflate: true, Local: func(h *ziptest.Header) { h.UncompressedSize = uint32(len(text)) }})...),
		"zip64, one local size": ziptest.Build(entry(ziptest.Entry{Zip64: true, Deflate: true, Local: func(h *ziptest.Header) {
			// Only the compressed size, the one saturated.
			csize := binary.LittleEndian.Uint64(h.Extra[12:])
			h.UncompressedSize, h.Extra = uint32(len(text)), ziptest.Zip64Extra(csize)
		}})...),
		// A writer's bug archive/zip shrugs off: the flag on a directory
		// that has no descriptor.
		"directory flagged with no descriptor": ziptest.Build(version, ziptest.Entry{Name: "bin/", Flags: ziptest.FlagDescriptor, NoDescriptor: true}, ziptest.Entry{Name: "bin/t.txt", Data: text}),
		"utf-8 name":                           ziptest.Build(version, ziptest.Entry{Name: "docs/ü.txt", Data: text, Flags: 0x800}),
		"utf-8 flag only centrally, ascii":     ziptest.Build(version, ziptest.Entry{Name: "docs/u.txt", Data: text, Flags: 0x800, Local: func(h *ziptest.Header) { h.Flags = 0 }}),
		"stub, relative offsets":               append(append([]byte{}, stub...), ziptest.Build(entry(ziptest.Entry{Deflate: true})...)...),
		"stub, absolute offsets":               ziptest.BuildWith(ziptest.Options{Prefix: stub, AbsoluteOffsets: true}, entry(ziptest.Entry{Deflate: true})...),
		"empty entries with CRC-32 0":          ziptest.Build(version, ziptest.Entry{Name: "empty"}, ziptest.Entry{Name: "empty-deflated", Deflate: true}),
		"data whose CRC-32 is 0":               ziptest.Build(version, ziptest.Entry{Name: "bin/zero", Data: crcZero}, ziptest.Entry{Name: "bin/zero-deflated", Data: crcZero, Deflate: true}),
	}
	for _, f := range []string{"infozip.zip", "infozip-stream.zip", "infozip-zip64.zip"} {
		data, err := os.ReadFile(filepath.Join("testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		cases["Info-ZIP "+f] = data
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			r := mustOpen(t, saveZip(t, data))
			digests, err := r.HashAll(context.Background(), 2, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(digests) < 2 {
				t.Fatalf("%d entries read", len(digests))
			}
			if e := r.Lookup("bin/t.txt"); e != nil && digests[e.Name].SHA256 != sha(string(text)) {
				t.Fatalf("bin/t.txt read as %+v", digests[e.Name])
			}
		})
	}
}

// TestOpenZipRefusesHostileNested: a nested archive goes through the same
// checks, stored (read in place) or compressed (read from a temporary
// file), and errors name it as outer!inner.
func TestOpenZipRefusesHostileNested(t *testing.T) {
	inner := ziptest.Build(
		ziptest.Entry{Name: "VERSION", Data: []byte("1.0.0")},
		ziptest.Entry{Name: "bin/zzzzz", Data: []byte("payload\n"), Local: func(h *ziptest.Header) { h.Name = "../../zzz" }},
	)
	for _, method := range []uint16{zip.Store, zip.Deflate} {
		var buf bytes.Buffer
		zw := zip.NewWriter(&buf)
		w, err := zw.CreateHeader(&zip.FileHeader{Name: "images/inner.zip", Method: method})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(inner)
		zw.Close()
		p := saveZip(t, buf.Bytes())
		r := mustOpen(t, p)
		_, err = r.Lookup("images/inner.zip").OpenZip(t.TempDir())
		wantRefused(t, p+"!images/inner.zip", err, `entry "bin/zzzzz": its local header names it "../../zzz"`)
	}
}
