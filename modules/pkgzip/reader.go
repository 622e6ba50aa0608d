package pkgzip

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/klauspost/compress/flate"

	"github.com/relcue/release/internal/filekind"
	"github.com/relcue/release/internal/parallel"
	"github.com/relcue/release/modules/pkgzip/internal/layout"
)

// Reader is an open package zip. Open rejects, with an error that names the
// zip and the entry: unreadable/truncated zips, entries with "..", absolute
// paths or drive letters, duplicate names (also case-insensitively), local
// headers that contradict the central directory and entries that share
// bytes (see package layout).
type Reader struct {
	// Path names the zip in errors: its path, or what OpenAs was given.
	Path string
	// Entries are the regular files, sorted by Name.
	Entries []*Entry

	// close releases what the reader reads from; nil once closed.
	close func() error
}

// Open opens and validates the package zip at path.
func Open(path string) (*Reader, error) { return OpenAs(path, path) }

// OpenAs opens and validates the package zip at path, naming it name in
// errors: where the zip came from, when path is a copy (a downloaded
// input in the cache) that would tell the reader nothing.
func OpenAs(path, name string) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		if name != path {
			return nil, fmt.Errorf("%s: open package: %w", name, err)
		}
		return nil, fmt.Errorf("open package: %w", err)
	}
	r, err := newReader(name, f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return r, nil
}

func newReader(path string, f *os.File) (*Reader, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("open package: %w", err)
	}
	return newReaderAt(path, f, st.Size(), f.Close)
}

// newReaderAt reads the zip of size bytes in ra; closeFn is called by
// Close.
func newReaderAt(path string, ra io.ReaderAt, size int64, closeFn func() error) (*Reader, error) {
	zr, err := zip.NewReader(ra, size)
	// ErrInsecurePath comes with a usable reader; names get our own,
	// stricter, checks below.
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return nil, fmt.Errorf("%s: not a readable zip (truncated or corrupt?): %w", path, err)
	}
	zr.RegisterDecompressor(zip.Deflate, newFlateReader)
	entries, err := collectEntries(path, zr.File, ra)
	if err != nil {
		return nil, err
	}
	if err := layout.Check(ra, size, zr.File); err != nil {
		return nil, fmt.Errorf("%s: %w (%s)", path, err, layoutHint)
	}
	return &Reader{Path: path, Entries: entries, close: closeFn}, nil
}

// layoutHint is what to do about a zip that layout.Check refuses.
const layoutHint = "the zip is malformed, or made to show other zip readers other content; re-create it with a standard zip tool"

