// Package nodepkgtest makes real inputs for the tests of node packages,
// node deltas and cluster deltas: .debs built with dpkg-deb and OCI archives
// written with go-containerregistry.
package nodepkgtest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/relcue/release/modules/nodepkg"
)

// Date is the fixed date of test artifacts.
var Date = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// Deb describes a test package.
type Deb struct {
	Name, Version, Arch string
	Depends             string
	// Files maps absolute paths on the node to contents.
	Files map[string]string
	// Conffiles are also files, marked as conffiles (under /etc).
	Conffiles map[string]string
	// PostInst, when set, is the body of a POSIX sh postinst script.
	PostInst string
}

// NeedTool fails the test (it does not skip) when a program the test uses
// as a real peer is not installed.
func NeedTool(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed; this test needs it as an independent peer: apt-get install %s (.ci/run does)", name, pkg)
	}
	return p
}

// BuildDeb builds d with `dpkg-deb --build` into dir and returns its path.
// Builds of the same Deb are byte-identical (SOURCE_DATE_EPOCH, fixed
// modes and owners).
func BuildDeb(t testing.TB, dir string, d Deb) string {
	t.Helper()
	NeedTool(t, "dpkg-deb", "dpkg")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	root, err := os.MkdirTemp(dir, "debroot-*")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(root)
	write := func(p, content string, mode fs.FileMode) {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(full, mode); err != nil {
			t.Fatal(err)
		}
	}
	arch := d.Arch
	if arch == "" {
		arch = "all"
	}
	control := fmt.Sprintf("Package: %s\nVersion: %s\nArchitecture: %s\nMaintainer: Release Tests <tests@example.com>\n", d.Name, d.Version, arch)
	if d.Depends != "" {
		control += "Depends: " + d.Depends + "\n"
	}
	control += "Section: misc\nPriority: optional\nDescription: release test package " + d.Name + "\n Built by the release tests.\n"
	write("DEBIAN/control", control, 0o644)
	var conf []string
	for p, c := range d.Files {
		write(p, c, 0o644)
	}
	for p, c := range d.Conffiles {
		write(p, c, 0o644)
		conf = append(conf, p)
	}
	if len(conf) > 0 {
		slices.Sort(conf)
		write("DEBIAN/conffiles", strings.Join(conf, "\n")+"\n", 0o644)
	}
	if d.PostInst != "" {
		write("DEBIAN/postinst", "#!/bin/sh\nset -e\n"+d.PostInst+"\n", 0o755)
	}
	// Directories get fixed modes too: the umask must not show in the .deb.
	filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err == nil && e.IsDir() {
			os.Chmod(p, 0o755)
		}
		return nil
	})
	out := filepath.Join(dir, fmt.Sprintf("%s_%s_%s.deb", d.Name, strings.ReplaceAll(d.Version, ":", "%3a"), arch))
	cmd := exec.Command("dpkg-deb", "--root-owner-group", "-Zgzip", "--build", root, out)
	cmd.Env = append(os.Environ(), fmt.Sprintf("SOURCE_DATE_EPOCH=%d", Date.Unix()))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb --build %s: %v\n%s", d.Name, err, b)
	}
	return out
}

// OCIArchive writes an OCI archive (a tar of an OCI image layout) holding a
// one-layer linux/<arch> image whose only file has the given content; its
// index carries ref as org.opencontainers.image.ref.name. The same
// arguments give the same bytes.
func OCIArchive(t testing.TB, dir, ref, arch, content string) string {
	t.Helper()
	return OCIArchiveFor(t, dir, ref, "linux", arch, content)
}

