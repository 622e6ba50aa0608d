package pkgzip

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// zent describes one entry of a zip built by a test with archive/zip, so
// that reader tests see zips as foreign tools write them.
type zent struct {
	name    string
	data    string
	mode    fs.FileMode // 0: no unix mode (FAT creator)
	method  uint16
	creator uint16 // upper byte of CreatorVersion when mode == 0
	attrs   uint32 // external attributes when mode == 0
	flags   uint16
	raw     bool // write data as already-compressed bytes with CreateRaw
}

func buildZip(t testing.TB, ents ...zent) string {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range ents {
		fh := &zip.FileHeader{Name: e.name, Method: e.method, Flags: e.flags}
		if e.mode != 0 {
			fh.SetMode(e.mode)
		} else {
			fh.CreatorVersion = e.creator<<8 | 20
			fh.ExternalAttrs = e.attrs
		}
		var w io.Writer
		var err error
		if e.raw {
			fh.CompressedSize64 = uint64(len(e.data))
			fh.UncompressedSize64 = uint64(len(e.data))
			w, err = zw.CreateRaw(fh)
		} else {
			w, err = zw.CreateHeader(fh)
		}
		if err != nil {
			t.Fatalf("create %q: %v", e.name, err)
		}
		if _, err := io.WriteString(w, e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "in.zip")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func mustOpen(t testing.TB, p string) *Reader {
	t.Helper()
	r, err := Open(p)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func readEntry(t testing.TB, e *Entry) string {
	t.Helper()
	rc, err := e.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", e.Name, err)
	}
	return string(b)
}

func sha(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func TestOpenNormalizesForeignZips(t *testing.T) {
	const fat, unix = 0, 3
	p := buildZip(t,
		zent{name: `bin\`, mode: fs.ModeDir | 0o755},
		zent{name: `bin\tool.exe`, data: "MZ tool", mode: 0o755, method: zip.Deflate},
		zent{name: `bin\lib.dll`, data: "dll", creator: fat, attrs: 0x20, method: zip.Deflate},
		zent{name: "./", mode: fs.ModeDir | 0o755},
		zent{name: "./VERSION", data: "1.5.0\n", mode: 0o644},
		zent{name: "cfg/", creator: fat, attrs: 0x10},
		zent{name: "cfg/sub", creator: unix, attrs: 0o040755 << 16}, // directory by mode only
		zent{name: `cfg\a.yaml`, data: "a: 1", creator: unix, attrs: 0o100600 << 16, method: zip.Deflate},
		zent{name: "run.sh", data: "#!/bin/sh", creator: unix, attrs: 0o100744 << 16},
		zent{name: "docs/ü/ß.txt", data: "unicode", mode: 0o644, method: zip.Deflate},
	)
	r := mustOpen(t, p)
	want := []struct {
		name string
		mode fs.FileMode
		data string
	}{
		{"VERSION", 0o644, "1.5.0\n"},
		{"bin/lib.dll", 0o644, "dll"},
		{"bin/tool.exe", 0o755, "MZ tool"},
		{"cfg/a.yaml", 0o644, "a: 1"},
		{"docs/ü/ß.txt", 0o644, "unicode"},
		{"run.sh", 0o755, "#!/bin/sh"},
	}
	if len(r.Entries) != len(want) {
		var got []string
		for _, e := range r.Entries {
			got = append(got, e.Name)
		}
		t.Fatalf("entries = %q, want %d entries", got, len(want))
	}
	for i, w := range want {
		e := r.Entries[i]
		if e.Name != w.name || e.Mode != w.mode || e.Size != int64(len(w.data)) {
			t.Errorf("entry %d = {%q %v %d}, want {%q %v %d}", i, e.Name, e.Mode, e.Size, w.name, w.mode, len(w.data))
		}
		if got := readEntry(t, e); got != w.data {
			t.Errorf("%s: content %q, want %q", e.Name, got, w.data)
		}
		if r.Lookup(w.name) != e {
			t.Errorf("Lookup(%q) did not return the entry", w.name)
		}
	}
	if r.Lookup("bin") != nil || r.Lookup(`bin\tool.exe`) != nil || r.Lookup("version") != nil {
		t.Error("Lookup must match normalized names exactly")
	}
}

func TestOpenRejects(t *testing.T) {
	file := func(name string) zent { return zent{name: name, data: "x", mode: 0o644} }
	tests := []struct {
		name string
		ents []zent
		want string
	}{
		{"dotdot", []zent{file("a/../../etc/passwd")}, `entry "a/../../etc/passwd" contains a ".." segment`},
		{"dotdot backslash", []zent{file(`..\evil.dll`)}, `entry "..\\evil.dll" contains a ".." segment`},
		{"absolute", []zent{file("/etc/passwd")}, `entry "/etc/passwd" is an absolute path`},
		{"absolute backslash", []zent{file(`\Windows\evil.dll`)}, "is an absolute path"},
		{"unc", []zent{file(`\\server\share\x`)}, "is an absolute path"},
		{"drive", []zent{file("C:/Windows/x.dll")}, `entry "C:/Windows/x.dll" starts with a drive letter`},
		{"drive backslash", []zent{file(`d:\x`)}, "starts with a drive letter"},
		{"drive after dot", []zent{file(`./c:x`)}, "starts with a drive letter"},
		{"nul", []zent{file("a\x00b")}, "contains a NUL byte"},
		{"empty", []zent{file("")}, `entry "" has an empty name`},
		{"only dots", []zent{file(".")}, "is not a clean path"},
		{"double slash", []zent{file("a//b")}, "is not a clean path"},
		{"bad utf8", []zent{file("a\xffb")}, "is not valid UTF-8"},
		{"duplicate", []zent{file("a/b.txt"), file(`a\b.txt`)}, `"a/b.txt" (entry "a/b.txt") and "a/b.txt" (entry "a\\b.txt"): the same path twice`},
		{"case duplicate", []zent{file("bin/Tool.exe"), file("BIN/tool.exe")}, "differ only in letter case"},
		{"file is dir", []zent{file("bin"), file("bin/x")}, `"bin" (entry "bin") is a file, but "bin/x" (entry "bin/x") needs it to be a directory`},
		{"dir is file", []zent{file("Bin/x"), file("bin")}, `"bin" (entry "bin") is a file, but "Bin/x"`},
		{"symlink", []zent{{name: "link", data: "target", mode: fs.ModeSymlink | 0o777}}, `entry "link" is a symbolic link, not a regular file`},
		{"encrypted", []zent{{name: "secret", data: "xxxxxxxxxxxx", mode: 0o644, flags: 1, raw: true}}, `entry "secret" is encrypted`},
		{"bzip2", []zent{{name: "b.bz2", data: "BZh", mode: 0o644, method: 12, raw: true}}, `entry "b.bz2" uses compression method 12`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := buildZip(t, tt.ents...)
			r, err := Open(p)
			if err == nil {
				r.Close()
				t.Fatalf("Open succeeded, want error containing %q", tt.want)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, p+": ") || !strings.Contains(msg, tt.want) {
				t.Fatalf("error %q\nwant prefix %q and text %q", msg, p+": ", tt.want)
			}
		})
	}
}

func TestOpenRejectsUnreadableFiles(t *testing.T) {
	good := buildZip(t, zent{name: "a.txt", data: strings.Repeat("hello ", 1000), mode: 0o644, method: zip.Deflate})
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cases := map[string][]byte{
		"truncated.zip": data[:len(data)/2],
		"tail-cut.zip":  data[:len(data)-5],
		"empty.zip":     nil,
		"text.zip":      []byte("this is not a zip"),
	}
	for name, b := range cases {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Open(p)
		want := p + ": not a readable zip (truncated or corrupt?): "
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%s: error %v, want prefix %q", name, err, want)
		}
	}
	_, err = Open(filepath.Join(dir, "missing.zip"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: error %v, want fs.ErrNotExist", err)
	}
}

func TestHashAll(t *testing.T) {
	var ents []zent
	want := map[string]Digest{}
	for i := range 40 {
		data := strings.Repeat(fmt.Sprintf("line %d\n", i), i*500)
		name := fmt.Sprintf("dir%d/file%02d.txt", i%3, i)
		method := zip.Deflate
		if i%4 == 0 {
			method = zip.Store
		}
		ents = append(ents, zent{name: name, data: data, mode: 0o644, method: method})
		want[name] = Digest{SHA256: sha(data), Size: int64(len(data))}
	}
	r := mustOpen(t, buildZip(t, ents...))
	for _, workers := range []int{0, 1, 3, 16} {
		var total int64
		got, err := r.HashAll(context.Background(), workers, func(n int64) { total += n })
		if err != nil {
			t.Fatalf("workers=%d: %v", workers, err)
		}
		if len(got) != len(want) {
			t.Fatalf("workers=%d: %d digests, want %d", workers, len(got), len(want))
		}
		var wantTotal int64
		for name, d := range want {
			wantTotal += d.Size
			if got[name] != d {
				t.Errorf("workers=%d: %s: %+v, want %+v", workers, name, got[name], d)
			}
		}
		if total != wantTotal {
			t.Errorf("workers=%d: progress total %d, want %d", workers, total, wantTotal)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.HashAll(ctx, 2, nil); !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), r.Path+": hashing: ") {
		t.Errorf("cancelled HashAll: error %v, want context.Canceled naming the package", err)
	}
}

// corruptEntry flips bytes in the middle of the stored data of the named
// entry and returns the path of the damaged copy.
func corruptEntry(t *testing.T, p, name string, flip func([]byte)) string {
	t.Helper()
	r := mustOpen(t, p)
	e := r.Lookup(name)
	off, err := e.File.DataOffset()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	flip(data[off : off+int64(e.File.CompressedSize64)])
	bad := filepath.Join(t.TempDir(), "bad.zip")
	if err := os.WriteFile(bad, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return bad
}

func TestHashAllDetectsCorruptData(t *testing.T) {
	text := strings.Repeat("the quick brown fox jumps over the lazy dog\n", 5000)
	p := buildZip(t,
		zent{name: "a/ok.txt", data: "fine", mode: 0o644},
		zent{name: "a/deflated.txt", data: text, mode: 0o644, method: zip.Deflate},
		zent{name: "a/stored.txt", data: text, mode: 0o644, method: zip.Store},
	)
	middle := func(b []byte) { b[len(b)/2] ^= 0xff }
	tail := func(b []byte) {
		for i := len(b) - 40; i < len(b)-20; i++ {
			b[i] ^= 0x55
		}
	}
	for _, tc := range []struct {
		entry string
		flip  func([]byte)
	}{
		{"a/deflated.txt", middle},
		{"a/deflated.txt", tail},
		{"a/stored.txt", middle},
	} {
		bad := corruptEntry(t, p, tc.entry, tc.flip)
		r := mustOpen(t, bad) // the central directory is intact
		_, err := r.HashAll(context.Background(), 2, nil)
		want := fmt.Sprintf("%s: entry %q: ", bad, tc.entry)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "corrupt") {
			t.Errorf("%s: error %v, want one containing %q and \"corrupt\"", tc.entry, err, want)
		}
	}
	bad := corruptEntry(t, p, "a/stored.txt", middle)
	_, err := mustOpen(t, bad).HashAll(context.Background(), 1, nil)
	if !errors.Is(err, zip.ErrChecksum) || !strings.Contains(err.Error(), "CRC-32 mismatch") {
		t.Errorf("stored entry with flipped byte: %v, want a CRC-32 mismatch", err)
	}
}

func TestCheckName(t *testing.T) {
	for _, ok := range []string{"VERSION", "bin/kubectl.exe", "a/b/c/d/e/f/g.txt", "ü/日本.txt", ".hidden", "a/.b", "a..b"} {
		if err := CheckName(ok); err != nil {
			t.Errorf("CheckName(%q) = %v, want nil", ok, err)
		}
	}
	for bad, want := range map[string]string{
		`a\b`:    "contains a backslash",
		"./a":    `is not normalized (want "a")`,
		"a/":     "ends with a slash",
		"../a":   `contains a ".." segment`,
		"/a":     "is an absolute path",
		"c:a":    "starts with a drive letter",
		"":       "has an empty name",
		"a/./b":  "is not a clean path",
		"a\x00b": "contains a NUL byte",
	} {
		err := CheckName(bad)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckName(%q) = %v, want error containing %q", bad, err, want)
		}
	}
}

// TestOpenZip: a zip held in an entry opens as a package zip of its own,
// read in place when stored and through a temporary file (removed by
// Close) when deflated; a member's CRC is still checked, and an entry that
// is not a zip is an error naming both.
func TestOpenZip(t *testing.T) {
	var inner bytes.Buffer
	zw := zip.NewWriter(&inner)
	for name, data := range map[string]string{`kubetools\kubelet.exe`: "kubelet", "images/pause.tar": "tar"} {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate})
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, data)
	}
	zw.Close()
	tmp := t.TempDir()
	for _, method := range []uint16{zip.Store, zip.Deflate} {
		outer := mustOpen(t, buildZip(t, zent{name: "bin/tools.zip", data: inner.String(), method: method}, zent{name: "VERSION", data: "1.0.0"}))
		nr, err := outer.Lookup("bin/tools.zip").OpenZip(tmp)
		if err != nil {
			t.Fatalf("method %d: %v", method, err)
		}
		if e := nr.Lookup("kubetools/kubelet.exe"); e == nil || readEntry(t, e) != "kubelet" {
			t.Errorf("method %d: kubetools/kubelet.exe not read back", method)
		}
		if !strings.HasSuffix(nr.Path, "in.zip!bin/tools.zip") {
			t.Errorf("method %d: path %q", method, nr.Path)
		}
		if method == zip.Deflate {
			if ents, _ := os.ReadDir(tmp); len(ents) != 1 {
				t.Errorf("deflated: %d temporary files, want 1", len(ents))
			}
		}
		if err := nr.Close(); err != nil {
			t.Fatal(err)
		}
		if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
			t.Errorf("method %d: Close left %d temporary files", method, len(ents))
		}
	}
	// A corrupt member is found when it is read.
	var stored bytes.Buffer
	zw = zip.NewWriter(&stored)
	w, _ := zw.CreateHeader(&zip.FileHeader{Name: "a.exe", Method: zip.Store})
	io.WriteString(w, "kubelet")
	zw.Close()
	bad := bytes.Replace(stored.Bytes(), []byte("kubelet"), []byte("kubelEt"), 1)
	outer := mustOpen(t, buildZip(t, zent{name: "bin/tools.zip", data: string(bad), method: zip.Store}))
	nr, err := outer.Lookup("bin/tools.zip").OpenZip(tmp)
	if err != nil {
		t.Fatal(err)
	}
	defer nr.Close()
	rc, err := nr.Entries[0].Open()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(rc); err == nil || !strings.Contains(err.Error(), "CRC-32 mismatch") {
		t.Errorf("corrupt member: %v", err)
	}
	rc.Close()
	notZip := mustOpen(t, buildZip(t, zent{name: "bin/tools.zip", data: "not a zip", method: zip.Deflate}))
	if _, err := notZip.Lookup("bin/tools.zip").OpenZip(tmp); err == nil || !strings.Contains(err.Error(), "in.zip!bin/tools.zip: not a readable zip") {
		t.Errorf("not a zip: %v", err)
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Errorf("a failed OpenZip left %d temporary files", len(ents))
	}
}
