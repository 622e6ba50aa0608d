package nodepkg_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relcue/release/modules/nodepkg"
	"github.com/relcue/release/modules/pkgzip"
)

func sha(c byte) string { return strings.Repeat(string(c), 64) }

// sample is a valid manifest to mutate.
func sample() *nodepkg.Manifest {
	return &nodepkg.Manifest{
		ManifestVersion: "1.0", Product: "k2s", Version: "1.5.0", OS: "debian12", OSDir: "debian12", HashAlgorithm: "SHA256",
		Packages: []nodepkg.Package{
			{Group: "base", Path: "base/relcue-common_1.0-1_all.deb", Package: "relcue-common", Version: "1.0-1", Architecture: "all", SHA256: sha('a'), Size: 10},
			{Group: "kubernetes", Path: "kubernetes/kubelet_1.31.6-1_amd64.deb", Package: "kubelet", Version: "1.31.6-1", Architecture: "amd64", SHA256: sha('b'), Size: 20},
		},
		Images: []nodepkg.Image{
			{File: "registry.k8s.io_pause__3.10.tar", Ref: "registry.k8s.io/pause:3.10", Digest: "sha256:" + sha('c'), ImageId: "sha256:" + sha('d'),
				Platforms: []string{"linux/amd64", "linux/arm64"}, SHA256: sha('e'), Size: 30},
		},
	}
}

func TestManifestRoundTrip(t *testing.T) {
	data, err := sample().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := `{
  "ManifestVersion": "1.0",
  "Product": "k2s",
  "Version": "1.5.0",
  "OS": "debian12",
  "OSDir": "debian12",
  "HashAlgorithm": "SHA256",
  "Packages": [
    {
      "Group": "base",
      "Path": "base/relcue-common_1.0-1_all.deb",
      "Package": "relcue-common",
      "Version": "1.0-1",
      "Architecture": "all",
      "SHA256": "` + sha('a') + `",
      "Size": 10
    },
    {
      "Group": "kubernetes",
      "Path": "kubernetes/kubelet_1.31.6-1_amd64.deb",
      "Package": "kubelet",
      "Version": "1.31.6-1",
      "Architecture": "amd64",
      "SHA256": "` + sha('b') + `",
      "Size": 20
    }
  ],
  "Images": [
    {
      "File": "registry.k8s.io_pause__3.10.tar",
      "Ref": "registry.k8s.io/pause:3.10",
      "Digest": "sha256:` + sha('c') + `",
      "ImageId": "sha256:` + sha('d') + `",
      "Platforms": [
        "linux/amd64",
        "linux/arm64"
      ],
      "SHA256": "` + sha('e') + `",
      "Size": 30
    }
  ]
}
`
	if string(data) != want {
		t.Errorf("Marshal:\n%s\nwant:\n%s", data, want)
	}
	m, err := nodepkg.ParseManifest(data)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := m.Marshal()
	if string(again) != string(data) {
		t.Error("Parse+Marshal changed the bytes")
	}
	// Unsorted input is sorted by Marshal, never written unsorted.
	s := sample()
	s.Packages[0], s.Packages[1] = s.Packages[1], s.Packages[0]
	if d, err := s.Marshal(); err != nil || string(d) != want {
		t.Errorf("Marshal of unsorted packages: %v", err)
	}
	if got := m.PackageSet(); strings.Join(got, " ") != "kubelet=1.31.6-1 relcue-common=1.0-1" {
		t.Errorf("PackageSet = %q", got)
	}
	entries := m.Entries()
	if len(entries) != 3 || entries["packages/debian12/base/relcue-common_1.0-1_all.deb"].Size != 10 || entries["images/registry.k8s.io_pause__3.10.tar"].SHA256 != sha('e') {
		t.Errorf("Entries = %v", entries)
	}
}

