package delta

import (
	"fmt"

	"github.com/relcue/release/modules/nodepkg"
	"github.com/relcue/release/pipeline/config"
)

// ControlPlaneOS returns the OS target marked ControlPlane, or nil. Two
// such targets are an error.
func ControlPlaneOS(m *config.Model) (*config.OSTarget, error) {
	var cp *config.OSTarget
	for _, name := range sortedKeys(m.OS) {
		o := m.OS[name]
		if o == nil || !o.ControlPlane {
			continue
		}
		if cp != nil {
			return nil, fmt.Errorf("%sos %s and os %s both set controlPlane; at most one OS target fills the cluster deltas' package and image diffs", prefix(o.Pos), cp.Name, o.Name)
		}
		cp = o
	}
	return cp, nil
}

func prefix(p config.Pos) string {
	if s := p.String(); s != "" {
		return s + ": "
	}
	return ""
}

// NodeDiffs computes K2s's DebianPackageDiff and ContainerImageDiff of a
// cluster delta from the control plane's node manifests of the base and
// target releases:
//
//   - packages are matched by name; Added and Removed are "name=version",
//     Changed is "name: old -> new" for a package whose Debian version
//     changed (a rebuild with the same version is not a change a node's
//     package list shows, as in K2s);
//   - images are matched by reference; ChangedImages are those whose
//     manifest or index digest differs, even when the tag did not change.
//
// Lists are sorted by package name and image reference.
func NodeDiffs(base, target *nodepkg.Manifest) (DebianPackageDiff, ContainerImageDiff) {
	d := nodepkg.Compare(base, target)
	deb := DebianPackageDiff{Processed: true, Added: []string{}, Removed: []string{}, Changed: []string{}}
	for _, p := range d.AddedPackages {
		deb.Added = append(deb.Added, p.Package+"="+p.Version)
	}
	for _, p := range d.RemovedPackages {
		deb.Removed = append(deb.Removed, p.Package+"="+p.Version)
	}
	for _, c := range d.ChangedPackages {
		if c.VersionChanged() {
			deb.Changed = append(deb.Changed, c.Target.Package+": "+c.Base.Version+" -> "+c.Target.Version)
		}
	}
	deb.AddedCount, deb.RemovedCount, deb.ChangedCount = len(deb.Added), len(deb.Removed), len(deb.Changed)

	img := ContainerImageDiff{AddedImages: []Image{}, RemovedImages: []Image{}, ChangedImages: []Image{}}
	for _, i := range d.AddedImages {
		img.AddedImages = append(img.AddedImages, Image{FullName: i.Ref, Platform: i.Platform()})
	}
	for _, i := range d.RemovedImages {
		img.RemovedImages = append(img.RemovedImages, Image{FullName: i.Ref, Platform: i.Platform()})
	}
	for _, c := range d.ChangedImages {
		img.ChangedImages = append(img.ChangedImages, Image{FullName: c.Target.Ref, Platform: c.Target.Platform()})
	}
	img.AddedCount, img.RemovedCount, img.ChangedCount = len(img.AddedImages), len(img.RemovedImages), len(img.ChangedImages)
	return deb, img
}
