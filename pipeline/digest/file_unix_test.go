//go:build unix

package digest

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// D4: a FIFO, a device, a socket or a directory given where a file is
// expected is refused by its type, at once and without reading it.
func TestOpenRegularRefusesWhatIsNotAFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "pipe")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	link := filepath.Join(dir, "link-to-pipe")
	if err := os.Symlink(fifo, link); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{fifo, "/dev/zero", sock, dir, link} {
		err := within(t, 10*time.Second, func() error {
			f, _, err := OpenRegular(p)
			if err == nil {
				f.Close()
			}
			return err
		})
		if err == nil || !strings.Contains(err.Error(), p+": not a regular file (") {
			t.Errorf("%s: err = %v, want it refused as not a regular file", p, err)
		}
		err = within(t, 10*time.Second, func() error { _, _, err := File(p); return err })
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("File(%s): err = %v", p, err)
		}
	}
	// A link to a regular file is the file.
	reg := filepath.Join(dir, "reg")
	os.WriteFile(reg, []byte("x"), 0o644)
	os.Symlink(reg, filepath.Join(dir, "link-to-reg"))
	if _, n, err := File(filepath.Join(dir, "link-to-reg")); err != nil || n != 1 {
		t.Fatalf("link to a regular file: %d %v", n, err)
	}
}

// within runs fn and fails the test if it has not returned after limit:
// the bug this guards against is a call that never returns.
func within[T any](t *testing.T, limit time.Duration, fn func() T) T {
	t.Helper()
	done := make(chan T, 1)
	go func() { done <- fn() }()
	select {
	case v := <-done:
		return v
	case <-time.After(limit):
		t.Fatalf("still running after %s", limit)
		panic("unreachable")
	}
}
