package delta

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/semver"

	"github.com/relcue/release/modules/applydelta"
	"github.com/relcue/release/modules/debiandelta"
	"github.com/relcue/release/modules/nodepkg"
	"github.com/relcue/release/modules/pkgzip"
)

// A delta of profile k2s is one K2s's own upgrade code applies
// (Siemens-Healthineers/K2s; every rule below is read from its source, see
// docs/packages.md, "The k2s profile"):
//
//   - Apply-Delta.ps1 at the root (modules/applydelta), which K2s's delta
//     tool always writes (New-K2sDelta.Mandatory.ps1) and users run;
//   - the files both entry points need, shipped even when unchanged
//     (Options.Always, Manifest.Mandatory);
//   - debian-delta/ (modules/debiandelta) with DebianDeltaRelativePath,
//     without which K2s's apply skips the control plane's packages and
//     kubeadm upgrade but still moves VERSION (update.module.psm1,
//     PerformClusterUpdate);
//   - image-delta/linux/images/<ref, "/" and ":" as "-">.tar for the
//     control plane's added and changed images, as OCI archives naming
//     their reference, which K2s loads with buildah pull oci-archive:;
//     image-delta/windows/images/<name>.tar for the Windows image tars of
//     a nested archive, which it loads with ctr images import
//     (New-K2sDelta.ImageAcquisition.ps1, update.module.psm1);
//   - delta-manifest.json with a UTF-8 byte order mark;
//   - only X.Y.Z to a greater X.Y.Z of the same major, and only mode file
//     (K2s's apply copies listed files and never applies a patch).
//
// The entries for the upgrade tooling are listed in Files.Upgrade, never
// installed by release apply.

// upgradeEntry is one entry shipped for the upgrade tooling: generated
// bytes, or an entry of a node package or nested archive copied raw.
type upgradeEntry struct {
	name   string
	data   []byte
	mode   fs.FileMode
	raw    *pkgzip.Entry
	digest pkgzip.Digest
}

// ErrBinaryK2s explains why binary mode and profile k2s do not mix.
var ErrBinaryK2s = errors.New(`mode "binary" cannot be used with profile k2s: K2s's apply copies every file listed in Changed from the delta and only warns "Source missing in delta" for one shipped as a patch (update.module.psm1, PerformClusterUpdate), so it would keep the old binary and still report success; use mode "file", or the generic profile and release apply`)

// checkProfile refuses options a profile cannot build.
func checkProfile(opts Options, s settings) error {
	switch opts.Profile {
	case "":
		if opts.ApplyScript != nil {
			return errors.New("Apply-Delta.ps1 is written with profile k2s only")
		}
		return nil
	case ProfileK2s:
	default:
		return fmt.Errorf("profile %q: want %q or none", opts.Profile, ProfileK2s)
	}
	switch {
	case s.mode == ModeBinary:
		return ErrBinaryK2s
	case opts.ApplyScript == nil:
		return errors.New("profile k2s: no Apply-Delta.ps1 settings (module and function to hand over to)")
	case opts.BaseNode == "" || opts.TargetNode == "":
		return errors.New("profile k2s needs the control plane's node packages of both releases: without debian-delta/ K2s's apply skips the control plane's packages and kubeadm upgrade but still moves VERSION to the target (update.module.psm1, PerformClusterUpdate); pass them (release delta --from-node, --to-node; in a configuration, give the controlPlane OS target both releases)")
	}
	return nil
}

// k2sVersion is what K2s's apply accepts as a version
// (update.module.psm1, Test-DeltaUpgradeVersionIsValid).
var k2sVersion = regexp.MustCompile(`^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$`)

// checkVersions refuses, with profile k2s, a pair of versions K2s's apply
// refuses: both X.Y.Z, the target greater, the major the same.
func (s settings) checkVersions(base, target string) error {
	if s.profile != ProfileK2s {
		return nil
	}
	const why = "K2s's apply accepts only X.Y.Z to a greater X.Y.Z of the same major (update.module.psm1, Test-DeltaUpgradeVersionIsValid)"
	for _, v := range []string{base, target} {
		if !k2sVersion.MatchString(v) {
			return fmt.Errorf("profile k2s: version %s is not a plain X.Y.Z; %s, so ship it as a full package", v, why)
		}
	}
	switch {
	case semver.Compare("v"+base, "v"+target) >= 0:
		return fmt.Errorf("profile k2s: %s is not older than %s; %s", base, target, why)
	case semver.Major("v"+base) != semver.Major("v"+target):
		return fmt.Errorf("profile k2s: %s and %s are of different majors; %s, so upgrade across majors with the full package", base, target, why)
	}
	return nil
}

