// Package fetch resolves a target's external sources to verified local
// paths: downloads (http, https, file URLs) land in a content-addressed blob
// directory after their SHA-256 matched; local files with a declared
// SHA-256 are checked before any step may read them. Every download is
// bounded in time by internal/netx: a server that does not answer, or a
// body that stops moving, fails the attempt, and transient failures are
// retried a bounded number of times.
package fetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"

	"github.com/relcue/release/internal/netx"
	"github.com/relcue/release/pipeline/digest"
	"github.com/relcue/release/pipeline/step"
)

// Resolver turns sources into local paths.
type Resolver struct {
	// BlobDir keeps downloads by SHA-256; TempDir must be on the same
	// filesystem.
	BlobDir, TempDir string
	// CreateTemp, when set, makes the download's temp file instead of
	// os.CreateTemp in TempDir (the cache's, which gc must not remove
	// while the download runs).
	CreateTemp func(pattern string) (*os.File, error)
	// Net bounds every request in time and says how often a download
	// that failed transiently is tried in all (zero: the defaults).
	Net netx.Config
	// Client replaces the HTTP client made from Net (tests).
	Client *http.Client
	// Progress, if set, receives downloaded bytes.
	Progress func(n int64)

	mu     sync.Mutex
	memo   map[string]*result
	client *http.Client
}

type result struct {
	once sync.Once
	path string
	err  error
}

// ChecksumError says a file's content does not match its declared digest.
type ChecksumError struct {
	What      string
	Got, Want string
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("sha256 mismatch for %s: content is %s but the config declares %s; if the file changed on purpose, update its sha256", e.What, e.Got, e.Want)
}

// Resolve returns a local path holding the source's verified content.
func (r *Resolver) Resolve(ctx context.Context, s step.Source) (string, error) {
	if s.URL == "" && s.SHA256 == "" {
		return s.Path, nil // digested by the planner; nothing declared to check
	}
	k := s.URL + "|" + s.Path + "|" + s.SHA256
	r.mu.Lock()
	if r.memo == nil {
		r.memo = map[string]*result{}
	}
	res, ok := r.memo[k]
	if !ok {
		res = &result{}
		r.memo[k] = res
	}
	r.mu.Unlock()
	res.once.Do(func() {
		if s.URL != "" {
			res.path, res.err = r.download(ctx, s.URL, s.SHA256)
			return
		}
		res.path, res.err = s.Path, checkLocal(ctx, s.Path, s.SHA256)
	})
	return res.path, res.err
}

// checkLocal hashes a local file against its declaration. Only a regular
// file is read (a FIFO or device named as an input would block or never
// end), and the hash stops when ctx does.
func checkLocal(ctx context.Context, p, want string) error {
	got, _, err := digest.FileContext(ctx, p)
	if err != nil {
		return err
	}
	if got != want {
		return &ChecksumError{What: p, Got: got, Want: want}
	}
	return nil
}

// permanentError stops retries.
type permanentError struct{ error }

func (e permanentError) Unwrap() error { return e.error }

func (r *Resolver) download(ctx context.Context, rawURL, want string) (string, error) {
	if want == "" {
		return "", fmt.Errorf("%s: no sha256 declared; downloads must be pinned", rawURL)
	}
	dst := filepath.Join(r.BlobDir, want)
	if got, _, err := digest.FileContext(ctx, dst); err == nil {
		if got == want {
			return dst, nil
		}
		os.Remove(dst) // a damaged blob is fetched again, never served
	}
	lim := r.Net.WithDefaults()
	for i := 0; ; i++ {
		if i > 0 {
			if err := lim.Wait(ctx, i); err != nil {
				return "", err
			}
		}
		err := r.once(ctx, rawURL, want, dst)
		switch {
		case err == nil:
			return dst, nil
		case ctx.Err() != nil:
			return "", ctx.Err()
		case errors.As(err, new(permanentError)):
			return "", fmt.Errorf("fetch %s: %w", rawURL, err)
		case i+1 == lim.Attempts:
			if i > 0 {
				err = fmt.Errorf("%w; gave up after %d attempts (%s)", err, lim.Attempts, netx.AttemptsSetting)
			}
			return "", fmt.Errorf("fetch %s: %w", rawURL, err)
		}
	}
}

func (r *Resolver) once(ctx context.Context, rawURL, want, dst string) error {
	body, err := r.open(ctx, rawURL)
	if err != nil {
		return err
	}
	defer body.Close()
	create := r.CreateTemp
	if create == nil {
		create = func(pattern string) (*os.File, error) { return os.CreateTemp(r.TempDir, pattern) }
	}
	tmp, err := create("fetch-*")
	if err != nil {
		return permanentError{err}
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	w := io.Writer(io.MultiWriter(tmp, h))
	if r.Progress != nil {
		w = io.MultiWriter(w, progressWriter(r.Progress))
	}
	if _, err := io.Copy(w, body); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return permanentError{err}
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return permanentError{&ChecksumError{What: rawURL, Got: got, Want: want}}
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return permanentError{err}
	}
	return nil
}

func (r *Resolver) open(ctx context.Context, rawURL string) (io.ReadCloser, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, permanentError{err}
	}
	switch u.Scheme {
	case "file":
		f, _, err := digest.OpenRegular(u.Path)
		if err != nil {
			return nil, permanentError{err}
		}
		return ctxReader{ctx, f}, nil
	case "http", "https":
	default:
		return nil, permanentError{fmt.Errorf("unsupported URL scheme %q (use https, http or file)", u.Scheme)}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, permanentError{err}
	}
	resp, err := r.httpClient().Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) && ue.URL == rawURL {
			err = ue.Err // the caller names the URL
		}
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		err := fmt.Errorf("server answered %s", resp.Status)
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests {
			return nil, err
		}
		return nil, permanentError{err}
	}
	return resp.Body, nil
}

func (r *Resolver) httpClient() *http.Client {
	if r.Client != nil {
		return r.Client
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.client == nil {
		r.client = &http.Client{Transport: r.Net.NewTransport(nil)}
	}
	return r.client
}

// ctxReader stops reading a local file when ctx is done (an HTTP body
// stops by itself: its request carries ctx).
type ctxReader struct {
	ctx context.Context
	*os.File
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.File.Read(p)
}

type progressWriter func(int64)

func (p progressWriter) Write(b []byte) (int, error) {
	p(int64(len(b)))
	return len(b), nil
}
