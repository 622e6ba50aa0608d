package pkgzip

import (
	"bytes"
	"fmt"
	"io"
	"os"
)

// spoolMemLimit is how much compressed data of one entry is kept in memory
// before it goes to a temporary file. The header, which must precede the
// data, needs the compressed size, so an entry's output is held until its
// last chunk is compressed.
const spoolMemLimit = 8 << 20

// spool holds the compressed bytes of one entry, in memory up to limit and
// in a reused temporary file beyond.
type spool struct {
	dir    string
	limit  int
	mem    bytes.Buffer
	file   *os.File
	onDisk bool
	n      int64
}

func (s *spool) reset() error {
	s.mem.Reset()
	s.n = 0
	if !s.onDisk {
		return nil
	}
	s.onDisk = false
	return s.rewind()
}

// rewind empties the temporary file so that it can take the next entry.
func (s *spool) rewind() error {
	if err := s.file.Truncate(0); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	if _, err := s.file.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	return nil
}

func (s *spool) Write(p []byte) (int, error) {
	if !s.onDisk && s.mem.Len()+len(p) > s.limit {
		if err := s.spill(); err != nil {
			return 0, err
		}
	}
	if s.onDisk {
		n, err := s.file.Write(p)
		s.n += int64(n)
		if err != nil {
			return n, fmt.Errorf("spool: %w", err)
		}
		return n, nil
	}
	s.mem.Write(p)
	s.n += int64(len(p))
	return len(p), nil
}

func (s *spool) spill() error {
	if s.file == nil {
		f, err := os.CreateTemp(s.dir, "pkgzip-spool-*")
		if err != nil {
			return fmt.Errorf("spool: an entry is too large to compress in memory and no temporary file can be made (set a writable temporary directory): %w", err)
		}
		s.file = f
	} else if err := s.rewind(); err != nil {
		return err
	}
	if _, err := s.file.Write(s.mem.Bytes()); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	s.mem.Reset()
	s.onDisk = true
	return nil
}

// writeTo copies the spooled bytes to w.
func (s *spool) writeTo(w io.Writer) error {
	if !s.onDisk {
		_, err := w.Write(s.mem.Bytes())
		return err
	}
	if _, err := s.file.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	n, err := io.Copy(w, io.LimitReader(s.file, s.n))
	if err == nil && n != s.n {
		err = fmt.Errorf("spool: temporary file %s lost data (%d of %d bytes)", s.file.Name(), n, s.n)
	}
	return err
}

func (s *spool) close() error {
	if s.file == nil {
		return nil
	}
	name := s.file.Name()
	err := s.file.Close()
	if rerr := os.Remove(name); err == nil {
		err = rerr
	}
	s.file = nil
	return err
}
