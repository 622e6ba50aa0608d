// Package filekind names the type of a file that is not a regular file,
// the same way in every message that refuses one.
package filekind

import "io/fs"

// Name is what m's type is called: "directory", "symbolic link", "named
// pipe (FIFO)", "socket", "device", or "special file (<mode>)".
func Name(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
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