// OpenZip opens the zip that entry e holds as a package zip of its own,
// named "<zip>!<entry>" in errors. A stored entry (release stores what
// does not shrink, as zips rarely do) is read where it is, in the outer
// zip, which must stay open meanwhile; a compressed one is first
// decompressed into a temporary file in tmpDir ("" is the system's), which
// Close removes. Members are checked against their own CRC-32 as they are
// read; the outer entry's CRC-32 is only checked when it is decompressed.
func (e *Entry) OpenZip(tmpDir string) (*Reader, error) {
	name := e.zipPath + "!" + e.Name
	if e.File.Method == zip.Store {
		off, err := e.File.DataOffset()
		if err != nil {
			return nil, e.wrap(err)
		}
		if e.src == nil {
			return nil, fmt.Errorf("%s: the outer zip is closed", name)
		}
		r, err := newReaderAt(name, io.NewSectionReader(e.src, off, e.Size), e.Size, func() error { return nil })
		if err != nil {
			return nil, err
		}
		return r, nil
	}
	f, err := os.CreateTemp(tmpDir, ".nested-*.zip")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	cleanup := func() error {
		cerr := f.Close()
		if rerr := os.Remove(f.Name()); cerr == nil {
			cerr = rerr
		}
		return cerr
	}
	rc, err := e.Open()
	if err == nil {
		_, err = io.Copy(f, rc)
		if cerr := rc.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		cleanup()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	r, err := newReaderAt(name, f, e.Size, cleanup)
	if err != nil {
		cleanup()
		return nil, err
	}
	return r, nil
}

func collectEntries(zipPath string, files []*zip.File, src io.ReaderAt) ([]*Entry, error) {
	var names NameSet
	entries := make([]*Entry, 0, len(files))
	for _, f := range files {
		e, err := newEntry(zipPath, f, src)
		if err != nil {
			return nil, fmt.Errorf("%s: entry %q %w", zipPath, f.Name, err)
		}
		if e == nil {
			continue
		}
		if err := names.Add(e.Name, fmt.Sprintf("entry %q", f.Name)); err != nil {
			return nil, fmt.Errorf("%s: %w", zipPath, err)
		}
		entries = append(entries, e)
	}
	slices.SortFunc(entries, func(a, b *Entry) int { return strings.Compare(a.Name, b.Name) })
	return entries, nil
}

// newEntry validates one zip entry; it returns nil for directory entries,
// which carry nothing a package needs (directories are implied by paths).
func newEntry(zipPath string, f *zip.File, src io.ReaderAt) (*Entry, error) {
	name, dir, err := normalizeName(f.Name)
	if err != nil {
		return nil, err
	}
	mode := f.Mode()
	if dir || mode.IsDir() {
		return nil, nil
	}
	if t := mode.Type(); t != 0 {
		return nil, fmt.Errorf("is a %s, not a regular file; packages may contain regular files only", filekind.Name(t))
	}
	if f.Flags&0x1 != 0 {
		return nil, errors.New("is encrypted; packages must not be encrypted")
	}
	if f.Method != zip.Store && f.Method != zip.Deflate {
		return nil, fmt.Errorf("uses compression method %d; only store (0) and deflate (8) are supported, re-create the zip with deflate", f.Method)
	}
	if f.UncompressedSize64 > math.MaxInt64 || f.CompressedSize64 > math.MaxInt64 {
		return nil, errors.New("claims an impossible size; the zip is corrupt")
	}
	return &Entry{
		Name:    name,
		Mode:    entryMode(f),
		Size:    int64(f.UncompressedSize64),
		File:    f,
		zipPath: zipPath,
		src:     src,
	}, nil
}

// entryMode keeps only the executable bit, and only where the zip can carry
// it: unix permissions in the upper half of the external attributes.
func entryMode(f *zip.File) os.FileMode {
	const creatorUnix, creatorMacOSX = 3, 19
	switch f.CreatorVersion >> 8 {
	case creatorUnix, creatorMacOSX:
		return NormalMode(os.FileMode(f.ExternalAttrs >> 16))
	}
	return ModeFile
}

// Close releases the zip file.
func (r *Reader) Close() error {
	if r.close == nil {
		return nil
	}
	err := r.close()
	r.close = nil
	return err
}

// Lookup returns the entry with exactly this normalized name, or nil.
func (r *Reader) Lookup(name string) *Entry {
	i, ok := slices.BinarySearchFunc(r.Entries, name, func(e *Entry, n string) int { return strings.Compare(e.Name, n) })
	if !ok {
		return nil
	}
	return r.Entries[i]
}

// Open decompresses the entry; the CRC-32 is checked at EOF. Read errors
// name the zip and the entry.
func (e *Entry) Open() (io.ReadCloser, error) {
	rc, err := e.File.Open()
	if err != nil {
		return nil, e.wrap(err)
	}
	r := &entryReader{rc: rc, e: e}
	// archive/zip takes a CRC-32 of 0 for "not recorded" and checks
	// nothing then (unless a data descriptor follows). A zip must record
	// it, and 0 is the CRC-32 of the empty entry, so a non-empty entry's
	// 0 is checked here like any other value.
	f := e.File
	if f.CRC32 == 0 && f.Flags&flagDataDesc == 0 && f.UncompressedSize64 > 0 {
		r.crc = crc32.NewIEEE()
	}
	return r, nil
}

func (e *Entry) wrap(err error) error {
	hint := "the zip is corrupt; obtain a fresh copy"
	if errors.Is(err, zip.ErrChecksum) {
		hint = "CRC-32 mismatch: " + hint
	}
	if e.zipPath == "" {
		return fmt.Errorf("entry %q: %w (%s)", e.Name, err, hint)
	}
	return fmt.Errorf("%s: entry %q: %w (%s)", e.zipPath, e.Name, err, hint)
}

type entryReader struct {
	rc io.ReadCloser
	e  *Entry
	// crc, when set, sums what is read to check against a recorded 0.
	crc hash.Hash32
	err error // sticky, once the sum failed
}

func (r *entryReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	n, err := r.rc.Read(p)
	if r.crc != nil {
		r.crc.Write(p[:n])
		if err == io.EOF && r.crc.Sum32() != 0 {
			r.err = r.e.wrap(fmt.Errorf("%w: the recorded CRC-32 is 00000000, the data's is %08x", zip.ErrChecksum, r.crc.Sum32()))
			return n, r.err
		}
	}
	if err != nil && err != io.EOF {
		err = r.e.wrap(err)
	}
	return n, err
}

func (r *entryReader) Close() error { return r.rc.Close() }

// HashAll streams every entry (in parallel, at most workers at a time)
// through SHA-256 without extracting anything to disk. progress gets
// uncompressed bytes as they are hashed; it may be nil. Calls to progress
// are serialized.
func (r *Reader) HashAll(ctx context.Context, workers int, progress func(n int64)) (map[string]Digest, error) {
	var mu sync.Mutex
	report := func(n int64) {
		if progress != nil && n > 0 {
			mu.Lock()
			progress(n)
			mu.Unlock()
		}
	}
	digests, err := parallel.Map(ctx, workers, r.Entries, func(ctx context.Context, _ int, e *Entry) (Digest, error) {
		return e.hash(ctx, report)
	})
	if err != nil {
		// The pool reports a cancellation that no entry saw as ctx's bare
		// error; say what was cancelled, as the entries' errors do.
		if err == ctx.Err() {
			return nil, fmt.Errorf("%s: hashing: %w", r.Path, err)
		}
		return nil, err
	}
	out := make(map[string]Digest, len(r.Entries))
	for i, e := range r.Entries {
		out[e.Name] = digests[i]
	}
	return out, nil
}

const copyBufSize = 256 << 10

var copyBufs = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

func (e *Entry) hash(ctx context.Context, progress func(int64)) (Digest, error) {
	rc, err := e.Open()
	if err != nil {
		return Digest{}, err
	}
	defer rc.Close()
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	h := sha256.New()
	var size int64
	for {
		if err := ctx.Err(); err != nil {
			return Digest{}, fmt.Errorf("hashing entry %q: %w", e.Name, err)
		}
		n, err := rc.Read(*bp)
		h.Write((*bp)[:n])
		size += int64(n)
		progress(int64(n))
		if err == io.EOF {
			break
		}
		if err != nil {
			return Digest{}, err
		}
	}
	return Digest{SHA256: hex.EncodeToString(h.Sum(nil)), Size: size}, nil
}

// flateReaders recycles decompressors: their window and tables dominate the
// cost of opening a small entry.
var flateReaders sync.Pool

func newFlateReader(r io.Reader) io.ReadCloser {
	if fr, ok := flateReaders.Get().(io.ReadCloser); ok {
		if err := fr.(flate.Resetter).Reset(r, nil); err == nil {
			return &pooledFlateReader{fr: fr}
		}
	}
	return &pooledFlateReader{fr: flate.NewReader(r)}
}

type pooledFlateReader struct {
	fr io.ReadCloser
}

var errReadAfterClose = errors.New("read after close")

func (p *pooledFlateReader) Read(b []byte) (int, error) {
	if p.fr == nil {
		return 0, errReadAfterClose
	}
	return p.fr.Read(b)
}

func (p *pooledFlateReader) Close() error {
	if p.fr == nil {
		return nil
	}
	err := p.fr.Close()
	flateReaders.Put(p.fr)
	p.fr = nil
	return err
}
