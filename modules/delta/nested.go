package delta

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/relcue/release/modules/pkgzip"
)

// Nested is an archive inside the package that installations hold
// expanded: K2s ships bin/WindowsNodeArtifacts.zip and unpacks its tool
// folders into bin/kube, bin/cni, ... when it installs. A delta never ships
// such an archive (it is left alone, like a skipped file); it diffs and
// ships the members at the paths they are installed to, as K2s's delta tool
// does (New-K2sDelta.Staging.ps1, Copy-WindowsNodeArtifactsToStaging).
//
// Unlike K2s's tool, which stages only the changed members of a tool folder
// and then lists the folder as a wholesale directory, so that K2s's
// in-place apply (which deletes a wholesale directory and copies the
// delta's) loses the unchanged binaries, release ships a whole directory
// complete whenever anything in it changed.
type Nested struct {
	// Archive is the package path of the zip.
	Archive string `json:"archive"`
	// Folders map folders of the archive to installation directories.
	Folders []NestedFolder `json:"folders"`
	// WindowsImages is the archive's folder of Windows container image
	// tars ("" for none): added and changed ones ship in
	// image-delta/windows/images.
	WindowsImages string `json:"windowsImages,omitempty"`
}

// NestedFolder installs the members below From (a folder of the archive,
// matched in any letter case as K2s's -match does) into To, keeping their
// paths below From.
type NestedFolder struct {
	From string `json:"from"`
	To   string `json:"to"`
	// Whole makes To a wholesale directory of any delta that changes
	// something in it.
	Whole bool `json:"whole"`
	// Rename maps a member's file name (any case) to its installed name.
	Rename map[string]string `json:"rename,omitempty"`
}

// InstallPath is where member is installed, if a folder maps it.
func (n Nested) InstallPath(member string) (string, bool) {
	for _, f := range n.Folders {
		rest, ok := cutFolder(member, f.From)
		if !ok {
			continue
		}
		dir, leaf := path.Split(rest)
		for from, to := range f.Rename {
			if strings.EqualFold(leaf, from) {
				leaf = to
				break
			}
		}
		return path.Join(f.To, dir, leaf), true
	}
	return "", false
}

// windowsImage reports whether member is an image tar directly in the
// WindowsImages folder, and its file name.
func (n Nested) windowsImage(member string) (string, bool) {
	if n.WindowsImages == "" {
		return "", false
	}
	rest, ok := cutFolder(member, n.WindowsImages)
	if !ok || strings.Contains(rest, "/") || !strings.HasSuffix(strings.ToLower(rest), ".tar") {
		return "", false
	}
	return rest, true
}

// cutFolder returns the part of member below folder, compared in any case.
func cutFolder(member, folder string) (string, bool) {
	if len(member) <= len(folder)+1 || member[len(folder)] != '/' || !strings.EqualFold(member[:len(folder)], folder) {
		return "", false
	}
	return member[len(folder)+1:], true
}

// nestedFile is one member installed from a nested archive.
type nestedFile struct {
	entry *pkgzip.Entry
	// from names the member in messages: "<archive>!<member>".
	from string
}

// windowsImage is one Windows image tar of a nested archive.
type windowsImage struct {
	entry  *pkgzip.Entry
	digest pkgzip.Digest
}

// nestedContent is what the nested archives of one package add.
type nestedContent struct {
	readers []*pkgzip.Reader
	// files are the installed members by installation path.
	files map[string]nestedFile
	// images are the Windows image tars by file name.
	images map[string]windowsImage
}

func (c *nestedContent) close() {
	for _, r := range c.readers {
		r.Close()
	}
}

// expandNested opens the nested archives the package has, adds their
// installed members to info.files (hashing them) and returns where each
// comes from. The caller closes the result, also on error.
func expandNested(ctx context.Context, role string, r *pkgzip.Reader, info *pkgInfo, nested []Nested, workers int, progress func(int64)) (*nestedContent, error) {
	c := &nestedContent{files: map[string]nestedFile{}, images: map[string]windowsImage{}}
	taken := map[string]string{} // lower-case installation path -> what provides it
	for p := range info.files {
		taken[strings.ToLower(p)] = "the package's own " + p
	}
	for _, n := range nested {
		e := r.Lookup(n.Archive)
		if e == nil {
			continue // a release without the archive has none of its members
		}
		nr, err := e.OpenZip("")
		if err != nil {
			return c, fmt.Errorf("%s package: nested archive: %w", role, err)
		}
		c.readers = append(c.readers, nr)
		digests, err := nr.HashAll(ctx, workers, progress)
		if err != nil {
			return c, fmt.Errorf("%s package: %w", role, err)
		}
		for _, m := range nr.Entries {
			if name, ok := n.windowsImage(m.Name); ok {
				c.images[name] = windowsImage{entry: m, digest: digests[m.Name]}
				continue
			}
			p, ok := n.InstallPath(m.Name)
			if !ok {
				continue // not installed, so not part of any delta
			}
			from := n.Archive + "!" + m.Name
			if err := CheckPath(p); err != nil {
				return c, fmt.Errorf("%s package %s: %s is installed as %s: %w", role, r.Path, from, p, err)
			}
			if other, dup := taken[strings.ToLower(p)]; dup {
				return c, fmt.Errorf("%s package %s: %s and %s are both installed as %s; change deltas.nested or rename one", role, r.Path, other, from, p)
			}
			taken[strings.ToLower(p)] = from
			c.files[p] = nestedFile{entry: m, from: from}
			info.files[p] = fileInfo{Digest: digests[m.Name], Exec: m.Mode&0o111 != 0}
		}
	}
	return c, nil
}

// nestedWholeDirs returns the Whole folders' directories that hold a
// change of d, which a delta ships complete and lists as wholesale.
func nestedWholeDirs(nested []Nested, d fileDiff) []string {
	var out []string
	for _, n := range nested {
		for _, f := range n.Folders {
			if !f.Whole || slices.Contains(out, f.To) {
				continue
			}
			for _, l := range [][]string{d.Added, d.Changed, d.Removed} {
				if slices.ContainsFunc(l, func(p string) bool { return strings.HasPrefix(p, f.To+"/") }) {
					out = append(out, f.To)
					break
				}
			}
		}
	}
	return out
}

// windowsImageDiff compares the Windows image tars of the two packages by
// content and names the images as K2s does from their file names
// (New-K2sDelta.ImageDiff.ps1: "__" is "/", then the last "_v" or else
// the last "_" is ":").
func windowsImageDiff(base, target map[string]windowsImage) (added, changed, removed []string) {
	for _, name := range sortedKeys(target) {
		b, ok := base[name]
		switch {
		case !ok:
			added = append(added, name)
		case b.digest != target[name].digest:
			changed = append(changed, name)
		}
	}
	for _, name := range sortedKeys(base) {
		if _, ok := target[name]; !ok {
			removed = append(removed, name)
		}
	}
	return added, changed, removed
}

// windowsImageRef is the reference K2s derives from an image tar's name.
func windowsImageRef(file string) string {
	n := strings.TrimSuffix(file, path.Ext(file))
	n = strings.ReplaceAll(n, "__", "/")
	if i := strings.LastIndex(n, "_v"); i >= 0 {
		return n[:i] + ":" + n[i+1:]
	}
	if i := strings.LastIndex(n, "_"); i >= 0 {
		return n[:i] + ":" + n[i+1:]
	}
	return n
}
