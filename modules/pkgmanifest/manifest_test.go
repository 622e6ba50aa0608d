package pkgmanifest

import (
	"archive/zip"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relcue/release/modules/pkgzip"
)

const (
	hashA = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	hashB = "3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d"
)

func TestMarshalIsCanonical(t *testing.T) {
	m := New("k2s", "1.5.0", map[string]pkgzip.Digest{
		"bin/b.exe":  {SHA256: hashB, Size: 1},
		"VERSION":    {SHA256: hashA, Size: 3},
		Name:         {SHA256: hashA, Size: 99}, // never lists itself
		"a&b<c>.txt": {SHA256: hashA, Size: 0},
	})
	got, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := `{
  "ManifestVersion": "1.0",
  "Product": "k2s",
  "Version": "1.5.0",
  "HashAlgorithm": "SHA256",
  "Files": [
    {
      "Path": "VERSION",
      "SHA256": "` + hashA + `",
      "Size": 3
    },
    {
      "Path": "a&b<c>.txt",
      "SHA256": "` + hashA + `",
      "Size": 0
    },
    {
      "Path": "bin/b.exe",
      "SHA256": "` + hashB + `",
      "Size": 1
    }
  ]
}
`
	if string(got) != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	back, err := Parse(got)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := back.Marshal()
	if !bytes.Equal(again, got) {
		t.Error("Parse+Marshal is not the identity")
	}

	empty, err := New("p", "1", nil).Marshal()
	if err != nil || !strings.Contains(string(empty), `"Files": []`) {
		t.Errorf("empty manifest: %v\n%s", err, empty)
	}
	if _, err := New("", "1", nil).Marshal(); err == nil || !strings.Contains(err.Error(), "field Product is empty") {
		t.Errorf("Marshal of an invalid manifest: %v", err)
	}
}

func manifestJSON(files string) string {
	return `{"ManifestVersion":"1.0","Product":"k2s","Version":"1.5.0","HashAlgorithm":"SHA256","Files":[` + files + `]}`
}

