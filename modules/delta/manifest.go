package delta

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/relcue/release/internal/strictjson"
	"github.com/relcue/release/modules/pkgzip"
)

// The shape of delta-manifest.json follows K2s
// (Siemens-Healthineers/K2s, lib/scripts/k2s/system/package/
// New-K2sDelta.Manifest.ps1, New-K2sDelta.Skip.ps1 and the
// Get-SkippedFileDebianPackageDiff helper in New-K2sDelta.Debian.ps1):
//
//   - the top-level field names are PascalCase, ManifestVersion is "2.0",
//     HashAlgorithm "SHA256", and K2s also writes WholeDirectoriesCount and
//     SpecialSkippedFilesCount next to the lists, so release does as well;
//   - Added/Changed/Removed never contain files under a wholesale directory
//     (Compare-FileMaps skips them) and the wholesale directories are staged
//     complete from the target package;
//   - skipped files are dropped from the diff and from the staged wholesale
//     directories (Remove-SpecialSkippedFilesFromStage), so a skip rule wins
//     over a wholesale directory;
//   - DebianPackageDiff is {Processed, Error, File, OldRelativePath,
//     NewRelativePath, Added, Removed, Changed, AddedCount, RemovedCount,
//     ChangedCount}; its entries are "name=version" (added/removed) and
//     "name: old -> new" (changed);
//   - ContainerImageDiff is {AddedImages, RemovedImages, ChangedImages,
//     AddedCount, RemovedCount, ChangedCount} with images {FullName, Platform}.
//
// Where release differs on purpose:
//   - K2s's SpecialSkippedFiles is its list of skip *patterns* (file names);
//     release lists the package paths its skip rules actually removed, and
//     keeps the patterns in its own SkipRules field;
//   - GeneratedUtc is the fixed build date (RFC 3339, second precision), not
//     the wall clock, so that deltas are reproducible;
//   - a file whose content is equal but whose executable bit differs counts
//     as Changed (K2s targets Windows, where there is no such bit);
//   - K2s stores no hashes. release adds Files (see FileHashes) so that
//     apply can check the installation before and after.

// Names and constants of the delta format.
const (
	// ManifestName is the manifest entry at the root of a delta zip.
	ManifestName = "delta-manifest.json"
	// ManifestVersion is the K2s manifest version release writes and reads.
	ManifestVersion = "2.0"
	// HashAlgorithm is the only algorithm release uses for Files.
	HashAlgorithm = "SHA256"
	// PackageManifestName is the full package's own manifest. It is never
	// part of the diff, but the target's copy is shipped so that an applied
	// installation keeps describing itself.
	PackageManifestName = "package-manifest.json"
	// VersionFile holds the package version at the root of a full package.
	VersionFile = "VERSION"

	// ApplyStateDir and ApplyLockFile are reserved at the root of an
	// installation for modules/apply (staging, backups, journal, lock). A
	// package that contains them could not be applied safely, so Build and
	// ParseManifest refuse them.
	ApplyStateDir = ".release-apply"
	ApplyLockFile = ".release-apply.lock"
	// InstallRecord is reserved at the root of an installation for the
	// record modules/apply keeps of what the installation should hold
	// (written by release install, updated by every release apply), which
	// release verify --install-dir checks it against. A package shipping
	// the name would overwrite that record.
	InstallRecord = ".release-installed.json"
)

// maxManifestSize bounds how much of delta-manifest.json is read. A delta of
// a few hundred thousand files stays far below it; anything larger is not a
// manifest release wrote.
const maxManifestSize = 256 << 20

