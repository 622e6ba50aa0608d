package cache

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Every file and directory in v1/tmp is made under a lease: its name
// starts with "<lease>." and the Store that made it holds an exclusive
// lock on v1/locks/lease-<lease>.lock for as long as it lives (the lock
// goes with the process). gc removes a temp only when it can take that
// lock itself, so it never removes what a running build is writing, be
// it a build's scratch dir or an in-flight download, however long that
// takes, and it removes what a killed build left at the next run.
//
// A name carries its lease, not the cache key it is for: temps that are
// not per key (downloads) are covered the same way, and the key locks,
// which gc deletes with their entries, are not relied on.

// leaseIDLen is the length of a lease ID: 16 hex digits (64 random bits).
const leaseIDLen = 16

type lease struct {
	once sync.Once
	id   string
	f    *os.File
	err  error
}

func (s *Store) leasePath(id string) string {
	return filepath.Join(s.root, "locks", "lease-"+id+".lock")
}

// leaseID returns this Store's lease, taking it on first use.
func (s *Store) leaseID() (string, error) {
	s.lease.once.Do(func() { s.lease.id, s.lease.f, s.lease.err = s.takeLease() })
	return s.lease.id, s.lease.err
}

// takeLease creates a lease file under a fresh random ID and locks it.
// A gc may find the file in the instant between its creation and the
// lock, lock it itself and remove it as abandoned; the lock attempt then
// fails, or the path no longer names the locked file, and another ID is
// tried. No temp is made under an ID before it is held.
func (s *Store) takeLease() (string, *os.File, error) {
	for range 8 {
		var b [leaseIDLen / 2]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", nil, err
		}
		id := hex.EncodeToString(b[:])
		p := s.leasePath(id)
		f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", nil, fmt.Errorf("cache lease: %w", err)
		}
		if leaseCreated != nil {
			leaseCreated(p)
		}
		if ok, err := lockFile(f, true, false); err != nil || !ok {
			f.Close()
			if err != nil {
				return "", nil, fmt.Errorf("cache lease: %w", err)
			}
			continue
		}
		held, err1 := f.Stat()
		named, err2 := os.Stat(p)
		if err1 == nil && err2 == nil && os.SameFile(held, named) {
			return id, f, nil
		}
		unlockFile(f)
		f.Close()
	}
	return "", nil, fmt.Errorf("cache lease: no free lease in %s", filepath.Join(s.root, "locks"))
}

// leaseCreated, when set, runs between a lease file's creation and its
// lock (tests play a gc there).
var leaseCreated func(path string)

// MkdirTemp makes a directory in TempDir under this Store's lease;
// pattern is as for os.MkdirTemp.
func (s *Store) MkdirTemp(pattern string) (string, error) {
	id, err := s.leaseID()
	if err != nil {
		return "", err
	}
	return os.MkdirTemp(s.TempDir(), id+"."+pattern)
}

// CreateTemp makes a file in TempDir under this Store's lease; pattern is
// as for os.CreateTemp.
func (s *Store) CreateTemp(pattern string) (*os.File, error) {
	id, err := s.leaseID()
	if err != nil {
		return nil, err
	}
	return os.CreateTemp(s.TempDir(), id+"."+pattern)
}

// leaseOf returns the lease a temp name was made under.
func leaseOf(name string) (string, bool) {
	id, _, ok := strings.Cut(name, ".")
	if !ok || len(id) != leaseIDLen || strings.Trim(id, "0123456789abcdef") != "" {
		return "", false
	}
	return id, true
}

// reaper decides, during one gc, which leases are abandoned; it holds the
// lock of each abandoned one until done, so that no process can take it
// up meanwhile.
type reaper struct {
	s     *Store
	alive map[string]bool
	dead  map[string]*os.File // nil: the lease file is gone
}

func (s *Store) newReaper() *reaper {
	return &reaper{s: s, alive: map[string]bool{}, dead: map[string]*os.File{}}
}

// abandoned reports whether nobody holds lease id.
func (r *reaper) abandoned(id string) bool {
	if r.alive[id] {
		return false
	}
	if _, ok := r.dead[id]; ok {
		return true
	}
	f, err := os.OpenFile(r.s.leasePath(id), os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		// Temps are made only under a held lease file, which only a gc
		// removes, after that lease's temps: these are what an
		// interrupted gc left.
		r.dead[id] = nil
		return true
	}
	if err != nil {
		r.alive[id] = true // cannot tell: keep
		return false
	}
	if ok, err := lockFile(f, true, false); err != nil || !ok {
		f.Close()
		r.alive[id] = true
		return false
	}
	r.dead[id] = f
	return true
}

// finish removes the lease files of abandoned leases, and those of leases
// that no temp names (a process that ended cleanly still leaves its lease
// file), then lets them go.
func (r *reaper) finish() {
	others, _ := filepath.Glob(filepath.Join(r.s.root, "locks", "lease-*.lock"))
	for _, p := range others {
		id := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(p), "lease-"), ".lock")
		if len(id) == leaseIDLen {
			r.abandoned(id)
		}
	}
	for id, f := range r.dead {
		if f == nil {
			continue
		}
		// Removed while locked, so that a process that created this very
		// file a moment ago sees it gone once it gets the lock (Unix).
		// Windows refuses to remove an open file: retry once unlocked.
		err := os.Remove(r.s.leasePath(id))
		unlockFile(f)
		f.Close()
		if err != nil {
			os.Remove(r.s.leasePath(id))
		}
	}
}
