package nodedelta

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/relcue/release/internal/strictjson"
	"github.com/relcue/release/modules/delta"
	"github.com/relcue/release/modules/pkgzip"
)

// The shape of a node delta's delta-manifest.json follows K2s's
// New-K2sNodeDeltaPackage.ps1 (Siemens-Healthineers/K2s,
// lib/scripts/k2s/system/package): the cluster delta's fields with
// ManifestVersion "2.0" and DeltaType "node-package";
//
//   - Added/Changed/Removed are zip paths (packages/<os>/<group>/<file>.deb,
//     images/<file>.tar) compared file by file, as K2s does;
//   - DebianPackageDiff lists .deb paths relative to packages/<os>
//     (DebianDeltaRelativePath);
//   - ContainerImageDiff maps tar file names to {FullName, ImageId, Size},
//     ImageId being the first 12 hex digits of the image's config digest and
//     Size the archive's size in K2s's human format ("12.3 MB").
//
// Where release differs on purpose:
//   - DebianPackageDiff matches packages by their Debian name (from the
//     .debs' control data), not by file path: an upgrade is one Changed
//     entry (the target's path), not a removal and an addition. The file
//     level view stays in Added/Changed/Removed and packages.removed;
//   - GeneratedUtc is the fixed build date, not the wall clock;
//   - K2s's VM-specific fields (GuestConfigDiff, DebianOfflinePackages,
//     OldLinuxImages, ...) are not written;
//   - release adds OS and OSDir, and Files: the SHA-256 and size of every
//     entry of the zip besides delta-manifest.json itself.

// Names inside a node delta zip.
const (
	ManifestName    = delta.ManifestName
	ManifestVersion = delta.ManifestVersion
	HashAlgorithm   = delta.HashAlgorithm
	// DeltaType tells a node delta from a cluster delta.
	DeltaType = "node-package"

	// PackagesRemoved lists, one per line, the .deb paths (relative to
	// packages/<os>) of the base that the target no longer has;
	// ImagesRemoved the image archive names.
	PackagesRemoved = "packages.removed"
	ImagesRemoved   = "images.removed"
	// PackagesBase and PackagesTarget list "name=version" for every
	// package of the base and target node package, sorted by name.
	PackagesBase   = "packages.base"
	PackagesTarget = "packages.target"
	// Sums is "<sha256>  <path>" for every entry besides itself and the
	// manifest, as sha256sum writes it.
	Sums = "SHA256SUMS"
	// ApplyScript and VerifyScript run on the node (POSIX sh).
	ApplyScript  = "apply-node-delta.sh"
	VerifyScript = "verify-node-delta.sh"
)

// maxManifestSize bounds how much of delta-manifest.json is read.
const maxManifestSize = 64 << 20

// Manifest is a node delta's delta-manifest.json. Fields without tags are
// encoded with their Go names, which are K2s's names.
type Manifest struct {
	ManifestVersion string
	DeltaType       string
	GeneratedUtc    string
	// BasePackage and TargetPackage are the node package file names;
	// BaseVersion and TargetVersion the product releases.
	BasePackage   string
	TargetPackage string
	BaseVersion   string
	TargetVersion string
	// Always empty for node deltas; present because K2s writes them.
	WholeDirectories         []string
	WholeDirectoriesCount    int
	SpecialSkippedFiles      []string
	SpecialSkippedFilesCount int
	// Added, Changed and Removed are sorted zip paths.
	Added         []string
	Changed       []string
	Removed       []string
	AddedCount    int
	ChangedCount  int
	RemovedCount  int
	HashAlgorithm string
	// DebianPackageDiff lists .deb paths relative to DebianDeltaRelativePath.
	DebianPackageDiff       delta.DebianPackageDiff
	DebianDeltaRelativePath string
	ContainerImageDiff      ImageDiff

	// OS and OSDir (release extension) name the OS target.
	OS    string
	OSDir string
	// Files (release extension) has every entry of the zip besides
	// delta-manifest.json.
	Files map[string]pkgzip.Digest
}

// ImageDiff is K2s's ContainerImageDiff of a node delta: maps from image
// archive names to what they hold.
type ImageDiff struct {
	AddedImages   map[string]ImageInfo
	RemovedImages map[string]ImageInfo
	ChangedImages map[string]ImageInfo
	AddedCount    int
	RemovedCount  int
	ChangedCount  int
}

