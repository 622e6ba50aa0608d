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
	"strings"
	"sync/atomic"
	"testing"

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
