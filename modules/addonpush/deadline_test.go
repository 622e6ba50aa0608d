package addonpush

import (
	"context"
	"errors"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/relcue/release/internal/netx"
	"github.com/relcue/release/internal/netx/netxtest"
	"github.com/relcue/release/internal/peers"
)

// tiny are limits that keep each test within a second or two; the bounds
// asserted are loose multiples of them, never tight timings.
var tiny = netx.Config{Connect: 100 * time.Millisecond, Timeout: 100 * time.Millisecond, LowSpeed: 4096, Attempts: 2, Backoff: 10 * time.Millisecond}

// pushWithin pushes layout to host under c's limits, failing the test if
// that does not return within limit.
func pushWithin(t *testing.T, ctx context.Context, layout, host string, c netx.Config, limit time.Duration) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := Push(ctx, layout, Options{
			Registry: Registry{Host: host, PlainHTTP: true, Prefix: "addons"}, Tag: "v1.0.0",
			ExportName: exportName, Concurrency: 2, Net: c,
		})
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		t.Fatalf("push still running after %s", limit)
		return nil
	}
}

// D2: a registry that accepts connections and never answers fails the
// push in bounded time, naming the reference, the registry, the limit
// and its setting, after the configured attempts.
func TestSilentRegistryFailsThePush(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	layout := exportSample(t, "1.0.0", "kind: ConfigMap\n")
	addr, accepted := netxtest.Silent(t)
	start := time.Now()
	err := pushWithin(t, context.Background(), layout, addr, tiny, 10*time.Second)
	want := "push " + addr + "/addons/demo:v1.0.0: registry " + addr + " stopped answering: "
	if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "no response header within 100ms (--net-timeout or $RELEASE_NET_TIMEOUT)") {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("gave up after %s", d)
	}
	if n := len(accepted); n < tiny.Attempts || n > 4*tiny.Attempts {
		t.Errorf("%d connections for %d attempts", n, tiny.Attempts)
	}
}

// D2: a registry that stops answering in the middle of a push (the
// manifest upload, or the blob uploads) fails it in bounded time, and
// the tag is not set.
func TestRegistryStallsMidPush(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	layout := exportSample(t, "1.0.0", "kind: ConfigMap\n")
	for name, m := range map[string]netxtest.Match{
		"manifest": func(r *http.Request) bool { return r.Method == http.MethodPut && peers.Kind(r) == peers.KindManifest },
		"blobs": func(r *http.Request) bool {
			return r.Method != http.MethodPost && peers.Kind(r) == peers.KindBlobUpload
		},
	} {
		t.Run(name, func(t *testing.T) {
			reg := peers.StartRegistry(t) // empty: every blob is uploaded
			target, _ := url.Parse(reg.URL())
			rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target); pr.Out.Host = pr.In.Host }}
			held := make(chan struct{}, 64)
			host := netxtest.Start(t, netxtest.Hang(rp, m, held)).Listener.Addr().String()
			// A real registry on a busy machine may take longer than
			// tiny's 100 ms to answer a request it does serve.
			c := tiny
			c.Timeout = 500 * time.Millisecond
			err := pushWithin(t, context.Background(), layout, host, c, 10*time.Second)
			var de *netx.DeadlineError
			if !errors.As(err, &de) || !strings.Contains(err.Error(), "registry "+host+" stopped answering") || !strings.Contains(err.Error(), "(--net-timeout or $RELEASE_NET_TIMEOUT)") {
				t.Fatalf("err = %v", err)
			}
			if len(held) == 0 {
				t.Fatal("the push never reached the stalled request")
			}
			if code := head(t, "http://"+reg.Host+"/v2/addons/demo/manifests/v1.0.0"); code != http.StatusNotFound {
				t.Fatalf("tag v1.0.0 answers HTTP %d after the stalled push; want 404", code)
			}
		})
	}
}

// D4 (network side): cancelling the build while a push waits on the
// registry ends it at once.
func TestPushCancelledWhileWaiting(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	layout := exportSample(t, "1.0.0", "kind: ConfigMap\n")
	addr, accepted := netxtest.Silent(t)
	slow := tiny
	slow.Timeout = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	cancelled := make(chan time.Time, 1)
	go func() {
		<-accepted
		cancelled <- time.Now()
		cancel()
	}()
	err := pushWithin(t, ctx, layout, addr, slow, 10*time.Second)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if d := time.Since(<-cancelled); d > time.Second {
		t.Errorf("returned %s after the cancel", d)
	}
}