// ImageInfo describes one image archive the K2s way.
type ImageInfo struct {
	FullName string
	// ImageId is the first 12 hex digits of the config digest (of the first platform image for a multi-platform image).
	ImageId string
	// Size is the archive size, human-readable ("1.5 MB", "12 KB", "512 B").
	Size string
}

// Marshal encodes m canonically: indented, map keys sorted, empty lists as
// [], final newline.
func (m *Manifest) Marshal() ([]byte, error) {
	c := *m
	c.normalize()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(&c); err != nil {
		return nil, fmt.Errorf("encode %s: %w", ManifestName, err)
	}
	return buf.Bytes(), nil
}

func (m *Manifest) normalize() {
	for _, l := range []*[]string{&m.WholeDirectories, &m.SpecialSkippedFiles, &m.Added, &m.Changed, &m.Removed,
		&m.DebianPackageDiff.Added, &m.DebianPackageDiff.Removed, &m.DebianPackageDiff.Changed} {
		if *l == nil {
			*l = []string{}
		}
	}
	for _, mp := range []*map[string]ImageInfo{&m.ContainerImageDiff.AddedImages, &m.ContainerImageDiff.RemovedImages, &m.ContainerImageDiff.ChangedImages} {
		if *mp == nil {
			*mp = map[string]ImageInfo{}
		}
	}
	if m.Files == nil {
		m.Files = map[string]pkgzip.Digest{}
	}
}

// ParseManifest decodes and validates a node delta's delta-manifest.json
// strictly: unknown fields, another DeltaType or version, counts that
// disagree with their lists, unsorted or unsafe paths, malformed hashes and
// lists that disagree with Files are errors.
func ParseManifest(data []byte) (*Manifest, error) {
	var m Manifest
	if err := strictjson.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", ManifestName, err)
	}
	m.normalize()
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", ManifestName, err)
	}
	return &m, nil
}

// ReadManifest reads delta-manifest.json from an open node delta and
// checks that the zip holds exactly the entries of Files with their sizes.
func ReadManifest(r *pkgzip.Reader) (*Manifest, error) {
	e := r.Lookup(ManifestName)
	if e == nil {
		return nil, fmt.Errorf("%s: no %s at the root; it is not a node delta", r.Path, ManifestName)
	}
	if e.Size > maxManifestSize {
		return nil, fmt.Errorf("%s: %s is %d bytes, more than the %d a node delta manifest may have", r.Path, ManifestName, e.Size, maxManifestSize)
	}
	rc, err := e.Open()
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(rc, maxManifestSize+1))
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("%s: read %s: %w", r.Path, ManifestName, err)
	}
	m, err := ParseManifest(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.Path, err)
	}
	for _, ent := range r.Entries {
		if ent.Name == ManifestName {
			continue
		}
		d, ok := m.Files[ent.Name]
		if !ok {
			return nil, fmt.Errorf("%s: entry %s is not listed in %s Files; the delta was modified after it was built, rebuild it", r.Path, ent.Name, ManifestName)
		}
		if d.Size != ent.Size {
			return nil, fmt.Errorf("%s: entry %s is %d bytes but %s says %d; the delta is corrupt, download or build it again", r.Path, ent.Name, ent.Size, ManifestName, d.Size)
		}
	}
	for _, p := range slices.Sorted(maps.Keys(m.Files)) {
		if r.Lookup(p) == nil {
			return nil, fmt.Errorf("%s: %s lists %s in Files but the zip has no such entry; the delta is incomplete, download or build it again", r.Path, ManifestName, p)
		}
	}
	return m, nil
}

