package netx

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync"
	"time"
)

// NewTransport returns a transport whose every request is watched by the
// limits of c (see Wrap). tlsConfig may be nil.
func (c Config) NewTransport(tlsConfig *tls.Config) http.RoundTripper {
	c = c.WithDefaults()
	t := http.DefaultTransport.(*http.Transport).Clone()
	// The transport dials in the background and may go on after the
	// request that asked for the connection gave up, so the dial and the
	// handshake carry their own limits too.
	t.DialContext = (&net.Dialer{Timeout: c.Connect, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = c.Connect
	if tlsConfig != nil {
		t.TLSClientConfig = tlsConfig
	}
	return c.Wrap(t)
}

// Wrap returns a RoundTripper that runs every request through base under a
// watchdog: connecting (up to the TLS handshake's end) must finish within
// Connect, the response header must arrive within Timeout of the request
// being sent, and the request and response bodies must move at least
// LowSpeed bytes per second over every Timeout window. When a limit
// expires, the request is cancelled and fails with a *DeadlineError
// (wrapped in the usual *url.Error by http.Client). The watchdog follows
// the request through httptrace, so it works for HTTP/1 and HTTP/2 alike
// and leaves connection reuse alone.
func (c Config) Wrap(base http.RoundTripper) http.RoundTripper {
	return &watchedTransport{base: base, cfg: c.WithDefaults()}
}

type watchedTransport struct {
	base http.RoundTripper
	cfg  Config
}

func (t *watchedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancelCause(req.Context())
	w := &watch{cfg: t.cfg, cancel: cancel}
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		TLSHandshakeStart: func() { w.enter(Handshaking) },
		GotConn:           func(httptrace.GotConnInfo) { w.enter(Sending) },
		WroteRequest:      func(httptrace.WroteRequestInfo) { w.enter(AwaitingHeader) },
	})
	out := req.Clone(ctx)
	if req.Body != nil && req.Body != http.NoBody {
		out.Body = &sendBody{ReadCloser: req.Body, w: w}
		if req.GetBody != nil {
			out.GetBody = func() (io.ReadCloser, error) {
				b, err := req.GetBody()
				if err != nil {
					return nil, err
				}
				return &sendBody{ReadCloser: b, w: w}, nil
			}
		}
	}
	w.enter(Connecting)
	resp, err := t.base.RoundTrip(out)
	if err != nil {
		err = w.explain(err)
		w.finish()
		return nil, err
	}
	w.enter(Receiving)
	resp.Body = &receiveBody{rc: resp.Body, w: w}
	return resp, nil
}

// watch is one request's watchdog: a timer armed with the limit of the
// phase the request is in.
type watch struct {
	cfg    Config
	cancel context.CancelCauseFunc

	mu       sync.Mutex
	phase    Phase
	started  bool
	timer    *time.Timer
	deadline time.Time
	moved    int64 // body bytes in the current window
	fired    *DeadlineError
	done     bool
}

// limit is how long phase p may last (a window, for bodies).
func (w *watch) limit(p Phase) time.Duration {
	if p <= Handshaking {
		return w.cfg.Connect
	}
	return w.cfg.Timeout
}

// enter moves the request on to phase p and arms the timer for it. The
// trace hooks run on the transport's goroutines and may come late (a
// server may answer before it read the whole request), so a phase never
// goes back.
func (w *watch) enter(p Phase) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done || w.fired != nil || (w.started && p <= w.phase) {
		return
	}
	w.started, w.phase, w.moved = true, p, 0
	d := w.limit(p)
	w.deadline = time.Now().Add(d)
	if w.timer == nil {
		w.timer = time.AfterFunc(d, w.expire)
	} else {
		w.timer.Reset(d)
	}
}

// progress counts body bytes moved in phase p.
func (w *watch) progress(p Phase, n int) {
	w.mu.Lock()
	if w.phase == p {
		w.moved += int64(n)
	}
	w.mu.Unlock()
}

// expire runs when the timer fires: a body that moved enough in its
// window starts the next one; anything else has run out of time.
func (w *watch) expire() {
	w.mu.Lock()
	if w.done || w.fired != nil {
		w.mu.Unlock()
		return
	}
	now := time.Now()
	if now.Before(w.deadline) { // re-armed while this call was on its way
		w.timer.Reset(w.deadline.Sub(now))
		w.mu.Unlock()
		return
	}
	if (w.phase == Sending || w.phase == Receiving) && w.moved >= w.cfg.minBytes() {
		w.moved = 0
		w.deadline = now.Add(w.cfg.Timeout)
		w.timer.Reset(w.cfg.Timeout)
		w.mu.Unlock()
		return
	}
	e := &DeadlineError{Phase: w.phase, Limit: w.limit(w.phase)}
	if w.phase == Sending || w.phase == Receiving {
		e.Moved, e.Rate = w.moved, w.cfg.LowSpeed
	}
	w.fired = e
	w.mu.Unlock()
	w.cancel(e)
}

// explain replaces the error of a request the watchdog cancelled, or that
// the transport's own dial or handshake limit ended, by the DeadlineError.
func (w *watch) explain(err error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fired != nil {
		return w.fired
	}
	var ne net.Error
	if w.phase <= Handshaking && errors.As(err, &ne) && ne.Timeout() {
		return &DeadlineError{Phase: w.phase, Limit: w.cfg.Connect}
	}
	return err
}

// finish stops the watchdog and releases the request's context.
func (w *watch) finish() {
	w.mu.Lock()
	w.done = true
	if w.timer != nil {
		w.timer.Stop()
	}
	w.mu.Unlock()
	w.cancel(context.Canceled)
}

// sendBody counts what the transport takes of the request body: what it
// takes is at most a buffer ahead of what the server accepted.
type sendBody struct {
	io.ReadCloser
	w *watch
}

func (b *sendBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.w.progress(Sending, n)
	return n, err
}

// receiveBody counts the response body and ends the watch when it is
// closed.
type receiveBody struct {
	rc   io.ReadCloser
	w    *watch
	once sync.Once
}

func (b *receiveBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.w.progress(Receiving, n)
	if err != nil && err != io.EOF {
		err = b.w.explain(err)
	}
	if err == io.EOF {
		// Stopped but not cancelled: the transport may still be putting
		// the connection back for reuse.
		b.w.mu.Lock()
		b.w.done = true
		b.w.timer.Stop()
		b.w.mu.Unlock()
	}
	return n, err
}

func (b *receiveBody) Close() error {
	err := b.rc.Close()
	b.once.Do(b.w.finish)
	return err
}
