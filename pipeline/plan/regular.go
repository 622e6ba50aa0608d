package plan

import (
	"fmt"
	"io/fs"
	"os"

	"github.com/relcue/release/internal/filekind"
)

// checkRegular refuses anything at path but a regular file, without
// opening it. Symbolic links are refused too, as in directory inputs: an
// input must mean the same bytes on every machine.
func checkRegular(path string) error {
	info, err := os.Lstat(path)
	if err != nil {
		return err
	}
	if m := info.Mode(); !m.IsRegular() {
		return fmt.Errorf("is a %s, not a regular file; inputs are regular files or directories, so give the file itself", kind(m))
	}
	return nil
}

func kind(m fs.FileMode) string {
	if m.IsDir() {
		return "directory (use dir: for a tree)"
	}
	return filekind.Name(m)
}
