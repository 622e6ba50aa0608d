package deb

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Control is the control data of a .deb.
type Control struct {
	Package      string
	Version      string
	Architecture string
	Maintainer   string
	Description  string
	// Depends holds the entries of the Depends field, split at commas.
	Depends []string
	// InstalledSize is the Installed-Size field in KiB (0 when absent).
	InstalledSize int64
	// Conffiles lists the control.tar conffiles file, in its order.
	Conffiles []string
	// Fields holds every field of the control file by the name it is
	// written with; continuation lines are joined with "\n", each without
	// its leading space.
	Fields map[string]string
}

// Field returns a field by name, ignoring case as deb822 does.
func (c Control) Field(name string) (string, bool) {
	for k, v := range c.Fields {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return "", false
}

const (
	arMagic      = "!<arch>\n"
	arHeaderSize = 60
	// maxControlMember bounds what is read from control.tar: control
	// files are kilobytes, and a hostile .deb must not exhaust memory.
	maxControlMember = 16 << 20
	maxControlFile   = 4 << 20
)

// arMember is one member of an ar archive.
type arMember struct {
	name   string
	offset int64
	size   int64
}

// Inspect reads the control data of the .deb at path: an ar archive of
// debian-binary, control.tar[.gz|.xz|.zst] and data.tar.*. The whole
// member table is checked against the file's size, so a truncated package
// is an error even though data.tar itself is not read.
func Inspect(path string) (Control, error) {
	fail := func(err error) (Control, error) { return Control{}, fmt.Errorf("%s: %w", path, err) }
	f, err := os.Open(path)
	if err != nil {
		return Control{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fail(err)
	}
	if !st.Mode().IsRegular() {
		return fail(fmt.Errorf("not a regular file; a .deb is expected"))
	}
	members, err := arMembers(f, st.Size())
	if err != nil {
		return fail(err)
	}
	if len(members) == 0 || members[0].name != "debian-binary" {
		return fail(fmt.Errorf("not a Debian package: the first ar member is not debian-binary"))
	}
	db := make([]byte, min(members[0].size, 64))
	if _, err := f.ReadAt(db, members[0].offset); err != nil {
		return fail(fmt.Errorf("reading debian-binary: %w", err))
	}
	if !bytes.HasPrefix(db, []byte("2.")) {
		return fail(fmt.Errorf("debian-binary says format %q; only format 2.x is supported", strings.TrimSpace(string(db))))
	}
	var control *arMember
	var data bool
	for i := range members {
		switch m := &members[i]; {
		case strings.HasPrefix(m.name, "control.tar"):
			control = m
		case strings.HasPrefix(m.name, "data.tar"):
			data = true
		}
	}
	if control == nil {
		return fail(fmt.Errorf("the package has no control.tar member; it is not a valid .deb"))
	}
	if !data {
		return fail(fmt.Errorf("the package has no data.tar member; it is not a valid .deb"))
	}
	c, err := readControlTar(io.NewSectionReader(f, control.offset, control.size), control.name)
	if err != nil {
		return fail(fmt.Errorf("%s: %w", control.name, err))
	}
	return c, nil
}

// arMembers lists the members of an ar archive without reading them.
func arMembers(r io.ReaderAt, size int64) ([]arMember, error) {
	magic := make([]byte, len(arMagic))
	if n, _ := r.ReadAt(magic, 0); n < len(magic) || string(magic) != arMagic {
		return nil, fmt.Errorf("not a Debian package: no ar archive header")
	}
	var out []arMember
	hdr := make([]byte, arHeaderSize)
	for off := int64(len(arMagic)); off < size; {
		n, err := r.ReadAt(hdr, off)
		if n < arHeaderSize {
			if err == nil || errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("truncated: the ar member header at offset %d ends early (file size %d)", off, size)
			}
			return nil, err
		}
		if string(hdr[58:60]) != "`\n" {
			return nil, fmt.Errorf("corrupt ar member header at offset %d", off)
		}
		name := strings.TrimSuffix(strings.TrimRight(string(hdr[0:16]), " "), "/")
		msize, err := strconv.ParseInt(strings.TrimRight(string(hdr[48:58]), " "), 10, 64)
		if err != nil || msize < 0 {
			return nil, fmt.Errorf("corrupt ar member header at offset %d: size %q", off, hdr[48:58])
		}
		start := off + arHeaderSize
		if start+msize > size {
			return nil, fmt.Errorf("truncated: member %s needs %d bytes at offset %d, but the file ends at %d", name, msize, start, size)
		}
		out = append(out, arMember{name: name, offset: start, size: msize})
		off = start + msize + msize%2 // members are 2-byte aligned
	}
	return out, nil
}

func readControlTar(r io.Reader, member string) (Control, error) {
	var dec io.Reader
	switch strings.TrimPrefix(member, "control.tar") {
	case "":
		dec = r
	case ".gz":
		zr, err := gzip.NewReader(r)
		if err != nil {
			return Control{}, err
		}
		defer zr.Close()
		dec = zr
	case ".xz":
		xr, err := xz.NewReader(bufio.NewReader(r))
		if err != nil {
			return Control{}, err
		}
		dec = xr
	case ".zst":
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxControlMember))
		if err != nil {
			return Control{}, err
		}
		defer zr.Close()
		dec = zr
	default:
		return Control{}, fmt.Errorf("unknown compression; control.tar, control.tar.gz, .xz and .zst are supported")
	}
	lim := &io.LimitedReader{R: dec, N: maxControlMember}
	tr := tar.NewReader(lim)
	var control, conffiles []byte
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if lim.N <= 0 {
				return Control{}, fmt.Errorf("larger than %d MiB uncompressed; not a control archive", maxControlMember>>20)
			}
			return Control{}, fmt.Errorf("reading: %w", err)
		}
		var dst *[]byte
		switch strings.TrimPrefix(h.Name, "./") {
		case "control":
			dst = &control
		case "conffiles":
			dst = &conffiles
		default:
			continue
		}
		if h.Size > maxControlFile {
			return Control{}, fmt.Errorf("%s is %d bytes, more than the %d MiB a control file may have", h.Name, h.Size, maxControlFile>>20)
		}
		if *dst, err = io.ReadAll(tr); err != nil {
			return Control{}, fmt.Errorf("reading %s: %w", h.Name, err)
		}
	}
	if control == nil {
		return Control{}, fmt.Errorf("no control file in the control archive")
	}
	c, err := ParseControl(control)
	if err != nil {
		return Control{}, fmt.Errorf("control: %w", err)
	}
	for _, l := range strings.Split(string(conffiles), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			c.Conffiles = append(c.Conffiles, l)
		}
	}
	return c, nil
}

