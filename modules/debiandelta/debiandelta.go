// Package debiandelta makes the debian-delta/ folder of a K2s cluster
// delta: the control-plane VM's package upgrade between two releases, in
// the layout K2s's own delta tool writes (Siemens-Healthineers/K2s,
// lib/scripts/k2s/system/package/New-K2sDeltaPackage.ps1, the Debian
// delta section) and its apply runs (update.module.psm1, PerformClusterUpdate
// with DebianDeltaRelativePath, and Invoke-CommandInMasterVM):
//
//	debian-delta/packages.added          name=version, one per line (only when not empty)
//	debian-delta/packages.removed        names (only when not empty)
//	debian-delta/packages.upgraded       "name old new" (only when not empty)
//	debian-delta/expected-k8s-version    X.Y.Z without a newline, when kubelet changes
//	debian-delta/debian-delta-manifest.json
//	debian-delta/apply-debian-delta.sh
//	debian-delta/verify-debian-delta.sh
//	debian-delta/packages/*.deb          the added and upgraded .debs, flat
//	debian-delta/packages/download-manifest.json
//
// K2s copies only apply-debian-delta.sh, packages/ and the Linux image
// archives into the VM (as images/ beside the script) and runs the script
// there without arguments, so both scripts carry everything they check in
// their own text: the base and target package sets and the SHA-256 of every
// .deb and image archive. They are release's own, POSIX sh with coreutils,
// dpkg and awk (K2s's verify script needs jq).
//
// The package sets are those of the control-plane OS target's node
// packages; packages are matched by name and a new Debian version is an
// upgrade (a rebuild with the same version is not, as in K2s).
package debiandelta

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/relcue/release/modules/nodepkg"
	"github.com/relcue/release/modules/pkgzip"
)

// Names inside the folder.
const (
	// Dir is the folder of the cluster delta, DebianDeltaRelativePath.
	Dir = "debian-delta"
	// PackagesDir holds the .debs, flat.
	PackagesDir     = "packages"
	Added           = "packages.added"
	Removed         = "packages.removed"
	Upgraded        = "packages.upgraded"
	ExpectedK8s     = "expected-k8s-version"
	ManifestName    = "debian-delta-manifest.json"
	DownloadName    = "download-manifest.json"
	ApplyScript     = "apply-debian-delta.sh"
	VerifyScript    = "verify-debian-delta.sh"
	kubeletPackage  = "kubelet"
	utf8BOM         = "\uFEFF"
	maxScriptValues = 1 << 16
)

// Image is a Linux image archive the cluster delta ships (in
// image-delta/linux/images) and the apply script imports.
type Image struct {
	// File is its name in the image folder.
	File   string
	Digest pkgzip.Digest
}

// Options are the inputs of Make.
type Options struct {
	// Base and Target are the control plane's node manifests of the two
	// releases.
	Base, Target *nodepkg.Manifest
	// BasePackage and TargetPackage are the node packages' file names,
	// recorded as the sources (K2s records its two VHDX images).
	BasePackage, TargetPackage string
	// Images are the image archives shipped beside the folder.
	Images []Image
	// Date is GeneratedUtc.
	Date time.Time
}

// File is one file of the folder, relative to Dir.
type File struct {
	Name string
	Data []byte
	Exec bool
}

// Deb is one .deb to ship: the target node package's entry, copied to
// packages/File.
type Deb struct {
	// Entry is the entry name in the target node package.
	Entry  string
	File   string
	Digest pkgzip.Digest
}

// Delta is the folder's content.
type Delta struct {
	// Files are the files Make wrote, sorted by Name.
	Files []File
	// Debs are the .debs to copy, sorted by File.
	Debs []Deb
	// Offline are the "name=version" of the shipped .debs and Downloaded
	// their paths in the cluster delta (debian-delta/packages/<file>), for
	// K2s's DebianOfflinePackages and DebianOfflineDownloaded.
	Offline    []string
	Downloaded []string
}

// Manifest is debian-delta-manifest.json, in K2s's field order.
type Manifest struct {
	SourceVhdxOld        string
	SourceVhdxNew        string
	Added                []string
	Removed              []string
	Upgraded             []string
	AddedCount           int
	RemovedCount         int
	UpgradedCount        int
	OfflinePackages      []string
	OfflinePackagesCount int
	GeneratedUtc         string
}

// downloadManifest is packages/download-manifest.json.
type downloadManifest struct {
	Downloaded      []string
	DownloadedCount int
	GeneratedUtc    string
}

