package nodepkg

import (
	"slices"
	"strings"
)

// Diff compares the contents of two node packages of one OS target.
// Packages are matched by Debian package name, images by reference.
type Diff struct {
	// AddedPackages are target packages whose name the base does not have;
	// RemovedPackages base packages whose name the target does not have.
	// Both are sorted by package name.
	AddedPackages, RemovedPackages []Package
	// ChangedPackages have the same name in both but a different .deb:
	// another version, or the same version rebuilt (Base.Version ==
	// Target.Version then). Sorted by package name.
	ChangedPackages []PackageChange
	// AddedImages and RemovedImages are matched by Ref, sorted by Ref.
	AddedImages, RemovedImages []Image
	// ChangedImages have the same Ref but another Digest: the tag stayed,
	// the image did not. Sorted by Ref.
	ChangedImages []ImageChange
}

// PackageChange is one package in both node packages with different .debs.
type PackageChange struct{ Base, Target Package }

// VersionChanged reports whether the Debian version differs (what dpkg and
// K2s's package lists see), as opposed to a rebuild of the same version.
func (c PackageChange) VersionChanged() bool { return c.Base.Version != c.Target.Version }

// ImageChange is one reference whose image differs between the packages.
type ImageChange struct{ Base, Target Image }

// Compare diffs base and target. A package is changed when its .deb's
// SHA-256 differs (which any version change implies); an image when its
// manifest or index digest differs, whatever its tag says.
func Compare(base, target *Manifest) Diff {
	var d Diff
	bp := map[string]Package{}
	for _, p := range base.Packages {
		bp[p.Package] = p
	}
	tp := map[string]Package{}
	for _, p := range target.Packages {
		tp[p.Package] = p
		b, ok := bp[p.Package]
		switch {
		case !ok:
			d.AddedPackages = append(d.AddedPackages, p)
		case b.SHA256 != p.SHA256 || b.Version != p.Version || b.Architecture != p.Architecture:
			d.ChangedPackages = append(d.ChangedPackages, PackageChange{Base: b, Target: p})
		}
	}
	for _, p := range base.Packages {
		if _, ok := tp[p.Package]; !ok {
			d.RemovedPackages = append(d.RemovedPackages, p)
		}
	}
	bi := map[string]Image{}
	for _, i := range base.Images {
		bi[i.Ref] = i
	}
	ti := map[string]Image{}
	for _, i := range target.Images {
		ti[i.Ref] = i
		b, ok := bi[i.Ref]
		switch {
		case !ok:
			d.AddedImages = append(d.AddedImages, i)
		case b.Digest != i.Digest:
			d.ChangedImages = append(d.ChangedImages, ImageChange{Base: b, Target: i})
		}
	}
	for _, i := range base.Images {
		if _, ok := ti[i.Ref]; !ok {
			d.RemovedImages = append(d.RemovedImages, i)
		}
	}
	byName := func(a, b Package) int { return strings.Compare(a.Package, b.Package) }
	slices.SortFunc(d.AddedPackages, byName)
	slices.SortFunc(d.RemovedPackages, byName)
	slices.SortFunc(d.ChangedPackages, func(a, b PackageChange) int { return byName(a.Target, b.Target) })
	byRef := func(a, b Image) int { return strings.Compare(a.Ref, b.Ref) }
	slices.SortFunc(d.AddedImages, byRef)
	slices.SortFunc(d.RemovedImages, byRef)
	slices.SortFunc(d.ChangedImages, func(a, b ImageChange) int { return byRef(a.Target, b.Target) })
	return d
}

// PackageSet returns "name=version" for every package, sorted by name: the
// lines of packages.base and packages.target, and the entries of K2s's
// DebianPackageDiff.
func (m *Manifest) PackageSet() []string {
	ps := slices.Clone(m.Packages)
	slices.SortFunc(ps, func(a, b Package) int { return strings.Compare(a.Package, b.Package) })
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.Package+"="+p.Version)
	}
	return out
}
