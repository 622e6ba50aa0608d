// Package layout checks what archive/zip takes on trust when it opens a
// zip. archive/zip reads an entry through its central directory record
// alone, so it accepts a zip whose local headers say something else (tools
// that stream local headers then extract other names or other bytes) and
// one whose records share data (the zip-bomb layout, where one stream is
// counted many times). Check refuses both before any entry is read, as
// Python's zipfile refuses a local name that differs and Info-ZIP's unzip
// "overlapped components".
package layout

import (
	"archive/zip"
	"bufio"
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

const (
	sigLocal     = 0x04034b50
	sigCentral   = 0x02014b50
	sigEnd       = 0x06054b50
	sigEnd64     = 0x06064b50
	sigLocator64 = 0x07064b50
	zip64ExtraID = 0x0001
	max32        = 0xffffffff

	localLen     = 30
	centralLen   = 46
	endLen       = 22
	end64Len     = 56
	locator64Len = 20

	flagEncrypted  = 0x1
	flagDescriptor = 0x8
	flagUTF8       = 0x800
	// descriptorMin is the smallest data descriptor (CRC-32 and two 32-bit
	// sizes, no signature): bytes an entry with one surely occupies.
	descriptorMin = 12
	// extraSlack is read along with each local header, so that the
	// extra field (a timestamp, a zip64 field: 9 to 28 bytes as common
	// tools write them) rarely needs a second read.
	extraSlack = 64
)

// Check verifies the zip of size bytes in ra against files, archive/zip's
// reading of its central directory (zip.Reader.File, in directory order):
// every entry has a local header of its own that agrees with its record
// (name, flags that change how it is read, method, CRC-32 and sizes where
// the header carries them), and no two entries, nor an entry and the
// central directory, occupy the same bytes. The error names the entry.
func Check(ra io.ReaderAt, size int64, files []*zip.File) error {
	dir, err := locate(ra, size, files)
	if err != nil {
		return err
	}
	// Headers are visited in the order they lie in the file, so that those
	// close together (small entries) are read a window at a time rather
	// than one by one; a large entry's header is one small read.
	order := make([]int, len(files))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(dir.offsets[a], dir.offsets[b]) })
	need := func(i int) int64 {
		off := dir.offsets[i]
		return min(localLen+int64(len(files[i].Name))+extraSlack, max(size-off, 0))
	}
	win := &window{ra: ra}
	spans := make([]span, 0, len(files)+1)
	spans = append(spans, span{start: dir.start, end: dir.end})
	// A disagreeing field is reported after overlaps: records that share
	// a local header disagree with it by name, but what is wrong with
	// them is the sharing.
	var mismatch error
	for k, i := range order {
		f, off := files[i], dir.offsets[i]
		if off >= 0 && !win.has(off, need(i)) {
			end := off + need(i)
			for _, j := range order[k+1:] {
				e := dir.offsets[j] + need(j)
				if e-off > maxWindow {
					break
				}
				end = max(end, e)
			}
			if err := win.fill(off, end); err != nil {
				return fmt.Errorf("entry %q: reading its local header: %w", f.Name, err)
			}
		}
		s, err := checkLocal(win, size, f, off, dir)
		if err != nil {
			if _, ok := err.(*mismatchError); !ok {
				return fmt.Errorf("entry %q: %w", f.Name, err)
			}
			mismatch = cmp.Or(mismatch, fmt.Errorf("entry %q: %w", f.Name, err))
		}
		s.index = i + 1
		spans = append(spans, s)
	}
	return cmp.Or(checkOverlaps(spans), mismatch)
}

// maxWindow bounds one read of neighbouring local headers.
const maxWindow = 64 << 10

// window holds bytes [start, start+len(buf)) of the zip.
type window struct {
	ra    io.ReaderAt
	start int64
	buf   []byte
}

func (w *window) has(off, n int64) bool {
	return off >= w.start && off+n <= w.start+int64(len(w.buf))
}

func (w *window) fill(start, end int64) error {
	if int64(cap(w.buf)) < end-start {
		w.buf = make([]byte, end-start, max(end-start, 4<<10))
	}
	w.start, w.buf = start, w.buf[:end-start]
	n, err := w.ra.ReadAt(w.buf, start)
	w.buf = w.buf[:n]
	if err == io.EOF {
		err = nil
	}
	return err
}

// at returns n bytes at off: from the window, or read on their own (a
// long name or extra field).
func (w *window) at(off, n int64) ([]byte, error) {
	if w.has(off, n) {
		return w.buf[off-w.start : off-w.start+n], nil
	}
	b := make([]byte, n)
	if _, err := w.ra.ReadAt(b, off); err != nil {
		return nil, err
	}
	return b, nil
}

// mismatchError is a local header field that disagrees with the central
// directory; the header was read, and its span is known.
type mismatchError struct{ msg string }

