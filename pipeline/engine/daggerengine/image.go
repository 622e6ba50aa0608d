package daggerengine

import (
	"archive/tar"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Paths inside the step image.
const (
	BinaryPath = "/usr/local/bin/release"
	CertsPath  = "/etc/ssl/certs/ca-certificates.crt"
)

// caBundles are where Linux distributions keep the CA bundle, in Go's
// crypto/x509 order.
var caBundles = []string{
	"/etc/ssl/certs/ca-certificates.crt", // Debian, Ubuntu, Alpine
	"/etc/pki/tls/certs/ca-bundle.crt",   // Fedora, RHEL
	"/etc/ssl/ca-bundle.pem",             // openSUSE
	"/etc/ssl/cert.pem",                  // macOS, Alpine
}

// FindCABundle returns the first CA bundle of this host, or "".
func FindCABundle() string {
	for _, p := range caBundles {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p
		}
	}
	return ""
}

// StaticPlatform checks that binary is a statically linked Linux ELF
// executable, which runs on an empty base, and returns its platform.
func StaticPlatform(binary string) (v1.Platform, error) {
	f, err := elf.Open(binary)
	if err != nil {
		return v1.Platform{}, fmt.Errorf("step binary %s is not a Linux executable (%v); build one with CGO_ENABLED=0 GOOS=linux go build -o release-linux ./cmd/release and pass --step-binary", binary, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return v1.Platform{}, fmt.Errorf("step binary %s is dynamically linked; the step image has no libc: build it with CGO_ENABLED=0 and pass --step-binary", binary)
		}
	}
	if libs, err := f.ImportedLibraries(); err == nil && len(libs) > 0 {
		return v1.Platform{}, fmt.Errorf("step binary %s needs shared libraries %v; build it with CGO_ENABLED=0", binary, libs)
	}
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return v1.Platform{}, fmt.Errorf("step binary %s is not an executable (%s)", binary, f.Type)
	}
	switch f.Machine {
	case elf.EM_X86_64:
		return v1.Platform{OS: "linux", Architecture: "amd64"}, nil
	case elf.EM_AARCH64:
		return v1.Platform{OS: "linux", Architecture: "arm64"}, nil
	}
	return v1.Platform{}, fmt.Errorf("step binary %s is for %s; build it for amd64 or arm64", binary, f.Machine)
}

// StepImage assembles the step image: one layer holding the release
// binary and, when caBundle is set, the CA certificates, on an empty base,
// written as an OCI image layout archive that Container.Import reads.
// Every timestamp is zero and the entries are sorted, so the same binary
// gives the same image digest.
func StepImage(binary, caBundle, out string) (v1.Hash, v1.Platform, error) {
	plat, err := StaticPlatform(binary)
	if err != nil {
		return v1.Hash{}, v1.Platform{}, err
	}
	files := []layerFile{{path: BinaryPath, src: binary, mode: 0o755}}
	if caBundle != "" {
		files = append(files, layerFile{path: CertsPath, src: caBundle, mode: 0o644})
	}
	tmp, err := os.MkdirTemp(filepath.Dir(out), ".step-image-*")
	if err != nil {
		return v1.Hash{}, v1.Platform{}, err
	}
	defer os.RemoveAll(tmp)
	layerTar := filepath.Join(tmp, "layer.tar")
	if err := writeLayerTar(layerTar, files); err != nil {
		return v1.Hash{}, v1.Platform{}, err
	}
	layer, err := tarball.LayerFromFile(layerTar, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return v1.Hash{}, v1.Platform{}, err
	}
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), layer)
	if err != nil {
		return v1.Hash{}, v1.Platform{}, err
	}
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cf, err := img.ConfigFile()
	if err != nil {
		return v1.Hash{}, v1.Platform{}, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = plat.OS, plat.Architecture
	cf.Created = v1.Time{Time: time.Unix(0, 0).UTC()}
	cf.Config.Entrypoint = []string{BinaryPath}
	cf.Config.WorkingDir = "/"
	cf.Config.Env = []string{"PATH=/usr/local/bin", "TMPDIR=/tmp", "HOME=/tmp"}
	if caBundle != "" {
		cf.Config.Env = append(cf.Config.Env, "SSL_CERT_FILE="+CertsPath)
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return v1.Hash{}, v1.Platform{}, err
	}
	digest, err := img.Digest()
	if err != nil {
		return v1.Hash{}, v1.Platform{}, err
	}
	dir := filepath.Join(tmp, "layout")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return v1.Hash{}, v1.Platform{}, err
	}
	if err := p.AppendImage(img, layout.WithPlatform(plat),
		layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "release-step"})); err != nil {
		return v1.Hash{}, v1.Platform{}, err
	}
	if err := tarDir(dir, out); err != nil {
		return v1.Hash{}, v1.Platform{}, err
	}
	return digest, plat, nil
}

type layerFile struct {
	path string // absolute path in the image
	src  string
	mode int64
}

// writeLayerTar writes the files and their parent directories, plus a
// world-writable /tmp for the steps' temporary files.
func writeLayerTar(out string, files []layerFile) error {
	dirs := map[string]int64{"tmp/": 0o1777}
	for _, f := range files {
		for d := filepath.ToSlash(filepath.Dir(f.path[1:])); d != "."; d = filepath.ToSlash(filepath.Dir(d)) {
			dirs[d+"/"] = 0o755
		}
	}
	var names []string
	for d := range dirs {
		names = append(names, d)
	}
	sort.Strings(names)
	epoch := time.Unix(0, 0).UTC()
	sort.Slice(files, func(i, j int) bool { return files[i].path < files[j].path })
	return writeTar(out, func(tw *tar.Writer) error {
		for _, d := range names {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: dirs[d], ModTime: epoch, Format: tar.FormatPAX}); err != nil {
				return err
			}
		}
		for _, f := range files {
			if err := addFile(tw, f, epoch); err != nil {
				return err
			}
		}
		return nil
	})
}

// writeTar creates out and writes a tar into it with fn.
func writeTar(out string, fn func(*tar.Writer) error) error {
	w, err := os.Create(out)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	if err := fn(tw); err != nil {
		w.Close()
		return err
	}
	if err := tw.Close(); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

func addFile(tw *tar.Writer, f layerFile, epoch time.Time) error {
	r, err := os.Open(f.src)
	if err != nil {
		return err
	}
	defer r.Close()
	fi, err := r.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", f.src)
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.path[1:], Mode: f.mode, Size: fi.Size(), ModTime: epoch, Format: tar.FormatPAX}); err != nil {
		return err
	}
	_, err = io.Copy(tw, r)
	return err
}

// tarDir archives a directory tree (an OCI layout) with sorted entries and
// zero times.
func tarDir(dir, out string) error {
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(paths)
	epoch := time.Unix(0, 0).UTC()
	return writeTar(out, func(tw *tar.Writer) error {
		for _, p := range paths {
			rel, _ := filepath.Rel(dir, p)
			name := filepath.ToSlash(rel)
			fi, err := os.Lstat(p)
			if err != nil {
				return err
			}
			switch {
			case fi.IsDir():
				err = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o755, ModTime: epoch, Format: tar.FormatPAX})
			case fi.Mode().IsRegular():
				err = addFile(tw, layerFile{path: "/" + name, src: p, mode: 0o644}, epoch)
			default:
				err = errors.New(p + ": not a regular file")
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
}
