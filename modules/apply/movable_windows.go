//go:build windows

package apply

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"golang.org/x/sys/windows"
)

// checkMovable makes sure, before the commit point, that every installed
// file the commit moves to the backup can be moved: Windows refuses to
// rename a file another process has open without FILE_SHARE_DELETE, as
// many programs (and a running .exe) do. Each is opened the way a rename
// opens it, for DELETE with full sharing; a sharing violation means a
// program holds it, and the apply stops with the installation untouched.
// A program that opens the file after this check makes the rename fail
// in the commit, and the commit is rolled back.
//
// Wine behaves like Windows here: its wineserver enforces share modes
// between Windows processes under the same prefix (only those: a Linux
// process holding the file does not count).
func checkMovable(t *txn) error {
	var held []string
	for _, o := range t.j.Ops {
		if o.Backup == "" {
			continue
		}
		name, err := windows.UTF16PtrFromString(longPath(t.installPath(o.Path)))
		if err != nil {
			return fmt.Errorf("%s: %w", o.Path, err)
		}
		h, err := windows.CreateFile(name, windows.DELETE,
			windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE|windows.FILE_SHARE_DELETE, nil,
			windows.OPEN_EXISTING, windows.FILE_FLAG_OPEN_REPARSE_POINT|windows.FILE_FLAG_BACKUP_SEMANTICS, 0)
		switch {
		case err == nil:
			_ = windows.CloseHandle(h)
		case errors.Is(err, windows.ERROR_SHARING_VIOLATION):
			held = append(held, o.Path)
		case errors.Is(err, windows.ERROR_FILE_NOT_FOUND), errors.Is(err, windows.ERROR_PATH_NOT_FOUND):
			// Vanished after planning; the commit skips it.
		default:
			return fmt.Errorf("check that %s can be replaced: %w", t.installPath(o.Path), err)
		}
	}
	if len(held) == 0 {
		return nil
	}
	return fmt.Errorf("%s %s open in another program that does not let %s be replaced (sharing violation); close the program that holds %s and run apply again; nothing was changed",
		strings.Join(held, ", "), plural(len(held), "is", "are"), plural(len(held), "it", "them"), plural(len(held), "it", "them"))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// longPath gives an absolute path the \\?\ prefix when it is too long for
// the Win32 path functions (MAX_PATH, 260, less room for a file name), as
// the os package does for its own calls; x/sys/windows does not.
func longPath(p string) string {
	if len(p) < 248 || !filepath.IsAbs(p) || strings.HasPrefix(p, `\\?\`) {
		return p
	}
	p = filepath.Clean(p)
	if strings.HasPrefix(p, `\\`) {
		return `\\?\UNC\` + p[2:]
	}
	return `\\?\` + p
}