// listPackageManifest lists the target's package-manifest.json in Changed
// (or Added), so that K2s's in-place apply, which copies only listed files,
// leaves an installation that describes itself; release's own apply
// installs it either way.
func listPackageManifest(m *Manifest) {
	t, inT := m.Files.Target[PackageManifestName]
	b, inB := m.Files.Base[PackageManifestName]
	switch {
	case !inT || (inB && b == t):
		return
	case inB:
		m.Changed = insertSorted(m.Changed, PackageManifestName)
	default:
		m.Added = insertSorted(m.Added, PackageManifestName)
	}
	m.AddedCount, m.ChangedCount = len(m.Added), len(m.Changed)
}

func insertSorted(l []string, p string) []string {
	i, found := slices.BinarySearch(l, p)
	if found {
		return l
	}
	return slices.Insert(l, i, p)
}

// nodeInputs are the control plane's node packages of both releases, open
// for the diffs and, with profile k2s, for the .debs and images to ship.
type nodeInputs struct {
	base, target       *nodepkg.Manifest
	baseZip, targetZip *pkgzip.Reader
}

// openNodes opens opts' node packages, if given. The result is never nil;
// the caller closes it, also on error.
func openNodes(opts Options, baseVersion, targetVersion string) (*nodeInputs, error) {
	n := &nodeInputs{}
	if (opts.BaseNode == "") != (opts.TargetNode == "") {
		return n, errors.New("give both node packages (base and target) or neither")
	}
	if opts.BaseNode == "" {
		return n, nil
	}
	var err error
	if n.baseZip, n.base, err = openNode("base", opts.BaseNode, baseVersion); err != nil {
		return n, err
	}
	if n.targetZip, n.target, err = openNode("target", opts.TargetNode, targetVersion); err != nil {
		return n, err
	}
	if n.base.OS != n.target.OS {
		return n, fmt.Errorf("the node packages are of two OS targets (%s and %s); pass both of the control-plane OS", n.base.OS, n.target.OS)
	}
	deb, img := n.diffs()
	logf(opts.Log, "delta %s..%s: node %s: %d packages added, %d changed, %d removed; %d images added, %d changed, %d removed",
		baseVersion, targetVersion, n.target.OS, deb.AddedCount, deb.ChangedCount, deb.RemovedCount,
		img.AddedCount, img.ChangedCount, img.RemovedCount)
	return n, nil
}

func (n *nodeInputs) close() {
	for _, r := range []*pkgzip.Reader{n.baseZip, n.targetZip} {
		if r != nil {
			r.Close()
		}
	}
}

// diffs are DebianPackageDiff and ContainerImageDiff from the node
// packages, or both unprocessed without them (as K2s leaves them without
// a VM to compare).
func (n *nodeInputs) diffs() (DebianPackageDiff, ContainerImageDiff) {
	if n.base == nil {
		return DebianPackageDiff{}, ContainerImageDiff{}
	}
	return NodeDiffs(n.base, n.target)
}

// openNode opens a node package and checks that it is of the release.
func openNode(role, path, version string) (*pkgzip.Reader, *nodepkg.Manifest, error) {
	r, err := pkgzip.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("%s node package: %w", role, err)
	}
	m, err := nodepkg.ReadManifest(r)
	if err != nil {
		r.Close()
		return nil, nil, fmt.Errorf("%s node package: %w", role, err)
	}
	if m.Version != version {
		r.Close()
		return nil, nil, fmt.Errorf("%s node package %s is release %s, but the %s package is %s; pass the node package of the same release", role, path, m.Version, role, version)
	}
	return r, m, nil
}

// addWindowsImages adds the Windows image tars of the nested archives to
// the image diff, which stays sorted by reference.
func addWindowsImages(d *ContainerImageDiff, base, target map[string]windowsImage) {
	added, changed, removed := windowsImageDiff(base, target)
	if len(added)+len(changed)+len(removed) == 0 {
		return
	}
	for _, l := range []struct {
		names []string
		dst   *[]Image
	}{{added, &d.AddedImages}, {changed, &d.ChangedImages}, {removed, &d.RemovedImages}} {
		for _, n := range l.names {
			*l.dst = append(*l.dst, Image{FullName: windowsImageRef(n), Platform: "windows"})
		}
		slices.SortStableFunc(*l.dst, func(a, b Image) int {
			if c := strings.Compare(a.FullName, b.FullName); c != 0 {
				return c
			}
			return strings.Compare(a.Platform, b.Platform)
		})
	}
	d.AddedCount, d.ChangedCount, d.RemovedCount = len(d.AddedImages), len(d.ChangedImages), len(d.RemovedImages)
}

// LinuxImageFile is the name K2s gives a Linux image archive in
// image-delta/linux/images: the reference with "/" and ":" as "-"
// (New-K2sDelta.ImageAcquisition.ps1).
func LinuxImageFile(ref string) string {
	return strings.NewReplacer("/", "-", ":", "-").Replace(ref) + ".tar"
}

// Folders of the image delta.
const (
	LinuxImagesDir   = ImageDeltaDir + "/linux/images"
	WindowsImagesDir = ImageDeltaDir + "/windows/images"
)

