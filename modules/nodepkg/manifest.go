package nodepkg

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/relcue/release/internal/strictjson"
	"github.com/relcue/release/modules/pkgzip"
)

const (
	// ManifestName is node-manifest.json at the root of a node package, its
	// last entry.
	ManifestName = "node-manifest.json"
	// ManifestVersion is the format version this package writes and reads.
	ManifestVersion = "1.0"
	// HashAlgorithm names the digest of Package.SHA256 and Image.SHA256.
	HashAlgorithm = "SHA256"
	// PackagesDir and ImagesDir are the top-level folders of a node package:
	// packages/<osdir>/<group>/<file>.deb and images/<file>.tar.
	PackagesDir = "packages"
	ImagesDir   = "images"
)

// maxManifestSize bounds what ReadManifest loads; a manifest of ten
// thousand packages is a few MiB.
const maxManifestSize = 64 << 20

// Manifest is node-manifest.json: everything a diff needs to know about a
// node package, so that deltas never re-read .debs or image archives.
// Field order is the JSON order.
type Manifest struct {
	ManifestVersion string
	// Product and Version name the product release the node package
	// belongs to.
	Product string
	Version string
	// OS is the OS target's name; OSDir the folder under packages/.
	OS            string
	OSDir         string
	HashAlgorithm string
	// Packages are sorted by Path; Package names are unique.
	Packages []Package
	// Images are sorted by File; Refs are unique.
	Images []Image
}

// Package is one .deb of a node package. Package, Version and
// Architecture come from the .deb's own control data.
type Package struct {
	Group string
	// Path is relative to packages/<OSDir>: "<Group>/<name>_<version>_<arch>.deb".
	Path         string
	Package      string
	Version      string
	Architecture string
	SHA256       string
	Size         int64
}

// Image is one OCI archive of a node package.
type Image struct {
	// File is the archive's name under images/.
	File string
	// Ref is the reference the image is known by on a node
	// (org.opencontainers.image.ref.name of its index).
	Ref string
	// Digest is the digest of the image's manifest or index; ImageId the
	// digest of its config (what container runtimes call the image ID; for a
	// multi-platform image, that of the first platform in index order).
	Digest  string
	ImageId string
	// Platforms are "os/arch[/variant]", sorted.
	Platforms []string
	// SHA256 and Size are those of the archive file.
	SHA256 string
	Size   int64
}

// Entry is the zip entry name of the package.
func (p Package) Entry(osDir string) string { return PackagesDir + "/" + osDir + "/" + p.Path }

// Entry is the zip entry name of the image archive.
func (i Image) Entry() string { return ImagesDir + "/" + i.File }

// FileDigest is the .deb's digest in pkgzip form.
func (p Package) FileDigest() pkgzip.Digest { return pkgzip.Digest{SHA256: p.SHA256, Size: p.Size} }

// FileDigest is the archive's digest in pkgzip form.
func (i Image) FileDigest() pkgzip.Digest { return pkgzip.Digest{SHA256: i.SHA256, Size: i.Size} }

// Platform is the operating system part of the image's platforms as K2s
// names it ("linux" or "windows"); "linux" when none is recorded.
func (i Image) Platform() string {
	for _, p := range i.Platforms {
		os, _, _ := strings.Cut(p, "/")
		return os
	}
	return "linux"
}

// Entries returns every zip entry the manifest describes (itself aside),
// with its digest.
func (m *Manifest) Entries() map[string]pkgzip.Digest {
	out := make(map[string]pkgzip.Digest, len(m.Packages)+len(m.Images))
	for _, p := range m.Packages {
		out[p.Entry(m.OSDir)] = p.FileDigest()
	}
	for _, i := range m.Images {
		out[i.Entry()] = i.FileDigest()
	}
	return out
}

