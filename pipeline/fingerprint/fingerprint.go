// Package fingerprint identifies a version of a file by what the file
// system records about it (size, modification and change times, inode and
// device), so that a digest computed once can be trusted again without
// reading the file: the way git's index and Bazel's digest cache avoid
// re-hashing unchanged trees.
//
// The change time is what makes this safe: every write, chmod, rename or
// `touch -r` sets it to the current time and no unprivileged call can set
// it back, so a file altered in place — even with its mtime restored —
// gets a new fingerprint. Replacing a file by another gives a new inode.
package fingerprint

import (
	"fmt"
	"io/fs"
	"os"
	"time"
)

// FP is a file's fingerprint. Times are nanoseconds since the Unix epoch.
type FP struct {
	Size  int64  `json:"size"`
	Mtime int64  `json:"mtime"`
	Ctime int64  `json:"ctime"`
	Ino   uint64 `json:"ino"`
	Dev   uint64 `json:"dev"`
}

// Stat returns the fingerprint of the regular file at path (symlinks are
// not followed: a link is not the file it points to).
func Stat(path string) (FP, error) {
	info, err := os.Lstat(path)
	if err != nil {
		return FP{}, err
	}
	return Of(path, info)
}

// Of returns the fingerprint of path from info, which must describe it
// (an Lstat or a DirEntry's Info); on Unix no further call is made.
func Of(path string, info fs.FileInfo) (FP, error) {
	if !info.Mode().IsRegular() {
		return FP{}, fmt.Errorf("%s: not a regular file (%s)", path, info.Mode().Type())
	}
	return of(path, info)
}

// Settled reports whether a record of this fingerprint made at `at` can be
// trusted later: the file's last change is at least one timestamp granule
// older than the record. A file changed again within the same granule as
// its last change keeps its times, so a record made that close to a change
// cannot tell the two versions apart ("racily clean" in git's words); such
// a file is hashed again next time, when it has settled.
//
// Only the change time counts: every change sets it to the clock, while an
// mtime may be set to anything (even the future) by touch.
func (f FP) Settled(at time.Time) bool {
	return at.UnixNano()-f.Ctime >= f.granule().Nanoseconds()
}

// Granule is how long a time stamp may stay the same while the file
// changes. File systems with nanosecond stamps take them from the kernel's
// coarse clock (one tick: 1-10 ms on Linux, 100 ns on NTFS); 50 ms covers
// every tick with a margin for the clocks' offset. Stamps with no sub-second
// part come from a file system that stores seconds (ext3, HFS+) or two
// seconds (FAT).
func (f FP) granule() time.Duration {
	if f.Mtime%int64(time.Second) == 0 && f.Ctime%int64(time.Second) == 0 {
		return 2 * time.Second
	}
	return FineGranule
}

// FineGranule is the granule of file systems with sub-second stamps.
const FineGranule = 50 * time.Millisecond
