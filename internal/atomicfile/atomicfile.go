// Package atomicfile replaces files so that a reader sees the old content
// or the new, never a part: write a temporary file beside the target, then
// rename it over the target.
package atomicfile

import (
	"os"
	"path/filepath"
)

// Write replaces path with data, with permissions perm.
func Write(path string, data []byte, perm os.FileMode) error {
	return write(path, perm, false, func(f *os.File) error {
		_, err := f.Write(data)
		return err
	})
}

// WriteSync is Write with the data flushed to stable storage before the
// rename, for files whose loss after a crash would cost more than a rebuild.
func WriteSync(path string, data []byte, perm os.FileMode) error {
	return write(path, perm, true, func(f *os.File) error {
		_, err := f.Write(data)
		return err
	})
}

// WriteFunc replaces path with what fill writes, flushing it first when
// sync is set; a failing fill leaves path untouched.
func WriteFunc(path string, perm os.FileMode, sync bool, fill func(*os.File) error) error {
	return write(path, perm, sync, fill)
}

func write(path string, perm os.FileMode, sync bool, fill func(*os.File) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	defer os.Remove(name) // a no-op after the rename
	if err := fill(tmp); err != nil {
		tmp.Close()
		return err
	}
	if sync {
		if err := tmp.Sync(); err != nil {
			tmp.Close()
			return err
		}
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(name, perm); err != nil {
		return err
	}
	return os.Rename(name, path)
}
