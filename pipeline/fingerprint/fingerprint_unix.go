//go:build unix

package fingerprint

import (
	"fmt"
	"io/fs"
	"syscall"
)

func of(path string, info fs.FileInfo) (FP, error) {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return FP{}, fmt.Errorf("%s: no stat data", path)
	}
	return FP{
		Size:  info.Size(),
		Mtime: info.ModTime().UnixNano(),
		Ctime: ctime(st),
		Ino:   uint64(st.Ino),
		Dev:   uint64(st.Dev), //nolint:unconvert // int32 on some platforms
	}, nil
}
