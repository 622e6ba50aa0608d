package netx

import (
	"crypto/tls"
	"net/http"
	"time"

	"oras.land/oras-go/v2/registry/remote/retry"
)

// RegistryClient is the HTTP client of the registry clients (oras-go):
// every request watched by the limits of c, and retried by oras-go's retry
// transport when it failed transiently (a limit expired, the connection
// was reset, 5xx, 429 with its Retry-After), c.Attempts times in all with
// backoff. A request whose body cannot be rewound is not retried, and a
// body that stalls after the header arrived fails the operation, bounded
// by the low-speed rule. base, when set, replaces the network transport
// below the watchdog (tests); insecure accepts any TLS certificate.
func (c Config) RegistryClient(base http.RoundTripper, insecure bool) *http.Client {
	c = c.WithDefaults()
	var rt http.RoundTripper
	if base != nil {
		rt = c.Wrap(base)
	} else {
		var tc *tls.Config
		if insecure {
			tc = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // asked for by the user (--remote-cache-insecure, registry.insecure)
		}
		rt = c.NewTransport(tc)
	}
	policy := &retry.GenericPolicy{
		Retryable: retry.DefaultPredicate,
		Backoff:   retry.ExponentialBackoff(c.Backoff, 2, 0.1),
		MinWait:   c.Backoff / 2,
		MaxWait:   max(c.Backoff<<4, 10*time.Second),
		MaxRetry:  c.Attempts - 1,
	}
	return &http.Client{Transport: &retry.Transport{Base: rt, Policy: func() retry.Policy { return policy }}}
}
