package fetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/relcue/release/pipeline/step"
)

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func resolver(t *testing.T) *Resolver {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "blobs"), 0o755)
	os.MkdirAll(filepath.Join(dir, "tmp"), 0o755)
	return &Resolver{BlobDir: filepath.Join(dir, "blobs"), TempDir: filepath.Join(dir, "tmp"), Attempts: 3}
}

func TestDownloadVerifiedAndRetried(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 1 {
			http.Error(w, "try later", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("payload"))
	}))
	defer srv.Close()
	r := resolver(t)
	p, err := r.Resolve(context.Background(), step.Source{Name: "s", URL: srv.URL + "/f", SHA256: sum("payload")})
	if err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(p); string(data) != "payload" || hits.Load() != 2 {
		t.Fatalf("got %q after %d requests", data, hits.Load())
	}
	// A second resolver with the same blob dir does not download again.
	r2 := &Resolver{BlobDir: r.BlobDir, TempDir: r.TempDir}
	if _, err := r2.Resolve(context.Background(), step.Source{URL: srv.URL + "/f", SHA256: sum("payload")}); err != nil || hits.Load() != 2 {
		t.Fatalf("re-resolve: %v, %d requests", err, hits.Load())
	}
}

func TestDownloadWrongChecksum(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("evil")) }))
	defer srv.Close()
	r := resolver(t)
	_, err := r.Resolve(context.Background(), step.Source{URL: srv.URL + "/f", SHA256: sum("good")})
	var ce *ChecksumError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "update its sha256") {
		t.Fatalf("err = %v", err)
	}
	if ents, _ := os.ReadDir(r.BlobDir); len(ents) != 0 {
		t.Fatal("bad download kept in blob dir")
	}
	if ents, _ := os.ReadDir(r.TempDir); len(ents) != 0 {
		t.Fatal("temp file left behind")
	}
}

func TestServerDownAndNotFound(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	r := resolver(t)
	r.Attempts = 2
	if _, err := r.Resolve(context.Background(), step.Source{URL: "http://" + addr + "/x", SHA256: sum("x")}); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("down: %v", err)
	}
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	if _, err := r.Resolve(context.Background(), step.Source{URL: srv.URL + "/x", SHA256: sum("x")}); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("404: %v", err)
	}
}

func TestLocalFileChecksum(t *testing.T) {
	p := filepath.Join(t.TempDir(), "k2s-1.3.0.zip")
	os.WriteFile(p, []byte("zip"), 0o644)
	r := resolver(t)
	if _, err := r.Resolve(context.Background(), step.Source{Path: p, SHA256: sum("zip")}); err != nil {
		t.Fatal(err)
	}
	r = resolver(t)
	_, err := r.Resolve(context.Background(), step.Source{Path: p, SHA256: sum("other")})
	if err == nil || !strings.Contains(err.Error(), "sha256 mismatch for "+p) {
		t.Fatalf("err = %v", err)
	}
}

// D4: a FIFO or a device declared as a file with a sha256 is refused by
// its type at once, neither waited on nor read.
func TestLocalFileThatIsNotRegular(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("FIFOs and /dev/zero are Unix")
	}
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

// Hashing a large local file stops when the build is cancelled.
func TestLocalFileCancelled(t *testing.T) {
	p := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(p, make([]byte, 8<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := resolver(t).Resolve(ctx, step.Source{Path: p, SHA256: sum("x")}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// within runs fn and fails the test if it has not returned after limit:
// the bugs these tests guard against are calls that never return.
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

// assertEmpty fails if any of dirs holds a file: a failed or cancelled
// fetch leaves no temp file and no blob behind.
func assertEmpty(t *testing.T, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		ents, err := os.ReadDir(d)
		if err != nil {
			t.Fatal(err)
		}
		if len(ents) != 0 {
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			t.Errorf("%s holds %v", d, names)
		}
	}
}
