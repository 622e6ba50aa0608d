package pkgzip

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"slices"
	"strings"
	"time"
)

// DefaultLevel is used when WriterOptions.Level is 0.
const DefaultLevel = 6

// WriterOptions configures a deterministic zip writer.
type WriterOptions struct {
	// Date is written as every entry's modification time. Zip timestamps
	// cannot represent dates before 1980, so earlier dates (including the
	// zero time and SOURCE_DATE_EPOCH=0) are written as 1980-01-01.
	Date time.Time
	// Level is the deflate level 1..9 (0 means DefaultLevel).
	Level int
	// Workers bounds parallel compression (>= 1). Output bytes do not
	// depend on it.
	Workers int
	// Progress gets uncompressed bytes as they are compressed; may be nil.
	// Calls are serialized.
	Progress func(n int64)
	// TempDir receives a temporary file while an entry is too large to keep
	// its compressed bytes in memory until its header can be written
	// (default os.TempDir()). The file is removed by Close.
	TempDir string
}

// Writer collects entries and writes them sorted by name at Close, with
// fixed timestamps and modes, compressing in parallel with bounded memory.
// Entries added with AddGenerated follow all others.
type Writer struct {
	out     io.Writer
	opts    WriterOptions
	stamp   stamp
	err     error // invalid options, reported by every call
	closed  bool
	names   NameSet
	entries []*queued
	// spoolLimit is spoolMemLimit except in tests of the spill path.
	spoolLimit int
}

// queued is one entry waiting for Close; exactly one source is set.
type queued struct {
	name string
	mode fs.FileMode

	path    string // AddFile
	data    []byte // AddBytes, and AddGenerated once generated
	isBytes bool

	raw       *Entry // AddRaw
	rawDigest Digest

	gen func(map[string]Digest) ([]byte, error) // AddGenerated
}

func (q *queued) open() (io.ReadCloser, error) {
	if q.isBytes {
		return io.NopCloser(bytes.NewReader(q.data)), nil
	}
	f, err := os.Open(q.path)
	if err != nil {
		return nil, fmt.Errorf("entry %q: %w", q.name, err)
	}
	return f, nil
}

// source names where an entry's content comes from, for messages.
func (q *queued) source() string {
	if q.isBytes {
		return "in-memory data"
	}
	return q.path
}

// NewWriter returns a writer that writes a zip to w at Close. Invalid
// options are reported by the first Add or Close.
func NewWriter(w io.Writer, opts WriterOptions) *Writer {
	zw := &Writer{out: w, opts: opts, spoolLimit: spoolMemLimit}
	if zw.opts.Level == 0 {
		zw.opts.Level = DefaultLevel
	}
	if zw.opts.Level < 1 || zw.opts.Level > 9 {
		zw.err = fmt.Errorf("zip writer: deflate level %d is out of range; use 1 (fastest) to 9 (smallest)", opts.Level)
	}
	zw.opts.Workers = max(zw.opts.Workers, 1)
	var err error
	if zw.stamp, err = newStamp(opts.Date); err != nil && zw.err == nil {
		zw.err = err
	}
	return zw
}

func (w *Writer) add(q *queued) error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return fmt.Errorf("zip writer: cannot add %q after Close", q.name)
	}
	if err := CheckName(q.name); err != nil {
		return err
	}
	if err := w.names.Add(q.name, q.source()); err != nil {
		return err
	}
	q.mode = NormalMode(q.mode)
	w.entries = append(w.entries, q)
	return nil
}

// AddFile queues the file at srcPath as entry name. The file is read at
// Close; any execute bit in mode makes the entry executable.
func (w *Writer) AddFile(name, srcPath string, mode fs.FileMode) error {
	st, err := os.Stat(srcPath)
	if err != nil {
		return fmt.Errorf("entry %q: %w", name, err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("entry %q: %s is not a regular file (%s)", name, srcPath, st.Mode().Type())
	}
	return w.add(&queued{name: name, mode: mode, path: srcPath})
}

// AddBytes queues data as entry name.
func (w *Writer) AddBytes(name string, data []byte, mode fs.FileMode) error {
	return w.add(&queued{name: name, mode: mode, data: bytes.Clone(data), isBytes: true})
}

// AddRaw queues an entry of another zip to be copied without
// recompression; d is its known content digest. e's Reader must stay open
// until Close. The entry keeps e's mode.
func (w *Writer) AddRaw(name string, e *Entry, d Digest) error {
	if e == nil || e.File == nil {
		return fmt.Errorf("entry %q: AddRaw needs an entry of an open package zip", name)
	}
	if e.File.Method != zip.Store && e.File.Method != zip.Deflate {
		return fmt.Errorf("entry %q: source entry %q uses compression method %d; only store and deflate can be copied", name, e.Name, e.File.Method)
	}
	if d.Size != e.Size {
		return fmt.Errorf("entry %q: digest says %d bytes but source entry %q has %d; pass the digest of that entry", name, d.Size, e.Name, e.Size)
	}
	if b, err := hex.DecodeString(d.SHA256); err != nil || len(b) != 32 || d.SHA256 != strings.ToLower(d.SHA256) {
		return fmt.Errorf("entry %q: digest %q is not a lower-case hex SHA-256", name, d.SHA256)
	}
	return w.add(&queued{name: name, mode: e.Mode, raw: e, rawDigest: d})
}

// AddGenerated queues an entry whose content gen produces at Close from
// the digests of all entries not added with AddGenerated, e.g. a manifest.
// Generated entries are written after all others (sorted among
// themselves), because their content is only known then.
func (w *Writer) AddGenerated(name string, mode fs.FileMode, gen func(map[string]Digest) ([]byte, error)) error {
	if gen == nil {
		return fmt.Errorf("entry %q: AddGenerated needs a generator", name)
	}
	return w.add(&queued{name: name, mode: mode, gen: gen})
}

// Close writes all entries and the central directory and returns the digest
// of every entry written. It does not close the underlying io.Writer. On
// error, what was written is not a usable zip.
func (w *Writer) Close(ctx context.Context) (map[string]Digest, error) {
	if w.err != nil {
		return nil, w.err
	}
	if w.closed {
		return nil, errors.New("zip writer: Close called twice")
	}
	w.closed = true
	// The workers only look at ctx between chunks, and a zip of raw
	// copies and small entries may have none to look at: a cancelled
	// context must still fail the write, never yield a finished zip.
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	var plain, generated []*queued
	for _, q := range w.entries {
		if q.gen != nil {
			generated = append(generated, q)
		} else {
			plain = append(plain, q)
		}
	}
	byName := func(a, b *queued) int { return strings.Compare(a.name, b.name) }
	slices.SortFunc(plain, byName)
	slices.SortFunc(generated, byName)

	zw := zip.NewWriter(w.out)
	sp := &spool{dir: w.opts.TempDir, limit: w.spoolLimit}
	defer sp.close()
	digests := make(map[string]Digest, len(w.entries))
	if err := w.writeBatch(ctx, zw, sp, plain, digests); err != nil {
		return nil, err
	}
	for _, q := range generated {
		data, err := q.gen(maps.Clone(digests))
		if err != nil {
			return nil, fmt.Errorf("generating entry %q: %w", q.name, err)
		}
		q.data, q.isBytes = data, true
	}
	if err := w.writeBatch(ctx, zw, sp, generated, digests); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("writing zip central directory: %w", err)
	}
	return digests, nil
}

// progress reports n uncompressed bytes.
func (w *Writer) progress(n int64) {
	if w.opts.Progress != nil && n > 0 {
		w.opts.Progress(n)
	}
}
