//go:build !unix && !windows

package apply

import (
	"errors"
	"os"
)

const removeLockBeforeUnlock = false

func tryLock(*os.File) error {
	return errors.New("installation locking is not supported on this platform")
}

func unlock(*os.File) error { return nil }

func syncDir(string) error { return nil }
