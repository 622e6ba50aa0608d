package netx_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/relcue/release/internal/netx"
	"github.com/relcue/release/internal/netx/netxtest"
)

// tiny are limits small enough that every test runs in well under a
// second; bounds below are loose multiples of them, never tight timings.
var tiny = netx.Config{Connect: 100 * time.Millisecond, Timeout: 100 * time.Millisecond, LowSpeed: 4096, Attempts: 1, Backoff: 10 * time.Millisecond}

const bound = 2 * time.Second // 20× a limit: "bounded", not a measurement

func body(n int) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(n))
		w.Write(bytes.Repeat([]byte("x"), n))
	}
}

// get fetches url with c's transport and reads the whole body; it fails
// the test if that takes longer than bound.
func get(t *testing.T, ctx context.Context, c netx.Config, url string) ([]byte, error) {
	t.Helper()
	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		client := &http.Client{Transport: c.NewTransport(&tls.Config{InsecureSkipVerify: true})}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err != nil {
			done <- result{nil, err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		done <- result{b, err}
	}()
	select {
	case r := <-done:
		return r.b, r.err
	case <-time.After(bound):
		t.Fatalf("GET %s: still running after %s", url, bound)
		return nil, nil
	}
}

func wantDeadline(t *testing.T, err error, phase netx.Phase, text string) {
	t.Helper()
	var de *netx.DeadlineError
	if !errors.As(err, &de) || de.Phase != phase || !strings.Contains(err.Error(), text) {
		t.Fatalf("err = %v, want a deadline error saying %q", err, text)
	}
}

func TestNoResponseHeader(t *testing.T) {
	addr, _ := netxtest.Silent(t)
	_, err := get(t, context.Background(), tiny, "http://"+addr+"/f")
	wantDeadline(t, err, netx.AwaitingHeader, "no response header within 100ms (--net-timeout or $RELEASE_NET_TIMEOUT)")
	if !strings.Contains(err.Error(), addr+"/f") {
		t.Errorf("%v does not name the URL", err)
	}
}

func TestNoTLSHandshake(t *testing.T) {
	addr, _ := netxtest.Silent(t)
	_, err := get(t, context.Background(), tiny, "https://"+addr+"/f")
	wantDeadline(t, err, netx.Handshaking, "no TLS handshake within 100ms (--net-connect-timeout or $RELEASE_NET_CONNECT_TIMEOUT)")
}

func TestBodyStalls(t *testing.T) {
	srv := netxtest.Start(t, netxtest.StallBody(body(1<<20), nil, 1000, nil))
	b, err := get(t, context.Background(), tiny, srv.URL+"/f")
	wantDeadline(t, err, netx.Receiving, "no data for 100ms while receiving the response")
	if len(b) != 1000 {
		t.Errorf("read %d bytes before the stall, want 1000", len(b))
	}
}

func TestBodyTrickles(t *testing.T) {
	srv := netxtest.Start(t, netxtest.Trickle(body(1<<20), nil, 5*time.Millisecond, nil))
	_, err := get(t, context.Background(), tiny, srv.URL+"/f")
	wantDeadline(t, err, netx.Receiving, "bytes/s (--net-low-speed or $RELEASE_NET_LOW_SPEED; --net-timeout")
	if !strings.Contains(err.Error(), "below 4096 bytes/s") {
		t.Errorf("err = %v", err)
	}
}

// A body that takes many windows but moves well above the low-speed limit
// in each is not cut off.
func TestSlowButSteadyBodySucceeds(t *testing.T) {
	srv := netxtest.Start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		for i := 0; i < 25; i++ { // 25 × 10 ms: 2.5 windows
			w.Write(bytes.Repeat([]byte("y"), 4096))
			rc.Flush()
			time.Sleep(10 * time.Millisecond)
		}
	}))
	b, err := get(t, context.Background(), tiny, srv.URL+"/f")
	if err != nil || len(b) != 25*4096 {
		t.Fatalf("%d bytes, %v", len(b), err)
	}
}

func TestUploadStalls(t *testing.T) {
	held := make(chan struct{}, 1)
	srv := netxtest.Start(t, netxtest.Hang(http.NotFoundHandler(), nil, held))
	client := &http.Client{Transport: tiny.NewTransport(nil)}
	done := make(chan error, 1)
	go func() {
		// Far more than the socket buffers hold, so the writes block.
		resp, err := client.Post(srv.URL+"/upload", "application/octet-stream", io.LimitReader(zeros{}, 256<<20))
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		wantDeadline(t, err, netx.Sending, "while sending the request")
	case <-time.After(bound):
		t.Fatal("upload still running")
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// Cancelling the caller's context ends a waiting request at once with
// the context's error, not a deadline error.
func TestCancelWhileWaiting(t *testing.T) {
	addr, accepted := netxtest.Silent(t)
	slow := tiny
	slow.Timeout = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-accepted; cancel() }()
	start := time.Now()
	_, err := get(t, ctx, slow, "http://"+addr+"/f")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	var de *netx.DeadlineError
	if errors.As(err, &de) {
		t.Fatalf("a cancelled request reported %v", de)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("cancel took %s", d)
	}
}

// The registry client retries a request that ran out of time, as often
// as Attempts says, then fails with the deadline error.
func TestRegistryClientRetriesBounded(t *testing.T) {
	addr, accepted := netxtest.Silent(t)
	c := tiny
	c.Attempts = 3
	client := c.RegistryClient(nil, false)
	done := make(chan error, 1)
	go func() {
		resp, err := client.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	var err error
	select {
	case err = <-done:
	case <-time.After(3 * bound):
		t.Fatal("still running")
	}
	wantDeadline(t, err, netx.AwaitingHeader, "no response header within 100ms")
	if n := len(accepted); n != 3 {
		t.Errorf("%d connections, want one per attempt (3)", n)
	}
}

func TestFromEnv(t *testing.T) {
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	c, err := netx.FromEnv(getenv)
	if err != nil || c.Connect != 30*time.Second || c.Timeout != 60*time.Second || c.LowSpeed != 1024 || c.Attempts != 3 {
		t.Fatalf("defaults: %+v %v", c, err)
	}
	env = map[string]string{"RELEASE_NET_CONNECT_TIMEOUT": "5s", "RELEASE_NET_TIMEOUT": "2m", "RELEASE_NET_LOW_SPEED": "10KiB/s", "RELEASE_NET_ATTEMPTS": "5"}
	c, err = netx.FromEnv(getenv)
	if err != nil || c.Connect != 5*time.Second || c.Timeout != 2*time.Minute || c.LowSpeed != 10240 || c.Attempts != 5 {
		t.Fatalf("from env: %+v %v", c, err)
	}
	for k, v := range map[string]string{"RELEASE_NET_TIMEOUT": "60", "RELEASE_NET_CONNECT_TIMEOUT": "-1s", "RELEASE_NET_LOW_SPEED": "0", "RELEASE_NET_ATTEMPTS": "0"} {
		env = map[string]string{k: v}
		if _, err := netx.FromEnv(getenv); err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("%s=%s: %v", k, v, err)
		}
	}
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]int64{"1": 1, "512": 512, "1KiB": 1024, "1KiB/s": 1024, "64KB": 64000, "1.5MiB": 1572864} {
		if got, err := netx.ParseRate(in); err != nil || got != want {
			t.Errorf("%s: %d %v, want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "0.5", "fast", "1kb", "-3"} {
		if _, err := netx.ParseRate(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}
