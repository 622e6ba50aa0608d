//go:build unix

package apply

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// removeLockBeforeUnlock: on Unix a lock file can be unlinked while it is
// held; doing so before unlocking, together with the same-file check in
// acquireLock, keeps a waiter from locking a file nobody else will see.
const removeLockBeforeUnlock = true

// tryLock takes an exclusive, non-blocking flock. The kernel drops it when
// the process dies, so a killed apply never leaves the installation locked.
func tryLock(f *os.File) error {
	err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return errLocked
	}
	return err
}

func unlock(f *os.File) error { return unix.Flock(int(f.Fd()), unix.LOCK_UN) }

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