// Manifest is delta-manifest.json. Fields without tags are encoded with
// their Go names, which are K2s's names.
type Manifest struct {
	ManifestVersion string
	// GeneratedUtc is the build date, RFC 3339 in UTC.
	GeneratedUtc string
	// BasePackage and TargetPackage are the file names (no directories) of
	// the full packages the delta was made from.
	BasePackage   string
	TargetPackage string
	// BaseVersion and TargetVersion are the trimmed VERSION files.
	BaseVersion   string
	TargetVersion string
	// WholeDirectories are shipped complete and replace the installed
	// directory: files in it that the target does not have are removed.
	WholeDirectories      []string
	WholeDirectoriesCount int
	// SpecialSkippedFiles are the paths present in the base or the target
	// that the skip rules excluded; apply never touches them.
	SpecialSkippedFiles      []string
	SpecialSkippedFilesCount int
	// Added, Changed and Removed are sorted forward-slash paths outside the
	// wholesale directories.
	Added        []string
	Changed      []string
	Removed      []string
	AddedCount   int
	ChangedCount int
	RemovedCount int
	// HashAlgorithm names the algorithm of Files.
	HashAlgorithm     string
	DebianPackageDiff DebianPackageDiff
	// DebianDeltaRelativePath is K2s's field naming the debian-delta/
	// folder, whose apply-debian-delta.sh K2s's apply runs in the control
	// plane VM; written with profile k2s only.
	DebianDeltaRelativePath *string `json:",omitempty"`
	// DebianOffline holds K2s's DebianOffline* fields, written with the
	// debian-delta/ folder.
	*DebianOffline
	ContainerImageDiff ContainerImageDiff

	// Profile (release extension) is "k2s" for a delta made with that
	// profile; absent for release's generic format.
	Profile string `json:",omitempty"`
	// SkipRules (release extension) are the glob patterns (internal/glob)
	// the delta was built with. apply also leaves installed files matching
	// them alone, such as cluster-local configuration that no package has.
	SkipRules []string
	// SkipNames (release extension) are file names skipped wherever they
	// are, in any letter case (K2s's special skipped files).
	SkipNames []string `json:",omitempty"`
	// Mandatory (release extension) are the files the delta ships although
	// they did not change, because the upgrade's entry points run them
	// from the extracted delta (deltas.always). They are in Files.Base and
	// Files.Target with one digest; apply checks them and writes nothing.
	Mandatory []string `json:",omitempty"`
	// Files (release extension) carries the hashes apply verifies.
	Files FileHashes
	// DeltaMode (release extension) is "binary" for a delta that may ship
	// changed files as patches; absent for K2s's file mode.
	DeltaMode string `json:",omitempty"`
	// Patches (release extension) are the changed files shipped as
	// patches, by path: the zip holds Patch.Entry instead of the file, and
	// only release apply can install them.
	Patches map[string]Patch `json:",omitempty"`
}

// Delta modes.
const (
	ModeFile   = "file"
	ModeBinary = "binary"
)

// FileHashes is release's extension to the K2s manifest:
//
//	"Files": {
//	  "Base":   {"<path>": {"SHA256": "<hex>", "Size": <bytes>}, ...},
//	  "Target": {"<path>": {"SHA256": "<hex>", "Size": <bytes>}, ...}
//	}
//
// Target has every file apply writes: Added, Changed, every target file under
// a wholesale directory, and the target's package-manifest.json; these are
// exactly the zip's entries besides delta-manifest.json. Base has every base
// file apply replaces or removes: Changed, Removed, every base file under a
// wholesale directory, and the base's package-manifest.json. A path in Base
// but not in Target is removed by apply.
type FileHashes struct {
	Base   map[string]pkgzip.Digest
	Target map[string]pkgzip.Digest
	// Upgrade has the entries shipped for the product's own upgrade
	// tooling rather than for the installation (profile k2s:
	// Apply-Delta.ps1, debian-delta/, image-delta/): release apply never
	// installs them, release verify checks them like the rest.
	Upgrade map[string]pkgzip.Digest `json:",omitempty"`
}

// DebianOffline are K2s's DebianOfflinePackages ("name=version" of the
// .debs debian-delta/ ships) and DebianOfflineDownloaded (their paths in
// the delta), with their counts.
type DebianOffline struct {
	DebianOfflinePackages        []string
	DebianOfflinePackagesCount   int
	DebianOfflineDownloaded      []string
	DebianOfflineDownloadedCount int
}

// DebianPackageDiff describes how the Debian packages of the Linux node
// changed (K2s shape). Processed is false until a later step fills it.
type DebianPackageDiff struct {
	Processed       bool
	Error           *string
	File            *string
	OldRelativePath *string
	NewRelativePath *string
	// Added and Removed are "name=version"; Changed is "name: old -> new".
	Added        []string
	Removed      []string
	Changed      []string
	AddedCount   int
	RemovedCount int
	ChangedCount int
}

// ContainerImageDiff describes how the container images changed (K2s shape).
type ContainerImageDiff struct {
	AddedImages   []Image
	RemovedImages []Image
	ChangedImages []Image
	AddedCount    int
	RemovedCount  int
	ChangedCount  int
}

