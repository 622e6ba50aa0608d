package nodepkg_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/relcue/release/modules/nodepkg"
	"github.com/relcue/release/modules/nodepkg/nodepkgtest"
	"github.com/relcue/release/modules/pkgzip"
)

func fileSHA(t *testing.T, p string) (string, int64) {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), int64(len(data))
}

func readEntry(t *testing.T, r *pkgzip.Reader, name string) []byte {
	t.Helper()
	e := r.Lookup(name)
	if e == nil {
		t.Fatalf("%s has no entry %s", r.Path, name)
	}
	rc, err := e.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func dpkgField(t *testing.T, deb, field string) string {
	t.Helper()
	out, err := exec.Command("dpkg-deb", "-f", deb, field).Output()
	if err != nil {
		t.Fatalf("dpkg-deb -f %s %s: %v", deb, field, err)
	}
	return strings.TrimSpace(string(out))
}

func TestBuild(t *testing.T) {
	dir := t.TempDir()
	arch := nodepkgtest.HostArch(t)
	rel := nodepkgtest.Releases(arch)[0]
	debs, images := nodepkgtest.Inputs(t, dir, rel)
	out := filepath.Join(dir, "out", "nodes", "k2s-node-debian12-1.4.0.zip")
	m, err := nodepkg.Build(context.Background(), nodepkg.Options{
		Product: "k2s", Version: "1.4.0", OS: "debian12", OSDir: "deb12",
		Debs: debs, Images: images, Output: out, Date: nodepkgtest.Date, Workers: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	r, err := pkgzip.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	// The zip layout of the spec, nothing else, the manifest last.
	var names []string
	for _, e := range r.Entries {
		names = append(names, e.Name)
	}
	want := []string{
		"images/registry.example.com_k2s_tools__latest.tar",
		"images/registry.k8s.io_coredns_coredns__v1.11.3.tar",
		"images/registry.k8s.io_pause__3.9.tar",
		"node-manifest.json",
		"packages/deb12/base/relcue-common_1.0-1_all.deb",
		"packages/deb12/cni/relcue-flannel_0.25.0-1_all.deb",
		"packages/deb12/kubernetes/relcue-kubelet_1.31.4-1_" + arch + ".deb",
	}
	if !slices.Equal(names, want) {
		t.Fatalf("entries:\n%s\nwant:\n%s", strings.Join(names, "\n"), strings.Join(want, "\n"))
	}
	nodepkgtest.NeedTool(t, "unzip", "unzip")
	raw, err := zipOrder(out)
	if err != nil {
		t.Fatal(err)
	}
	if raw[len(raw)-1] != nodepkg.ManifestName {
		t.Errorf("last zip entry is %s, want %s", raw[len(raw)-1], nodepkg.ManifestName)
	}

	// Every file byte for byte, and the manifest from the control data as
	// dpkg-deb (an independent reader) sees it.
	data := readEntry(t, r, nodepkg.ManifestName)
	parsed, err := nodepkg.ParseManifest(data)
	if err != nil {
		t.Fatal(err)
	}
	again, err := parsed.Marshal()
	if err != nil || !bytes.Equal(again, data) {
		t.Errorf("manifest does not round-trip canonically (err %v)", err)
	}
	if parsed.Product != "k2s" || parsed.Version != "1.4.0" || parsed.OS != "debian12" || parsed.OSDir != "deb12" || parsed.HashAlgorithm != "SHA256" {
		t.Errorf("manifest header = %+v", parsed)
	}
	if len(parsed.Packages) != 3 || len(parsed.Images) != 3 {
		t.Fatalf("manifest has %d packages and %d images", len(parsed.Packages), len(parsed.Images))
	}
	for _, d := range debs {
		name := dpkgField(t, d.Path, "Package")
		var p *nodepkg.Package
		for i := range parsed.Packages {
			if parsed.Packages[i].Package == name {
				p = &parsed.Packages[i]
			}
		}
		if p == nil {
			t.Fatalf("package %s missing from the manifest", name)
		}
		sum, size := fileSHA(t, d.Path)
		if p.Group != d.Group || p.Version != dpkgField(t, d.Path, "Version") || p.Architecture != dpkgField(t, d.Path, "Architecture") ||
			p.SHA256 != sum || p.Size != size || !strings.HasPrefix(p.Path, d.Group+"/") {
			t.Errorf("manifest entry %+v does not describe %s (sha256 %s, %d bytes)", *p, d.Path, sum, size)
		}
		orig, _ := os.ReadFile(d.Path)
		if !bytes.Equal(readEntry(t, r, p.Entry("deb12")), orig) {
			t.Errorf("%s is not stored byte for byte", p.Entry("deb12"))
		}
	}
	for _, img := range images {
		var e *nodepkg.Image
		for i := range parsed.Images {
			if parsed.Images[i].Ref == img.Ref {
				e = &parsed.Images[i]
			}
		}
		if e == nil {
			t.Fatalf("image %s missing from the manifest", img.Ref)
		}
		sum, size := fileSHA(t, img.Path)
		if e.SHA256 != sum || e.Size != size || !strings.HasPrefix(e.Digest, "sha256:") || !strings.HasPrefix(e.ImageId, "sha256:") ||
			!slices.Equal(e.Platforms, []string{"linux/amd64"}) {
			t.Errorf("manifest entry %+v does not describe %s", *e, img.Path)
		}
		orig, _ := os.ReadFile(img.Path)
		if !bytes.Equal(readEntry(t, r, e.Entry()), orig) {
			t.Errorf("%s is not stored byte for byte", e.Entry())
		}
	}
	if m.Packages[0].SHA256 == "" || m.Images[0].SHA256 == "" {
		t.Errorf("returned manifest lacks digests: %+v", m)
	}
	if _, err := nodepkg.ReadManifest(r); err != nil {
		t.Errorf("ReadManifest: %v", err)
	}
	// unzip, an independent reader, accepts the zip and its CRCs.
	if b, err := exec.Command("unzip", "-tq", out).CombinedOutput(); err != nil {
		t.Errorf("unzip -t: %v\n%s", err, b)
	}
}

// zipOrder lists the entry names in the order they are stored.
func zipOrder(p string) ([]string, error) {
	out, err := exec.Command("unzip", "-Z1", p).Output()
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(out)), nil
}

func TestBuildReproducible(t *testing.T) {
	dir := t.TempDir()
	rel := nodepkgtest.Releases("amd64")[1]
	debs, images := nodepkgtest.Inputs(t, dir, rel)
	var outs [][]byte
	for i, workers := range []int{1, 3} {
		out := filepath.Join(dir, "out", string(rune('a'+i)), "n.zip")
		// Inputs in another order must not matter either.
		d, im := slices.Clone(debs), slices.Clone(images)
		if i == 1 {
			slices.Reverse(d)
			slices.Reverse(im)
		}
		_, err := nodepkg.Build(context.Background(), nodepkg.Options{
			Product: "k2s", Version: "1.5.0", OS: "debian12", OSDir: "debian12",
			Debs: d, Images: im, Output: out, Date: nodepkgtest.Date, Workers: workers,
		})
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, data)
	}
	if !bytes.Equal(outs[0], outs[1]) {
		t.Error("two builds of the same node package differ")
	}
}

func TestBuildErrors(t *testing.T) {
	dir := t.TempDir()
	rels := nodepkgtest.Releases("amd64")
	debs, images := nodepkgtest.Inputs(t, dir, rels[0])
	newDebs, newImages := nodepkgtest.Inputs(t, dir, rels[1])
	garbage := filepath.Join(dir, "garbage.deb")
	if err := os.WriteFile(garbage, []byte("not a deb\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	notOCI := filepath.Join(dir, "garbage.tar")
	if err := os.WriteFile(notOCI, []byte("not a tar\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		mutate func(*nodepkg.Options)
		want   []string
	}{
		{"same package twice", func(o *nodepkg.Options) {
			o.Debs = append(o.Debs, newDebs[0]) // relcue-kubelet 1.31.6-1 next to 1.31.4-1
		}, []string{"package relcue-kubelet comes twice", "1.31.4-1 from test deb relcue-kubelet 1.31.4-1", "1.31.6-1 from test deb relcue-kubelet 1.31.6-1"}},
		{"same image twice", func(o *nodepkg.Options) {
			o.Images = append(o.Images, newImages[2]) // tools:latest, other content
		}, []string{"image registry.example.com/k2s/tools:latest comes twice"}},
		{"image with another ref", func(o *nodepkg.Options) {
			o.Images[0].Ref = "registry.k8s.io/pause:3.8"
		}, []string{"test image registry.k8s.io/pause:3.9", `carries reference "registry.k8s.io/pause:3.9"`, `configuration names it "registry.k8s.io/pause:3.8"`}},
		{"not a deb", func(o *nodepkg.Options) {
			o.Debs = append(o.Debs, nodepkg.Deb{Group: "extra", Path: garbage, Origin: "release.cue:7:3"})
		}, []string{"release.cue:7:3", garbage}},
		{"not an OCI archive", func(o *nodepkg.Options) {
			o.Images = append(o.Images, nodepkg.ImageArchive{Path: notOCI, Origin: "image/debian12/x"})
		}, []string{"image/debian12/x", notOCI}},
		{"missing deb", func(o *nodepkg.Options) {
			o.Debs[0].Path = filepath.Join(dir, "nope.deb")
		}, []string{"test deb relcue-kubelet", "nope.deb"}},
		{"bad group", func(o *nodepkg.Options) {
			o.Debs[0].Group = "../x"
		}, []string{`group "../x" must be one folder name`}},
		{"bad OS dir", func(o *nodepkg.Options) {
			o.OSDir = "a/b"
		}, []string{"OSDir", `"a/b"`}},
		{"no output", func(o *nodepkg.Options) {
			o.Output = ""
		}, []string{"no output path"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			outDir := filepath.Join(t.TempDir(), "nodes")
			o := nodepkg.Options{
				Product: "k2s", Version: "1.4.0", OS: "debian12", OSDir: "debian12",
				Debs: slices.Clone(debs), Images: slices.Clone(images),
				Output: filepath.Join(outDir, "n.zip"), Date: nodepkgtest.Date, Workers: 2,
			}
			c.mutate(&o)
			_, err := nodepkg.Build(context.Background(), o)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if !strings.HasPrefix(err.Error(), "node package debian12 1.4.0: ") {
				t.Errorf("error %q does not name the node package", err)
			}
			if _, err := os.Stat(outDir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a failed build left %s behind (%v)", outDir, err)
			}
		})
	}
}

func TestBuildCancelled(t *testing.T) {
	dir := t.TempDir()
	debs, images := nodepkgtest.Inputs(t, dir, nodepkgtest.Releases("amd64")[0])
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	outDir := filepath.Join(dir, "out")
	_, err := nodepkg.Build(ctx, nodepkg.Options{
		Product: "k2s", Version: "1.4.0", OS: "debian12", OSDir: "debian12",
		Debs: debs, Images: images, Output: filepath.Join(outDir, "n.zip"), Workers: 2,
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	if _, err := os.Stat(outDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a cancelled build left %s behind", outDir)
	}
}
