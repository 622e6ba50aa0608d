package pkgmanifest

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/relcue/release/modules/pkgzip"
)

// maxManifestSize bounds what Read loads into memory; a manifest of a
// million files is about 150 MiB.
const maxManifestSize = 256 << 20

// Read returns the manifest at the root of the package, and whether there
// is one. A manifest that is present but invalid is an error.
func Read(r *pkgzip.Reader) (*Manifest, bool, error) {
	e := r.Lookup(Name)
	if e == nil {
		return nil, false, nil
	}
	if e.Size > maxManifestSize {
		return nil, true, fmt.Errorf("%s: %s is %d bytes, more than the %d a manifest may have", r.Path, Name, e.Size, maxManifestSize)
	}
	rc, err := e.Open()
	if err != nil {
		return nil, true, err
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return nil, true, err
	}
	m, err := Parse(data)
	if err != nil {
		return nil, true, fmt.Errorf("%s: %w", r.Path, err)
	}
	return m, true, nil
}

// maxListed bounds how many problems an error spells out.
const maxListed = 10

// Check cross-checks the manifest against the zip's entries: the same set
// of files (the manifest itself aside) with the same sizes. It reads no
// content; Verify compares hashes.
func Check(r *pkgzip.Reader, m *Manifest) error {
	var problems []string
	listed := make(map[string]bool, len(m.Files))
	for _, f := range m.Files {
		listed[f.Path] = true
		e := r.Lookup(f.Path)
		switch {
		case e == nil:
			problems = append(problems, fmt.Sprintf("%q is listed but not in the zip", f.Path))
		case e.Size != f.Size:
			problems = append(problems, fmt.Sprintf("%q is %d bytes, the manifest says %d", f.Path, e.Size, f.Size))
		}
	}
	for _, e := range r.Entries {
		if e.Name != Name && !listed[e.Name] {
			problems = append(problems, fmt.Sprintf("%q is in the zip but not listed", e.Name))
		}
	}
	return mismatch(r.Path, problems)
}

// Verify compares the manifest with the digests of a package's content
// (as pkgzip.Reader.HashAll returns them): every listed file must have the
// listed hash and size, and nothing else may be present.
func Verify(m *Manifest, digests map[string]pkgzip.Digest, pkgPath string) error {
	var problems []string
	listed := make(map[string]bool, len(m.Files))
	for _, f := range m.Files {
		listed[f.Path] = true
		d, ok := digests[f.Path]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("%q is listed but not in the package", f.Path))
		case d.Size != f.Size || d.SHA256 != f.SHA256:
			problems = append(problems, fmt.Sprintf("%q has SHA256 %s (%d bytes), the manifest says %s (%d bytes)", f.Path, d.SHA256, d.Size, f.SHA256, f.Size))
		}
	}
	for _, path := range slices.Sorted(maps.Keys(digests)) {
		if path != Name && !listed[path] {
			problems = append(problems, fmt.Sprintf("%q is in the package but not listed", path))
		}
	}
	return mismatch(pkgPath, problems)
}

func mismatch(pkgPath string, problems []string) error {
	if len(problems) == 0 {
		return nil
	}
	more := ""
	if len(problems) > maxListed {
		more = fmt.Sprintf("; and %d more", len(problems)-maxListed)
		problems = problems[:maxListed]
	}
	return fmt.Errorf("%s: %s does not match the package: %s%s (the package was modified after it was built, or the manifest is wrong; rebuild it)",
		pkgPath, Name, strings.Join(problems, "; "), more)
}