func (m *Manifest) sort() {
	slices.SortFunc(m.Packages, func(a, b Package) int { return strings.Compare(a.Path, b.Path) })
	slices.SortFunc(m.Images, func(a, b Image) int { return strings.Compare(a.File, b.File) })
	for i := range m.Images {
		slices.Sort(m.Images[i].Platforms)
	}
}

// Marshal returns the canonical JSON (2-space indent, sorted lists, final
// newline). It refuses a manifest that ParseManifest would reject.
func (m *Manifest) Marshal() ([]byte, error) {
	c := *m
	c.Packages = slices.Clone(m.Packages)
	c.Images = slices.Clone(m.Images)
	for i := range c.Images {
		c.Images[i].Platforms = slices.Clone(c.Images[i].Platforms)
		if c.Images[i].Platforms == nil {
			c.Images[i].Platforms = []string{}
		}
	}
	if c.Packages == nil {
		c.Packages = []Package{}
	}
	if c.Images == nil {
		c.Images = []Image{}
	}
	c.sort()
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", ManifestName, err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(&c); err != nil {
		return nil, fmt.Errorf("%s: %w", ManifestName, err)
	}
	return buf.Bytes(), nil
}

// ParseManifest decodes and validates node-manifest.json strictly: unknown
// fields, trailing data, another format version, unsorted or duplicate
// entries, two packages of one name, names the node scripts could not
// handle and malformed digests are errors.
func ParseManifest(data []byte) (*Manifest, error) {
	var m Manifest
	if err := strictjson.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", ManifestName, err)
	}
	if m.Packages == nil || m.Images == nil {
		return nil, fmt.Errorf("%s: Packages and Images must both be present (use [] when empty)", ManifestName)
	}
	for i, img := range m.Images {
		if img.Platforms == nil {
			return nil, fmt.Errorf("%s: Images[%d] (%s) has no Platforms list", ManifestName, i, img.File)
		}
	}
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", ManifestName, err)
	}
	return &m, nil
}

// ReadManifest reads node-manifest.json from an open node package and
// checks that the zip holds exactly the files it lists, with the listed
// sizes (contents are checked where they are read).
func ReadManifest(r *pkgzip.Reader) (*Manifest, error) {
	e := r.Lookup(ManifestName)
	if e == nil {
		return nil, fmt.Errorf("%s: no %s at the root; it is not a node package built by release (rebuild it)", r.Path, ManifestName)
	}
	if e.Size > maxManifestSize {
		return nil, fmt.Errorf("%s: %s is %d bytes, more than the %d a node manifest may have", r.Path, ManifestName, e.Size, maxManifestSize)
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
	listed := m.Entries()
	var problems []string
	for _, name := range slices.Sorted(maps.Keys(listed)) {
		ent := r.Lookup(name)
		switch {
		case ent == nil:
			problems = append(problems, fmt.Sprintf("%s is listed but not in the zip", name))
		case ent.Size != listed[name].Size:
			problems = append(problems, fmt.Sprintf("%s is %d bytes, the manifest says %d", name, ent.Size, listed[name].Size))
		}
	}
	for _, ent := range r.Entries {
		if _, ok := listed[ent.Name]; !ok && ent.Name != ManifestName {
			problems = append(problems, fmt.Sprintf("%s is in the zip but not listed", ent.Name))
		}
	}
	if len(problems) > 0 {
		more := ""
		if len(problems) > 10 {
			more = fmt.Sprintf("; and %d more", len(problems)-10)
			problems = problems[:10]
		}
		return nil, fmt.Errorf("%s: %s does not match the zip: %s%s (the node package was modified after it was built; rebuild it)",
			r.Path, ManifestName, strings.Join(problems, "; "), more)
	}
	return m, nil
}

// Patterns of the names that end up in node delta scripts and dpkg calls.
// They are stricter than Debian policy needs, so that no name can be split,
// globbed or expanded by a POSIX shell, and no path is unsafe on Windows.
var (
	// Debian policy 5.6.1 (package names are lower case).
	packageNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)
	// Debian policy 5.6.12: [epoch:]upstream[-revision].
	debVersionRE = regexp.MustCompile(`^([0-9]+:)?[0-9][A-Za-z0-9.+~-]*$`)
	archRE       = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
	// A group is one folder under packages/<osdir>/.
	groupRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]*$`)
	// One path segment of a file the scripts handle.
	fileNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+~@=-]*$`)
	digestRE   = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	platformRE = regexp.MustCompile(`^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?$`)
)

