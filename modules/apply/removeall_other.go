//go:build !windows

package apply

import "os"

// removeTree removes p and everything below it.
func removeTree(p string) error { return os.RemoveAll(p) }
