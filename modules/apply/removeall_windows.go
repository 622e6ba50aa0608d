//go:build windows

package apply

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// removeTree removes p and everything below it. os.RemoveAll comes first;
// if it fails, the tree is walked and removed entry by entry with
// os.Remove (DeleteFileW and RemoveDirectoryW, clearing
// FILE_ATTRIBUTE_READONLY as needed), whose error names the entry.
//
// Wine differs from Windows here: Go's os.RemoveAll deletes through
// NtSetInformationFile(FileDispositionInformationEx), which Windows has
// had since 10 1607 but Wine 8.0 answers with STATUS_NOT_IMPLEMENTED
// ("Invalid function"), which Go does not treat as "unsupported" and so
// does not fall back from. The walk also covers file systems that reject
// the call in some other way.
func removeTree(p string) error {
	err := os.RemoveAll(p)
	if err == nil {
		return nil
	}
	var paths []string
	werr := filepath.WalkDir(p, func(q string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		paths = append(paths, q)
		return nil
	})
	if errors.Is(werr, fs.ErrNotExist) && len(paths) == 0 {
		return nil
	}
	if werr != nil {
		return werr
	}
	// Children before their directory.
	slices.Reverse(paths)
	for _, q := range paths {
		if err := os.Remove(q); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}
