package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
)

// WriteFuncMkdirAll is WriteFunc that first creates the missing parent
// directories of path (0755), and removes the ones it created again when
// the write fails, for outputs whose contract is that a failed or
// cancelled build leaves nothing behind, not even an empty directory.
func WriteFuncMkdirAll(path string, perm os.FileMode, sync bool, fill func(*os.File) error) (err error) {
	created, err := mkdirAllTracked(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			removeAll(created)
		}
	}()
	return write(path, perm, sync, fill)
}

// mkdirAllTracked is os.MkdirAll that returns the directories it created,
// outermost first; on error it removes them again.
func mkdirAllTracked(dir string) ([]string, error) {
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	var created []string
	for i := len(missing) - 1; i >= 0; i-- {
		if err := os.Mkdir(missing[i], 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			removeAll(created)
			return nil, err
		}
		created = append(created, missing[i])
	}
	return created, nil
}

// removeAll removes the directories mkdirAllTracked created, innermost
// first. A directory that another writer has meanwhile put something into
// is not empty, so os.Remove leaves it, which is what that writer needs.
func removeAll(created []string) {
	for i := len(created) - 1; i >= 0; i-- {
		os.Remove(created[i])
	}
}
