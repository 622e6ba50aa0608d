package plan

import (
	"fmt"
	"io/fs"
	"os"
)

// checkRegular refuses anything at path but a regular file, without
// opening it. Symbolic links are refused too, as in directory inputs: an
// input must mean the same bytes on every machine.
func checkRegular(path string) error {
	info, err := os.Lstat(path)
	if err != nil {
		return err
	}
	if m := info.Mode(); !m.IsRegular() {
		return fmt.Errorf("is a %s, not a regular file; inputs are regular files or directories, so give the file itself", kindOf(m))
	}
	return nil
}

func kindOf(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory (use dir: for a tree)"
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	}
	return "special file (" + m.Type().String() + ")"
}
