//go:build unix

package digest

import (
	"os"

	"golang.org/x/sys/unix"
)

// openNoBlock opens path read-only without waiting for a FIFO's writer.
func openNoBlock(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK, 0)
}

// blocking clears O_NONBLOCK once f is known to be a regular file. Linux
// ignores the flag for regular files, but some network and FUSE file
// systems honour it; the reads that follow must simply wait for data.
func blocking(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.SetNonblock(int(fd), false) }); err != nil {
		return err
	}
	return serr
}