// CheckGroup reports a group name that cannot be a folder of a node package.
func CheckGroup(g string) error {
	if !groupRE.MatchString(g) {
		return fmt.Errorf("group %q must be one folder name of letters, digits, '.', '_', '+' and '-' (such as kubernetes)", g)
	}
	return nil
}

// CheckOSDir reports an OS folder name that cannot be used in a node package.
func CheckOSDir(d string) error {
	if !groupRE.MatchString(d) {
		return fmt.Errorf("OS folder %q must be one folder name of letters, digits, '.', '_', '+' and '-' (such as debian12)", d)
	}
	return nil
}

func checkFileName(what, name string) error {
	if !fileNameRE.MatchString(name) || name == "." || name == ".." {
		return fmt.Errorf("%s %q is not a plain file name of letters, digits and ._+~@=- (node scripts could not handle it safely)", what, name)
	}
	return nil
}

func validSHA256(s string) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == 32 && s == strings.ToLower(s)
}

// validate checks the header, then the packages, then the images; all
// entry names go into one NameSet, because they share the zip (and the
// node's file system).
func (m *Manifest) validate() error {
	if err := m.checkHeader(); err != nil {
		return err
	}
	var entries pkgzip.NameSet
	if err := m.checkPackages(&entries); err != nil {
		return err
	}
	return m.checkImages(&entries)
}

// checkHeader checks the format and the names of the release and OS.
func (m *Manifest) checkHeader() error {
	if m.ManifestVersion != ManifestVersion {
		return fmt.Errorf("ManifestVersion %q is not supported (this release reads %q)", m.ManifestVersion, ManifestVersion)
	}
	if m.HashAlgorithm != HashAlgorithm {
		return fmt.Errorf("HashAlgorithm %q is not supported (want %q)", m.HashAlgorithm, HashAlgorithm)
	}
	for _, f := range []struct{ name, v string }{{"Product", m.Product}, {"Version", m.Version}, {"OS", m.OS}} {
		if f.v == "" || strings.TrimSpace(f.v) != f.v || strings.ContainsAny(f.v, "\r\n\x00/\\") {
			return fmt.Errorf("%s %q must be a non-empty single word without slashes", f.name, f.v)
		}
	}
	if err := CheckOSDir(m.OSDir); err != nil {
		return fmt.Errorf("OSDir: %w", err)
	}
	return nil
}

// checkPackages checks every package, their order, that no package name
// comes twice, and adds their entries to entries.
func (m *Manifest) checkPackages(entries *pkgzip.NameSet) error {
	names := map[string]string{}
	for i, p := range m.Packages {
		if err := p.validate(); err != nil {
			return fmt.Errorf("field Packages[%d]: %w", i, err)
		}
		if i > 0 && m.Packages[i-1].Path >= p.Path {
			return fmt.Errorf("field Packages is not sorted by Path and unique at %s", p.Path)
		}
		if prev, ok := names[p.Package]; ok {
			return fmt.Errorf("package %s is there twice, as %s and as %s; a node can install one version only", p.Package, prev, p.Path)
		}
		names[p.Package] = p.Path
	}
	for i, p := range m.Packages {
		if err := entries.Add(p.Entry(m.OSDir), ""); err != nil {
			return fmt.Errorf("field Packages[%d]: %w", i, err)
		}
	}
	return nil
}