// ParseControl parses a binary package's control file: one deb822
// paragraph. Package, Version and Architecture are required.
func ParseControl(data []byte) (Control, error) {
	c := Control{Fields: map[string]string{}}
	seen := map[string]bool{}
	var last string
	for i, line := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		n := i + 1
		switch {
		case strings.TrimSpace(line) == "":
			return Control{}, fmt.Errorf("line %d: empty line; a binary control file is one paragraph", n)
		case line[0] == ' ' || line[0] == '\t':
			if last == "" {
				return Control{}, fmt.Errorf("line %d: continuation line before any field", n)
			}
			c.Fields[last] += "\n" + line[1:]
		case strings.HasPrefix(line, "#"):
			// deb822 allows comments outside values.
		default:
			name, value, ok := strings.Cut(line, ":")
			if !ok || name == "" || strings.ContainsAny(name, " \t") {
				return Control{}, fmt.Errorf("line %d: %q is not \"Field: value\"", n, line)
			}
			if seen[strings.ToLower(name)] {
				return Control{}, fmt.Errorf("line %d: field %s appears twice", n, name)
			}
			seen[strings.ToLower(name)] = true
			c.Fields[name] = strings.TrimSpace(value)
			last = name
		}
	}
	get := func(name string) string { v, _ := c.Field(name); return v }
	c.Package, c.Version, c.Architecture = get("Package"), get("Version"), get("Architecture")
	c.Maintainer, c.Description = get("Maintainer"), get("Description")
	for _, req := range []struct{ name, v string }{{"Package", c.Package}, {"Version", c.Version}, {"Architecture", c.Architecture}} {
		if req.v == "" {
			return Control{}, fmt.Errorf("field %s is missing or empty", req.name)
		}
	}
	if d := get("Depends"); d != "" {
		for _, dep := range strings.Split(d, ",") {
			if dep = strings.Join(strings.Fields(dep), " "); dep != "" {
				c.Depends = append(c.Depends, dep)
			}
		}
	}
	if s := get("Installed-Size"); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v < 0 {
			return Control{}, fmt.Errorf("Installed-Size %q is not a number of KiB", s)
		}
		c.InstalledSize = v
	}
	return c, nil
}

// InspectStream reads the control data of a .deb from a stream, for a
// package inside another archive (an addon's packages layer): the ar
// members are read in order up to control.tar, so nothing is buffered but
// the control files. The rest of r is left unread.
func InspectStream(r io.Reader) (Control, error) {
	magic := make([]byte, len(arMagic))
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != arMagic {
		return Control{}, fmt.Errorf("not a Debian package: no ar archive header")
	}
	hdr := make([]byte, arHeaderSize)
	for i := 0; ; i++ {
		if _, err := io.ReadFull(r, hdr); err != nil {
			return Control{}, fmt.Errorf("the package has no control.tar member; it is not a valid .deb")
		}
		if string(hdr[58:60]) != "`\n" {
			return Control{}, fmt.Errorf("corrupt ar member header")
		}
		name := strings.TrimSuffix(strings.TrimRight(string(hdr[0:16]), " "), "/")
		size, err := strconv.ParseInt(strings.TrimRight(string(hdr[48:58]), " "), 10, 64)
		if err != nil || size < 0 {
			return Control{}, fmt.Errorf("corrupt ar member header: size %q", hdr[48:58])
		}
		member := io.LimitReader(r, size)
		switch {
		case i == 0:
			db, _ := io.ReadAll(io.LimitReader(member, 64))
			if name != "debian-binary" || !bytes.HasPrefix(db, []byte("2.")) {
				return Control{}, fmt.Errorf("not a Debian package: the first ar member is not debian-binary 2.x")
			}
		case strings.HasPrefix(name, "control.tar"):
			c, err := readControlTar(member, name)
			if err != nil {
				return Control{}, fmt.Errorf("%s: %w", name, err)
			}
			return c, nil
		}
		if _, err := io.Copy(io.Discard, member); err != nil {
			return Control{}, err
		}
		if size%2 == 1 { // ar pads members to even offsets
			if _, err := io.ReadFull(r, hdr[:1]); err != nil {
				return Control{}, err
			}
		}
	}
}
