package dist

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// forceMethod, when set by a test, skips the faster ways.
var forceMethod string

// placeFast tries to share src's extents (FICLONE), then to copy in the
// kernel (copy_file_range); ok is false when neither is supported here.
func placeFast(dst, src *os.File, size int64) (method string, n int64, ok bool, err error) {
	if forceMethod != MethodCopy && forceMethod != MethodCopyFileRange {
		if err := unix.IoctlFileClone(int(dst.Fd()), int(src.Fd())); err == nil {
			return MethodReflink, size, true, nil
		}
	}
	if forceMethod == MethodCopy {
		return "", 0, false, nil
	}
	var roff, woff int64
	for n < size {
		c, err := unix.CopyFileRange(int(src.Fd()), &roff, int(dst.Fd()), &woff, int(min(size-n, 1<<30)), 0)
		if err != nil {
			if n == 0 && (errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EXDEV) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL)) {
				return "", 0, false, nil
			}
			return "", n, true, err
		}
		if c == 0 {
			break // source shorter than recorded: the caller reports it
		}
		n += int64(c)
	}
	return MethodCopyFileRange, n, true, nil
}
