package all

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relcue/release/pipeline"
)

// The D1 race of the reliability review, driven deterministically: the
// plan is made (pipeline.Open digests every input and keys the targets),
// then an input changes before the step reads it, which is exactly what
// an editor saving a file while `release build` runs does. The target
// must fail naming the file, store nothing in the cache and publish
// nothing; once the file is back to its planned content, the next build
// builds it again (no poisoned entry to serve) and ships the planned bytes.
func TestInputChangedAfterPlanning(t *testing.T) {
	const extra = "pinned extra\n"
	sum := sha256.Sum256([]byte(extra))
	cases := []struct {
		name   string
		target string
		file   string // relative to the configuration directory
		edit   func(p string)
	}{
		// A package's directory input, appended to (the review's d1.sh).
		{"tree appended", "package/1.0.0", "payload/zzz/grow.txt", func(p string) { appendTo(t, p, "APPENDED DURING BUILD\n") }},
		// The same size, rewritten in place: no stat-based check sees it.
		{"tree rewritten", "package/1.0.0", "payload/zzz/grow.txt", func(p string) { writeFile(t, p, "ORIGINAL CONTENT\n") }},
		{"tree file added", "package/1.0.0", "payload/new.txt", func(p string) { writeFile(t, p, "new\n") }},
		// A pinned file: the bytes used must have the declared sha256.
		{"pinned file", "package/1.0.0", "extra.txt", func(p string) { writeFile(t, p, strings.ToUpper(extra)) }},
		// A zip release, shipped byte for byte.
		{"zip release", "package/1.1.0", "in.zip", func(p string) { appendTo(t, p, "trailing junk") }},
		// A step that is given a private copy (an addon's directory).
		{"addon directory", "addon/ingress/1.4.0", "addons/ingress/addon.manifest.yaml", func(p string) { appendTo(t, p, "# edited\n") }},
	}
	if testing.Short() {
		// make test-cancel runs the review's own reproduction 200 times.
		cases = cases[:1]
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := t.TempDir()
			writeFile(t, filepath.Join(cfg, "release.cue"), `package release
product: {name: "t", vendor: "x"}
build: date: "2025-06-01T00:00:00Z"
releases: "1.0.0": inputs: [{dir: "payload"}, {file: {path: "extra.txt", sha256: "`+hex.EncodeToString(sum[:])+`"}, dest: "zzz/extra.txt"}]
releases: "1.1.0": zip: {path: "in.zip", sha256: "`+zipRelease(t, filepath.Join(cfg, "in.zip"))+`"}
addons: ingress: {dir: "addons/ingress", version: "1.4.0", omitImages: true}
`)
			writeFile(t, filepath.Join(cfg, "payload/aaa/first.txt"), "read first\n")
			writeFile(t, filepath.Join(cfg, "payload/zzz/grow.txt"), "original content\n")
			writeFile(t, filepath.Join(cfg, "extra.txt"), extra)
			copyTree(t, "../../fixtures/sample/addons/ingress", filepath.Join(cfg, "addons/ingress"))

			path := filepath.Join(cfg, filepath.FromSlash(tc.file))
			before, beforeErr := os.ReadFile(path)
			cache, dist := t.TempDir(), t.TempDir()
			ctx := context.Background()
			s, err := pipeline.Open(ctx, Modules(Keys{}), pipeline.Options{Dir: cfg, CacheDir: cache, Workers: 2})
			if err != nil {
				t.Fatal(err)
			}
			n := s.Graph.Nodes[tc.target]
			if n == nil {
				t.Fatalf("no target %s", tc.target)
			}
			key := n.Key

			// After planning and after the pins were checked, just before
			// the step reads its inputs.
			edit := func(id string) {
				if id == tc.target {
					tc.edit(path)
				}
			}
			rep, err := s.Build(ctx, pipeline.BuildOptions{Targets: []string{tc.target}, Dist: dist, BeforeStep: edit})
			if err == nil {
				t.Fatalf("build succeeded over an input changed after planning: %+v", rep)
			}
			if !strings.Contains(err.Error(), "changed during the build: ") || !strings.Contains(err.Error(), filepath.Join(cfg, firstDir(tc.file))) {
				t.Errorf("error %v, want it to say %s changed during the build", err, tc.file)
			}
			if s.Cache.Has(key) {
				t.Error("the changed content was stored under the planned key")
			}
			if files := filesBelow(t, dist); len(files) != 0 {
				t.Errorf("dist/ got %v", files)
			}

			// Back to the planned content: built again, never served from
			// a poisoned entry, and holding the planned bytes.
			if beforeErr != nil {
				os.Remove(path)
			} else {
				writeFile(t, path, string(before))
			}
			s2, err := pipeline.Open(ctx, Modules(Keys{}), pipeline.Options{Dir: cfg, CacheDir: cache, Workers: 2})
			if err != nil {
				t.Fatal(err)
			}
			if k := s2.Graph.Nodes[tc.target].Key; k != key {
				t.Fatalf("the reverted input keys to %s, want the first plan's %s", k, key)
			}
			rep, err = s2.Build(ctx, pipeline.BuildOptions{Targets: []string{tc.target}, Dist: dist})
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range rep.Targets {
				if o.ID == tc.target && o.Status != "built" {
					t.Errorf("%s was %s, want built", o.ID, o.Status)
				}
			}
			if tc.target == "package/1.0.0" {
				got := unzipFile(t, filepath.Join(dist, "packages/t-1.0.0.zip"), "zzz/grow.txt")
				if got != "original content\n" {
					t.Errorf("the package holds %q", got)
				}
			}
		})
	}
}

func firstDir(rel string) string {
	if d, _, ok := strings.Cut(rel, "/"); ok {
		return d
	}
	return rel
}

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func appendTo(t *testing.T, p, content string) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(content); err != nil {
		t.Fatal(err)
	}
}

// zipRelease writes a minimal full package for release 1.1.0 and returns
// its sha256.
func zipRelease(t *testing.T, p string) string {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for name, content := range map[string]string{"VERSION": "1.1.0", "bin/a.txt": "a\n"} {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, content)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	writeFile(t, p, b.String())
	sum := sha256.Sum256(b.Bytes())
	return hex.EncodeToString(sum[:])
}

func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		writeFile(t, filepath.Join(dst, rel), string(data))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func filesBelow(t *testing.T, root string) []string {
	t.Helper()
	var files []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	return files
}

func unzipFile(t *testing.T, zipPath, name string) string {
	t.Helper()
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	rc, err := zr.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	data, _ := io.ReadAll(rc)
	return string(data)
}
