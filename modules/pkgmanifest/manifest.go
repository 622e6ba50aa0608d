// Package pkgmanifest reads and writes package-manifest.json, the list of
// every file of a full package with its SHA-256 and size. It lets delta and
// apply verify a package file by file without trusting the zip alone.
package pkgmanifest

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/relcue/release/internal/strictjson"
	"github.com/relcue/release/modules/pkgzip"
)

const (
	// Name is the manifest's path at the root of a full package.
	Name = "package-manifest.json"
	// VersionFile is the path of the file holding the package version.
	VersionFile = "VERSION"
	// ManifestVersion is the format version this package writes and reads.
	ManifestVersion = "1.0"
	// HashAlgorithm names the digest in File.SHA256.
	HashAlgorithm = "SHA256"
)

// Manifest is the content of package-manifest.json. Field order is the
// JSON order.
type Manifest struct {
	ManifestVersion string
	Product         string
	Version         string
	HashAlgorithm   string
	// Files lists every file of the package except the manifest itself,
	// sorted by Path.
	Files []File
}

// File is one file of the package.
type File struct {
	// Path is a normalized package path (forward slashes, relative).
	Path   string
	SHA256 string
	Size   int64
}

// New builds the manifest of a package from the digests of its files; a
// digest for the manifest itself is ignored.
func New(product, version string, digests map[string]pkgzip.Digest) *Manifest {
	m := &Manifest{
		ManifestVersion: ManifestVersion,
		Product:         product,
		Version:         version,
		HashAlgorithm:   HashAlgorithm,
		Files:           make([]File, 0, len(digests)),
	}
	for path, d := range digests {
		if path == Name {
			continue
		}
		m.Files = append(m.Files, File{Path: path, SHA256: d.SHA256, Size: d.Size})
	}
	sortFiles(m.Files)
	return m
}

func sortFiles(files []File) {
	slices.SortFunc(files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
}

// Digests returns the files as a map from path to digest.
func (m *Manifest) Digests() map[string]pkgzip.Digest {
	out := make(map[string]pkgzip.Digest, len(m.Files))
	for _, f := range m.Files {
		out[f.Path] = pkgzip.Digest{SHA256: f.SHA256, Size: f.Size}
	}
	return out
}

// Marshal returns the canonical JSON: 2-space indent, files sorted by
// path, a trailing newline. It refuses a manifest that Parse would reject.
func (m *Manifest) Marshal() ([]byte, error) {
	c := *m
	c.Files = slices.Clone(m.Files)
	if c.Files == nil {
		c.Files = []File{}
	}
	sortFiles(c.Files)
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // paths stay readable; the bytes are still canonical
	if err := enc.Encode(&c); err != nil {
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	return buf.Bytes(), nil
}

// Parse decodes and validates a manifest strictly: unknown fields, other
// format versions or hash algorithms, malformed hashes, unsafe or
// duplicate paths are errors. Upper-case hex digests are accepted and
// returned in lower case.
func Parse(data []byte) (*Manifest, error) {
	var m Manifest
	if err := strictjson.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	for i := range m.Files {
		m.Files[i].SHA256 = strings.ToLower(m.Files[i].SHA256)
	}
	sortFiles(m.Files)
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	return &m, nil
}

// validate checks a manifest whose Files are sorted.
func (m *Manifest) validate() error {
	if m.ManifestVersion != ManifestVersion {
		return fmt.Errorf("ManifestVersion %q is not supported (this release reads %q); use a release that knows it", m.ManifestVersion, ManifestVersion)
	}
	if m.HashAlgorithm != HashAlgorithm {
		return fmt.Errorf("HashAlgorithm %q is not supported (want %q)", m.HashAlgorithm, HashAlgorithm)
	}
	if m.Files == nil {
		return errors.New("field Files is missing")
	}
	if m.Product == "" {
		return errors.New("field Product is empty")
	}
	if m.Version == "" {
		return errors.New("field Version is empty")
	}
	var names pkgzip.NameSet
	for _, f := range m.Files {
		if err := pkgzip.CheckName(f.Path); err != nil {
			return fmt.Errorf("field Files: %w", err)
		}
		if f.Path == Name {
			return fmt.Errorf("field Files lists %s itself; the manifest cannot contain its own digest", Name)
		}
		if err := names.Add(f.Path, ""); err != nil {
			return fmt.Errorf("field Files: %w", err)
		}
		if b, err := hex.DecodeString(f.SHA256); err != nil || len(b) != 32 || f.SHA256 != strings.ToLower(f.SHA256) {
			return fmt.Errorf("field Files: %q: SHA256 %q is not 64 lower-case hex digits", f.Path, f.SHA256)
		}
		if f.Size < 0 {
			return fmt.Errorf("field Files: %q: negative Size %d", f.Path, f.Size)
		}
	}
	return nil
}
