package pkgzip

import (
	"context"
	"io"
	"io/fs"
	"time"
)

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
//
// The writer is being implemented; until then these keep the agreed API
// compiling for its users.
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
