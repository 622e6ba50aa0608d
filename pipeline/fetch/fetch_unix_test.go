//go:build unix

package fetch

import (
	"context"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relcue/release/pipeline/step"
)

// D4: a FIFO or a device declared as a file with a sha256 is refused by
// its type at once, neither waited on nor read.
func TestLocalFileThatIsNotRegular(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "pipe")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{fifo, "/dev/zero"} {
		r := resolver(t)
		start := time.Now()
		err := within(t, 10*time.Second, func() error {
			_, err := r.Resolve(context.Background(), step.Source{Path: p, SHA256: sum("x")})
			return err
		})
		if err == nil || !strings.Contains(err.Error(), p+": not a regular file (") {
			t.Fatalf("%s: err = %v", p, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s: refused after %s", p, d)
		}
		assertEmpty(t, r.TempDir, r.BlobDir)
	}
}