// validate runs the checks in order and returns the first failure. They
// are split by what they check: the header fields, the counts, the paths,
// the hashes, and how the lists agree with what the zip ships.
func (m *Manifest) validate() error {
	for _, check := range []func() error{m.checkHeader, m.checkNames, m.checkCounts, m.checkPaths, m.checkFileHashes, m.checkShipped} {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

// checkHeader checks the format and the fields a node delta fixes.
func (m *Manifest) checkHeader() error {
	switch {
	case m.ManifestVersion != ManifestVersion:
		return fmt.Errorf("ManifestVersion is %q; this release reads %q only", m.ManifestVersion, ManifestVersion)
	case m.DeltaType != DeltaType:
		return fmt.Errorf("DeltaType is %q, not %q: it is not a node delta", m.DeltaType, DeltaType)
	case m.HashAlgorithm != HashAlgorithm:
		return fmt.Errorf("HashAlgorithm is %q; this release reads %q only", m.HashAlgorithm, HashAlgorithm)
	case len(m.WholeDirectories) > 0 || len(m.SpecialSkippedFiles) > 0:
		return fmt.Errorf("a node delta has no WholeDirectories or SpecialSkippedFiles")
	case m.DebianDeltaRelativePath != "packages/"+m.OSDir:
		return fmt.Errorf("DebianDeltaRelativePath is %q, want %q", m.DebianDeltaRelativePath, "packages/"+m.OSDir)
	case !m.DebianPackageDiff.Processed:
		return fmt.Errorf("DebianPackageDiff.Processed is false; a node delta always has its package diff")
	}
	if _, err := time.Parse(time.RFC3339, m.GeneratedUtc); err != nil {
		return fmt.Errorf("GeneratedUtc %q is not an RFC 3339 time: %w", m.GeneratedUtc, err)
	}
	return nil
}

// checkNames checks the package, release and OS names, which node scripts
// and file names use.
func (m *Manifest) checkNames() error {
	for _, f := range []struct{ name, v string }{
		{"BasePackage", m.BasePackage}, {"TargetPackage", m.TargetPackage},
		{"BaseVersion", m.BaseVersion}, {"TargetVersion", m.TargetVersion}, {"OS", m.OS}, {"OSDir", m.OSDir},
	} {
		if f.v == "" || strings.TrimSpace(f.v) != f.v || strings.ContainsAny(f.v, "\r\n\x00/\\") {
			return fmt.Errorf("%s %q must be a non-empty single word without slashes", f.name, f.v)
		}
	}
	return nil
}

// checkCounts checks every K2s count against its list.
func (m *Manifest) checkCounts() error {
	counts := []struct {
		name        string
		list, count int
	}{
		{"WholeDirectories", len(m.WholeDirectories), m.WholeDirectoriesCount},
		{"SpecialSkippedFiles", len(m.SpecialSkippedFiles), m.SpecialSkippedFilesCount},
		{"Added", len(m.Added), m.AddedCount},
		{"Changed", len(m.Changed), m.ChangedCount},
		{"Removed", len(m.Removed), m.RemovedCount},
		{"DebianPackageDiff.Added", len(m.DebianPackageDiff.Added), m.DebianPackageDiff.AddedCount},
		{"DebianPackageDiff.Removed", len(m.DebianPackageDiff.Removed), m.DebianPackageDiff.RemovedCount},
		{"DebianPackageDiff.Changed", len(m.DebianPackageDiff.Changed), m.DebianPackageDiff.ChangedCount},
		{"ContainerImageDiff.AddedImages", len(m.ContainerImageDiff.AddedImages), m.ContainerImageDiff.AddedCount},
		{"ContainerImageDiff.RemovedImages", len(m.ContainerImageDiff.RemovedImages), m.ContainerImageDiff.RemovedCount},
		{"ContainerImageDiff.ChangedImages", len(m.ContainerImageDiff.ChangedImages), m.ContainerImageDiff.ChangedCount},
	}
	for _, c := range counts {
		if c.list != c.count {
			return fmt.Errorf("%s has %d entries but its count says %d", c.name, c.list, c.count)
		}
	}
	return nil
}

// checkPaths checks that the lists hold payload paths the node scripts
// can handle, sorted and unique.
func (m *Manifest) checkPaths() error {
	pkgs := m.packagesPrefix()
	for _, l := range []struct {
		name   string
		paths  []string
		prefix string
	}{
		{"Added", m.Added, ""}, {"Changed", m.Changed, ""}, {"Removed", m.Removed, ""},
		{"DebianPackageDiff.Added", m.DebianPackageDiff.Added, pkgs},
		{"DebianPackageDiff.Removed", m.DebianPackageDiff.Removed, pkgs},
		{"DebianPackageDiff.Changed", m.DebianPackageDiff.Changed, pkgs},
	} {
		for i, p := range l.paths {
			if err := checkPayloadPath(l.prefix+p, m.OSDir); err != nil {
				return fmt.Errorf("%s: %w", l.name, err)
			}
			if i > 0 && l.paths[i-1] >= p {
				return fmt.Errorf("%s is not sorted and unique at %q", l.name, p)
			}
		}
	}
	return nil
}

// checkFileHashes checks the paths and digests of Files.
func (m *Manifest) checkFileHashes() error {
	for _, p := range slices.Sorted(maps.Keys(m.Files)) {
		if err := delta.CheckPath(p); err != nil {
			return fmt.Errorf("field Files: %w", err)
		}
		d := m.Files[p]
		if !validSHA256(d.SHA256) || d.Size < 0 {
			return fmt.Errorf("field Files[%s]: SHA256 %q / Size %d is not 64 lower-case hex digits and a size", p, d.SHA256, d.Size)
		}
	}
	return nil
}

// checkShipped checks that what the K2s lists announce is exactly what
// the zip ships.
func (m *Manifest) checkShipped() error {
	shipped := map[string]bool{}
	for _, p := range append(slices.Clone(m.Added), m.Changed...) {
		if _, ok := m.Files[p]; !ok {
			return fmt.Errorf("%s is listed as added or changed but Files has no hash for it", p)
		}
		shipped[p] = true
	}
	for _, p := range m.Removed {
		if _, ok := m.Files[p]; ok || shipped[p] {
			return fmt.Errorf("%s is listed as removed but also shipped", p)
		}
	}
	for _, p := range slices.Sorted(maps.Keys(m.Files)) {
		if !shipped[p] && isPayload(p) {
			return fmt.Errorf("field Files has %s, which is neither in Added nor in Changed", p)
		}
	}
	return m.checkDiffsShipped(shipped)
}

// checkDiffsShipped checks that every package and image the diffs list as
// added or changed is in the zip.
func (m *Manifest) checkDiffsShipped(shipped map[string]bool) error {
	pkgs := m.packagesPrefix()
	for _, l := range [][]string{m.DebianPackageDiff.Added, m.DebianPackageDiff.Changed} {
		for _, p := range l {
			if !shipped[pkgs+p] {
				return fmt.Errorf("DebianPackageDiff lists %s as added or changed, but the delta does not ship %s", p, pkgs+p)
			}
		}
	}
	for _, mp := range []map[string]ImageInfo{m.ContainerImageDiff.AddedImages, m.ContainerImageDiff.ChangedImages} {
		for f := range mp {
			if !shipped[imagesDir+f] {
				return fmt.Errorf("ContainerImageDiff lists %s as added or changed, but the delta does not ship %s", f, imagesDir+f)
			}
		}
	}
	return nil
}

// packagesPrefix is the zip folder DebianPackageDiff's paths are relative to.
func (m *Manifest) packagesPrefix() string { return "packages/" + m.OSDir + "/" }

const imagesDir = "images/"

// isPayload reports whether a zip path is a .deb or an image archive (as
// opposed to the helper files and scripts at the root).
func isPayload(p string) bool { return strings.Contains(p, "/") }

// checkPayloadPath checks a .deb or image archive path of the zip.
func checkPayloadPath(p, osDir string) error {
	segs := strings.Split(p, "/")
	switch {
	case len(segs) == 4 && segs[0] == "packages" && segs[1] == osDir && strings.HasSuffix(p, ".deb"):
	case len(segs) == 2 && segs[0] == "images" && strings.HasSuffix(p, ".tar"):
	default:
		return fmt.Errorf("%q is neither packages/%s/<group>/<file>.deb nor images/<file>.tar", p, osDir)
	}
	for _, s := range segs {
		if !safeSegment(s) {
			return fmt.Errorf("%q has a name node scripts could not handle safely", p)
		}
	}
	return nil
}

func safeSegment(s string) bool {
	if s == "" || s == "." || s == ".." || s[0] == '-' {
		return false
	}
	for _, c := range s {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', strings.ContainsRune("._+~@=-", c):
		default:
			return false
		}
	}
	return true
}

func validSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// HumanSize formats n the way K2s's node delta does (Format-ImageSize):
// one decimal and "MB" from 1 MiB, whole "KB" from 1 KiB, else bytes, with
// thousands separators of the invariant culture and .NET's rounding of
// halves away from zero.
func HumanSize(n int64) string {
	switch {
	case n >= 1<<20:
		return groupThousands(fmt.Sprintf("%.1f", math.Round(float64(n)*10/(1<<20))/10)) + " MB"
	case n >= 1<<10:
		return groupThousands(fmt.Sprintf("%.0f", math.Round(float64(n)/(1<<10)))) + " KB"
	}
	return fmt.Sprintf("%d B", n)
}

func groupThousands(s string) string {
	intPart, frac, hasFrac := strings.Cut(s, ".")
	var b strings.Builder
	for i, c := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if hasFrac {
		b.WriteByte('.')
		b.WriteString(frac)
	}
	return b.String()
}