func (e *mismatchError) Error() string { return e.msg }

func mismatchf(format string, args ...any) error {
	return &mismatchError{msg: fmt.Sprintf(format, args...)}
}

// span is the bytes one entry (its local header, data and data
// descriptor) or the central directory occupies: [start, end).
type span struct {
	start, end int64
	name       string // "" for the central directory
	index      int    // in directory order; ties sort by it, for stable messages
}

func checkOverlaps(spans []span) error {
	slices.SortFunc(spans, func(a, b span) int {
		if a.start != b.start {
			return cmp.Compare(a.start, b.start)
		}
		if a.end != b.end {
			return cmp.Compare(a.end, b.end)
		}
		return a.index - b.index
	})
	for i := 1; i < len(spans); i++ {
		prev, cur := spans[i-1], spans[i]
		if cur.start >= prev.end {
			continue
		}
		switch {
		case prev.name == "":
			return fmt.Errorf("entry %q: its data lies inside the central directory (offset %d)", cur.name, cur.start)
		case cur.name == "":
			return fmt.Errorf("entry %q: its data runs into the central directory (offset %d)", prev.name, cur.start)
		}
		return fmt.Errorf("entries %q and %q overlap at offset %d: their records share bytes, the layout of a zip bomb (one stream counted many times); every entry must have data of its own", prev.name, cur.name, cur.start)
	}
	return nil
}

// checkLocal reads the local header at off and compares it with f's
// central record; it returns the bytes the entry occupies.
func checkLocal(win *window, size int64, f *zip.File, off int64, dir *directory) (span, error) {
	if off >= dir.start && off < dir.end {
		return span{}, fmt.Errorf("its record points into the central directory (offset %d), where no entry can be", off)
	}
	if off < 0 || off > size-localLen {
		return span{}, fmt.Errorf("its local header offset %d lies outside the zip (%d bytes)", off, size)
	}
	buf, err := win.at(off, localLen)
	if err != nil {
		return span{}, fmt.Errorf("reading its local header: %w", err)
	}
	h := binary.LittleEndian
	if h.Uint32(buf) != sigLocal {
		return span{}, fmt.Errorf("no local header at offset %d, where its record points", off)
	}
	flags, method := h.Uint16(buf[6:]), h.Uint16(buf[8:])
	crc, csize, usize := h.Uint32(buf[14:]), h.Uint32(buf[18:]), h.Uint32(buf[22:])
	nameLen, extraLen := int64(h.Uint16(buf[26:])), int64(h.Uint16(buf[28:]))
	dataStart := off + localLen + nameLen + extraLen
	if dataStart > size {
		return span{}, fmt.Errorf("its local header at offset %d runs past the end of the zip", off)
	}
	name, err := win.at(off+localLen, nameLen)
	if err != nil {
		return span{}, fmt.Errorf("reading its local header: %w", err)
	}
	if f.CompressedSize64 > uint64(size-dataStart) {
		return span{}, fmt.Errorf("its data (%d bytes at offset %d) runs past the end of the zip (%d bytes)", f.CompressedSize64, dataStart, size)
	}
	descriptor := f.Flags&flagDescriptor != 0
	sp := span{start: off, end: dataStart + int64(f.CompressedSize64), name: f.Name}
	// archive/zip never reads a directory's data or descriptor, and some
	// writers set the flag on directories without writing one.
	if descriptor && !strings.HasSuffix(f.Name, "/") {
		sp.end += descriptorMin
	}
	if string(name) != f.Name {
		return sp, mismatchf("its local header names it %q: tools that read local headers would extract another file than the central directory lists", name)
	}
	// Bits that change how the entry is read. UTF-8 changes only what a
	// name with non-ASCII bytes means.
	mask := uint16(flagEncrypted | flagDescriptor)
	if !isASCII(f.Name) {
		mask |= flagUTF8
	}
	if flags&mask != f.Flags&mask {
		return sp, mismatchf("its local header has flags 0x%04x, the central directory 0x%04x", flags, f.Flags)
	}
	if method != f.Method {
		return sp, mismatchf("its local header says compression method %d, the central directory %d", method, f.Method)
	}
	// The local header carries sizes of 0xffffffff in a zip64 field.
	var local64 []byte
	if csize == max32 || usize == max32 {
		extra, err := win.at(off+localLen+nameLen, extraLen)
		if err != nil {
			return span{}, fmt.Errorf("reading its local header: %w", err)
		}
		local64 = findExtra(extra, zip64ExtraID)
	}
	lu, lc := localSizes(usize, csize, local64)
	// With a data descriptor, the local header may hold zeros instead of
	// the values (archive/zip, .NET and Info-ZIP writing to a pipe do).
	agrees := func(local, central uint64) bool { return local == central || descriptor && local == 0 }
	if !agrees(uint64(crc), uint64(f.CRC32)) {
		return sp, mismatchf("its local header has CRC-32 %08x, the central directory %08x", crc, f.CRC32)
	}
	if !lc.agrees(f.CompressedSize64, agrees) {
		return sp, mismatchf("its local header has compressed size %s, the central directory %d", lc, f.CompressedSize64)
	}
	if !lu.agrees(f.UncompressedSize64, agrees) {
		return sp, mismatchf("its local header has size %s, the central directory %d", lu, f.UncompressedSize64)
	}
	return sp, nil
}

