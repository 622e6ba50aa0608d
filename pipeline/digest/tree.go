// Package digest computes content digests of local inputs: single files and
// whole directory trees, hashed in parallel.
package digest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/relcue/release/internal/parallel"
	"github.com/relcue/release/pipeline/fingerprint"
)

// TreeFile is one regular file of a tree.
type TreeFile struct {
	// Path is forward-slash and relative to the tree root.
	Path   string
	Exec   bool
	Size   int64
	SHA256 string
	// FP is the file's fingerprint when it was listed.
	FP fingerprint.FP
}

// Walk lists the regular files below root, sorted by path. Anything that is
// not a regular file or a directory (symlinks, devices, sockets) is an
// error: a release tree must mean the same bytes on every machine.
func Walk(root string) ([]TreeFile, error) {
	var files []TreeFile
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s: not a regular file or directory (%s); replace it with the file it stands for", p, d.Type())
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		fp, err := fingerprint.Of(p, info)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		files = append(files, TreeFile{
			Path: filepath.ToSlash(rel),
			Exec: info.Mode().Perm()&0o111 != 0,
			Size: info.Size(),
			FP:   fp,
		})
		return nil
	})
	if err != nil {
		return nil, err
	}
	SortFiles(files)
	return files, nil
}

// SortFiles puts files in the order TreeDigest expects: by path, compared
// as strings of forward-slash paths.
func SortFiles(files []TreeFile) {
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
}

// Tree returns a digest of the directory tree at root that changes whenever
// a file's path, content or executable bit changes, and the files with
// their hashes. Files are hashed in parallel by at most workers goroutines.
func Tree(ctx context.Context, root string, workers int) (string, []TreeFile, error) {
	info, err := os.Stat(root)
	if err != nil {
		return "", nil, err
	}
	if !info.IsDir() {
		return "", nil, fmt.Errorf("%s: not a directory", root)
	}
	files, err := Walk(root)
	if err != nil {
		return "", nil, err
	}
	err = parallel.For(ctx, workers, files, func(ctx context.Context, i int, f TreeFile) error {
		sum, _, err := FileContext(ctx, filepath.Join(root, filepath.FromSlash(f.Path)))
		files[i].SHA256 = sum
		return err
	})
	if err != nil {
		return "", nil, err
	}
	return TreeDigest(files), files, nil
}

// TreeDigest hashes a sorted file list into one digest.
func TreeDigest(files []TreeFile) string {
	h := sha256.New()
	var b strings.Builder
	for _, f := range files {
		b.Reset()
		mode := "f"
		if f.Exec {
			mode = "x"
		}
		fmt.Fprintf(&b, "%s %s %d %q\n", mode, f.SHA256, f.Size, f.Path)
		io.WriteString(h, b.String())
	}
	return hex.EncodeToString(h.Sum(nil))
}
