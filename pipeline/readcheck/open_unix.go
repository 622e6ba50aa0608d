//go:build unix

package readcheck

import (
	"os"
	"syscall"
)

// openNonblock opens for reading without waiting for a FIFO's writer; the
// flag is harmless on a regular file, whose reads never block.
func openNonblock(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
}