// localSize is a size as a local header gives it: a value, or "at least
// 0xffffffff" when the field is saturated and no zip64 field says more
// (archive/zip's writer leaves large sizes so).
type localSize struct {
	v         uint64
	saturated bool
}

func (s localSize) agrees(central uint64, eq func(local, central uint64) bool) bool {
	if s.saturated {
		return central >= max32
	}
	return eq(s.v, central)
}

func (s localSize) String() string {
	if s.saturated {
		return "0xffffffff"
	}
	return fmt.Sprint(s.v)
}

// localSizes resolves a local header's saturated sizes through its zip64
// field. The format says that field holds both sizes, uncompressed first;
// some writers put in only the saturated ones, which a field of 8 bytes
// tells.
func localSizes(usize, csize uint32, z64 []byte) (u, c localSize) {
	u, c = localSize{v: uint64(usize)}, localSize{v: uint64(csize)}
	both := len(z64) >= 16
	at := func(i int) (uint64, bool) {
		if len(z64) < 8*(i+1) {
			return 0, false
		}
		return binary.LittleEndian.Uint64(z64[8*i:]), true
	}
	var ok bool
	if usize == max32 {
		u.v, ok = at(0)
		u.saturated = !ok
	}
	if csize == max32 {
		i := 0
		if both || usize == max32 {
			i = 1
		}
		c.v, ok = at(i)
		c.saturated = !ok
	}
	return u, c
}

