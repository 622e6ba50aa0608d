//go:build !unix

package readcheck

import "os"

// openNonblock opens for reading; Windows has no FIFOs that block an open.
func openNonblock(path string) (*os.File, error) { return os.Open(path) }
