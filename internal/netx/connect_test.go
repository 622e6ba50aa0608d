package netx

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"
)

// A connection that does not open in time (a peer whose SYNs vanish) is
// reported as such. The dial is simulated: on loopback a connection opens
// or is refused at once.
func TestNoConnection(t *testing.T) {
	stop := make(chan struct{})
	defer close(stop)
	base := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-stop:
			return nil, errors.New("test over")
		}
	}}
	c := Config{Connect: 100 * time.Millisecond}
	done := make(chan error, 1)
	go func() {
		resp, err := (&http.Client{Transport: c.Wrap(base)}).Get("http://192.0.2.1/f")
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		var de *DeadlineError
		if !errors.As(err, &de) || de.Phase != Connecting || err.Error() != `Get "http://192.0.2.1/f": no connection within 100ms (--net-connect-timeout or $RELEASE_NET_CONNECT_TIMEOUT)` {
			t.Fatalf("err = %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("still connecting")
	}
}