// findExtra returns the data of the first extra field with this id.
func findExtra(extra []byte, id uint16) []byte {
	for len(extra) >= 4 {
		tag, n := binary.LittleEndian.Uint16(extra), int(binary.LittleEndian.Uint16(extra[2:]))
		if len(extra)-4 < n {
			return nil
		}
		if tag == id {
			return extra[4 : 4+n]
		}
		extra = extra[4+n:]
	}
	return nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// directory is where the central directory is and where each record
// points.
type directory struct {
	// start and end bound the central directory and the end records
	// after it.
	start, end int64
	// offsets are the local header offsets, absolute, in files' order.
	offsets []int64
}

var errAmbiguous = errors.New("its central directory cannot be located unambiguously (it does not read the same from where its end record points); the zip is corrupt")

// locate finds the central directory as archive/zip does and reads each
// record's local header offset, which archive/zip keeps to itself. The
// records read must be the ones archive/zip read (names, extras and
// lengths), so that the checks are about the entries it will open.
func locate(ra io.ReaderAt, size int64, files []*zip.File) (*directory, error) {
	end, err := readEnd(ra, size)
	if err != nil {
		return nil, err
	}
	// archive/zip reads a zip with bytes before it (a self-extractor's
	// stub) with offsets relative to where the zip starts, unless a
	// record is found where the offsets point as they are.
	bases := []int64{end.base}
	if end.base > 0 {
		bases = []int64{0, end.base}
	}
	var dirLen int64
	for _, f := range files {
		dirLen += centralLen + int64(len(f.Name)) + int64(len(f.Extra)) + int64(len(f.Comment))
	}
	for _, base := range bases {
		start := base + end.dirOffset
		if start < 0 || start > size-dirLen {
			continue
		}
		// Streamed through a small buffer: the directory can be large.
		br := bufio.NewReaderSize(io.NewSectionReader(ra, start, dirLen), 64<<10)
		offsets, err := readRecords(br, files, base)
		if err != nil {
			return nil, fmt.Errorf("reading the central directory: %w", err)
		}
		if offsets != nil {
			return &directory{start: start, end: max(end.tail, start+dirLen), offsets: offsets}, nil
		}
	}
	return nil, errAmbiguous
}

// readRecords parses the central directory records in r and returns
// their local header offsets, or nil unless they are files' records.
func readRecords(r io.Reader, files []*zip.File, base int64) ([]int64, error) {
	h := binary.LittleEndian
	offsets := make([]int64, len(files))
	rec := make([]byte, centralLen, 512)
	for i, f := range files {
		rec = rec[:centralLen]
		if _, err := io.ReadFull(r, rec); err != nil {
			return nil, err
		}
		if h.Uint32(rec) != sigCentral {
			return nil, nil
		}
		nameLen, extraLen, commentLen := int(h.Uint16(rec[28:])), int(h.Uint16(rec[30:])), int(h.Uint16(rec[32:]))
		rec = slices.Grow(rec, nameLen+extraLen+commentLen)[:centralLen+nameLen+extraLen+commentLen]
		if _, err := io.ReadFull(r, rec[centralLen:]); err != nil {
			if err == io.ErrUnexpectedEOF || err == io.EOF {
				return nil, nil // longer than archive/zip's record: not the same directory
			}
			return nil, err
		}
		if h.Uint16(rec[8:]) != f.Flags || h.Uint16(rec[10:]) != f.Method || h.Uint32(rec[16:]) != f.CRC32 ||
			h.Uint32(rec[20:]) != f.CompressedSize || h.Uint32(rec[24:]) != f.UncompressedSize ||
			string(rec[centralLen:centralLen+nameLen]) != f.Name ||
			!bytes.Equal(rec[centralLen+nameLen:centralLen+nameLen+extraLen], f.Extra) {
			return nil, nil
		}
		off := uint64(h.Uint32(rec[42:]))
		if off == max32 {
			// archive/zip takes the offset from the first zip64 field,
			// after the sizes that are saturated.
			z := findExtra(f.Extra, zip64ExtraID)
			if h.Uint32(rec[24:]) == max32 {
				z = z[min(8, len(z)):]
			}
			if h.Uint32(rec[20:]) == max32 {
				z = z[min(8, len(z)):]
			}
			if len(z) >= 8 {
				off = h.Uint64(z)
			}
		}
		if off > 1<<62 {
			return nil, nil
		}
		offsets[i] = base + int64(off)
	}
	return offsets, nil
}

// end is what the end of central directory records say.
type end struct {
	dirOffset int64
	// base is where archive/zip thinks the zip starts in the file.
	base int64
	// tail is the end of the end record and its comment.
	tail int64
}

// readEnd finds the end of central directory record as archive/zip does:
// the last signature, in the last 1 KiB and then 65 KiB, whose comment
// fits; zip64 records when a field is saturated.
func readEnd(ra io.ReaderAt, size int64) (*end, error) {
	var rec []byte
	var at int64
	for i, n := range []int64{1 << 10, 65 << 10} {
		n = min(n, size)
		buf := make([]byte, n)
		if _, err := ra.ReadAt(buf, size-n); err != nil && err != io.EOF {
			return nil, fmt.Errorf("reading the end of the central directory: %w", err)
		}
		if p := findEndSig(buf); p >= 0 {
			rec, at = buf[p:], size-n+int64(p)
			break
		}
		if i == 1 || n == size {
			return nil, errors.New("it has no end of central directory record")
		}
	}
	h := binary.LittleEndian
	records, dirSize, dirOffset := uint64(h.Uint16(rec[10:])), uint64(h.Uint32(rec[12:])), uint64(h.Uint32(rec[16:]))
	tail := at + endLen + int64(h.Uint16(rec[20:]))
	dirEnd := at
	// archive/zip looks for zip64 records on these conditions (the size's
	// 0xffff is its own, kept here so that both find the same records).
	if records == 0xffff || dirSize == 0xffff || dirOffset == max32 {
		if p, ok := readLocator64(ra, at); ok {
			buf := make([]byte, end64Len)
			if _, err := ra.ReadAt(buf, p); err != nil || h.Uint32(buf) != sigEnd64 {
				return nil, errors.New("its zip64 end of central directory record is missing")
			}
			dirSize, dirOffset = h.Uint64(buf[40:]), h.Uint64(buf[48:])
			dirEnd = p
		}
	}
	if dirSize > 1<<62 || dirOffset > 1<<62 {
		return nil, errors.New("its end of central directory record is corrupt")
	}
	return &end{dirOffset: int64(dirOffset), base: dirEnd - int64(dirSize) - int64(dirOffset), tail: tail}, nil
}

func readLocator64(ra io.ReaderAt, endAt int64) (int64, bool) {
	if endAt < locator64Len {
		return 0, false
	}
	buf := make([]byte, locator64Len)
	if _, err := ra.ReadAt(buf, endAt-locator64Len); err != nil {
		return 0, false
	}
	h := binary.LittleEndian
	if h.Uint32(buf) != sigLocator64 || h.Uint32(buf[4:]) != 0 || h.Uint32(buf[16:]) != 1 {
		return 0, false
	}
	p := h.Uint64(buf[8:])
	if p > 1<<62 {
		return 0, false
	}
	return int64(p), true
}

func findEndSig(b []byte) int {
	for i := len(b) - endLen; i >= 0; i-- {
		if binary.LittleEndian.Uint32(b[i:]) == sigEnd {
			if endLen+i+int(binary.LittleEndian.Uint16(b[i+endLen-2:])) > len(b) {
				return -1 // a truncated comment: archive/zip gives up too
			}
			return i
		}
	}
	return -1
}
