package digest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
)

// OpenRegular opens path for reading only if it is a regular file, and
// returns the open file with its FileInfo. Symlinks are followed. A FIFO,
// socket or device is refused without being read: a FIFO would block the
// open (or the first read) until a writer appears, and /dev/zero never
// ends. The type is checked before the open and again on the open file,
// so a path swapped for a FIFO in between is refused too; the open itself
// does not block on a FIFO (O_NONBLOCK on Unix, cleared again once the
// file is known to be regular).
func OpenRegular(path string) (*os.File, os.FileInfo, error) {
	before, err := os.Stat(path)
	if err != nil {
		return nil, nil, err
	}
	if !before.Mode().IsRegular() {
		return nil, nil, notRegular(path, before)
	}
	f, err := openNoBlock(path)
	if err != nil {
		return nil, nil, err
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !info.Mode().IsRegular() {
		f.Close()
		return nil, nil, notRegular(path, info)
	}
	if err := blocking(f); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, info, nil
}

func notRegular(path string, info os.FileInfo) error {
	return fmt.Errorf("%s: not a regular file (%s); name the file itself, not a pipe, device or socket", path, info.Mode().Type())
}

// File returns the lower-case hex SHA-256 and size of the regular file at
// path (see OpenRegular).
func File(path string) (string, int64, error) {
	return FileContext(context.Background(), path)
}

// chunk is how much FileContext reads between looks at its context: a
// cancelled hash of a large file stops within one chunk.
const chunk = 1 << 20

// FileContext is File that stops when ctx is done.
func FileContext(ctx context.Context, path string) (string, int64, error) {
	f, _, err := OpenRegular(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	buf := make([]byte, 64<<10)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return "", 0, err
		}
		m, err := io.CopyBuffer(h, io.LimitReader(f, chunk), buf)
		n += m
		if err != nil {
			return "", 0, fmt.Errorf("hash %s: %w", path, err)
		}
		if m < chunk {
			return hex.EncodeToString(h.Sum(nil)), n, nil
		}
	}
}
