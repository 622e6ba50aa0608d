// Package ziptest writes zips field by field, for tests: well-formed ones
// in the layouts other tools produce (data descriptors, zip64 extras, a
// prefix before the zip) and hostile ones whose local headers contradict
// the central directory or whose entries share bytes. archive/zip's writer
// cannot make either kind, which is why this exists.
package ziptest

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"hash/crc32"
	"io/fs"
)

const (
	sigLocal      = 0x04034b50
	sigCentral    = 0x02014b50
	sigDescriptor = 0x08074b50
	sigEnd        = 0x06054b50
	sigEnd64      = 0x06064b50
	sigLocator64  = 0x07064b50
	zip64ExtraID  = 0x0001
	max32         = 0xffffffff
	// FlagDescriptor (bit 3) says the CRC-32 and sizes follow the data.
	FlagDescriptor = 0x8
)

// Header is one header's fields as written. Build fills them in from the
// Entry; Entry.Local and Entry.Central may then change any of them.
type Header struct {
	Flags, Method    uint16
	CRC32            uint32
	CompressedSize   uint32
	UncompressedSize uint32
	Name             string
	Extra            []byte
	// Offset is the central record's local header offset (unused in a
	// local header).
	Offset uint32
}

// Entry is one entry of the zip.
type Entry struct {
	Name    string
	Data    []byte
	Deflate bool
	// Mode, when set, is stored as unix permissions (creator unix).
	Mode fs.FileMode
	// Flags go into both headers. With FlagDescriptor the local header
	// holds zeros and a data descriptor follows the data.
	Flags uint16
	// Zip64 stores sizes (and the offset) in zip64 extra fields, as
	// writers do for large entries, and ends the zip with zip64 records.
	Zip64 bool
	// NoDescriptorSignature writes the data descriptor without its
	// optional signature; NoDescriptor writes none despite the flag.
	NoDescriptorSignature, NoDescriptor bool
	// SameAs, when > 0, makes this entry's central record point at the
	// local header of entry SameAs-1 instead of writing one of its own:
	// the overlapping layout of zip bombs.
	SameAs int
	// IntoCentral makes this entry's central record point at the start
	// of the central directory, and writes no local header for it.
	IntoCentral bool
	// Local and Central change the headers Build derived.
	Local, Central func(*Header)
}

// Options shape the whole zip.
type Options struct {
	// Prefix is written before the zip (a self-extractor's stub).
	// Offsets count from the start of the file when AbsoluteOffsets is
	// set, as `zip -A` leaves them, and from the end of Prefix otherwise,
	// as `cat stub x.zip` does.
	Prefix          []byte
	AbsoluteOffsets bool
}

// Build writes entries as one zip.
func Build(entries ...Entry) []byte { return BuildWith(Options{}, entries...) }

