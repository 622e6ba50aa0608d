//go:build !unix

package dist

import (
	"os"
	"path/filepath"
)

// openLock opens what publishers of dir lock: Windows cannot lock a
// directory handle, so a file in it.
func openLock(dir string) (*os.File, error) {
	return os.OpenFile(filepath.Join(dir, LockFile), os.O_RDWR|os.O_CREATE, 0o644)
}
