// Package netxtest has the misbehaving peers that the network limits of
// package netx are tested against, all on 127.0.0.1: a listener that
// accepts and never answers, and HTTP handlers that never answer, stall a
// body, or trickle it below any sensible speed.
package netxtest

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// Silent accepts TCP connections on 127.0.0.1 and never reads or writes:
// a TLS handshake, a request and a response all wait on it forever. Every
// accepted connection is announced on the returned channel (buffered; a
// full channel drops the announcement). Closed when the test ends.
func Silent(t testing.TB) (addr string, accepted <-chan struct{}) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan struct{}, 64)
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String(), ch
}

// Start serves h on 127.0.0.1 until the test ends. The requests' contexts
// end with the test too, so a handler that holds a request (Hang,
// StallBody, Trickle) lets go of it before the server shuts down.
func Start(t testing.TB, h http.Handler) *httptest.Server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	srv := httptest.NewUnstartedServer(h)
	srv.Config.BaseContext = func(net.Listener) context.Context { return ctx }
	srv.Start()
	t.Cleanup(func() {
		cancel()
		srv.CloseClientConnections()
		srv.Close()
	})
	return srv
}

// Match selects the requests a behaviour applies to; nil matches all.
type Match func(*http.Request) bool

func (m Match) ok(r *http.Request) bool { return m == nil || m(r) }

// notify announces a held request without ever blocking the handler.
func notify(ch chan<- struct{}) {
	if ch == nil {
		return
	}
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Hang never answers matching requests (and never reads their bodies):
// the client waits for a response header, or, with a large request body,
// for the server to take more of it. held, when set, is told of each.
func Hang(next http.Handler, match Match, held chan<- struct{}) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !match.ok(r) {
			next.ServeHTTP(w, r)
			return
		}
		notify(held)
		<-r.Context().Done()
	})
}

// StallBody lets next answer matching requests, passes the header and the
// first after bytes of the body on, then holds the rest back until the
// client gives up: a transfer that stopped moving.
func StallBody(next http.Handler, match Match, after int64, held chan<- struct{}) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !match.ok(r) {
			next.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(&throttled{ResponseWriter: w, r: r, after: after, held: held}, r)
	})
}

// Trickle lets next answer matching requests but sends the body one byte
// every interval: slower than any low-speed limit, yet never silent for
// long.
func Trickle(next http.Handler, match Match, every time.Duration, held chan<- struct{}) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !match.ok(r) {
			next.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(&throttled{ResponseWriter: w, r: r, after: -1, every: every, held: held}, r)
	})
}

// throttled is a ResponseWriter that stalls (after >= 0) or trickles.
type throttled struct {
	http.ResponseWriter
	r       *http.Request
	after   int64
	every   time.Duration
	held    chan<- struct{}
	written int64
	told    bool
}

func (w *throttled) Write(p []byte) (int, error) {
	rc := http.NewResponseController(w.ResponseWriter)
	if w.after >= 0 {
		n := 0
		if room := w.after - w.written; room > 0 {
			k := int(min(room, int64(len(p))))
			n, _ = w.ResponseWriter.Write(p[:k])
			w.written += int64(n)
		}
		if n == len(p) {
			return n, nil
		}
		rc.Flush()
		if !w.told {
			w.told = true
			notify(w.held)
		}
		<-w.r.Context().Done()
		return n, w.r.Context().Err()
	}
	for i := range p {
		if _, err := w.ResponseWriter.Write(p[i : i+1]); err != nil {
			return i, err
		}
		rc.Flush()
		if !w.told {
			w.told = true
			notify(w.held)
		}
		select {
		case <-w.r.Context().Done():
			return i + 1, w.r.Context().Err()
		case <-time.After(w.every):
		}
	}
	return len(p), nil
}

func (w *throttled) Flush() { http.NewResponseController(w.ResponseWriter).Flush() }

func (w *throttled) Unwrap() http.ResponseWriter { return w.ResponseWriter }
