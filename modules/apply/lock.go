package apply

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/relcue/release/internal/filelock"
	"github.com/relcue/release/modules/delta"
)

var errLocked = errors.New("locked")

// installLock serializes applies (and recoveries) on one installation.
type installLock struct {
	f    *os.File
	path string
}

// acquireLock locks dir or fails at once if another process holds the lock:
// waiting silently behind a long apply is worse than saying so.
func acquireLock(dir string) (*installLock, error) {
	p := filepath.Join(dir, delta.ApplyLockFile)
	for range 10 {
		f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("create lock file %s: %w", p, err)
		}
		if err := tryLock(f); err != nil {
			f.Close()
			if errors.Is(err, errLocked) {
				return nil, fmt.Errorf("another release apply is running on %s (it holds %s); wait for it to finish", dir, p)
			}
			return nil, fmt.Errorf("lock %s: %w", p, err)
		}
		// The previous holder may have removed the file between our open
		// and our lock; then we hold a lock on a file nobody else sees.
		fi, err1 := f.Stat()
		pi, err2 := os.Stat(p)
		if err1 == nil && err2 == nil && os.SameFile(fi, pi) {
			return &installLock{f: f, path: p}, nil
		}
		unlock(f)
		f.Close()
	}
	return nil, fmt.Errorf("lock %s: the lock file keeps being replaced; is another tool removing it?", p)
}

// release unlocks and removes the lock file.
func (l *installLock) release() {
	if removeLockBeforeUnlock {
		os.Remove(l.path)
	}
	l.f.Close()
	if !removeLockBeforeUnlock {
		os.Remove(l.path)
	}
}

// close ends the lock of an apply or recovery that returned err: released,
// unless err is a simulated crash, which must leave what a killed process
// leaves.
func (l *installLock) close(err error) {
	if isCrash(err) {
		l.abandon()
	} else {
		l.release()
	}
}

// abandon drops the lock the way the OS does for a killed process: the file
// stays behind, unlocked.
func (l *installLock) abandon() { l.f.Close() }

// tryLock takes an exclusive, non-blocking lock; the system drops it when
// the process dies, so a killed apply never leaves the installation locked.
func tryLock(f *os.File) error {
	ok, err := filelock.Lock(f, true, false)
	if err == nil && !ok {
		return errLocked
	}
	return err
}

func unlock(f *os.File) error { return filelock.Unlock(f) }
