// Package pkgzip reads and writes package zips: safe, normalized reading of
// zips made by any tool (backslash separators, explicit directory entries)
// and deterministic, parallel writing.
//
// Packages are installed on Windows, so every name is checked as Windows
// would see it: backslashes are separators and names that differ only in
// letter case collide.
package pkgzip

import (
	"archive/zip"
	"io"
	"io/fs"
)

// Digest is the SHA-256 (lower-case hex) and size of one file's content.
type Digest struct {
	SHA256 string `json:"SHA256"`
	Size   int64  `json:"Size"`
}

// Entry is one regular file of a package zip.
type Entry struct {
	// Name is normalized: forward slashes, no leading "./" or "/", no ".."
	// segments, no drive letter, never a directory.
	Name string
	// Mode is the permission bits (0o644 unless the zip marks it executable).
	Mode fs.FileMode
	// Size is the uncompressed size.
	Size int64
	// File is the underlying entry (for raw copies).
	File *zip.File

	// zipPath names the containing zip in errors.
	zipPath string
	// src is what the containing zip is read from (OpenZip).
	src io.ReaderAt
}

// Permission bits of package entries. Only the executable bit survives a
// round trip through a package; everything else is fixed so that output
// bytes do not depend on the umask or the file system of the build host.
const (
	ModeFile fs.FileMode = 0o644
	ModeExec fs.FileMode = 0o755
)

// NormalMode maps any permission bits to ModeExec if any execute bit is set
// and to ModeFile otherwise.
func NormalMode(m fs.FileMode) fs.FileMode {
	if m&0o111 != 0 {
		return ModeExec
	}
	return ModeFile
}