// k2sEntries makes the entries for K2s's upgrade tooling and records them
// in m: Apply-Delta.ps1, image-delta/ and debian-delta/.
func k2sEntries(ctx context.Context, opts Options, m *Manifest, nodes *nodeInputs, bn, tn *nestedContent, date time.Time) ([]upgradeEntry, error) {
	for _, side := range []struct {
		role  string
		files map[string]pkgzip.Digest
	}{{"base", m.Files.Base}, {"target", m.Files.Target}} {
		for _, p := range sortedKeys(side.files) {
			if UpgradeEntry(p) {
				return nil, fmt.Errorf("the %s package holds %s, which a k2s delta keeps for its own %s, %s/ and %s/; rename it in the release", side.role, p, ApplyScriptName, DebianDeltaDir, ImageDeltaDir)
			}
		}
	}
	var out []upgradeEntry
	script, err := applydelta.Script(*opts.ApplyScript)
	if err != nil {
		return nil, err
	}
	if opts.SignScript != nil {
		if script, err = opts.SignScript(ctx, ApplyScriptName, script); err != nil {
			return nil, err
		}
	}
	out = append(out, generated(ApplyScriptName, script, pkgzip.ModeFile))

	linux, err := linuxImages(nodes)
	if err != nil {
		return nil, err
	}
	var images []debiandelta.Image
	for _, e := range linux {
		out = append(out, e)
		images = append(images, debiandelta.Image{File: e.name[len(LinuxImagesDir)+1:], Digest: e.digest})
	}
	added, changed, _ := windowsImageDiff(bn.images, tn.images)
	for _, name := range append(added, changed...) {
		img := tn.images[name]
		out = append(out, upgradeEntry{name: WindowsImagesDir + "/" + name, raw: img.entry, digest: img.digest})
	}

	dd, err := debiandelta.Make(debiandelta.Options{
		Base: nodes.base, Target: nodes.target,
		BasePackage: filepath.Base(opts.BaseNode), TargetPackage: filepath.Base(opts.TargetNode),
		Images: images, Date: date,
	})
	if err != nil {
		return nil, err
	}
	for _, f := range dd.Files {
		mode := pkgzip.ModeFile
		if f.Exec {
			mode = pkgzip.ModeExec
		}
		out = append(out, generated(DebianDeltaDir+"/"+f.Name, f.Data, mode))
	}
	for _, deb := range dd.Debs {
		e := nodes.targetZip.Lookup(deb.Entry)
		if e == nil {
			return nil, fmt.Errorf("target node package %s has no %s, which its manifest lists", nodes.targetZip.Path, deb.Entry)
		}
		out = append(out, upgradeEntry{name: DebianDeltaDir + "/" + debiandelta.PackagesDir + "/" + deb.File, raw: e, digest: deb.Digest})
	}
	dir := DebianDeltaDir
	m.DebianDeltaRelativePath = &dir
	m.DebianOffline = &DebianOffline{
		DebianOfflinePackages: dd.Offline, DebianOfflinePackagesCount: len(dd.Offline),
		DebianOfflineDownloaded: dd.Downloaded, DebianOfflineDownloadedCount: len(dd.Downloaded),
	}

	slices.SortFunc(out, func(a, b upgradeEntry) int { return strings.Compare(a.name, b.name) })
	m.Files.Upgrade = map[string]pkgzip.Digest{}
	for i, e := range out {
		if i > 0 && out[i-1].name == e.name {
			return nil, fmt.Errorf("two entries of the delta are both %s", e.name)
		}
		m.Files.Upgrade[e.name] = e.digest
	}
	return out, nil
}

// linuxImages are the control plane's added and changed images, named for
// image-delta/linux/images and copied raw from the target node package.
func linuxImages(nodes *nodeInputs) ([]upgradeEntry, error) {
	d := nodepkg.Compare(nodes.base, nodes.target)
	imgs := slices.Clone(d.AddedImages)
	for _, c := range d.ChangedImages {
		imgs = append(imgs, c.Target)
	}
	var out []upgradeEntry
	seen := map[string]string{}
	for _, img := range imgs {
		if img.Platform() != "linux" {
			continue
		}
		name := LinuxImageFile(img.Ref)
		if other, dup := seen[name]; dup {
			return nil, fmt.Errorf("images %s and %s both become %s/%s (K2s replaces / and : by -); rename one", other, img.Ref, LinuxImagesDir, name)
		}
		seen[name] = img.Ref
		e := nodes.targetZip.Lookup(img.Entry())
		if e == nil {
			return nil, fmt.Errorf("target node package %s has no %s, which its manifest lists", nodes.targetZip.Path, img.Entry())
		}
		out = append(out, upgradeEntry{name: LinuxImagesDir + "/" + name, raw: e, digest: img.FileDigest()})
	}
	return out, nil
}

func generated(name string, data []byte, mode fs.FileMode) upgradeEntry {
	sum := sha256.Sum256(data)
	return upgradeEntry{name: name, data: data, mode: mode, digest: pkgzip.Digest{SHA256: hex.EncodeToString(sum[:]), Size: int64(len(data))}}
}
