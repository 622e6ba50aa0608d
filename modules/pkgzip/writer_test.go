package pkgzip

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/flate"
)

var testDate = time.Date(2024, 5, 17, 10, 30, 42, 0, time.UTC)

// payload is one file of a test package.
type payload struct {
	name string
	data []byte
	mode fs.FileMode
}

func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func textBytes(n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "line %d: the quick brown fox jumps over the lazy dog %d\n", i, i%97)
	}
	return b.Bytes()[:n]
}

// testPayloads covers the shapes the writer must get right: empty files,
// unicode and deep names, exact chunk multiples, several chunks of
// compressible and of incompressible data.
func testPayloads() []payload {
	deep := strings.Repeat("level/", 30) + "leaf.txt"
	return []payload{
		{"VERSION", []byte("1.5.0"), 0o644},
		{"empty", nil, 0o644},
		{"bin/kubectl.exe", randomBytes(1, 3*chunkSize+777), 0o755},
		{"docs/ünïcödé/日本語.txt", []byte("こんにちは"), 0o644},
		{deep, []byte("deep"), 0o644},
		{"logs/big.log", textBytes(5*chunkSize + 12345), 0o644},
		{"logs/exact.log", textBytes(2 * chunkSize), 0o644},
		{"logs/one-byte", []byte("x"), 0o755},
	}
}

// writeZip writes payloads, half from files and half from memory, and
// returns the zip bytes and the digests.
func writeZip(t testing.TB, opts WriterOptions, files []payload, tweak func(*Writer)) ([]byte, map[string]Digest) {
	t.Helper()
	dir := t.TempDir()
	var buf bytes.Buffer
	w := NewWriter(&buf, opts)
	if tweak != nil {
		tweak(w)
	}
	for i, p := range files {
		if i%2 == 0 {
			if err := w.AddBytes(p.name, p.data, p.mode); err != nil {
				t.Fatal(err)
			}
			continue
		}
		src := filepath.Join(dir, fmt.Sprint(i))
		if err := os.WriteFile(src, p.data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := w.AddFile(p.name, src, p.mode); err != nil {
			t.Fatal(err)
		}
	}
	digests, err := w.Close(context.Background())
	if err != nil {
		t.Fatalf("Close: %v", err)
	}
	return buf.Bytes(), digests
}

func saveZip(t testing.TB, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "out.zip")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// unzipTest runs Info-ZIP's integrity test, an independent implementation.
func unzipTest(t *testing.T, p string) {
	t.Helper()
	unzip, err := exec.LookPath("unzip")
	if err != nil {
		t.Fatal("unzip is needed as an independent reader of our zips; install it (.ci/run does)")
	}
	out, err := exec.Command(unzip, "-t", p).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "No errors detected") {
		t.Fatalf("unzip -t %s: %v\n%s", p, err, out)
	}
}