// OCIArchiveFor is OCIArchive for an image of another operating system
// (K2s's Windows node images are "windows").
func OCIArchiveFor(t testing.TB, dir, ref, goos, arch, content string) string {
	t.Helper()
	var layerTar bytes.Buffer
	tw := tar.NewWriter(&layerTar)
	if err := tw.WriteHeader(&tar.Header{Name: "data.txt", Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg, ModTime: Date, Format: tar.FormatPAX}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte(content))
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err := mutate.AppendLayers(img, static.NewLayer(layerTar.Bytes(), types.OCIUncompressedLayer))
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = goos, arch
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	lay, err := os.MkdirTemp(dir, "layout-*")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(lay)
	p, err := layout.Write(lay, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": ref})); err != nil {
		t.Fatal(err)
	}
	name := strings.ReplaceAll(strings.ReplaceAll(ref, "/", "_"), ":", "__") + ".tar"
	out := filepath.Join(dir, name)
	if err := tarDir(lay, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// tarDir writes the tree at dir as a tar with fixed metadata, sorted.
func tarDir(dir, out string) error {
	var paths []string
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
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
	slices.Sort(paths)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range paths {
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		if st.IsDir() {
			if err := tw.WriteHeader(&tar.Header{Name: rel + "/", Mode: 0o755, Typeflag: tar.TypeDir, ModTime: Date, Format: tar.FormatPAX}); err != nil {
				return err
			}
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: rel, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg, ModTime: Date, Format: tar.FormatPAX}); err != nil {
			return err
		}
		if _, err := tw.Write(data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return os.WriteFile(out, buf.Bytes(), 0o644)
}

// HostArch is the Debian architecture of the machine (dpkg --print-architecture).
func HostArch(t testing.TB) string {
	t.Helper()
	NeedTool(t, "dpkg", "dpkg")
	out, err := exec.Command("dpkg", "--print-architecture").Output()
	if err != nil {
		t.Fatalf("dpkg --print-architecture: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// Image is one test image: its reference and the content of its only file.
type Image struct{ Ref, Content string }

// GroupDeb is a test package in a group of a node package.
type GroupDeb struct {
	Group string
	Deb
}

// Release is the node content of one test release.
type Release struct {
	Version string
	Debs    []GroupDeb
	Images  []Image
}

// Releases are three releases of a node with every kind of change:
// 1.4.0 -> 1.5.0 keeps relcue-common (same .deb), upgrades relcue-kubelet,
// removes relcue-flannel (which has a conffile) and adds relcue-crio (with a
// postinst); images: coredns is unchanged, pause:3.9 is replaced by
// pause:3.10 (another reference), and tools:latest keeps its tag but
// changes. 1.6.0 upgrades relcue-kubelet again. arch is the architecture of
// relcue-kubelet (the others are "all").
func Releases(arch string) []Release {
	common := GroupDeb{"base", Deb{Name: "relcue-common", Version: "1.0-1", Files: map[string]string{"/opt/relcue/common/README": "shared files\n"}}}
	kubelet := func(v string) GroupDeb {
		return GroupDeb{"kubernetes", Deb{Name: "relcue-kubelet", Version: v, Arch: arch, Depends: "relcue-common",
			Files:     map[string]string{"/opt/relcue/kubelet/VERSION": v + "\n"},
			Conffiles: map[string]string{"/etc/relcue/kubelet.conf": "# kubelet " + v + "\n"}}}
	}
	flannel := GroupDeb{"cni", Deb{Name: "relcue-flannel", Version: "0.25.0-1",
		Files:     map[string]string{"/opt/relcue/flannel/flanneld": "flannel\n"},
		Conffiles: map[string]string{"/etc/relcue/flannel.conf": "# flannel\n"}}}
	crio := GroupDeb{"runtime", Deb{Name: "relcue-crio", Version: "1.32.0-1", Depends: "relcue-common (>= 1.0)",
		Files:    map[string]string{"/opt/relcue/crio/crio": "crio\n"},
		PostInst: `mkdir -p /var/lib/relcue-crio && echo configured > /var/lib/relcue-crio/state`}}
	coredns := Image{"registry.k8s.io/coredns/coredns:v1.11.3", "coredns 1.11.3"}
	return []Release{
		{Version: "1.4.0", Debs: []GroupDeb{kubelet("1.31.4-1"), common, flannel},
			Images: []Image{{"registry.k8s.io/pause:3.9", "pause 3.9"}, coredns, {"registry.example.com/k2s/tools:latest", "tools v1"}}},
		{Version: "1.5.0", Debs: []GroupDeb{kubelet("1.31.6-1"), common, crio},
			Images: []Image{{"registry.k8s.io/pause:3.10", "pause 3.10"}, coredns, {"registry.example.com/k2s/tools:latest", "tools v2"}}},
		{Version: "1.6.0", Debs: []GroupDeb{kubelet("1.32.2-1"), common, crio},
			Images: []Image{{"registry.k8s.io/pause:3.10", "pause 3.10"}, coredns, {"registry.example.com/k2s/tools:latest", "tools v2"}}},
	}
}

// Inputs builds the .debs and OCI archives of a release into dir (each
// distinct package or image once, so that equal inputs are the same file)
// and returns them as node package inputs.
func Inputs(t testing.TB, dir string, r Release) ([]nodepkg.Deb, []nodepkg.ImageArchive) {
	t.Helper()
	var debs []nodepkg.Deb
	var images []nodepkg.ImageArchive
	for _, d := range r.Debs {
		sub := filepath.Join(dir, "debs", d.Name+"_"+d.Version)
		p := filepath.Join(sub, d.Name+".deb")
		if _, err := os.Stat(p); err != nil {
			if err := os.MkdirAll(sub, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(BuildDeb(t, sub, d.Deb), p); err != nil {
				t.Fatal(err)
			}
		}
		debs = append(debs, nodepkg.Deb{Group: d.Group, Path: p, Origin: "test deb " + d.Name + " " + d.Version})
	}
	for _, img := range r.Images {
		sub := filepath.Join(dir, "images", fmt.Sprintf("%x", sha256.Sum256([]byte(img.Ref+"\x00"+img.Content))))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(sub, "image.tar")
		if _, err := os.Stat(p); err != nil {
			if err := os.Rename(OCIArchive(t, sub, img.Ref, "amd64", img.Content), p); err != nil {
				t.Fatal(err)
			}
		}
		images = append(images, nodepkg.ImageArchive{Path: p, Ref: img.Ref, Origin: "test image " + img.Ref})
	}
	return debs, images
}

// NodePackage builds the node package of r for OS "debian12" into
// dir/nodes and returns its path.
func NodePackage(t testing.TB, dir string, r Release) string {
	t.Helper()
	debs, images := Inputs(t, dir, r)
	out := filepath.Join(dir, "nodes", "k2s-node-debian12-"+r.Version+".zip")
	_, err := nodepkg.Build(context.Background(), nodepkg.Options{
		Product: "k2s", Version: r.Version, OS: "debian12", OSDir: "debian12",
		Debs: debs, Images: images, Output: out, Date: Date, Level: 6, Workers: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// K2sReleases are the control plane's node contents of deltatest's
// K2s-shaped releases 1.4.0 and 1.5.0, named as a K2s control plane's:
// kubelet and kubeadm go from 1.31.4 to 1.32.2 (so the cluster delta
// expects Kubernetes 1.32.2), k2s-common stays, flannel-legacy (with a
// conffile) is dropped and cri-o (with a postinst) is added; pause:3.9 is
// replaced by pause:3.10, coredns stays and the tools image keeps its tag
// but changes. arch is the architecture of kubelet and kubeadm.
func K2sReleases(arch string) []Release {
	common := GroupDeb{"base", Deb{Name: "k2s-common", Version: "1.0-1", Files: map[string]string{"/opt/k2s/common/README": "shared files\n"}}}
	kube := func(name, v string) GroupDeb {
		return GroupDeb{"kubernetes", Deb{Name: name, Version: v, Arch: arch, Depends: "k2s-common",
			Files:     map[string]string{"/opt/k2s/" + name + "/VERSION": v + "\n"},
			Conffiles: map[string]string{"/etc/k2s/" + name + ".conf": "# " + name + " " + v + "\n"}}}
	}
	flannel := GroupDeb{"cni", Deb{Name: "flannel-legacy", Version: "0.22.0-1",
		Files:     map[string]string{"/opt/k2s/flannel/flanneld": "flannel\n"},
		Conffiles: map[string]string{"/etc/k2s/flannel.conf": "# flannel\n"}}}
	crio := GroupDeb{"runtime", Deb{Name: "cri-o", Version: "1.32.0-1", Depends: "k2s-common (>= 1.0)",
		Files:    map[string]string{"/opt/k2s/crio/crio": "crio\n"},
		PostInst: `mkdir -p /var/lib/k2s-crio && echo configured > /var/lib/k2s-crio/state`}}
	coredns := Image{"registry.k8s.io/coredns/coredns:v1.11.3", "coredns 1.11.3"}
	return []Release{
		{Version: "1.4.0", Debs: []GroupDeb{kube("kubelet", "1.31.4-1"), kube("kubeadm", "1.31.4-1"), common, flannel},
			Images: []Image{{"registry.k8s.io/pause:3.9", "pause 3.9"}, coredns, {"ghcr.io/example/k2s-tools:latest", "tools v1"}}},
		{Version: "1.5.0", Debs: []GroupDeb{kube("kubelet", "1.32.2-1"), kube("kubeadm", "1.32.2-1"), common, crio},
			Images: []Image{{"registry.k8s.io/pause:3.10", "pause 3.10"}, coredns, {"ghcr.io/example/k2s-tools:latest", "tools v2"}}},
	}
}

// CheckPOSIXScript fails the test for a script that does not start with
// #!/bin/sh, that dash (Debian's /bin/sh) cannot parse, or that uses a
// construct dash rejects only at run time or that needs bash.
func CheckPOSIXScript(t testing.TB, name string, data []byte) {
	t.Helper()
	dash := NeedTool(t, "dash", "dash")
	if !bytes.HasPrefix(data, []byte("#!/bin/sh\n")) {
		t.Errorf("%s does not start with #!/bin/sh", name)
	}
	cmd := exec.Command(dash, "-n")
	cmd.Stdin = bytes.NewReader(data)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("dash -n %s: %v\n%s", name, err, out)
	}
	for _, bad := range []string{`\[\[ `, `(?m)^\s*function\s+\w+\s*(\(\))?\s*\{`, `(?m)^\s*local\s`, `\$'`, `<<<`, `pipefail`, `\$\{!`, `(?m)^\s*declare\s`, `(?m)^\s*source\s`, `&>`} {
		if loc := regexp.MustCompile(bad).FindIndex(data); loc != nil {
			t.Errorf("%s uses %q, which is not POSIX sh", name, data[loc[0]:loc[1]])
		}
	}
}