// Values the scripts embed in their text: a quote, a newline or a shell
// character in one would change what the script does, so each is checked
// against what Debian and release allow.
var (
	debNameRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)
	debVersionRE = regexp.MustCompile(`^[A-Za-z0-9.+~:-]+$`)
	fileRE       = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+~%-]*$`)
	sha256RE     = regexp.MustCompile(`^[0-9a-f]{64}$`)
	k8sVersionRE = regexp.MustCompile(`^([0-9]+\.[0-9]+\.[0-9]+)`)
)

// Make computes the folder from the two node manifests.
func Make(opts Options) (*Delta, error) {
	if opts.Base == nil || opts.Target == nil {
		return nil, fmt.Errorf("debian delta: both node manifests are needed")
	}
	if opts.Base.OS != opts.Target.OS {
		return nil, fmt.Errorf("debian delta: the node packages are of two OS targets (%s and %s)", opts.Base.OS, opts.Target.OS)
	}
	s, err := newSets(opts.Base, opts.Target)
	if err != nil {
		return nil, fmt.Errorf("debian delta %s..%s: %w", opts.Base.Version, opts.Target.Version, err)
	}
	for _, img := range opts.Images {
		if !fileRE.MatchString(img.File) || !sha256RE.MatchString(img.Digest.SHA256) {
			return nil, fmt.Errorf("debian delta: image archive %q (sha256 %q) cannot be named in a script", img.File, img.Digest.SHA256)
		}
	}
	date := opts.Date.UTC().Format(time.RFC3339)
	d := &Delta{Debs: s.debs}
	for _, deb := range s.debs {
		d.Downloaded = append(d.Downloaded, Dir+"/"+PackagesDir+"/"+deb.File)
	}
	d.Offline = s.offline

	add := func(name string, data []byte, exec bool) {
		d.Files = append(d.Files, File{Name: name, Data: data, Exec: exec})
	}
	if len(s.added) > 0 {
		add(Added, lines(s.added), false)
	}
	if len(s.removed) > 0 {
		add(Removed, lines(s.removed), false)
	}
	if len(s.upgraded) > 0 {
		add(Upgraded, lines(s.upgraded), false)
	}
	if s.k8s != "" {
		add(ExpectedK8s, []byte(s.k8s), false)
	}
	m := Manifest{
		SourceVhdxOld: opts.BasePackage, SourceVhdxNew: opts.TargetPackage,
		Added: s.added, Removed: s.removed, Upgraded: s.upgraded,
		AddedCount: len(s.added), RemovedCount: len(s.removed), UpgradedCount: len(s.upgraded),
		OfflinePackages: s.offline, OfflinePackagesCount: len(s.offline),
		GeneratedUtc: date,
	}
	data, err := marshalBOM(m)
	if err != nil {
		return nil, err
	}
	add(ManifestName, data, false)
	files := make([]string, 0, len(s.debs))
	for _, deb := range s.debs {
		files = append(files, deb.File)
	}
	if data, err = marshalBOM(downloadManifest{Downloaded: files, DownloadedCount: len(files), GeneratedUtc: date}); err != nil {
		return nil, err
	}
	add(PackagesDir+"/"+DownloadName, data, false)

	sd := scriptData{
		BaseVersion: opts.Base.Version, TargetVersion: opts.Target.Version,
		BaseSet: s.baseSet, TargetSet: s.targetSet, Purge: s.removed,
		K8s: s.k8s,
	}
	for _, deb := range s.debs {
		sd.Debs = append(sd.Debs, sum{deb.Digest.SHA256, deb.File})
	}
	for _, img := range opts.Images {
		sd.Images = append(sd.Images, sum{img.Digest.SHA256, img.File})
	}
	slices.SortFunc(sd.Images, func(a, b sum) int { return strings.Compare(a.File, b.File) })
	for _, sc := range []struct {
		name, tmpl string
	}{{ApplyScript, "apply"}, {VerifyScript, "verify"}} {
		text, err := render(sc.tmpl, sd)
		if err != nil {
			return nil, err
		}
		add(sc.name, text, true)
	}
	slices.SortFunc(d.Files, func(a, b File) int { return strings.Compare(a.Name, b.Name) })
	return d, nil
}

// sets are the package lists of one delta.
type sets struct {
	// added is "name=version", removed names, upgraded "name old new"
	// (K2s's packages.* formats); offline the "name=version" of every
	// shipped .deb.
	added, removed, upgraded, offline []string
	// baseSet and targetSet are "name=version" of every package.
	baseSet, targetSet []string
	debs               []Deb
	// k8s is the X.Y.Z kubelet goes to, when it changes.
	k8s string
}

func newSets(base, target *nodepkg.Manifest) (*sets, error) {
	s := &sets{}
	bp := map[string]nodepkg.Package{}
	for _, p := range base.Packages {
		if err := checkPackage(p); err != nil {
			return nil, fmt.Errorf("base node package: %w", err)
		}
		bp[p.Package] = p
		s.baseSet = append(s.baseSet, p.Package+"="+p.Version)
	}
	tp := map[string]bool{}
	files := map[string]string{} // flat file name -> package
	for _, p := range target.Packages {
		if err := checkPackage(p); err != nil {
			return nil, fmt.Errorf("target node package: %w", err)
		}
		tp[p.Package] = true
		s.targetSet = append(s.targetSet, p.Package+"="+p.Version)
		b, ok := bp[p.Package]
		switch {
		case !ok:
			s.added = append(s.added, p.Package+"="+p.Version)
		case b.Version != p.Version:
			s.upgraded = append(s.upgraded, p.Package+" "+b.Version+" "+p.Version)
		default:
			continue
		}
		s.offline = append(s.offline, p.Package+"="+p.Version)
		file := p.Path[strings.LastIndex(p.Path, "/")+1:]
		if other, dup := files[file]; dup {
			return nil, fmt.Errorf("packages %s and %s both ship as %s in the flat packages folder; rename one", other, p.Package, file)
		}
		files[file] = p.Package
		s.debs = append(s.debs, Deb{Entry: p.Entry(target.OSDir), File: file, Digest: p.FileDigest()})
		if p.Package == kubeletPackage {
			v := p.Version
			if _, after, ok := strings.Cut(v, ":"); ok {
				v = after // an epoch is not part of the Kubernetes version
			}
			m := k8sVersionRE.FindStringSubmatch(v)
			if m == nil {
				return nil, fmt.Errorf("kubelet %s: its version does not start with the Kubernetes version X.Y.Z, which expected-k8s-version needs", p.Version)
			}
			s.k8s = m[1]
		}
	}
	for _, p := range base.Packages {
		if !tp[p.Package] {
			s.removed = append(s.removed, p.Package)
		}
	}
	for _, l := range [][]string{s.added, s.removed, s.upgraded, s.offline, s.baseSet, s.targetSet} {
		slices.Sort(l)
	}
	slices.SortFunc(s.debs, func(a, b Deb) int { return strings.Compare(a.File, b.File) })
	if len(s.baseSet)+len(s.targetSet) > maxScriptValues {
		return nil, fmt.Errorf("%d packages are more than the scripts carry (%d)", len(s.baseSet)+len(s.targetSet), maxScriptValues)
	}
	return s, nil
}

func checkPackage(p nodepkg.Package) error {
	file := p.Path[strings.LastIndex(p.Path, "/")+1:]
	switch {
	case !debNameRE.MatchString(p.Package):
		return fmt.Errorf("package name %q is not a Debian package name", p.Package)
	case !debVersionRE.MatchString(p.Version):
		return fmt.Errorf("package %s: version %q is not a Debian version", p.Package, p.Version)
	case !fileRE.MatchString(file) || !strings.HasSuffix(file, ".deb"):
		return fmt.Errorf("package %s: file name %q cannot be named in a script", p.Package, file)
	case !sha256RE.MatchString(p.SHA256):
		return fmt.Errorf("package %s: sha256 %q is malformed", p.Package, p.SHA256)
	}
	return nil
}

// lines joins with LF and ends with one: the files are read in the Linux
// VM, where a CR would become part of the last field.
func lines(l []string) []byte { return []byte(strings.Join(l, "\n") + "\n") }

// marshalBOM encodes v indented, with the UTF-8 byte order mark Windows
// PowerShell 5.1's Out-File -Encoding UTF8 writes, which K2s's readers
// expect; lists are never null.
func marshalBOM(v any) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString(utf8BOM)
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(nonNil(v)); err != nil {
		return nil, fmt.Errorf("debian delta: %w", err)
	}
	return buf.Bytes(), nil
}

// nonNil replaces nil lists by empty ones.
func nonNil(v any) any {
	switch m := v.(type) {
	case Manifest:
		for _, l := range []*[]string{&m.Added, &m.Removed, &m.Upgraded, &m.OfflinePackages} {
			if *l == nil {
				*l = []string{}
			}
		}
		return m
	case downloadManifest:
		if m.Downloaded == nil {
			m.Downloaded = []string{}
		}
		return m
	}
	return v
}
