//go:build unix

package cache

import "golang.org/x/sys/unix"

// heldLockBudget is how many entry locks a process keeps open: half its
// file descriptor limit (which Go raises to the hard limit at start), so
// that the steps' own files always find descriptors.
func heldLockBudget() int64 {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil || rl.Cur == unix.RLIM_INFINITY {
		return 1 << 14
	}
	return max(int64(rl.Cur/2), 64)
}
