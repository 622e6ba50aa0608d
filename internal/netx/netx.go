// Package netx bounds every network operation of release in time: a
// connection must open, a server must start answering and a transfer must
// keep moving, or the request fails with an error that says which limit
// expired and which setting raises it. Transient failures are retried a
// bounded number of times with backoff. URL inputs (pipeline/fetch),
// addon pushes (modules/addonpush) and the remote cache
// (pipeline/remotecache) all take their HTTP transport from here.
package netx

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/relcue/release/internal/units"
)

// Defaults. Generous enough for a slow registry on the far side of the
// world; short enough that a CI job stuck on a dead peer learns it within
// minutes instead of at the CI's own timeout.
const (
	DefaultConnect  = 30 * time.Second
	DefaultTimeout  = 60 * time.Second
	DefaultLowSpeed = 1024 // bytes per second
	DefaultAttempts = 3
	defaultBackoff  = 500 * time.Millisecond
)

// Setting names a knob the way a user changes it.
type Setting struct{ Flag, Env string }

func (s Setting) String() string { return s.Flag + " or $" + s.Env }

// The settings, named in every error a limit causes.
var (
	ConnectSetting  = Setting{"--net-connect-timeout", "RELEASE_NET_CONNECT_TIMEOUT"}
	TimeoutSetting  = Setting{"--net-timeout", "RELEASE_NET_TIMEOUT"}
	LowSpeedSetting = Setting{"--net-low-speed", "RELEASE_NET_LOW_SPEED"}
	AttemptsSetting = Setting{"--net-attempts", "RELEASE_NET_ATTEMPTS"}
)

// Config holds the limits. A zero field takes its default, so a Config
// nobody filled in is still bounded.
type Config struct {
	// Connect bounds opening a TCP connection (DNS included) and, on its
	// own, the TLS handshake that follows.
	Connect time.Duration
	// Timeout bounds the wait for a response's header once the request is
	// sent, and is the window of the low-speed rule: a request or response
	// body that moves fewer than LowSpeed×Timeout bytes in any Timeout
	// (none at all, at worst) is abandoned.
	Timeout time.Duration
	// LowSpeed is the slowest transfer rate accepted, in bytes per second.
	LowSpeed int64
	// Attempts is how often a request that failed transiently (a limit
	// expired, the connection broke, 5xx, 429) is tried in all.
	Attempts int
	// Backoff is the wait before the second attempt; it doubles for each
	// further one. Not a user setting (tests shorten it).
	Backoff time.Duration
}

// WithDefaults fills in the zero fields.
func (c Config) WithDefaults() Config {
	if c.Connect <= 0 {
		c.Connect = DefaultConnect
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.LowSpeed <= 0 {
		c.LowSpeed = DefaultLowSpeed
	}
	if c.Attempts <= 0 {
		c.Attempts = DefaultAttempts
	}
	if c.Backoff <= 0 {
		c.Backoff = defaultBackoff
	}
	return c
}

// minBytes is what a body must move per Timeout window.
func (c Config) minBytes() int64 {
	return max(1, int64(float64(c.LowSpeed)*c.Timeout.Seconds()))
}

// FromEnv returns the defaults overridden by the RELEASE_NET_* variables
// that are set. Flags then override this (cmd/release).
func FromEnv(getenv func(string) string) (Config, error) {
	var c Config
	var err error
	if c.Connect, err = envDuration(getenv, ConnectSetting.Env); err != nil {
		return c, err
	}
	if c.Timeout, err = envDuration(getenv, TimeoutSetting.Env); err != nil {
		return c, err
	}
	if v := getenv(LowSpeedSetting.Env); v != "" {
		if c.LowSpeed, err = ParseRate(v); err != nil {
			return c, fmt.Errorf("$%s: %w", LowSpeedSetting.Env, err)
		}
	}
	if v := getenv(AttemptsSetting.Env); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return c, fmt.Errorf("$%s=%q: want a whole number of attempts, at least 1", AttemptsSetting.Env, v)
		}
		c.Attempts = n
	}
	return c.WithDefaults(), nil
}

func envDuration(getenv func(string) string, name string) (time.Duration, error) {
	v := getenv(name)
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("$%s=%q: want a positive duration such as 90s or 2m", name, v)
	}
	return d, nil
}

// ParseRate reads a transfer rate in bytes per second: "1024", "1KiB",
// "64KB", optionally ending in "/s". It must be at least one byte.
func ParseRate(s string) (int64, error) {
	n, err := units.ParseBytes(strings.TrimSuffix(strings.TrimSpace(s), "/s"))
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%q is not a rate of at least one byte per second, such as 1KiB or 512", s)
	}
	return n, nil
}

// Wait sleeps before attempt number attempt (1 for the second try), or
// returns ctx's error as soon as it is done.
func (c Config) Wait(ctx context.Context, attempt int) error {
	c = c.WithDefaults()
	d := c.Backoff << min(max(attempt-1, 0), 6)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Phase is what a request was doing when a limit expired.
type Phase int

const (
	Connecting Phase = iota
	Handshaking
	Sending
	AwaitingHeader
	Receiving
)

// DeadlineError says which limit expired, what it was, and how to raise
// it. It is a net.Error whose Timeout is true, so retry policies treat it
// as transient.
type DeadlineError struct {
	Phase Phase
	Limit time.Duration
	// Moved and Rate describe a body that was below the low-speed limit
	// (Moved > 0) rather than stalled (Moved == 0); only for Sending and
	// Receiving.
	Moved, Rate int64
}

func (e *DeadlineError) Error() string {
	lim := Seconds(e.Limit)
	switch e.Phase {
	case Connecting:
		return fmt.Sprintf("no connection within %s (%s)", lim, ConnectSetting)
	case Handshaking:
		return fmt.Sprintf("no TLS handshake within %s (%s)", lim, ConnectSetting)
	case AwaitingHeader:
		return fmt.Sprintf("no response header within %s (%s)", lim, TimeoutSetting)
	}
	what := "receiving the response"
	if e.Phase == Sending {
		what = "sending the request"
	}
	if e.Moved == 0 {
		return fmt.Sprintf("no data for %s while %s (%s)", lim, what, TimeoutSetting)
	}
	return fmt.Sprintf("only %d bytes in %s while %s, below %d bytes/s (%s; %s)", e.Moved, lim, what, e.Rate, LowSpeedSetting, TimeoutSetting)
}

// Timeout and Temporary make a DeadlineError a net.Error.
func (e *DeadlineError) Timeout() bool   { return true }
func (e *DeadlineError) Temporary() bool { return true }

// Seconds formats a limit for messages: "60s", "1.5s", "200ms".
func Seconds(d time.Duration) string {
	if d >= time.Second && d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return d.String()
}
