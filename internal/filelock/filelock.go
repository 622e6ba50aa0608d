// Package filelock takes advisory locks on open files (flock on Unix,
// LockFileEx on Windows). The lock belongs to the open file: it is
// released when the file is closed, including by the kernel when the
// process dies, so a killed process never leaves a directory locked.
package filelock

import "os"

// Lock locks f, shared or exclusive. Without block it returns false at
// once when another open file holds a conflicting lock.
func Lock(f *os.File, exclusive, block bool) (bool, error) { return lock(f, exclusive, block) }

// Unlock releases f's lock; closing f does too.
func Unlock(f *os.File) error { return unlock(f) }
