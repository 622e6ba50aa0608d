package nodedelta_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/relcue/release/modules/nodedelta"
	"github.com/relcue/release/modules/pkgzip"
)

func TestParseManifestErrors(t *testing.T) {
	out := filepath.Join(t.TempDir(), "d.zip")
	buildDelta(t, "1.4.0", "1.5.0", out, 2)
	r, err := pkgzip.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	good := entryData(t, r, "delta-manifest.json")
	r.Close()
	obj := func(m map[string]any, k string) map[string]any { return m[k].(map[string]any) }
	list := func(m map[string]any, k string) []any { return m[k].([]any) }
	cases := []struct {
		name   string
		mutate func(map[string]any)
		want   string
	}{
		{"unknown field", func(m map[string]any) { m["GuestConfigDiff"] = map[string]any{} }, `unknown field "GuestConfigDiff"`},
		{"cluster delta", func(m map[string]any) { m["DeltaType"] = "" }, `DeltaType is "", not "node-package"`},
		{"version", func(m map[string]any) { m["ManifestVersion"] = "1.0" }, `ManifestVersion is "1.0"`},
		{"algorithm", func(m map[string]any) { m["HashAlgorithm"] = "SHA1" }, `HashAlgorithm is "SHA1"`},
		{"date", func(m map[string]any) { m["GeneratedUtc"] = "today" }, "GeneratedUtc"},
		{"whole directories", func(m map[string]any) { m["WholeDirectories"] = []string{"bin"}; m["WholeDirectoriesCount"] = 1 }, "no WholeDirectories"},
		{"relative path", func(m map[string]any) { m["DebianDeltaRelativePath"] = "packages/x" }, "DebianDeltaRelativePath"},
		{"unprocessed", func(m map[string]any) { obj(m, "DebianPackageDiff")["Processed"] = false }, "Processed is false"},
		{"count", func(m map[string]any) { m["AddedCount"] = 7 }, "Added has 3 entries but its count says 7"},
		{"image count", func(m map[string]any) { obj(m, "ContainerImageDiff")["ChangedCount"] = 0 }, "ChangedImages has 1 entries but its count says 0"},
		{"unsorted", func(m map[string]any) {
			l := list(m, "Added")
			l[0], l[1] = l[1], l[0]
		}, "Added is not sorted"},
		{"outside the payload", func(m map[string]any) { list(m, "Removed")[0] = "etc/passwd" }, `"etc/passwd" is neither packages/debian12/<group>/<file>.deb nor images/<file>.tar`},
		{"unsafe name", func(m map[string]any) { list(m, "Removed")[0] = "images/$(reboot).tar" }, "could not handle safely"},
		{"removed but shipped", func(m map[string]any) {
			l := append(list(m, "Removed"), list(m, "Added")[0])
			slices.SortFunc(l, func(a, b any) int { return strings.Compare(a.(string), b.(string)) })
			m["Removed"], m["RemovedCount"] = l, len(l)
		}, "is listed as removed but also shipped"},
		{"unlisted payload", func(m map[string]any) {
			files := obj(m, "Files")
			files["images/extra.tar"] = files["SHA256SUMS"]
		}, "field Files has images/extra.tar, which is neither in Added nor in Changed"},
		{"added without hash", func(m map[string]any) {
			delete(obj(m, "Files"), list(m, "Added")[0].(string))
		}, "Files has no hash for it"},
		{"bad hash", func(m map[string]any) {
			obj(m, "Files")["SHA256SUMS"] = map[string]any{"SHA256": "abc", "Size": 1}
		}, "field Files[SHA256SUMS]"},
		{"unsafe file", func(m map[string]any) {
			files := obj(m, "Files")
			files["../x"] = files["SHA256SUMS"]
		}, `".." segment`},
		{"deb diff not shipped", func(m map[string]any) {
			d := obj(m, "DebianPackageDiff")
			d["Added"] = append(list(d, "Added"), "runtime/zz_1_all.deb")
			d["AddedCount"] = 2
		}, "does not ship packages/debian12/runtime/zz_1_all.deb"},
		{"image diff not shipped", func(m map[string]any) {
			c := obj(m, "ContainerImageDiff")
			obj(c, "AddedImages")["zz.tar"] = map[string]any{"FullName": "zz", "ImageId": "x", "Size": "1 B"}
			c["AddedCount"] = 2
		}, "does not ship images/zz.tar"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var m map[string]any
			if err := json.Unmarshal(good, &m); err != nil {
				t.Fatal(err)
			}
			c.mutate(m)
			data, _ := json.Marshal(m)
			_, err := nodedelta.ParseManifest(data)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want %q", err, c.want)
			}
		})
	}
	if _, err := nodedelta.ParseManifest(append(good, '1')); err == nil || err.Error() != "delta-manifest.json: unexpected data after the JSON object" {
		t.Errorf("trailing data: %v", err)
	}
}

func TestReadManifestChecksZip(t *testing.T) {
	out := filepath.Join(t.TempDir(), "d.zip")
	buildDelta(t, "1.4.0", "1.5.0", out, 2)
	// Re-zip the extracted delta with one change at a time.
	rezip := func(t *testing.T, mutate func(dir string)) string {
		t.Helper()
		d := t.TempDir()
		extractTo(t, out, d)
		mutate(d)
		p := filepath.Join(t.TempDir(), "re.zip")
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		w := pkgzip.NewWriter(f, pkgzip.WriterOptions{})
		filepath.WalkDir(d, func(path string, e os.DirEntry, err error) error {
			if err == nil && !e.IsDir() {
				rel, _ := filepath.Rel(d, path)
				if err := w.AddFile(filepath.ToSlash(rel), path, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			return nil
		})
		if _, err := w.Close(t.Context()); err != nil {
			t.Fatal(err)
		}
		f.Close()
		return p
	}
	for _, c := range []struct {
		name   string
		mutate func(dir string)
		want   string
	}{
		{"extra entry", func(d string) { os.WriteFile(filepath.Join(d, "extra.txt"), []byte("x"), 0o644) }, "entry extra.txt is not listed"},
		{"missing entry", func(d string) { os.Remove(filepath.Join(d, "images.removed")) }, "lists images.removed in Files but the zip has no such entry"},
		{"other size", func(d string) { os.WriteFile(filepath.Join(d, "packages.base"), []byte("x"), 0o644) }, "entry packages.base is 1 bytes"},
		{"no manifest", func(d string) { os.Remove(filepath.Join(d, "delta-manifest.json")) }, "no delta-manifest.json at the root"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := rezip(t, c.mutate)
			r, err := pkgzip.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			_, err = nodedelta.ReadManifest(r)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p) {
				t.Errorf("error %v, want %q and the zip's path", err, c.want)
			}
		})
	}
}
