package fingerprint

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/windows"
)

// fileBasicInfo is FILE_BASIC_INFO: ChangeTime is NTFS's ctime, which
// Win32's attribute data (what os.Stat reads) does not carry.
type fileBasicInfo struct {
	CreationTime, LastAccessTime, LastWriteTime, ChangeTime int64
	FileAttributes                                          uint32
	_                                                       uint32
}

// filetimeToUnix is the Unix epoch in FILETIME units (100 ns since 1601).
const filetimeToUnix = 116444736000000000

// of opens the file: the volume serial, file index and change time are
// only available from a handle.
func of(path string, info fs.FileInfo) (FP, error) {
	p, err := windows.UTF16PtrFromString(longPath(path))
	if err != nil {
		return FP{}, err
	}
	h, err := windows.CreateFile(p, 0, windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE|windows.FILE_SHARE_DELETE, nil,
		windows.OPEN_EXISTING, windows.FILE_FLAG_BACKUP_SEMANTICS|windows.FILE_FLAG_OPEN_REPARSE_POINT, 0)
	if err != nil {
		return FP{}, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer windows.CloseHandle(h)
	var bh windows.ByHandleFileInformation
	if err := windows.GetFileInformationByHandle(h, &bh); err != nil {
		return FP{}, fmt.Errorf("%s: %w", path, err)
	}
	var bi fileBasicInfo
	if err := windows.GetFileInformationByHandleEx(h, windows.FileBasicInfo, (*byte)(unsafe.Pointer(&bi)), uint32(unsafe.Sizeof(bi))); err != nil {
		return FP{}, fmt.Errorf("%s: %w", path, err)
	}
	return FP{
		Size:  int64(bh.FileSizeHigh)<<32 | int64(bh.FileSizeLow),
		Mtime: (bi.LastWriteTime - filetimeToUnix) * 100,
		Ctime: (bi.ChangeTime - filetimeToUnix) * 100,
		Ino:   uint64(bh.FileIndexHigh)<<32 | uint64(bh.FileIndexLow),
		Dev:   uint64(bh.VolumeSerialNumber),
	}, nil
}

// longPath lets paths past MAX_PATH be opened.
func longPath(p string) string {
	if len(p) < 248 || len(p) >= 4 && p[:4] == `\\?\` {
		return p
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	if len(abs) >= 2 && abs[:2] == `\\` {
		return `\\?\UNC\` + abs[2:]
	}
	return `\\?\` + abs
}
