package pkgzip

import (
	"archive/zip"
	"encoding/binary"
	"fmt"
	"io/fs"
	"math"
	"slices"
	"time"
	"unicode/utf8"
)

const (
	creatorUnix      = 3
	zipVersion20     = 20 // deflate
	zipVersion45     = 45 // zip64
	flagDataDesc     = 0x8
	flagUTF8         = 0x800
	extTimeExtraID   = 0x5455
	uint32max        = math.MaxUint32
	extTimeExtraSize = 9
)

// stamp is the fixed modification time of every entry, in both encodings
// zip readers look at: the MS-DOS fields and Info-ZIP's extended
// timestamp (what archive/zip writes for FileHeader.Modified).
type stamp struct {
	dosDate, dosTime uint16
	extra            [extTimeExtraSize]byte
}

var (
	zipEpoch = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)
	// The extended timestamp is an unsigned 32-bit count of seconds.
	zipLast = time.Unix(math.MaxUint32, 0).UTC()
)

func newStamp(date time.Time) (stamp, error) {
	t := date.UTC().Truncate(time.Second)
	if t.Before(zipEpoch) {
		t = zipEpoch
	}
	if t.After(zipLast) {
		return stamp{}, fmt.Errorf("zip writer: date %s is after %s, the last date a zip can record", date.Format(time.RFC3339), zipLast.Format(time.RFC3339))
	}
	var s stamp
	s.dosDate = uint16(t.Day() + int(t.Month())<<5 + (t.Year()-1980)<<9)
	s.dosTime = uint16(t.Second()/2 + t.Minute()<<5 + t.Hour()<<11)
	binary.LittleEndian.PutUint16(s.extra[0:], extTimeExtraID)
	binary.LittleEndian.PutUint16(s.extra[2:], 5) // flags byte + mtime
	s.extra[4] = 1                                // mtime present
	binary.LittleEndian.PutUint32(s.extra[5:], uint32(t.Unix()))
	return s, nil
}

// header builds the complete, normalized header of one entry. Nothing in it
// depends on the build host: the name, mode bits, fixed date, method, CRC
// and sizes are all there is.
func (s stamp) header(name string, mode fs.FileMode, method uint16, crc uint32, csize, size uint64) *zip.FileHeader {
	fh := &zip.FileHeader{
		Name:               name,
		Method:             method,
		CRC32:              crc,
		CompressedSize64:   csize,
		UncompressedSize64: size,
		ModifiedDate:       s.dosDate,
		ModifiedTime:       s.dosTime,
		// archive/zip appends the zip64 extra to this slice; never share it.
		Extra: slices.Clone(s.extra[:]),
	}
	fh.SetMode(NormalMode(mode))
	version := uint16(zipVersion20)
	if csize >= uint32max || size >= uint32max {
		// The local header has no room for 64-bit sizes and archive/zip
		// adds no zip64 extra to it, so the sizes go into a zip64 data
		// descriptor, as archive/zip itself does for large entries.
		version = zipVersion45
		fh.Flags |= flagDataDesc
	}
	fh.CreatorVersion = creatorUnix<<8 | version
	fh.ReaderVersion = version
	if !isASCII(name) && utf8.ValidString(name) {
		fh.Flags |= flagUTF8
	}
	return fh
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
