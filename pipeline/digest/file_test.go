package digest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

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

func TestFileHashesAcrossChunks(t *testing.T) {
	dir := t.TempDir()
	for _, size := range []int{0, 1, chunk - 1, chunk, chunk + 1, 2*chunk + 7} {
		data := []byte(strings.Repeat("0123456789abcdef", size/16+1)[:size])
		p := filepath.Join(dir, "f")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		want := sha256.Sum256(data)
		sum, n, err := File(p)
		if err != nil || sum != hex.EncodeToString(want[:]) || n != int64(size) {
			t.Fatalf("size %d: %s %d %v", size, sum, n, err)
		}
	}
}

func TestFileContextStopsWhenCancelled(t *testing.T) {
	p := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(p, make([]byte, 3*chunk), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := FileContext(ctx, p); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}