// checkImages checks every image, their order, that no reference comes
// twice, and adds their entries to entries.
func (m *Manifest) checkImages(entries *pkgzip.NameSet) error {
	refs := map[string]string{}
	for i, img := range m.Images {
		if err := img.validate(); err != nil {
			return fmt.Errorf("field Images[%d]: %w", i, err)
		}
		if i > 0 && m.Images[i-1].File >= img.File {
			return fmt.Errorf("field Images is not sorted by File and unique at %s", img.File)
		}
		if prev, ok := refs[img.Ref]; ok {
			return fmt.Errorf("image %s is there twice, as %s and as %s", img.Ref, prev, img.File)
		}
		refs[img.Ref] = img.File
		if err := entries.Add(img.Entry(), ""); err != nil {
			return fmt.Errorf("field Images[%d]: %w", i, err)
		}
	}
	return nil
}

func (p Package) validate() error {
	if err := CheckGroup(p.Group); err != nil {
		return err
	}
	dir, file, ok := strings.Cut(p.Path, "/")
	if !ok || dir != p.Group {
		return fmt.Errorf("field Path %q must be <Group>/<file>.deb with Group %q", p.Path, p.Group)
	}
	if err := checkFileName("deb file", file); err != nil {
		return err
	}
	if !strings.HasSuffix(file, ".deb") {
		return fmt.Errorf("field Path %q does not end in .deb", p.Path)
	}
	if err := CheckControl(p.Package, p.Version, p.Architecture); err != nil {
		return fmt.Errorf("%s: %w", p.Path, err)
	}
	if !validSHA256(p.SHA256) {
		return fmt.Errorf("%s: SHA256 %q is not 64 lower-case hex digits", p.Path, p.SHA256)
	}
	if p.Size <= 0 {
		return fmt.Errorf("%s: Size %d is not positive", p.Path, p.Size)
	}
	return nil
}

// CheckControl reports a package name, version or architecture that is not
// valid Debian syntax (or that node scripts could not pass to dpkg safely).
func CheckControl(name, version, arch string) error {
	if !packageNameRE.MatchString(name) {
		return fmt.Errorf("package name %q is not a valid Debian package name (lower-case letters, digits, '+', '-', '.', at least two characters)", name)
	}
	if !debVersionRE.MatchString(version) {
		return fmt.Errorf("package %s: version %q is not a valid Debian version ([epoch:]upstream[-revision], starting with a digit)", name, version)
	}
	if !archRE.MatchString(arch) {
		return fmt.Errorf("package %s: architecture %q is not a Debian architecture name", name, arch)
	}
	return nil
}

func (i Image) validate() error {
	if err := checkFileName("image archive", i.File); err != nil {
		return err
	}
	if !strings.HasSuffix(i.File, ".tar") {
		return fmt.Errorf("image archive %q does not end in .tar", i.File)
	}
	if i.Ref == "" || strings.ContainsAny(i.Ref, " \t\r\n\x00\\") {
		return fmt.Errorf("%s: Ref %q is empty or contains white space or backslashes", i.File, i.Ref)
	}
	if !digestRE.MatchString(i.Digest) {
		return fmt.Errorf("%s: Digest %q is not sha256:<64 lower-case hex digits>", i.File, i.Digest)
	}
	if !digestRE.MatchString(i.ImageId) {
		return fmt.Errorf("%s: ImageId %q is not sha256:<64 lower-case hex digits>", i.File, i.ImageId)
	}
	for j, p := range i.Platforms {
		if !platformRE.MatchString(p) {
			return fmt.Errorf("%s: platform %q is not os/arch[/variant]", i.File, p)
		}
		if j > 0 && i.Platforms[j-1] >= p {
			return fmt.Errorf("%s: Platforms are not sorted and unique at %q", i.File, p)
		}
	}
	if !validSHA256(i.SHA256) {
		return fmt.Errorf("%s: SHA256 %q is not 64 lower-case hex digits", i.File, i.SHA256)
	}
	if i.Size <= 0 {
		return fmt.Errorf("%s: Size %d is not positive", i.File, i.Size)
	}
	return nil
}
