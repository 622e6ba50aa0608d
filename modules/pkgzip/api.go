// Package pkgzip reads and writes package zips: safe, normalized reading of
// zips made by any tool (backslash separators, explicit directory entries)
// and deterministic, parallel writing.
//
// THIS FILE IS THE AGREED API. Bodies are being implemented; signatures are
// fixed (additions are fine, changes are not).
package pkgzip

import (
	"archive/zip"
	"context"
	"io"
	"io/fs"
	"time"
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
}

// Open decompresses the entry; the CRC-32 is checked at EOF.
func (e *Entry) Open() (io.ReadCloser, error) { panic("unimplemented") }

// Reader is an open package zip. Open rejects, with an error that names the
// zip and the entry: unreadable/truncated zips, entries with "..", absolute
// paths or drive letters, and duplicate names (also case-insensitively).
type Reader struct {
	Path string
	// Entries are the regular files, sorted by Name.
	Entries []*Entry
}

func Open(path string) (*Reader, error)   { panic("unimplemented") }
func (r *Reader) Close() error             { panic("unimplemented") }
func (r *Reader) Lookup(name string) *Entry { panic("unimplemented") }

// HashAll streams every entry (in parallel, at most workers at a time)
// through SHA-256 without extracting anything to disk. progress gets
// uncompressed bytes as they are hashed; it may be nil.
func (r *Reader) HashAll(ctx context.Context, workers int, progress func(n int64)) (map[string]Digest, error) {
	panic("unimplemented")
}

// WriterOptions configures a deterministic zip writer.
type WriterOptions struct {
	// Date is written as every entry's modification time.
	Date time.Time
	// Level is the deflate level 1..9.
	Level int
	// Workers bounds parallel compression (>= 1). Output bytes do not
	// depend on it.
	Workers int
	// Progress gets uncompressed bytes as they are compressed; may be nil.
	Progress func(n int64)
}

// Writer collects entries and writes them sorted by name at Close, with
// fixed timestamps and modes, compressing in parallel with bounded memory.
type Writer struct{}

func NewWriter(w io.Writer, opts WriterOptions) *Writer { panic("unimplemented") }

// AddFile queues the file at srcPath as entry name.
func (w *Writer) AddFile(name, srcPath string, mode fs.FileMode) error { panic("unimplemented") }

// AddBytes queues data as entry name.
func (w *Writer) AddBytes(name string, data []byte, mode fs.FileMode) error { panic("unimplemented") }

// AddRaw queues an entry of another zip to be copied without
// recompression; d is its known content digest.
func (w *Writer) AddRaw(name string, e *Entry, d Digest) error { panic("unimplemented") }

// Close writes all entries and the central directory and returns the digest
// of every entry written. It does not close the underlying io.Writer.
func (w *Writer) Close(ctx context.Context) (map[string]Digest, error) { panic("unimplemented") }
