//go:build windows

package cache

// heldLockBudget is how many entry locks a process keeps open; Windows has
// no small per-process handle limit, so this only bounds the handle table.
func heldLockBudget() int64 { return 1 << 16 }