func TestWriterRoundTrip(t *testing.T) {
	files := testPayloads()
	var progress int64
	data, digests := writeZip(t, WriterOptions{Date: testDate, Level: 6, Workers: 3, Progress: func(n int64) { progress += n }}, files, nil)
	p := saveZip(t, data)
	unzipTest(t, p)

	var total int64
	for _, f := range files {
		total += int64(len(f.data))
	}
	if progress != total {
		t.Errorf("progress reported %d bytes, want %d", progress, total)
	}

	// archive/zip with its own (standard library) inflater, so the chunked
	// deflate stream is checked by a decoder other than the one we use.
	zr, err := zip.OpenReader(p)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	if len(zr.File) != len(files) {
		t.Fatalf("%d entries, want %d", len(zr.File), len(files))
	}
	want := map[string]payload{}
	for _, f := range files {
		want[f.name] = f
	}
	prev := ""
	for _, f := range zr.File {
		w, ok := want[f.Name]
		if !ok {
			t.Fatalf("unexpected entry %q", f.Name)
		}
		if f.Name <= prev {
			t.Errorf("entries not sorted: %q after %q", f.Name, prev)
		}
		prev = f.Name
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		if !bytes.Equal(got, w.data) {
			t.Errorf("%s: content differs (%d bytes, want %d)", f.Name, len(got), len(w.data))
		}
		if d := digests[f.Name]; d.SHA256 != sha(string(w.data)) || d.Size != int64(len(w.data)) {
			t.Errorf("%s: digest %+v, want sha %s size %d", f.Name, d, sha(string(w.data)), len(w.data))
		}
		if f.Mode() != w.mode {
			t.Errorf("%s: mode %v, want %v", f.Name, f.Mode(), w.mode)
		}
		if !f.Modified.Equal(testDate) {
			t.Errorf("%s: modified %v, want %v", f.Name, f.Modified, testDate)
		}
		if f.CreatorVersion>>8 != creatorUnix || f.Flags&flagDataDesc != 0 {
			t.Errorf("%s: creator %d flags %#x", f.Name, f.CreatorVersion>>8, f.Flags)
		}
		if utf8 := f.Flags&flagUTF8 != 0; utf8 != !isASCII(f.Name) {
			t.Errorf("%s: UTF-8 flag %v", f.Name, utf8)
		}
		// Only the text logs shrink; deflating random data or a few bytes
		// would not make them smaller.
		wantMethod := zip.Store
		if strings.HasPrefix(w.name, "logs/") && len(w.data) > chunkSize {
			wantMethod = zip.Deflate
		}
		if f.Method != wantMethod {
			t.Errorf("%s: method %d, want %d", f.Name, f.Method, wantMethod)
		}
	}

	r := mustOpen(t, p)
	hashed, err := r.HashAll(context.Background(), 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(hashed) != len(digests) {
		t.Fatalf("HashAll: %d digests, Close returned %d", len(hashed), len(digests))
	}
	for name, d := range digests {
		if hashed[name] != d {
			t.Errorf("%s: HashAll %+v, Close %+v", name, hashed[name], d)
		}
	}
}

func TestWriterIsDeterministic(t *testing.T) {
	files := testPayloads()
	ref, _ := writeZip(t, WriterOptions{Date: testDate, Level: 6, Workers: 1}, files, nil)
	variants := []struct {
		name  string
		opts  WriterOptions
		tweak func(*Writer)
	}{
		{"again", WriterOptions{Date: testDate, Level: 6, Workers: 1}, nil},
		{"8 workers", WriterOptions{Date: testDate, Level: 6, Workers: 8}, nil},
		{"2 workers, spilled to disk", WriterOptions{Date: testDate, Level: 6, Workers: 2}, func(w *Writer) { w.spoolLimit = 100 << 10 }},
		{"same date in another zone", WriterOptions{Date: testDate.In(time.FixedZone("X", 5*3600)), Level: 6, Workers: 5}, nil},
	}
	for _, v := range variants {
		got, _ := writeZip(t, v.opts, files, v.tweak)
		if !bytes.Equal(got, ref) {
			t.Errorf("%s: output differs from the 1-worker output (%d vs %d bytes)", v.name, len(got), len(ref))
		}
	}
	// Insertion order must not matter either.
	reversed := make([]payload, len(files))
	for i, f := range files {
		reversed[len(files)-1-i] = f
	}
	if got, _ := writeZip(t, WriterOptions{Date: testDate, Level: 6, Workers: 4}, reversed, nil); !bytes.Equal(got, ref) {
		t.Error("output depends on the order entries were added")
	}
	other, _ := writeZip(t, WriterOptions{Date: testDate, Level: 1, Workers: 2}, files, nil)
	if bytes.Equal(other, ref) {
		t.Error("level 1 and level 6 gave the same bytes; Level is ignored")
	}
}

// A worker's compressor is reused for unrelated chunks; that must give the
// same bytes as a new compressor or output would depend on scheduling.
func TestReusedCompressorMatchesFresh(t *testing.T) {
	data := append(textBytes(200<<10), randomBytes(7, 100<<10)...)
	for _, level := range []int{1, 5, 6, 9} {
		used, err := flate.NewWriter(io.Discard, level)
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range []*job{
			{buf: randomBytes(3, 70<<10), dictLen: 0, final: true},
			{buf: textBytes(90 << 10), dictLen: dictSize},
		} {
			if err := compressChunk(used, j); err != nil {
				t.Fatal(err)
			}
		}
		for _, dictLen := range []int{0, dictSize} {
			for _, final := range []bool{false, true} {
				fresh, _ := flate.NewWriter(io.Discard, level)
				a := &job{buf: data, dictLen: dictLen, final: final}
				b := &job{buf: data, dictLen: dictLen, final: final}
				if err := compressChunk(fresh, a); err != nil {
					t.Fatal(err)
				}
				if err := compressChunk(used, b); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(a.out.Bytes(), b.out.Bytes()) {
					t.Errorf("level %d dict %d final %v: reused compressor output differs", level, dictLen, final)
				}
			}
		}
	}
}

func TestWriterZeroDateIsZipEpoch(t *testing.T) {
	for _, d := range []time.Time{{}, time.Unix(0, 0)} {
		data, _ := writeZip(t, WriterOptions{Date: d}, []payload{{"a", []byte("a"), 0o644}}, nil)
		zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		if got := zr.File[0].Modified; !got.Equal(zipEpoch) {
			t.Errorf("date %v written as %v, want %v", d, got, zipEpoch)
		}
	}
}

func TestWriterAddRaw(t *testing.T) {
	text := strings.Repeat("raw copy ", 3000)
	src := mustOpen(t, buildZip(t,
		zent{name: `foreign\deflated.txt`, data: text, mode: 0o600, method: zip.Deflate},
		zent{name: "foreign/stored.bin", data: "stored", creator: 0, method: zip.Store},
		zent{name: "foreign/tool", data: "#!/bin/sh", mode: 0o700, method: zip.Deflate},
	))
	srcDigests, err := src.HashAll(context.Background(), 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w := NewWriter(&buf, WriterOptions{Date: testDate, Workers: 2})
	for _, e := range src.Entries {
		if err := w.AddRaw("copied/"+e.Name, e, srcDigests[e.Name]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.AddBytes("fresh.txt", []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	digests, err := w.Close(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	p := saveZip(t, buf.Bytes())
	unzipTest(t, p)
	r := mustOpen(t, p)
	want := map[string]struct {
		data   string
		mode   fs.FileMode
		method uint16
	}{
		"copied/foreign/deflated.txt": {text, 0o644, zip.Deflate},
		"copied/foreign/stored.bin":   {"stored", 0o644, zip.Store},
		"copied/foreign/tool":         {"#!/bin/sh", 0o755, zip.Deflate},
		"fresh.txt":                   {text, 0o644, zip.Deflate},
	}
	for _, e := range r.Entries {
		w, ok := want[e.Name]
		if !ok {
			t.Fatalf("unexpected entry %q", e.Name)
		}
		if got := readEntry(t, e); got != w.data {
			t.Errorf("%s: content differs", e.Name)
		}
		if e.Mode != w.mode || e.File.Method != w.method || !e.File.Modified.Equal(testDate) {
			t.Errorf("%s: mode %v method %d date %v, want %v %d %v", e.Name, e.Mode, e.File.Method, e.File.Modified, w.mode, w.method, testDate)
		}
		if digests[e.Name].SHA256 != sha(w.data) {
			t.Errorf("%s: digest %+v", e.Name, digests[e.Name])
		}
	}
	if len(r.Entries) != len(want) {
		t.Errorf("%d entries, want %d", len(r.Entries), len(want))
	}
}

func TestWriterGeneratedEntriesComeLast(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf, WriterOptions{Date: testDate})
	var seen map[string]Digest
	gen := func(d map[string]Digest) ([]byte, error) {
		seen = d
		return []byte(fmt.Sprintf("%d files", len(d))), nil
	}
	for _, name := range []string{"z.txt", "b.txt"} {
		if err := w.AddBytes(name, []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.AddGenerated("a-manifest.json", 0o644, gen); err != nil {
		t.Fatal(err)
	}
	digests, err := w.Close(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 2 || seen["b.txt"].Size != 5 {
		t.Errorf("generator saw %v, want the two other entries", seen)
	}
	zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, f := range zr.File {
		order = append(order, f.Name)
	}
	if strings.Join(order, ",") != "b.txt,z.txt,a-manifest.json" {
		t.Errorf("order %v", order)
	}
	if digests["a-manifest.json"].SHA256 != sha("2 files") {
		t.Errorf("generated entry digest %+v", digests["a-manifest.json"])
	}

	w = NewWriter(io.Discard, WriterOptions{Date: testDate})
	failing := errors.New("boom")
	w.AddGenerated("m", 0o644, func(map[string]Digest) ([]byte, error) { return nil, failing })
	if _, err := w.Close(context.Background()); !errors.Is(err, failing) || !strings.Contains(err.Error(), `generating entry "m"`) {
		t.Errorf("failing generator: %v", err)
	}
}

func TestWriterErrors(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "f")
	os.WriteFile(src, []byte("x"), 0o644)
	newW := func() *Writer { return NewWriter(io.Discard, WriterOptions{Date: testDate}) }
	tests := []struct {
		name string
		run  func() error
		want string
	}{
		{"bad name", func() error { return newW().AddBytes("../x", nil, 0) }, `package path "../x" contains a ".." segment`},
		{"backslash", func() error { return newW().AddBytes(`a\b`, nil, 0) }, "contains a backslash"},
		{"duplicate", func() error {
			w := newW()
			w.AddBytes("a/b", nil, 0)
			return w.AddFile("a/b", src, 0)
		}, `"a/b" (in-memory data) and "a/b" (` + src + `): the same path twice`},
		{"case duplicate", func() error {
			w := newW()
			w.AddBytes("README", nil, 0)
			return w.AddBytes("readme", nil, 0)
		}, "differ only in letter case"},
		{"file and dir", func() error {
			w := newW()
			w.AddBytes("bin/x", nil, 0)
			return w.AddBytes("bin", nil, 0)
		}, `"bin" (in-memory data) is a file, but "bin/x" (in-memory data) needs it to be a directory`},
		{"missing file", func() error { return newW().AddFile("a", filepath.Join(dir, "nope"), 0) }, "no such file"},
		{"directory", func() error { return newW().AddFile("a", dir, 0) }, "is not a regular file"},
		{"level", func() error { return NewWriter(io.Discard, WriterOptions{Level: 10}).AddBytes("a", nil, 0) }, "deflate level 10 is out of range"},
		{"late date", func() error {
			_, err := NewWriter(io.Discard, WriterOptions{Date: time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)}).Close(context.Background())
			return err
		}, "the last date a zip can record"},
		{"add after close", func() error {
			w := newW()
			w.Close(context.Background())
			return w.AddBytes("a", nil, 0)
		}, `cannot add "a" after Close`},
		{"close twice", func() error {
			w := newW()
			w.Close(context.Background())
			_, err := w.Close(context.Background())
			return err
		}, "Close called twice"},
		{"raw digest size", func() error {
			r := mustOpen(t, buildZip(t, zent{name: "a", data: "abc", mode: 0o644}))
			return newW().AddRaw("a", r.Entries[0], Digest{SHA256: sha("abc"), Size: 4})
		}, "digest says 4 bytes but source entry \"a\" has 3"},
		{"raw digest hash", func() error {
			r := mustOpen(t, buildZip(t, zent{name: "a", data: "abc", mode: 0o644}))
			return newW().AddRaw("a", r.Entries[0], Digest{SHA256: "ABC", Size: 3})
		}, "is not a lower-case hex SHA-256"},
		{"file vanished", func() error {
			w := newW()
			gone := filepath.Join(dir, "gone")
			os.WriteFile(gone, []byte("x"), 0o644)
			w.AddFile("gone", gone, 0)
			os.Remove(gone)
			_, err := w.Close(context.Background())
			return err
		}, `entry "gone": open ` + filepath.Join(dir, "gone")},
		{"cancelled", func() error {
			w := newW()
			w.AddBytes("a", textBytes(3*chunkSize), 0)
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			_, err := w.Close(ctx)
			return err
		}, "context canceled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// The stored path re-reads the source; a file that changed since it was
// compressed must not end up in the zip with the old CRC.
func TestCopyStoredDetectsChangedSource(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	os.WriteFile(p, []byte("after"), 0o644)
	q := &queued{name: "f", path: p}
	sum := entrySum{crc: 0x12345678, size: 5}
	err := copyStored(io.Discard, q, sum)
	if !errors.Is(err, errChanged) || !strings.Contains(err.Error(), p) {
		t.Fatalf("error %v, want errChanged naming %s", err, p)
	}
}

// TestWriterZip64 writes a sparse file larger than 4 GiB. It takes about a
// minute on two cores, so it only runs with RELEASE_TEST_ZIP64=1.
func TestWriterZip64(t *testing.T) {
	if os.Getenv("RELEASE_TEST_ZIP64") == "" {
		t.Skip("set RELEASE_TEST_ZIP64=1 to write and check a >4 GiB entry")
	}
	dir := t.TempDir()
	big := filepath.Join(dir, "big.img")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	const size = 4<<30 + 3<<20 + 5
	if _, err := f.WriteAt([]byte("end"), size-3); err != nil {
		t.Fatal(err)
	}
	f.Close()
	out, err := os.Create(filepath.Join(dir, "big.zip"))
	if err != nil {
		t.Fatal(err)
	}
	w := NewWriter(out, WriterOptions{Date: testDate, Level: 1, Workers: 2, TempDir: dir})
	w.AddBytes("a.txt", []byte("before"), 0o644)
	w.AddFile("big.img", big, 0o644)
	w.AddBytes("z.txt", []byte("after"), 0o644)
	digests, err := w.Close(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	if digests["big.img"].Size != size {
		t.Fatalf("digest %+v", digests["big.img"])
	}
	unzipTest(t, out.Name())
	r := mustOpen(t, out.Name())
	hashed, err := r.HashAll(context.Background(), 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, d := range digests {
		if hashed[name] != d {
			t.Errorf("%s: read back %+v, wrote %+v", name, hashed[name], d)
		}
	}
}

// A cancelled context fails Close whatever the entries: raw copies and
// small entries give the workers no chunk at which to notice it.
func TestWriterCloseCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name string
		add  func(w *Writer) error
	}{
		{"no entries", func(*Writer) error { return nil }},
		{"small bytes", func(w *Writer) error { return w.AddBytes("VERSION", []byte("1.0.0\n"), ModeFile) }},
		{"generated", func(w *Writer) error {
			return w.AddGenerated("m.json", ModeFile, func(map[string]Digest) ([]byte, error) { return []byte("{}"), nil })
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			w := NewWriter(&buf, WriterOptions{Workers: 2})
			if err := tc.add(w); err != nil {
				t.Fatal(err)
			}
			if _, err := w.Close(ctx); !errors.Is(err, context.Canceled) {
				t.Fatalf("Close with a cancelled context: %v", err)
			}
		})
	}
}
