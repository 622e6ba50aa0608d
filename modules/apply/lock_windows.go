//go:build windows

package apply

import (
	"errors"
	"os"

	"golang.org/x/sys/windows"
)

// removeLockBeforeUnlock: Windows refuses to delete a file another process
// has open, so the lock file is removed only after our handle is closed,
// and only if nobody else has opened it meanwhile.
const removeLockBeforeUnlock = false

// tryLock takes an exclusive, non-blocking byte-range lock. Windows drops
// it when the process dies.
func tryLock(f *os.File) error {
	ol := new(windows.Overlapped)
	err := windows.LockFileEx(windows.Handle(f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, ol)
	if errors.Is(err, windows.ERROR_LOCK_VIOLATION) {
		return errLocked
	}
	return err
}

func unlock(f *os.File) error {
	ol := new(windows.Overlapped)
	return windows.UnlockFileEx(windows.Handle(f.Fd()), 0, 1, 0, ol)
}

// syncDir is a no-op: Windows cannot open a directory for FlushFileBuffers
// through os.Open, and NTFS journals renames itself.
func syncDir(string) error { return nil }
