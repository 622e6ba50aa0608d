package addon

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"
)

// entry is one file of a layer: its bytes come from Src (a local file) or
// Data. Directories are added by writeTar from the file paths.
type entry struct {
	Name string // forward-slash path in the tar
	Src  string
	Data []byte
	Exec bool
}

// tarFiles collects the regular files below root whose path relative to
// root (forward slashes) keep accepts, named prefix+path. Symlinks and
// other special files are refused wherever the walk meets them, whether
// keep would take them or not, and so is a root that is a symlink: a
// layer must not depend on what a link points at on the build machine,
// and a linked directory (which the walk does not enter) must not leave
// its layer silently empty.
func tarFiles(root, prefix string, keep func(rel string, isDir bool) bool) ([]entry, error) {
	var out []entry
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && !d.Type().IsRegular() {
			return fmt.Errorf("%s is not a regular file or directory (a symlink or device); copy the real file or directory into the addon directory", p)
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if rel == "." {
			return nil
		}
		if d.IsDir() {
			if keep != nil && !keep(rel, true) {
				return fs.SkipDir
			}
			return nil
		}
		if keep != nil && !keep(rel, false) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		out = append(out, entry{Name: prefix + rel, Src: p, Exec: info.Mode()&0o111 != 0})
		return nil
	})
	return out, err
}

// writeTar writes entries as a reproducible tar: sorted, parent
// directories made explicit, owner root, modes 0755/0644, every time the
// build date. Names that differ only in case are refused, since Windows
// extracts them into one file.
func writeTar(w io.Writer, entries []entry, date time.Time) error {
	entries = slices.Clone(entries)
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.Name, b.Name) })
	tw := tar.NewWriter(w)
	dirs := map[string]bool{}
	folded := map[string]string{}
	hdr := func(name string, mode int64, typ byte, size int64) *tar.Header {
		return &tar.Header{Name: name, Mode: mode, Typeflag: typ, Size: size, ModTime: date, Format: tar.FormatPAX}
	}
	var mkdirs func(dir string) error
	mkdirs = func(dir string) error {
		if dir == "." || dir == "" || dirs[dir] {
			return nil
		}
		if err := mkdirs(path.Dir(dir)); err != nil {
			return err
		}
		dirs[dir] = true
		return tw.WriteHeader(hdr(dir+"/", 0o755, tar.TypeDir, 0))
	}
	for i, e := range entries {
		if err := checkName(e.Name); err != nil {
			return err
		}
		if i > 0 && entries[i-1].Name == e.Name {
			return fmt.Errorf("layer entry %s is written twice", e.Name)
		}
		if prev, dup := folded[strings.ToLower(e.Name)]; dup {
			return fmt.Errorf("layer entries %s and %s differ only in case, which Windows cannot extract; rename one", prev, e.Name)
		}
		folded[strings.ToLower(e.Name)] = e.Name
		if err := mkdirs(path.Dir(e.Name)); err != nil {
			return err
		}
		mode := int64(0o644)
		if e.Exec {
			mode = 0o755
		}
		if e.Src == "" {
			if err := tw.WriteHeader(hdr(e.Name, mode, tar.TypeReg, int64(len(e.Data)))); err != nil {
				return err
			}
			if _, err := tw.Write(e.Data); err != nil {
				return err
			}
			continue
		}
		if err := copyFile(tw, e, mode, hdr); err != nil {
			return err
		}
	}
	return tw.Close()
}

func copyFile(tw *tar.Writer, e entry, mode int64, hdr func(string, int64, byte, int64) *tar.Header) error {
	f, err := os.Open(e.Src)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(hdr(e.Name, mode, tar.TypeReg, fi.Size())); err != nil {
		return err
	}
	n, err := io.Copy(tw, f)
	if err != nil {
		return fmt.Errorf("%s: %w", e.Src, err)
	}
	if n != fi.Size() {
		return fmt.Errorf("%s changed size while being read", e.Src)
	}
	return nil
}

// checkName refuses names that would escape the extraction directory.
func checkName(name string) error {
	if name == "" || strings.HasPrefix(name, "/") || strings.Contains(name, `\`) || path.Clean(name) != name ||
		name == ".." || strings.HasPrefix(name, "../") {
		return fmt.Errorf("layer entry %q is not a clean relative path", name)
	}
	return nil
}

// gzipWriter compresses with a fixed level and a header without name or
// time, so equal tars give equal bytes. ModTime is the Unix epoch, which
// the header stores as 0 ("no time"): klauspost's writer, unlike the
// standard library's, stores the zero time.Time as uint32(-62135596800),
// a date in 2042.
func gzipWriter(w io.Writer) (*gzip.Writer, error) {
	zw, err := gzip.NewWriterLevel(w, gzip.DefaultCompression)
	if err != nil {
		return nil, err
	}
	zw.Header = gzip.Header{OS: 255, ModTime: time.Unix(0, 0)}
	return zw, nil
}
