// Package smallfile reads files that are small by nature (keys,
// passwords, certificates) with a bound, so that a wrong path (a disk
// image, a device) fails with a message instead of filling memory.
package smallfile

import (
	"fmt"
	"io"
	"os"
)

// Read reads path, refusing a file larger than limit bytes.
func Read(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes; is it the right file?", path, limit)
	}
	return data, nil
}
