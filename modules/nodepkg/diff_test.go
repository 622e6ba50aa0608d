package nodepkg_test

import (
	"slices"
	"testing"

	"github.com/relcue/release/modules/nodepkg"
)

func pkg(group, name, version, arch string, sum byte) nodepkg.Package {
	return nodepkg.Package{Group: group, Path: group + "/" + name + "_" + version + "_" + arch + ".deb", Package: name, Version: version, Architecture: arch, SHA256: sha(sum), Size: 1}
}

func img(file, ref string, digest byte) nodepkg.Image {
	return nodepkg.Image{File: file, Ref: ref, Digest: "sha256:" + sha(digest), ImageId: "sha256:" + sha(digest), Platforms: []string{"linux/amd64"}, SHA256: sha(digest), Size: 1}
}

func TestCompare(t *testing.T) {
	base := &nodepkg.Manifest{
		Packages: []nodepkg.Package{
			pkg("base", "common", "1.0-1", "all", '1'),
			pkg("k8s", "kubelet", "1.31.4-1", "amd64", '2'),
			pkg("cni", "flannel", "0.25-1", "all", '3'),
			pkg("tools", "rebuilt", "2.0-1", "all", '4'),
			pkg("tools", "moved", "1.0-1", "all", '5'),
		},
		Images: []nodepkg.Image{
			img("pause__3.9.tar", "pause:3.9", 'a'),
			img("coredns.tar", "coredns:v1", 'b'),
			img("tools__latest.tar", "tools:latest", 'c'),
		},
	}
	target := &nodepkg.Manifest{
		Packages: []nodepkg.Package{
			pkg("base", "common", "1.0-1", "all", '1'),      // unchanged
			pkg("k8s", "kubelet", "1.31.6-1", "amd64", '6'), // upgraded
			pkg("runtime", "crio", "1.32-1", "all", '7'),    // added
			pkg("tools", "rebuilt", "2.0-1", "all", '8'),    // same version, other bytes
			pkg("other", "moved", "1.0-1", "all", '5'),      // other group, same .deb
		},
		Images: []nodepkg.Image{
			img("pause__3.10.tar", "pause:3.10", 'd'),
			img("coredns.tar", "coredns:v1", 'b'),
			img("tools__latest.tar", "tools:latest", 'e'), // same tag, new digest
		},
	}
	d := nodepkg.Compare(base, target)
	names := func(ps []nodepkg.Package) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.Package+"="+p.Version)
		}
		return out
	}
	if got := names(d.AddedPackages); !slices.Equal(got, []string{"crio=1.32-1"}) {
		t.Errorf("added = %v", got)
	}
	if got := names(d.RemovedPackages); !slices.Equal(got, []string{"flannel=0.25-1"}) {
		t.Errorf("removed = %v", got)
	}
	if len(d.ChangedPackages) != 2 {
		t.Fatalf("changed = %+v", d.ChangedPackages)
	}
	if c := d.ChangedPackages[0]; c.Target.Package != "kubelet" || c.Base.Version != "1.31.4-1" || c.Target.Version != "1.31.6-1" || !c.VersionChanged() {
		t.Errorf("changed[0] = %+v", c)
	}
	if c := d.ChangedPackages[1]; c.Target.Package != "rebuilt" || c.VersionChanged() {
		t.Errorf("changed[1] = %+v (a rebuild is a change of bytes, not of version)", c)
	}
	refs := func(is []nodepkg.Image) []string {
		var out []string
		for _, i := range is {
			out = append(out, i.Ref)
		}
		return out
	}
	if got := refs(d.AddedImages); !slices.Equal(got, []string{"pause:3.10"}) {
		t.Errorf("added images = %v", got)
	}
	if got := refs(d.RemovedImages); !slices.Equal(got, []string{"pause:3.9"}) {
		t.Errorf("removed images = %v", got)
	}
	if len(d.ChangedImages) != 1 || d.ChangedImages[0].Target.Ref != "tools:latest" || d.ChangedImages[0].Base.Digest == d.ChangedImages[0].Target.Digest {
		t.Errorf("changed images = %+v; a new digest under the same tag is a change", d.ChangedImages)
	}

	// Identical packages: no difference at all.
	if d := nodepkg.Compare(base, base); len(d.AddedPackages)+len(d.RemovedPackages)+len(d.ChangedPackages)+len(d.AddedImages)+len(d.RemovedImages)+len(d.ChangedImages) != 0 {
		t.Errorf("Compare(base, base) = %+v", d)
	}
	// An image whose archive bytes differ but whose digest does not is not
	// a change of the image.
	same := *base
	same.Images = slices.Clone(base.Images)
	same.Images[1].SHA256 = sha('f')
	if d := nodepkg.Compare(base, &same); len(d.ChangedImages) != 0 {
		t.Errorf("archive bytes alone counted as an image change: %+v", d.ChangedImages)
	}
}

func TestImagePlatform(t *testing.T) {
	for _, c := range []struct {
		platforms []string
		want      string
	}{{nil, "linux"}, {[]string{"linux/amd64"}, "linux"}, {[]string{"windows/amd64"}, "windows"}} {
		if got := (nodepkg.Image{Platforms: c.platforms}).Platform(); got != c.want {
			t.Errorf("Platform(%v) = %s, want %s", c.platforms, got, c.want)
		}
	}
}
