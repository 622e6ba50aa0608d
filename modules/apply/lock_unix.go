//go:build unix

package apply

import (
	"os"
)

// removeLockBeforeUnlock: on Unix a lock file can be unlinked while it is
// held; doing so before unlocking, together with the same-file check in
// acquireLock, keeps a waiter from locking a file nobody else will see.
const removeLockBeforeUnlock = true

// syncDir makes renames and removals in dir durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
