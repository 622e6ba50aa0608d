package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/relcue/release/modules/pkgzip/ziptest"
)

// hostileZips are full packages of version 1.0.0 in the layouts of review
// D6 (a local header naming another file), D7 (entries sharing one
// stream) and D8 (a CRC-32 of 0 over non-empty data), each with what the
// refusal must say.
func hostileZips() []struct {
	name string
	data []byte
	want string
	// read: refused only when the entries are read, not when the zip is
	// opened.
	read bool
} {
	version := ziptest.Entry{Name: "VERSION", Data: []byte("1.0.0")}
	bomb := []ziptest.Entry{version, {Name: "bin/o00.bin", Data: make([]byte, 1<<20), Deflate: true}}
	for i := 1; i < 40; i++ {
		bomb = append(bomb, ziptest.Entry{Name: fmt.Sprintf("bin/o%02d.bin", i), Data: make([]byte, 1<<20), Deflate: true, SameAs: 2})
	}
	zero := func(h *ziptest.Header) { h.CRC32 = 0 }
	return []struct {
		name string
		data []byte
		want string
		read bool
	}{
		{"local name", ziptest.Build(version, ziptest.Entry{Name: "bin/zzzzz", Data: []byte("payload\n"), Local: func(h *ziptest.Header) { h.Name = "../../zzz" }}),
			`entry "bin/zzzzz": its local header names it "../../zzz"`, false},
		{"overlap", ziptest.Build(bomb...), `entries "bin/o00.bin" and "bin/o01.bin" overlap`, false},
		{"zero crc", ziptest.Build(version, ziptest.Entry{Name: "bin/c.txt", Data: []byte(strings.Repeat("0123456789", 10)), Deflate: true, Local: zero, Central: zero}),
			`entry "bin/c.txt": zip: checksum error: the recorded CRC-32 is 00000000`, true},
	}
}

// zipReleaseConfig writes a configuration whose one release is the zip at
// source (a path or a URL).
func zipReleaseConfig(t *testing.T, dir, field, source, sum string) {
	t.Helper()
	cfg := fmt.Sprintf(`package release

product: name: "t"
build: date: "2025-06-01T00:00:00Z"
releases: "1.0.0": zip: {%s: %q, sha256: %q}
`, field, source, sum)
	if err := os.WriteFile(filepath.Join(dir, "release.cue"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestHostileZipsRefused: every command that reads a zip refuses the
// hostile layouts with the zip's name, the entry and what is wrong, and a
// refused build publishes nothing.
func TestHostileZipsRefused(t *testing.T) {
	good := filepath.Join(t.TempDir(), "good.zip")
	if err := os.WriteFile(good, ziptest.Build(ziptest.Entry{Name: "VERSION", Data: []byte("2.0.0")}, ziptest.Entry{Name: "bin/c.txt", Data: []byte("new")}), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range hostileZips() {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			zp := filepath.Join(dir, "in.zip")
			if err := os.WriteFile(zp, c.data, 0o644); err != nil {
				t.Fatal(err)
			}
			zipReleaseConfig(t, dir, "path", "in.zip", sha256Hex(c.data))
			runs := map[string][]string{
				"build":  {"build", "-C", dir, "--cache", filepath.Join(t.TempDir(), "cache")},
				"delta":  {"delta", "--from", zp, "--to", good, "-o", filepath.Join(t.TempDir(), "d.zip")},
				"verify": {"verify", zp},
			}
			if !c.read {
				// apply and install open the zip before anything else;
				// a zip refused only when read fails there for want of
				// a delta manifest, which would prove nothing.
				runs["apply"] = []string{"apply", zp, "--install-dir", t.TempDir()}
				runs["install"] = []string{"install", zp, "--install-dir", filepath.Join(t.TempDir(), "i")}
			}
			for cmd, args := range runs {
				r := releaseCmd(t, nil, args...)
				if r.code == 0 || !strings.Contains(r.stderr, zp) || !strings.Contains(r.stderr, c.want) {
					t.Errorf("%s: exit %d, want a refusal naming %s and saying %q:\n%s", cmd, r.code, zp, c.want, r.stderr)
				}
			}
			assertNoDist(t, dir)
		})
	}
}

// TestZipURLErrorNamesURLAndPosition is review D12: a zip release fetched
// from a URL whose content is bad is named by its URL and configuration
// position, not by the cache blob it was downloaded to.
func TestZipURLErrorNamesURLAndPosition(t *testing.T) {
	zero := func(h *ziptest.Header) { h.CRC32 ^= 0xff }
	data := ziptest.Build(ziptest.Entry{Name: "VERSION", Data: []byte("1.0.0")},
		ziptest.Entry{Name: "bin/c.txt", Data: []byte(strings.Repeat("0123456789", 10)), Deflate: true, Local: zero, Central: zero})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/crc.zip" {
			http.NotFound(w, r)
			return
		}
		w.Write(data)
	}))
	defer srv.Close()
	dir := t.TempDir()
	url := srv.URL + "/crc.zip"
	zipReleaseConfig(t, dir, "url", url, sha256Hex(data))
	cache := filepath.Join(t.TempDir(), "cache")
	for _, engine := range []string{"local", "process"} {
		r := releaseCmd(t, nil, "build", "-C", dir, "--cache", cache, "--engine", engine)
		want := regexp.MustCompile(`release\.cue:5:\d+: input zip \(` + regexp.QuoteMeta(url) + `\): entry "bin/c\.txt": zip: checksum error`)
		if r.code != 1 || !want.MatchString(r.stderr) || strings.Contains(r.stderr, cache) {
			t.Fatalf("%s engine: exit %d, want an error matching %s, naming nothing in the cache:\n%s", engine, r.code, want, r.stderr)
		}
		assertNoDist(t, dir)
	}
}
