//go:build !windows

package apply

// checkMovable is a no-op off Windows: a POSIX rename does not care who
// has the file open.
func checkMovable(*txn) error { return nil }
