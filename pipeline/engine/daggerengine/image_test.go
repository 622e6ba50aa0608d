package daggerengine

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/relcue/release/internal/peers"
)

// staticBinary builds a tiny static Linux program, standing in for the
// release binary (its bytes are what matter to the image).
func staticBinary(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module hello\n\ngo 1.22\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nfunc main() { println(\"step\") }\n"), 0o644)
	out := filepath.Join(dir, "hello")
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH, "GOFLAGS=", "GOTOOLCHAIN=local")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

func TestStepImageReproducibleAndComplete(t *testing.T) {
	bin := staticBinary(t)
	certs := filepath.Join(t.TempDir(), "ca.crt")
	os.WriteFile(certs, []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"), 0o600)
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.tar"), filepath.Join(dir, "b.tar")
	d1, plat, err := StepImage(bin, certs, a)
	if err != nil {
		t.Fatal(err)
	}
	d2, _, err := StepImage(bin, certs, b)
	if err != nil {
		t.Fatal(err)
	}
	ab, _ := os.ReadFile(a)
	bb, _ := os.ReadFile(b)
	if d1 != d2 || !bytes.Equal(ab, bb) {
		t.Fatalf("two assemblies differ: %s %s", d1, d2)
	}
	if plat.OS != "linux" || plat.Architecture != runtime.GOARCH {
		t.Errorf("platform %+v", plat)
	}

	// Read it back as an OCI layout with go-containerregistry.
	lay := t.TempDir()
	untar(t, ab, lay)
	p, err := layout.FromPath(lay)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil || len(im.Manifests) != 1 || im.Manifests[0].Digest != d1 || im.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != "release-step" {
		t.Fatalf("index %+v %v", im, err)
	}
	img, err := p.Image(d1)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	if strings.Join(cf.Config.Entrypoint, " ") != BinaryPath || cf.Architecture != runtime.GOARCH || cf.Created.Unix() != 0 {
		t.Errorf("config %+v", cf)
	}
	layers, _ := img.Layers()
	if len(layers) != 1 {
		t.Fatalf("%d layers", len(layers))
	}
	rc, _ := layers[0].Uncompressed()
	defer rc.Close()
	tr := tar.NewReader(rc)
	got := map[string]int64{}
	var binData []byte
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got[h.Name] = h.Mode
		if h.Name == BinaryPath[1:] {
			binData, _ = io.ReadAll(tr)
		}
		if !h.ModTime.Equal(h.ModTime.UTC()) || h.ModTime.Unix() != 0 {
			t.Errorf("%s: mtime %v", h.Name, h.ModTime)
		}
	}
	want := map[string]int64{"etc/": 0o755, "etc/ssl/": 0o755, "etc/ssl/certs/": 0o755, "etc/ssl/certs/ca-certificates.crt": 0o644,
		"tmp/": 0o1777, "usr/": 0o755, "usr/local/": 0o755, "usr/local/bin/": 0o755, "usr/local/bin/release": 0o755}
	if len(got) != len(want) {
		t.Errorf("layer entries %v, want %v", got, want)
	}
	for n, m := range want {
		if got[n] != m {
			t.Errorf("%s: mode %o, want %o", n, got[n], m)
		}
	}
	orig, _ := os.ReadFile(bin)
	if !bytes.Equal(binData, orig) {
		t.Error("the binary in the image differs from the input")
	}

	// skopeo, an independent reader, accepts the archive.
	skopeo := peers.Tool(t, "skopeo")
	out, err := exec.Command(skopeo, "inspect", "--raw", "oci-archive:"+a).CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("application/vnd.oci.image.manifest.v1+json")) {
		t.Fatalf("skopeo inspect: %v\n%s", err, out)
	}
}

func TestStepImageRefusesUnusableBinaries(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "release")
	os.WriteFile(script, []byte("#!/bin/sh\necho hi\n"), 0o755)
	if _, _, err := StepImage(script, "", filepath.Join(dir, "x.tar")); err == nil || !strings.Contains(err.Error(), "is not a Linux executable") || !strings.Contains(err.Error(), "CGO_ENABLED=0") {
		t.Errorf("script: %v", err)
	}
	if runtime.GOOS == "linux" {
		// The system's own tools are dynamically linked against libc.
		for _, p := range []string{"/bin/ls", "/usr/bin/ls"} {
			if _, err := os.Stat(p); err != nil {
				continue
			}
			if _, _, err := StepImage(p, "", filepath.Join(dir, "x.tar")); err == nil || !strings.Contains(err.Error(), "dynamically linked") {
				t.Errorf("%s: %v", p, err)
			}
			break
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "x.tar")); !os.IsNotExist(err) {
		t.Error("a refused binary left an image behind")
	}
}

func untar(t *testing.T, data []byte, dir string) {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.FromSlash(h.Name))
		if h.Typeflag == tar.TypeDir {
			os.MkdirAll(p, 0o755)
			continue
		}
		os.MkdirAll(filepath.Dir(p), 0o755)
		b, _ := io.ReadAll(tr)
		os.WriteFile(p, b, 0o644)
	}
}