// Image is one container image reference and its platform ("linux" or
// "windows").
type Image struct {
	FullName string
	Platform string
}

// ProfileK2s is the Profile of a delta K2s's own upgrade code applies.
const ProfileK2s = "k2s"

// Marshal encodes m the way Build writes it: indented, keys of maps sorted,
// empty lists as [] rather than null, with a final newline; with profile
// k2s, after a UTF-8 byte order mark.
func (m *Manifest) Marshal() ([]byte, error) {
	c := *m
	c.normalize()
	var buf bytes.Buffer
	if c.Profile == ProfileK2s {
		// K2s's tools run under Windows PowerShell 5.1, whose Get-Content
		// reads a file without it as ANSI, which mangles every non-ASCII
		// path; its Out-File -Encoding UTF8 writes one.
		buf.WriteString(strictjson.BOM)
	}
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(&c); err != nil {
		return nil, fmt.Errorf("encode %s: %w", ManifestName, err)
	}
	return buf.Bytes(), nil
}

// normalize replaces nil lists and maps by empty ones so that the JSON has
// no nulls where a list is meant, whatever the caller built.
func (m *Manifest) normalize() {
	for _, l := range []*[]string{&m.WholeDirectories, &m.SpecialSkippedFiles, &m.Added, &m.Changed, &m.Removed, &m.SkipRules,
		&m.DebianPackageDiff.Added, &m.DebianPackageDiff.Removed, &m.DebianPackageDiff.Changed} {
		if *l == nil {
			*l = []string{}
		}
	}
	for _, l := range []*[]Image{&m.ContainerImageDiff.AddedImages, &m.ContainerImageDiff.RemovedImages, &m.ContainerImageDiff.ChangedImages} {
		if *l == nil {
			*l = []Image{}
		}
	}
	if m.Files.Base == nil {
		m.Files.Base = map[string]pkgzip.Digest{}
	}
	if m.Files.Target == nil {
		m.Files.Target = map[string]pkgzip.Digest{}
	}
	if o := m.DebianOffline; o != nil {
		for _, l := range []*[]string{&o.DebianOfflinePackages, &o.DebianOfflineDownloaded} {
			if *l == nil {
				*l = []string{}
			}
		}
	}
}

// ParseManifest decodes and validates delta-manifest.json strictly: unknown
// fields, trailing data, a wrong version or algorithm, counts that disagree
// with their lists, unsafe or unsorted paths, malformed hashes, and Files
// that do not agree with Added/Changed/Removed are all errors.
//
// A leading UTF-8 byte order mark is accepted, as K2s's tools write one.
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