func TestParse(t *testing.T) {
	upper := strings.ToUpper(hashA)
	m, err := Parse([]byte(manifestJSON(`{"Path":"z","SHA256":"` + upper + `","Size":1},{"Path":"a","SHA256":"` + hashB + `","Size":2}`)))
	if err != nil {
		t.Fatal(err)
	}
	if m.Files[0].Path != "a" || m.Files[1].SHA256 != hashA {
		t.Errorf("files not sorted or hash not lower-cased: %+v", m.Files)
	}
	if d := m.Digests(); d["z"] != (pkgzip.Digest{SHA256: hashA, Size: 1}) || len(d) != 2 {
		t.Errorf("Digests() = %v", d)
	}

	file := func(path, hash string) string {
		return `{"Path":"` + path + `","SHA256":"` + hash + `","Size":1}`
	}
	tests := map[string]struct{ in, want string }{
		"unknown top field":  {strings.Replace(manifestJSON(""), `"Product"`, `"Extra":1,"Product"`, 1), `unknown field "Extra"`},
		"unknown file field": {manifestJSON(`{"Path":"a","SHA256":"` + hashA + `","Size":1,"Mode":420}`), `unknown field "Mode"`},
		"other version":      {strings.Replace(manifestJSON(""), `"1.0"`, `"2.0"`, 1), `ManifestVersion "2.0" is not supported`},
		"other algorithm":    {strings.Replace(manifestJSON(""), `"SHA256","Files"`, `"MD5","Files"`, 1), `HashAlgorithm "MD5" is not supported`},
		"no files":           {`{"ManifestVersion":"1.0","Product":"k2s","Version":"1","HashAlgorithm":"SHA256"}`, "field Files is missing"},
		"null files":         {`{"ManifestVersion":"1.0","Product":"k2s","Version":"1","HashAlgorithm":"SHA256","Files":null}`, "field Files is missing"},
		"no version":         {strings.Replace(manifestJSON(""), `"1.5.0"`, `""`, 1), "field Version is empty"},
		"short hash":         {manifestJSON(file("a", hashA[:60])), `field Files: "a": SHA256 "` + hashA[:60] + `" is not 64 lower-case hex digits`},
		"non-hex hash":       {manifestJSON(file("a", "g"+hashA[1:])), "is not 64 lower-case hex digits"},
		"dotdot path":        {manifestJSON(file("../a", hashA)), `"../a" contains a ".." segment`},
		"absolute path":      {manifestJSON(file("/a", hashA)), "is an absolute path"},
		"backslash path":     {manifestJSON(file(`a\\b`, hashA)), "contains a backslash"},
		"duplicate":          {manifestJSON(file("a", hashA) + "," + file("a", hashB)), "the same path twice"},
		"case duplicate":     {manifestJSON(file("A", hashA) + "," + file("a", hashB)), "differ only in letter case"},
		"lists itself":       {manifestJSON(file(Name, hashA)), "field Files lists package-manifest.json itself; the manifest cannot contain its own digest"},
		"negative size":      {manifestJSON(`{"Path":"a","SHA256":"` + hashA + `","Size":-1}`), `field Files: "a": negative Size -1`},
		"trailing data":      {manifestJSON("") + "{}", "unexpected data after the JSON object"},
		"not json":           {"PK\x03\x04", "invalid character"},
		"wrong type":         {strings.Replace(manifestJSON(""), `"1.5.0"`, `150`, 1), "cannot unmarshal number"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(tt.in))
			if err == nil || !strings.HasPrefix(err.Error(), Name+": ") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// writePackage writes a package zip with the given files and, if manifest
// is not nil, that manifest.
func writePackage(t testing.TB, files map[string]string, manifest []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "pkg.zip")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pkgzip.NewWriter(f, pkgzip.WriterOptions{Date: time.Unix(1700000000, 0)})
	for name, data := range files {
		if err := w.AddBytes(name, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if manifest != nil {
		if err := w.AddBytes(Name, manifest, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	return p
}

func openPackage(t testing.TB, p string) *pkgzip.Reader {
	t.Helper()
	r, err := pkgzip.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestReadCheckVerify(t *testing.T) {
	files := map[string]string{"VERSION": "1.5.0", "bin/tool.exe": "tool", "etc/config.yaml": "a: 1"}
	r := openPackage(t, writePackage(t, files, nil))
	if m, ok, err := Read(r); m != nil || ok || err != nil {
		t.Fatalf("Read without manifest = %v %v %v", m, ok, err)
	}
	digests, err := r.HashAll(context.Background(), 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	good, err := New("k2s", "1.5.0", digests).Marshal()
	if err != nil {
		t.Fatal(err)
	}

	r = openPackage(t, writePackage(t, files, good))
	m, ok, err := Read(r)
	if err != nil || !ok {
		t.Fatalf("Read = %v %v", ok, err)
	}
	if err := Check(r, m); err != nil {
		t.Errorf("Check of a matching manifest: %v", err)
	}
	all, err := r.HashAll(context.Background(), 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(m, all, r.Path); err != nil {
		t.Errorf("Verify of a matching manifest: %v", err)
	}

	bad := func(mutate func(*Manifest)) *Manifest {
		c := New("k2s", "1.5.0", digests)
		mutate(c)
		return c
	}
	checks := map[string]struct {
		m    *Manifest
		want string
	}{
		"missing":  {bad(func(m *Manifest) { m.Files = append(m.Files, File{"gone.txt", hashA, 1}) }), `"gone.txt" is listed but not in the zip`},
		"unlisted": {bad(func(m *Manifest) { m.Files = m.Files[1:] }), `"VERSION" is in the zip but not listed`},
		"size":     {bad(func(m *Manifest) { m.Files[0].Size = 6 }), `"VERSION" is 5 bytes, the manifest says 6`},
	}
	for name, tt := range checks {
		err := Check(r, tt.m)
		if err == nil || !strings.HasPrefix(err.Error(), r.Path+": "+Name+" does not match the package: ") || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Check %s: %v, want %q", name, err, tt.want)
		}
	}
	wrongHash := bad(func(m *Manifest) { m.Files[1].SHA256 = hashA })
	if err := Check(r, wrongHash); err != nil {
		t.Errorf("Check must not look at hashes: %v", err)
	}
	if err := Verify(wrongHash, all, r.Path); err == nil || !strings.Contains(err.Error(), `"bin/tool.exe" has SHA256 `+digests["bin/tool.exe"].SHA256+` (4 bytes), the manifest says `+hashA) {
		t.Errorf("Verify with a wrong hash: %v", err)
	}

	many := bad(func(m *Manifest) {
		for i := range 15 {
			m.Files = append(m.Files, File{strings.Repeat("x", i+1), hashA, 1})
		}
	})
	if err := Check(r, many); err == nil || !strings.Contains(err.Error(), "; and 5 more") {
		t.Errorf("Check with 15 problems: %v", err)
	}

	r = openPackage(t, writePackage(t, files, []byte(`{"ManifestVersion":"9"}`)))
	if _, ok, err := Read(r); !ok || err == nil || !strings.Contains(err.Error(), r.Path+": "+Name+": ManifestVersion") {
		t.Errorf("Read of an invalid manifest = %v %v", ok, err)
	}
}

// Manifests written by other zip tools arrive with backslashes; Read goes
// through pkgzip's normalization like every other entry.
func TestReadFindsBackslashManifestPath(t *testing.T) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create(`.\` + Name)
	w.Write([]byte(manifestJSON("")))
	zw.Close()
	p := filepath.Join(t.TempDir(), "foreign.zip")
	os.WriteFile(p, buf.Bytes(), 0o644)
	m, ok, err := Read(openPackage(t, p))
	if err != nil || !ok || m.Version != "1.5.0" {
		t.Fatalf("Read = %+v %v %v", m, ok, err)
	}
}

func FuzzManifestParse(f *testing.F) {
	f.Add([]byte(manifestJSON(`{"Path":"a/b","SHA256":"` + hashA + `","Size":1}`)))
	f.Add([]byte(manifestJSON("")))
	f.Add([]byte(manifestJSON(`{"Path":"A","SHA256":"` + hashA + `","Size":1},{"Path":"a","SHA256":"` + hashB + `","Size":2}`)))
	f.Add([]byte(`{"ManifestVersion":"1.0"}`))
	f.Add([]byte(`[]`))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		if err != nil {
			return
		}
		out, err := m.Marshal()
		if err != nil {
			t.Fatalf("Parse accepted what Marshal refuses: %v", err)
		}
		back, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse rejects Marshal output: %v\n%s", err, out)
		}
		again, _ := back.Marshal()
		if !bytes.Equal(out, again) {
			t.Fatalf("Marshal is not stable:\n%s\n%s", out, again)
		}
	})
}
