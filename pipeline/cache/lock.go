package cache

import (
	"os"

	"github.com/relcue/release/internal/filelock"
)

// lockFile and unlockFile are the cache's advisory locks: the kernel drops
// them when the process dies, so a killed build never leaves an entry
// locked.
func lockFile(f *os.File, exclusive, block bool) (bool, error) {
	return filelock.Lock(f, exclusive, block)
}

func unlockFile(f *os.File) error { return filelock.Unlock(f) }