// BuildWith writes entries as one zip, shaped by opts.
func BuildWith(opts Options, entries ...Entry) []byte {
	var out bytes.Buffer
	out.Write(opts.Prefix)
	base := int64(0)
	if !opts.AbsoluteOffsets {
		base = int64(len(opts.Prefix))
	}
	type written struct {
		central     Header
		size, csize uint64
		offset      int64
	}
	recs := make([]written, len(entries))
	anyZip64 := false
	for i, e := range entries {
		raw := e.Data
		method := uint16(0)
		if e.Deflate {
			raw, method = deflate(e.Data), 8
		}
		crc := crc32.ChecksumIEEE(e.Data)
		offset := int64(out.Len()) - base
		anyZip64 = anyZip64 || e.Zip64
		if e.SameAs > 0 {
			offset = recs[e.SameAs-1].offset
		}
		c := Header{Flags: e.Flags, Method: method, CRC32: crc, CompressedSize: uint32(len(raw)), UncompressedSize: uint32(len(e.Data)), Name: e.Name}
		if e.Zip64 {
			c.CompressedSize, c.UncompressedSize = max32, max32
			c.Extra = Zip64Extra(uint64(len(e.Data)), uint64(len(raw)), uint64(offset))
			c.Offset = max32
		} else {
			c.Offset = uint32(offset)
		}
		recs[i] = written{central: c, size: uint64(len(e.Data)), csize: uint64(len(raw)), offset: offset}
		if e.SameAs > 0 || e.IntoCentral {
			continue
		}
		l := c
		l.Offset = 0
		if e.Zip64 {
			l.Extra = Zip64Extra(uint64(len(e.Data)), uint64(len(raw)))
		}
		if e.Flags&FlagDescriptor != 0 {
			l.CRC32, l.CompressedSize, l.UncompressedSize = 0, 0, 0
			if e.Zip64 {
				l.CompressedSize, l.UncompressedSize = max32, max32
				l.Extra = Zip64Extra(0, 0)
			}
		}
		if e.Local != nil {
			e.Local(&l)
		}
		writeLocal(&out, l)
		out.Write(raw)
		if e.Flags&FlagDescriptor != 0 && !e.NoDescriptor {
			if !e.NoDescriptorSignature {
				le32(&out, sigDescriptor)
			}
			le32(&out, crc)
			if e.Zip64 {
				le64(&out, uint64(len(raw)))
				le64(&out, uint64(len(e.Data)))
			} else {
				le32(&out, uint32(len(raw)))
				le32(&out, uint32(len(e.Data)))
			}
		}
	}
	cdStart := int64(out.Len()) - base
	for i, e := range entries {
		c := recs[i].central
		if e.IntoCentral {
			if e.Zip64 {
				c.Extra = Zip64Extra(recs[i].size, recs[i].csize, uint64(cdStart))
			} else {
				c.Offset = uint32(cdStart)
			}
		}
		if e.Central != nil {
			e.Central(&c)
		}
		writeCentral(&out, c, e.Mode)
	}
	cdSize := int64(out.Len()) - base - cdStart
	n := len(entries)
	if anyZip64 {
		end64 := int64(out.Len()) - base
		le32(&out, sigEnd64)
		le64(&out, 44)
		le16(&out, 3<<8|45)
		le16(&out, 45)
		le32(&out, 0)
		le32(&out, 0)
		le64(&out, uint64(n))
		le64(&out, uint64(n))
		le64(&out, uint64(cdSize))
		le64(&out, uint64(cdStart))
		le32(&out, sigLocator64)
		le32(&out, 0)
		le64(&out, uint64(end64))
		le32(&out, 1)
	}
	le32(&out, sigEnd)
	le16(&out, 0)
	le16(&out, 0)
	if anyZip64 {
		le16(&out, 0xffff)
		le16(&out, 0xffff)
		le32(&out, max32)
		le32(&out, max32)
	} else {
		le16(&out, uint16(n))
		le16(&out, uint16(n))
		le32(&out, uint32(cdSize))
		le32(&out, uint32(cdStart))
	}
	le16(&out, 0)
	return out.Bytes()
}

func writeLocal(out *bytes.Buffer, h Header) {
	le32(out, sigLocal)
	le16(out, version(h))
	le16(out, h.Flags)
	le16(out, h.Method)
	le16(out, 0) // time
	le16(out, 0x5ac1)
	le32(out, h.CRC32)
	le32(out, h.CompressedSize)
	le32(out, h.UncompressedSize)
	le16(out, uint16(len(h.Name)))
	le16(out, uint16(len(h.Extra)))
	out.WriteString(h.Name)
	out.Write(h.Extra)
}

func writeCentral(out *bytes.Buffer, h Header, mode fs.FileMode) {
	le32(out, sigCentral)
	creator := uint16(0) // FAT: no unix mode
	var attrs uint32
	if mode != 0 {
		creator = 3
		attrs = uint32(0o100000|mode.Perm()) << 16
	}
	le16(out, creator<<8|version(h))
	le16(out, version(h))
	le16(out, h.Flags)
	le16(out, h.Method)
	le16(out, 0)
	le16(out, 0x5ac1)
	le32(out, h.CRC32)
	le32(out, h.CompressedSize)
	le32(out, h.UncompressedSize)
	le16(out, uint16(len(h.Name)))
	le16(out, uint16(len(h.Extra)))
	le16(out, 0) // comment
	le16(out, 0) // disk
	le16(out, 0) // internal attributes
	le32(out, attrs)
	le32(out, h.Offset)
	out.WriteString(h.Name)
	out.Write(h.Extra)
}

func version(h Header) uint16 {
	if len(h.Extra) > 0 {
		return 45
	}
	return 20
}

// zip64Extra is a zip64 extended information field holding vals
// (uncompressed size, compressed size, offset, in that order).
func Zip64Extra(vals ...uint64) []byte {
	var b bytes.Buffer
	le16(&b, zip64ExtraID)
	le16(&b, uint16(8*len(vals)))
	for _, v := range vals {
		le64(&b, v)
	}
	return b.Bytes()
}

func deflate(data []byte) []byte {
	var b bytes.Buffer
	w, err := flate.NewWriter(&b, flate.DefaultCompression)
	if err != nil {
		panic(err) // only for an invalid level
	}
	w.Write(data)
	w.Close()
	return b.Bytes()
}

func le16(b *bytes.Buffer, v uint16) { b.Write(binary.LittleEndian.AppendUint16(nil, v)) }
func le32(b *bytes.Buffer, v uint32) { b.Write(binary.LittleEndian.AppendUint32(nil, v)) }
func le64(b *bytes.Buffer, v uint64) { b.Write(binary.LittleEndian.AppendUint64(nil, v)) }