func TestParseManifestErrors(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(map[string]any)
		want   string
	}{
		{"unknown field", func(m map[string]any) { m["Extra"] = 1 }, `unknown field "Extra"`},
		{"version", func(m map[string]any) { m["ManifestVersion"] = "2.0" }, `ManifestVersion "2.0" is not supported`},
		{"algorithm", func(m map[string]any) { m["HashAlgorithm"] = "MD5" }, `HashAlgorithm "MD5"`},
		{"no packages", func(m map[string]any) { delete(m, "Packages") }, "Packages and Images must both be present"},
		{"empty product", func(m map[string]any) { m["Product"] = "" }, `Product ""`},
		{"os dir", func(m map[string]any) { m["OSDir"] = "../x" }, "OSDir"},
		{"unsorted", func(m map[string]any) {
			p := pkgs(m)
			p[0], p[1] = p[1], p[0]
		}, "field Packages is not sorted by Path"},
		{"same name twice", func(m map[string]any) {
			pkgs(m)[1].(map[string]any)["Package"] = "relcue-common"
		}, "package relcue-common is there twice, as base/relcue-common_1.0-1_all.deb and as kubernetes/kubelet_1.31.6-1_amd64.deb"},
		{"path outside group", func(m map[string]any) { pkgs(m)[0].(map[string]any)["Path"] = "other/relcue-common_1.0-1_all.deb" }, `field Path "other/relcue-common_1.0-1_all.deb" must be <Group>/<file>.deb`},
		{"path with a space", func(m map[string]any) { pkgs(m)[0].(map[string]any)["Path"] = "base/a b.deb" }, "not a plain file name"},
		{"not a deb", func(m map[string]any) { pkgs(m)[0].(map[string]any)["Path"] = "base/relcue-common.tar" }, `field Path "base/relcue-common.tar" does not end in .deb`},
		{"bad package name", func(m map[string]any) { pkgs(m)[0].(map[string]any)["Package"] = "Relcue" }, "not a valid Debian package name"},
		{"bad version", func(m map[string]any) { pkgs(m)[0].(map[string]any)["Version"] = "v1.0" }, "not a valid Debian version"},
		{"bad arch", func(m map[string]any) { pkgs(m)[0].(map[string]any)["Architecture"] = "x86 64" }, "not a Debian architecture"},
		{"bad sha", func(m map[string]any) { pkgs(m)[0].(map[string]any)["SHA256"] = strings.ToUpper(sha('a')) }, "not 64 lower-case hex digits"},
		{"zero size", func(m map[string]any) { pkgs(m)[0].(map[string]any)["Size"] = 0 }, "Size 0 is not positive"},
		{"image digest", func(m map[string]any) { imgs(m)[0].(map[string]any)["Digest"] = sha('c') }, "is not sha256:<64"},
		{"image id", func(m map[string]any) { imgs(m)[0].(map[string]any)["ImageId"] = "" }, "ImageId"},
		{"image file", func(m map[string]any) { imgs(m)[0].(map[string]any)["File"] = "x.zip" }, "does not end in .tar"},
		{"image ref", func(m map[string]any) { imgs(m)[0].(map[string]any)["Ref"] = "a b" }, "white space"},
		{"platform", func(m map[string]any) { imgs(m)[0].(map[string]any)["Platforms"] = []string{"linux"} }, "not os/arch"},
		{"no platforms", func(m map[string]any) { delete(imgs(m)[0].(map[string]any), "Platforms") }, "has no Platforms list"},
		{"two refs", func(m map[string]any) {
			a := imgs(m)[0].(map[string]any)
			b := map[string]any{}
			for k, v := range a {
				b[k] = v
			}
			b["File"] = "z.tar"
			m["Images"] = append(imgs(m), b)
		}, "image registry.k8s.io/pause:3.10 is there twice"},
	}
	base, err := sample().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var m map[string]any
			if err := json.Unmarshal(base, &m); err != nil {
				t.Fatal(err)
			}
			c.mutate(m)
			data, _ := json.Marshal(m)
			_, err := nodepkg.ParseManifest(data)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want %q", err, c.want)
			}
		})
	}
	if _, err := nodepkg.ParseManifest(append(base, []byte("{}")...)); err == nil || err.Error() != "node-manifest.json: unexpected data after the JSON object" {
		t.Errorf("trailing data: %v", err)
	}
	bad := sample()
	bad.Packages[0].SHA256 = "x"
	if _, err := bad.Marshal(); err == nil {
		t.Error("Marshal wrote an invalid manifest")
	}
}

func pkgs(m map[string]any) []any { return m["Packages"].([]any) }
func imgs(m map[string]any) []any { return m["Images"].([]any) }

// writeZip writes entries (name -> content) with a manifest.
func writeZip(t *testing.T, p string, entries map[string]string, manifest []byte) {
	t.Helper()
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pkgzip.NewWriter(f, pkgzip.WriterOptions{})
	for name, c := range entries {
		if err := w.AddBytes(name, []byte(c), pkgzip.ModeFile); err != nil {
			t.Fatal(err)
		}
	}
	if manifest != nil {
		if err := w.AddBytes(nodepkg.ManifestName, manifest, pkgzip.ModeFile); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestReadManifestChecksZip(t *testing.T) {
	m := sample()
	m.Packages = m.Packages[:1]
	m.Packages[0].Size = 3
	m.Images[0].Size = 4
	data, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	good := map[string]string{"packages/debian12/base/relcue-common_1.0-1_all.deb": "deb", "images/registry.k8s.io_pause__3.10.tar": "tarx"}
	cases := []struct {
		name     string
		entries  func() map[string]string
		manifest []byte
		want     string
	}{
		{"good", func() map[string]string { return good }, data, ""},
		{"no manifest", func() map[string]string { return good }, nil, "no node-manifest.json at the root"},
		{"extra entry", func() map[string]string {
			e := copyMap(good)
			e["packages/debian12/base/extra.deb"] = "x"
			return e
		}, data, "packages/debian12/base/extra.deb is in the zip but not listed"},
		{"missing entry", func() map[string]string {
			e := copyMap(good)
			delete(e, "images/registry.k8s.io_pause__3.10.tar")
			return e
		}, data, "images/registry.k8s.io_pause__3.10.tar is listed but not in the zip"},
		{"other size", func() map[string]string {
			e := copyMap(good)
			e["images/registry.k8s.io_pause__3.10.tar"] = "tar"
			return e
		}, data, "is 3 bytes, the manifest says 4"},
		{"invalid manifest", func() map[string]string { return good }, []byte(`{"Packages":[],"Images":[]}`), "ManifestVersion"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "n.zip")
			writeZip(t, p, c.entries(), c.manifest)
			r, err := pkgzip.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			_, err = nodepkg.ReadManifest(r)
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p) {
				t.Errorf("error %v, want %q and the zip's path", err, c.want)
			}
		})
	}
}

func copyMap(m map[string]string) map[string]string {
	c := map[string]string{}
	for k, v := range m {
		c[k] = v
	}
	return c
}
