package remotecache

import (
	"context"
	"errors"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/relcue/release/internal/netx"
	"github.com/relcue/release/internal/netx/netxtest"
	"github.com/relcue/release/internal/peers"
	"github.com/relcue/release/pipeline/cache"
	"github.com/relcue/release/pipeline/step"
)

// tiny are limits that keep each test well under a second or two; the
// bounds asserted are loose multiples of them, never tight timings.
var tiny = netx.Config{Connect: 100 * time.Millisecond, Timeout: 100 * time.Millisecond, LowSpeed: 4096, Attempts: 2, Backoff: 10 * time.Millisecond}

// pullInto fetches key into the fresh store s as the scheduler does,
// failing the test if that does not return within limit.
func pullInto(t *testing.T, ctx context.Context, s *cache.Store, r *Remote, limit time.Duration) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		e, _, err := s.Build(ctx, key, info, 2, func(ctx context.Context, out string) ([]step.Artifact, error) {
			return r.Fetch(ctx, key, info, out)
		})
		if err == nil {
			e.Release()
		}
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		t.Fatalf("pull still running after %s", limit)
		return nil
	}
}

// assertNothingLeft fails if s holds an entry or a temp file.
func assertNothingLeft(t *testing.T, s *cache.Store) {
	t.Helper()
	if s.Has(key) {
		t.Error("an entry was stored")
	}
	if ents, _ := os.ReadDir(s.TempDir()); len(ents) != 0 {
		t.Errorf("temp files left: %v", ents)
	}
}

func newStore(t *testing.T) *cache.Store {
	s, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// D2: a registry that accepts connections and never answers costs one
// warning naming the limit; the pull is a miss, the push is skipped, and
// both return in bounded time.
func TestSilentRegistryCostsAWarning(t *testing.T) {
	addr, accepted := netxtest.Silent(t)
	var w warnings
	r, err := New(Ref{Host: addr, Repository: "release/cache"}, Options{PlainHTTP: true, Pull: true, Push: true, Warn: w.add, Net: tiny})
	if err != nil {
		t.Fatal(err)
	}
	s := newStore(t)
	start := time.Now()
	if err := pullInto(t, context.Background(), s, r, 10*time.Second); !errors.Is(err, ErrMiss) {
		t.Fatalf("pull: %v, want a miss", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the miss took %s", d)
	}
	assertNothingLeft(t, s)
	_, e := localEntry(t)
	conns := len(accepted)
	r.Push(context.Background(), e) // the remote is off: nothing is sent
	if len(accepted) != conns {
		t.Error("pushed to a registry that stopped answering")
	}
	got := w.String()
	if strings.Count(got, "warning:") != 1 || !strings.Contains(got, "stopped answering") ||
		!strings.Contains(got, "no response header within 100ms (--net-timeout or $RELEASE_NET_TIMEOUT)") || !strings.Contains(got, "building locally") {
		t.Fatalf("warnings:\n%s", got)
	}
}

// A push to a registry that never answers costs a warning in bounded
// time, too.
func TestSilentRegistryPush(t *testing.T) {
	addr, _ := netxtest.Silent(t)
	var w warnings
	r, _ := New(Ref{Host: addr, Repository: "release/cache"}, Options{PlainHTTP: true, Push: true, Warn: w.add, Net: tiny})
	_, e := localEntry(t)
	done := make(chan struct{})
	go func() { r.Push(context.Background(), e); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("push still running")
	}
	if !strings.Contains(w.String(), "no response header within 100ms") || r.Stats().Pushed != 0 {
		t.Fatalf("stats %+v, warnings:\n%s", r.Stats(), w.String())
	}
}

// stallingProxy serves reg through h's behaviour for blob downloads only:
// the manifest and config arrive, the file's blob then stalls or
// trickles.
func stallingProxy(t *testing.T, reg *peers.Registry, behave func(next http.Handler, m netxtest.Match) http.Handler) string {
	target, _ := url.Parse(reg.URL())
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target); pr.Out.Host = pr.In.Host }}
	isBlob := func(r *http.Request) bool {
		return r.Method == http.MethodGet && peers.Kind(r) == peers.KindBlob
	}
	return netxtest.Start(t, behave(rp, isBlob)).Listener.Addr().String()
}