// ReadManifest reads delta-manifest.json from an open delta zip and checks
// that the zip holds exactly the files the manifest says it ships, with the
// sizes it says (contents are checked by apply and Verify as they stream).
func ReadManifest(r *pkgzip.Reader) (*Manifest, error) {
	e := r.Lookup(ManifestName)
	if e == nil {
		return nil, fmt.Errorf("%s: no %s at the root; it is not a delta package (a full package? use it as it is)", r.Path, ManifestName)
	}
	if e.Size > maxManifestSize {
		return nil, fmt.Errorf("%s: %s is %d bytes, more than the %d a delta manifest may have", r.Path, ManifestName, e.Size, maxManifestSize)
	}
	rc, err := e.Open()
	if err != nil {
		return nil, fmt.Errorf("%s: open %s: %w", r.Path, ManifestName, err)
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
	expect := m.Entries()
	for _, ent := range r.Entries {
		if ent.Name == ManifestName {
			continue
		}
		d, ok := expect[ent.Name]
		if !ok {
			return nil, fmt.Errorf("%s: entry %s is not listed in %s Files.Target, Files.Upgrade or Patches; the delta was modified after it was built, rebuild it", r.Path, ent.Name, ManifestName)
		}
		if d.Size != ent.Size {
			return nil, fmt.Errorf("%s: entry %s is %d bytes but %s says %d; the delta is corrupt, download or build it again", r.Path, ent.Name, ent.Size, ManifestName, d.Size)
		}
	}
	for _, p := range sortedKeys(expect) {
		if r.Lookup(p) == nil {
			return nil, fmt.Errorf("%s: %s lists %s but the zip has no such entry; the delta is incomplete, download or build it again", r.Path, ManifestName, p)
		}
	}
	return m, nil
}

// Entries are the zip entries the manifest says the delta holds besides
// itself, with their digests: Files.Target (a patched file as its patch
// entry) and Files.Upgrade.
func (m *Manifest) Entries() map[string]pkgzip.Digest {
	expect := map[string]pkgzip.Digest{}
	for p, d := range m.Files.Target {
		if pt, ok := m.Patches[p]; ok {
			expect[pt.Entry] = pt.Patch
			continue
		}
		expect[p] = d
	}
	for p, d := range m.Files.Upgrade {
		expect[p] = d
	}
	return expect
}

// validate runs the checks in order and returns the first failure. They
// are split by what they check: the header fields, the counts, the
// paths, the hashes, the patches, the profile's parts, and how the lists
// agree with Files.
func (m *Manifest) validate() error {
	for _, check := range []func() error{m.checkHeader, m.checkCounts, m.checkPaths, m.checkFileHashes, m.checkPatches, m.checkProfile, m.checkConsistency} {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

// checkHeader checks the format and the names of the two packages.
func (m *Manifest) checkHeader() error {
	if m.ManifestVersion != ManifestVersion {
		return fmt.Errorf("ManifestVersion is %q; this release reads %q only", m.ManifestVersion, ManifestVersion)
	}
	if m.HashAlgorithm != HashAlgorithm {
		return fmt.Errorf("HashAlgorithm is %q; this release reads %q only", m.HashAlgorithm, HashAlgorithm)
	}
	if _, err := time.Parse(time.RFC3339, m.GeneratedUtc); err != nil {
		return fmt.Errorf("GeneratedUtc %q is not an RFC 3339 time: %w", m.GeneratedUtc, err)
	}
	for _, f := range []struct{ name, v string }{
		{"BasePackage", m.BasePackage}, {"TargetPackage", m.TargetPackage},
		{"BaseVersion", m.BaseVersion}, {"TargetVersion", m.TargetVersion},
	} {
		if strings.TrimSpace(f.v) != f.v || f.v == "" || strings.ContainsAny(f.v, "\r\n\x00") {
			return fmt.Errorf("%s %q must be a non-empty single line without surrounding spaces", f.name, f.v)
		}
	}
	if strings.ContainsAny(m.BasePackage+m.TargetPackage, `/\`) {
		return fmt.Errorf("BasePackage and TargetPackage must be file names without directories")
	}
	switch m.Profile {
	case "", ProfileK2s:
	default:
		return fmt.Errorf("field Profile is %q; this release reads %q or none", m.Profile, ProfileK2s)
	}
	return nil
}

// checkCounts checks every K2s count against its list.
func (m *Manifest) checkCounts() error {
	counts := []struct {
		name  string
		list  int
		count int
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
	if o := m.DebianOffline; o != nil {
		counts = append(counts,
			struct {
				name  string
				list  int
				count int
			}{"DebianOfflinePackages", len(o.DebianOfflinePackages), o.DebianOfflinePackagesCount},
			struct {
				name  string
				list  int
				count int
			}{"DebianOfflineDownloaded", len(o.DebianOfflineDownloaded), o.DebianOfflineDownloadedCount})
	}
	for _, c := range counts {
		if c.list != c.count {
			return fmt.Errorf("%s has %d entries but its count says %d", c.name, c.list, c.count)
		}
	}
	return nil
}

// checkPaths checks that the path lists are safe, sorted and unique, and
// that the skip rules are valid patterns.
func (m *Manifest) checkPaths() error {
	for _, l := range []struct {
		name  string
		paths []string
	}{
		{"WholeDirectories", m.WholeDirectories}, {"SpecialSkippedFiles", m.SpecialSkippedFiles},
		{"Added", m.Added}, {"Changed", m.Changed}, {"Removed", m.Removed}, {"Mandatory", m.Mandatory},
	} {
		if err := checkPathList(l.name, l.paths); err != nil {
			return err
		}
	}
	for _, n := range m.SkipNames {
		if n == "" || n == "." || n == ".." || strings.ContainsAny(n, "/\\\x00") {
			return fmt.Errorf("SkipNames: %q is not a file name", n)
		}
	}
	for _, p := range m.SkipRules {
		if err := validatePattern(p); err != nil {
			return fmt.Errorf("SkipRules: %w", err)
		}
	}
	return nil
}

// checkFileHashes checks the paths and digests of Files.
func (m *Manifest) checkFileHashes() error {
	for _, side := range m.fileSides() {
		for _, p := range sortedKeys(side.m) {
			if err := CheckPath(p); err != nil {
				return fmt.Errorf("%s: %w", side.name, err)
			}
			d := side.m[p]
			if !validSHA256(d.SHA256) {
				return fmt.Errorf("%s[%s]: SHA256 %q is not 64 lower-case hex digits", side.name, p, d.SHA256)
			}
			if d.Size < 0 {
				return fmt.Errorf("%s[%s]: negative Size %d", side.name, p, d.Size)
			}
		}
	}
	return nil
}

// fileSide is Files.Base or Files.Target, with its name for messages.
type fileSide struct {
	name string
	m    map[string]pkgzip.Digest
}

func (m *Manifest) fileSides() []fileSide {
	return []fileSide{{"Files.Base", m.Files.Base}, {"Files.Target", m.Files.Target}, {"Files.Upgrade", m.Files.Upgrade}}
}

// checkProfile checks the parts of a delta that only its upgrade tooling
// reads: Files.Upgrade holds only such entries and never an installation
// path, DebianDeltaRelativePath names the folder that is there, and the
// mandatory files are unchanged.
func (m *Manifest) checkProfile() error {
	for _, p := range sortedKeys(m.Files.Upgrade) {
		if !UpgradeEntry(p) {
			return fmt.Errorf("Files.Upgrade has %s, which is not %s, nor under %s/ or %s/", p, ApplyScriptName, DebianDeltaDir, ImageDeltaDir)
		}
	}
	for _, side := range []fileSide{{"Files.Base", m.Files.Base}, {"Files.Target", m.Files.Target}} {
		for _, p := range sortedKeys(side.m) {
			if m.Profile == ProfileK2s && UpgradeEntry(p) {
				return fmt.Errorf("%s has %s, which is reserved for the upgrade tooling (%s, %s/, %s/)", side.name, p, ApplyScriptName, DebianDeltaDir, ImageDeltaDir)
			}
		}
	}
	if d := m.DebianDeltaRelativePath; d != nil {
		if *d != DebianDeltaDir {
			return fmt.Errorf("DebianDeltaRelativePath is %q; release writes %q", *d, DebianDeltaDir)
		}
		if _, ok := m.Files.Upgrade[DebianDeltaDir+"/"+DebianApplyScript]; !ok {
			return fmt.Errorf("DebianDeltaRelativePath is %q but the delta has no %s/%s", *d, DebianDeltaDir, DebianApplyScript)
		}
	}
	if (m.DebianOffline != nil) != (m.DebianDeltaRelativePath != nil) {
		return fmt.Errorf("DebianOfflinePackages and DebianDeltaRelativePath come together")
	}
	if o := m.DebianOffline; o != nil {
		for _, p := range o.DebianOfflineDownloaded {
			if _, ok := m.Files.Upgrade[p]; !ok {
				return fmt.Errorf("DebianOfflineDownloaded lists %s, which the delta does not ship", p)
			}
		}
	}
	if len(m.Files.Upgrade) > 0 && m.Profile != ProfileK2s {
		return fmt.Errorf("Files.Upgrade is only written with Profile %q", ProfileK2s)
	}
	listed := setOf(append(append(slices.Clone(m.Added), m.Changed...), m.Removed...))
	for _, p := range m.Mandatory {
		b, inB := m.Files.Base[p]
		t, inT := m.Files.Target[p]
		switch {
		case listed[p]:
			return fmt.Errorf("field Mandatory lists %s, which Added, Changed or Removed also lists", p)
		case wholeDirOf(p, m.WholeDirectories) != "":
			return fmt.Errorf("field Mandatory lists %s, which is under a wholesale directory", p)
		case !inB || !inT || b != t:
			return fmt.Errorf("field Mandatory lists %s, but Files.Base and Files.Target do not both have it with one digest", p)
		}
	}
	return nil
}

// checkPatches ties every patch to a changed file and its hashes.
func (m *Manifest) checkPatches() error {
	switch m.DeltaMode {
	case "", ModeBinary:
	default:
		return fmt.Errorf("DeltaMode is %q; this release reads %q or none", m.DeltaMode, ModeBinary)
	}
	if len(m.Patches) > 0 && m.DeltaMode != ModeBinary {
		return fmt.Errorf("the manifest has Patches but DeltaMode is not %q", ModeBinary)
	}
	changed := setOf(m.Changed)
	for _, p := range sortedKeys(m.Patches) {
		pt := m.Patches[p]
		switch {
		case !changed[p]:
			return fmt.Errorf("field Patches has %s, which Changed does not list", p)
		case pt.Algorithm != PatchAlgorithm:
			return fmt.Errorf("field Patches[%s]: algorithm %q is not supported (this release reads %s)", p, pt.Algorithm, PatchAlgorithm)
		case pt.Entry != PatchEntry(p):
			return fmt.Errorf("field Patches[%s]: entry %q, want %q", p, pt.Entry, PatchEntry(p))
		case pt.BaseSHA256 != m.Files.Base[p].SHA256 || pt.TargetSHA256 != m.Files.Target[p].SHA256:
			return fmt.Errorf("field Patches[%s]: its hashes disagree with Files", p)
		case !validSHA256(pt.Patch.SHA256) || pt.Patch.Size < 0:
			return fmt.Errorf("field Patches[%s]: Patch digest %+v is invalid", p, pt.Patch)
		}
	}
	return nil
}

// checkConsistency ties the K2s lists to Files, so that apply, which acts
// on Files, does exactly what the lists announce.
func (m *Manifest) checkConsistency() error {
	for _, check := range []func() error{m.checkListedPaths, m.checkListsDisjoint, m.checkListedHashes, m.checkFilesListed, m.checkSkippedUntouched} {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

// checkListedPaths refuses Added/Changed/Removed entries that are never
// part of the diff: files under a wholesale directory and the package
// manifest.
func (m *Manifest) checkListedPaths() error {
	for _, l := range []struct {
		name  string
		paths []string
	}{{"Added", m.Added}, {"Changed", m.Changed}, {"Removed", m.Removed}} {
		for _, p := range l.paths {
			if d := wholeDirOf(p, m.WholeDirectories); d != "" {
				return fmt.Errorf("%s lists %s, which is under wholesale directory %s", l.name, p, d)
			}
			if p == PackageManifestName && (m.Profile != ProfileK2s || l.name == "Removed") {
				return fmt.Errorf("%s lists %s, which is never part of the diff", l.name, p)
			}
		}
	}
	return nil
}

// checkListsDisjoint refuses a path in two of Added, Changed and Removed.
func (m *Manifest) checkListsDisjoint() error {
	changed, removed := setOf(m.Changed), setOf(m.Removed)
	for _, p := range m.Added {
		if changed[p] || removed[p] {
			return fmt.Errorf("%s is listed in Added and in Changed or Removed", p)
		}
	}
	for _, p := range m.Changed {
		if removed[p] {
			return fmt.Errorf("%s is listed in Changed and in Removed", p)
		}
	}
	return nil
}

// checkListedHashes checks that every listed path has the hashes its list
// implies: an added file a target hash only, a changed file both, a
// removed file a base hash only.
func (m *Manifest) checkListedHashes() error {
	for _, p := range m.Added {
		if _, ok := m.Files.Target[p]; !ok {
			return fmt.Errorf("field Added lists %s but Files.Target has no hash for it", p)
		}
		if _, ok := m.Files.Base[p]; ok {
			return fmt.Errorf("field Added lists %s but Files.Base has a hash for it", p)
		}
	}
	for _, p := range m.Changed {
		_, inT := m.Files.Target[p]
		_, inB := m.Files.Base[p]
		if !inT || !inB {
			return fmt.Errorf("field Changed lists %s but Files.Base and Files.Target do not both have a hash for it", p)
		}
	}
	for _, p := range m.Removed {
		if _, ok := m.Files.Base[p]; !ok {
			return fmt.Errorf("field Removed lists %s but Files.Base has no hash for it", p)
		}
		if _, ok := m.Files.Target[p]; ok {
			return fmt.Errorf("field Removed lists %s but Files.Target has a hash for it", p)
		}
	}
	return nil
}

// checkFilesListed refuses a hash in Files for a path that is neither
// listed, nor the package manifest, nor under a wholesale directory: apply
// would touch a file the lists do not announce.
func (m *Manifest) checkFilesListed() error {
	added, changed, removed, mandatory := setOf(m.Added), setOf(m.Changed), setOf(m.Removed), setOf(m.Mandatory)
	for _, side := range []fileSide{{"Files.Base", m.Files.Base}, {"Files.Target", m.Files.Target}} {
		for _, p := range sortedKeys(side.m) {
			if added[p] || changed[p] || removed[p] || mandatory[p] || p == PackageManifestName || wholeDirOf(p, m.WholeDirectories) != "" {
				continue
			}
			return fmt.Errorf("%s has %s, which is neither in Added/Changed/Removed/Mandatory nor under a wholesale directory", side.name, p)
		}
	}
	return nil
}

// checkSkippedUntouched refuses a skipped path that the delta changes.
func (m *Manifest) checkSkippedUntouched() error {
	added, changed, removed := setOf(m.Added), setOf(m.Changed), setOf(m.Removed)
	for _, p := range m.SpecialSkippedFiles {
		_, inT := m.Files.Target[p]
		_, inB := m.Files.Base[p]
		if inT || inB || added[p] || changed[p] || removed[p] {
			return fmt.Errorf("SpecialSkippedFiles lists %s, which the delta also changes", p)
		}
	}
	return nil
}

// The entries of a profile k2s delta that are not installed: K2s's apply
// reads them from the extracted delta, and its relocating apply removes
// the two folders (update.module.psm1, Remove-DeltaPackageArtifact).
const (
	ApplyScriptName   = "Apply-Delta.ps1"
	DebianDeltaDir    = "debian-delta"
	DebianApplyScript = "apply-debian-delta.sh"
	ImageDeltaDir     = "image-delta"
)

// UpgradeEntry reports whether p is one of the entries above.
func UpgradeEntry(p string) bool {
	first, _, _ := strings.Cut(p, "/")
	return p == ApplyScriptName || (first != p && (first == DebianDeltaDir || first == ImageDeltaDir))
}

// CheckPath reports a manifest path that apply could not write safely: it
// must be a clean, relative, forward-slash path without "." or ".."
// segments, drive letters, NUL or backslashes, and outside the apply state.
func CheckPath(p string) error {
	switch {
	case p == "":
		return errors.New("empty path")
	case strings.ContainsAny(p, "\\\x00"):
		return fmt.Errorf("path %q contains a backslash or NUL", p)
	case strings.HasPrefix(p, "/"):
		return fmt.Errorf("path %q is absolute", p)
	case len(p) >= 2 && p[1] == ':':
		return fmt.Errorf("path %q has a drive letter", p)
	}
	for _, seg := range strings.Split(p, "/") {
		switch seg {
		case "":
			return fmt.Errorf("path %q has an empty segment", p)
		case ".", "..":
			return fmt.Errorf("path %q has a %q segment", p, seg)
		}
	}
	if Reserved(p) {
		return fmt.Errorf("path %q is reserved for release (%s, %s, %s, %s)", p, ApplyStateDir, ApplyLockFile, InstallRecord, PatchDir)
	}
	return nil
}

// Reserved reports whether p is, or is under, one of the names apply keeps
// at the installation root. Case is ignored because installations live on
// case-insensitive file systems too.
func Reserved(p string) bool {
	first, _, _ := strings.Cut(p, "/")
	for _, r := range []string{ApplyStateDir, ApplyLockFile, InstallRecord, PatchDir} {
		if strings.EqualFold(first, r) {
			return true
		}
	}
	return false
}

func checkPathList(name string, paths []string) error {
	for i, p := range paths {
		if err := CheckPath(p); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if i > 0 && paths[i-1] >= p {
			return fmt.Errorf("%s is not sorted and unique at %q", name, p)
		}
	}
	return nil
}

func validSHA256(s string) bool {
	if len(s) != 64 || strings.ToLower(s) != s {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// wholeDirOf returns the wholesale directory p is under, or "". Like K2s's
// Test-InWholeDir it is a case-sensitive prefix test on "<dir>/".
func wholeDirOf(p string, whole []string) string {
	for _, d := range whole {
		if strings.HasPrefix(p, d+"/") {
			return d
		}
	}
	return ""
}

func setOf(l []string) map[string]bool {
	s := make(map[string]bool, len(l))
	for _, p := range l {
		s[p] = true
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
