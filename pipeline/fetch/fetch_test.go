package fetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relcue/release/internal/netx"
	"github.com/relcue/release/internal/netx/netxtest"
	"github.com/relcue/release/pipeline/cache"
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
	return &Resolver{BlobDir: filepath.Join(dir, "blobs"), TempDir: filepath.Join(dir, "tmp"), Net: tiny}
}

// tiny are limits that make every test here run in well under a second;
// the bounds asserted are loose multiples of them, never tight timings.
var tiny = netx.Config{Connect: 100 * time.Millisecond, Timeout: 100 * time.Millisecond, LowSpeed: 4096, Attempts: 3, Backoff: 10 * time.Millisecond}

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
	r2 := &Resolver{BlobDir: r.BlobDir, TempDir: r.TempDir, Net: tiny}
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
	r.Net.Attempts = 2
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

// payload is what the misbehaving servers below would serve.
var payload = strings.Repeat("payload ", 64<<10) // 512 KiB

func serve(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Length", strconv.Itoa(len(payload)))
	io.WriteString(w, payload)
}

// peer is a misbehaving server: its URL, and a channel told of every
// request (or connection) it starts holding.
type peer struct {
	name, url string
	held      <-chan struct{}
	want      string // what the error must say
}

func peers(t *testing.T) []peer {
	silentAddr, accepted := netxtest.Silent(t)
	stall, trickle := make(chan struct{}, 64), make(chan struct{}, 64)
	return []peer{
		// D2: accepts the connection, never answers.
		{"silent", "http://" + silentAddr + "/f", accepted, "no response header within 100ms (--net-timeout or $RELEASE_NET_TIMEOUT)"},
		// Sends the header and a little of the body, then nothing.
		{"stall", netxtest.Start(t, netxtest.StallBody(http.HandlerFunc(serve), nil, 4096, stall)).URL + "/f", stall,
			"no data for 100ms while receiving the response (--net-timeout or $RELEASE_NET_TIMEOUT)"},
		// Keeps sending, one byte every 5 ms: far below 4 KiB/s.
		{"trickle", netxtest.Start(t, netxtest.Trickle(http.HandlerFunc(serve), nil, 5*time.Millisecond, trickle)).URL + "/f", trickle,
			"below 4096 bytes/s (--net-low-speed or $RELEASE_NET_LOW_SPEED; --net-timeout or $RELEASE_NET_TIMEOUT)"},
	}
}

// D2: a server that never answers, stalls or trickles fails the download
// after the configured attempts, in bounded time, saying which limit ran
// out and how to raise it; nothing is left in the temp or blob dir.
func TestDownloadDeadlines(t *testing.T) {
	for _, p := range peers(t) {
		t.Run(p.name, func(t *testing.T) {
			r := resolver(t)
			r.Net.Attempts = 2
			start := time.Now()
			err := within(t, 10*time.Second, func() error {
				_, err := r.Resolve(context.Background(), step.Source{URL: p.url, SHA256: sum(payload)})
				return err
			})
			if err == nil || !strings.HasPrefix(err.Error(), "fetch "+p.url+": ") || !strings.Contains(err.Error(), p.want) ||
				!strings.HasSuffix(err.Error(), "; gave up after 2 attempts (--net-attempts or $RELEASE_NET_ATTEMPTS)") {
				t.Fatalf("err = %v, want it to name the URL and say %q", err, p.want)
			}
			var de *netx.DeadlineError
			if !errors.As(err, &de) {
				t.Errorf("%v is no *netx.DeadlineError", err)
			}
			// Two attempts of about one or two windows each, plus a backoff.
			if d := time.Since(start); d > 4*time.Second {
				t.Errorf("gave up after %s", d)
			}
			if n := len(p.held); n != 2 {
				t.Errorf("the server saw %d attempts, want 2", n)
			}
			for len(p.held) > 0 {
				<-p.held
			}
			assertEmpty(t, r.TempDir, r.BlobDir)
		})
	}
}

// D4 (network side): cancelling the build (Ctrl-C) while a download waits
// on a silent, stalled or trickling server ends it at once, with nothing
// left behind.
func TestDownloadCancelled(t *testing.T) {
	for _, p := range peers(t) {
		t.Run(p.name, func(t *testing.T) {
			r := resolver(t)
			r.Net.Timeout = time.Hour // only the cancellation can end it
			r.Net.LowSpeed = 1
			ctx, cancel := context.WithCancel(context.Background())
			cancelled := make(chan time.Time, 1)
			go func() {
				<-p.held
				cancelled <- time.Now()
				cancel()
			}()
			err := within(t, 10*time.Second, func() error {
				_, err := r.Resolve(ctx, step.Source{URL: p.url, SHA256: sum(payload)})
				return err
			})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
			if d := time.Since(<-cancelled); d > time.Second {
				t.Errorf("returned %s after the cancel", d)
			}
			assertEmpty(t, r.TempDir, r.BlobDir)
		})
	}
}

// D3: `release cache gc` while a download is in flight leaves its temp
// file alone, and the download completes. Deterministic: the server holds
// the rest of the body until gc has run.
func TestGCDuringDownload(t *testing.T) {
	dir := t.TempDir()
	store, err := cache.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	started, release := make(chan struct{}), make(chan struct{})
	srv := netxtest.Start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(payload)))
		io.WriteString(w, payload[:len(payload)/2])
		http.NewResponseController(w).Flush()
		<-release
		io.WriteString(w, payload[len(payload)/2:])
	}))
	slow := tiny
	slow.Timeout = time.Hour // the pause is the test's, not a stall
	var once sync.Once
	r := &Resolver{BlobDir: store.BlobDir(), TempDir: store.TempDir(), CreateTemp: store.CreateTemp, Net: slow,
		// Bytes reach the temp file only once it exists.
		Progress: func(int64) { once.Do(func() { close(started) }) }}
	done := make(chan error, 1)
	var path string
	go func() {
		var err error
		path, err = r.Resolve(context.Background(), step.Source{URL: srv.URL + "/f", SHA256: sum(payload)})
		done <- err
	}()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("download ended early: %v", err)
	}
	temps, _ := os.ReadDir(store.TempDir())
	if len(temps) != 1 {
		t.Fatalf("temps during the download: %v", temps)
	}
	other, _ := cache.Open(dir) // `release cache gc`, another process
	rep, err := other.GC(cache.GCOptions{All: true})
	if err != nil || rep.TempRemoved != 0 {
		t.Fatalf("gc: %+v %v", rep, err)
	}
	if _, err := os.Stat(filepath.Join(store.TempDir(), temps[0].Name())); err != nil {
		t.Fatalf("gc removed the in-flight download: %v", err)
	}
	close(release)
	if err := within(t, 10*time.Second, func() error { return <-done }); err != nil {
		t.Fatalf("download after gc: %v", err)
	}
	if data, err := os.ReadFile(path); err != nil || string(data) != payload {
		t.Fatalf("blob: %d bytes, %v", len(data), err)
	}
	assertEmpty(t, store.TempDir())
}
