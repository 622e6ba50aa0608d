//go:build windows

package apply

// removeLockBeforeUnlock: Windows refuses to delete a file another process
// has open, so the lock file is removed only after our handle is closed,
// and only if nobody else has opened it meanwhile.
const removeLockBeforeUnlock = false

// syncDir is a no-op: Windows cannot open a directory for FlushFileBuffers
// through os.Open, and NTFS journals renames itself.
func syncDir(string) error { return nil }