// D2: a blob that stops moving, or trickles below the low-speed limit,
// while it is pulled costs a warning; the entry is built locally and
// nothing partial is stored.
func TestStalledBlobCostsAWarning(t *testing.T) {
	reg := peers.StartRegistry(t)
	_, e := localEntry(t)
	var setup warnings
	up, _ := New(Ref{Host: reg.Host, Repository: "release/cache"}, Options{PlainHTTP: true, Push: true, Warn: setup.add})
	up.Push(context.Background(), e)
	if up.Stats().Pushed != 1 {
		t.Fatalf("setup: push failed: %s", setup.String())
	}
	for name, c := range map[string]struct {
		behave func(http.Handler, netxtest.Match) http.Handler
		want   string
	}{
		"stall": {func(h http.Handler, m netxtest.Match) http.Handler { return netxtest.StallBody(h, m, 0, nil) },
			"no data for 100ms while receiving the response (--net-timeout or $RELEASE_NET_TIMEOUT)"},
		"trickle": {func(h http.Handler, m netxtest.Match) http.Handler {
			return netxtest.Trickle(h, m, 5*time.Millisecond, nil)
		},
			"below 4096 bytes/s (--net-low-speed or $RELEASE_NET_LOW_SPEED"},
	} {
		t.Run(name, func(t *testing.T) {
			host := stallingProxy(t, reg, c.behave)
			var w warnings
			r, _ := New(Ref{Host: host, Repository: "release/cache"}, Options{PlainHTTP: true, Pull: true, Warn: w.add, Net: tiny})
			s := newStore(t)
			err := pullInto(t, context.Background(), s, r, 10*time.Second)
			if !errors.Is(err, ErrMiss) {
				t.Fatalf("pull: %v, want a miss", err)
			}
			assertNothingLeft(t, s)
			if !strings.Contains(w.String(), "stopped answering") || !strings.Contains(w.String(), c.want) {
				t.Fatalf("warnings:\n%s", w.String())
			}
		})
	}
}

// D4 (network side): cancelling the build while a pull waits on the
// registry ends it at once, as a cancellation and not as a warning.
func TestPullCancelled(t *testing.T) {
	addr, accepted := netxtest.Silent(t)
	slow := tiny
	slow.Timeout = time.Hour
	var w warnings
	r, _ := New(Ref{Host: addr, Repository: "release/cache"}, Options{PlainHTTP: true, Pull: true, Warn: w.add, Net: slow})
	s := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancelled := make(chan time.Time, 1)
	go func() {
		<-accepted
		cancelled <- time.Now()
		cancel()
	}()
	err := pullInto(t, ctx, s, r, 10*time.Second)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if d := time.Since(<-cancelled); d > time.Second {
		t.Errorf("returned %s after the cancel", d)
	}
	if w.String() != "" {
		t.Errorf("a cancelled pull warned:\n%s", w.String())
	}
	assertNothingLeft(t, s)
}

// D4 (network side): cancelling the build while a push waits on the
// registry ends it at once, without a warning.
func TestPushCancelled(t *testing.T) {
	addr, accepted := netxtest.Silent(t)
	slow := tiny
	slow.Timeout = time.Hour
	var w warnings
	r, _ := New(Ref{Host: addr, Repository: "release/cache"}, Options{PlainHTTP: true, Push: true, Warn: w.add, Net: slow})
	_, e := localEntry(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancelled := make(chan time.Time, 1)
	go func() {
		<-accepted
		cancelled <- time.Now()
		cancel()
	}()
	done := make(chan struct{})
	go func() { r.Push(ctx, e); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("push still running")
	}
	if d := time.Since(<-cancelled); d > time.Second {
		t.Errorf("returned %s after the cancel", d)
	}
	if w.String() != "" || r.Stats().Pushed != 0 {
		t.Errorf("stats %+v, warnings:\n%s", r.Stats(), w.String())
	}
}
