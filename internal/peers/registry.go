package peers

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// RegistryBinary is the command Debian's docker-registry package installs
// (/usr/bin/docker-registry, distribution 2.8.x).
const RegistryBinary = "docker-registry"

// readyTimeout bounds how long StartRegistry waits for GET /v2/ to answer.
const readyTimeout = 15 * time.Second

// Registry is a running docker-registry serving the OCI distribution API
// over plain HTTP on 127.0.0.1.
type Registry struct {
	// Host is "127.0.0.1:PORT", for references like Host+"/repo:tag".
	Host string
	// Dir is the registry's filesystem storage root.
	Dir string
	// Username and Password are set when started WithBasicAuth.
	Username, Password string

	cmd      *exec.Cmd
	done     chan struct{} // closed when the process has exited
	stderr   *lockedBuffer
	stopOnce sync.Once
}

// RegistryOption configures StartRegistry.
type RegistryOption func(*registryConfig)

type registryConfig struct {
	user, pass string
}

// WithBasicAuth makes the registry require HTTP basic auth (an htpasswd
// file with a bcrypt hash of pass) for every request.
func WithBasicAuth(user, pass string) RegistryOption {
	return func(c *registryConfig) { c.user, c.pass = user, pass }
}

// URL is "http://" + Host.
func (r *Registry) URL() string { return "http://" + r.Host }

// Logs returns what the registry has written to stderr so far.
func (r *Registry) Logs() string { return r.stderr.String() }

// StartRegistry starts Debian's docker-registry on a free port of
// 127.0.0.1 with its storage in a fresh t.TempDir(), waits until GET /v2/
// answers, and stops it when the test ends. A missing docker-registry
// skips the test (see Tool).
func StartRegistry(t testing.TB, opts ...RegistryOption) *Registry {
	t.Helper()
	var cfg registryConfig
	for _, o := range opts {
		o(&cfg)
	}
	bin := Tool(t, RegistryBinary)

	base := t.TempDir()
	dir := filepath.Join(base, "storage")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	htpasswd := ""
	if cfg.user != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(cfg.pass), bcrypt.MinCost)
		if err != nil {
			t.Fatalf("peers: bcrypt: %v", err)
		}
		htpasswd = filepath.Join(base, "htpasswd")
		if err := os.WriteFile(htpasswd, []byte(cfg.user+":"+string(hash)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("peers: no free port on 127.0.0.1: %v", err)
		}
		host := fmt.Sprintf("127.0.0.1:%d", port)
		cfgPath := filepath.Join(base, fmt.Sprintf("config-%d.yml", attempt))
		if err := os.WriteFile(cfgPath, []byte(registryYAML(dir, host, htpasswd)), 0o644); err != nil {
			t.Fatal(err)
		}
		r := &Registry{Host: host, Dir: dir, Username: cfg.user, Password: cfg.pass,
			done: make(chan struct{}), stderr: &lockedBuffer{}}
		r.cmd = exec.Command(bin, "serve", cfgPath)
		r.cmd.Dir = base
		r.cmd.Stdout = r.stderr
		r.cmd.Stderr = r.stderr
		r.cmd.SysProcAttr = childAttr()
		if err := r.cmd.Start(); err != nil {
			t.Fatalf("peers: starting %s: %v", bin, err)
		}
		go func() { _ = r.cmd.Wait(); close(r.done) }()

		err = r.waitReady(readyTimeout)
		if err == nil {
			t.Cleanup(r.Stop)
			return r
		}
		r.Stop()
		lastErr = fmt.Errorf("%w\n--- docker-registry output ---\n%s", err, r.Logs())
		if !strings.Contains(r.Logs(), "address already in use") {
			break
		}
	}
	t.Fatalf("peers: docker-registry did not come up: %v", lastErr)
	return nil
}

// Stop kills the registry and waits for it to exit; requests to Host fail
// afterwards. Safe to call more than once; the test's cleanup calls it too.
func (r *Registry) Stop() {
	r.stopOnce.Do(func() {
		if r.cmd == nil || r.cmd.Process == nil {
			return
		}
		select {
		case <-r.done:
			return
		default:
		}
		_ = r.cmd.Process.Kill()
		select {
		case <-r.done:
		case <-time.After(10 * time.Second):
		}
	})
}

// waitReady polls GET /v2/ until any HTTP answer (200, or 401 with auth).
func (r *Registry) waitReady(timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	deadline := time.Now().Add(timeout)
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case <-r.done:
			return fmt.Errorf("docker-registry exited: %v", r.cmd.ProcessState)
		default:
		}
		resp, err := client.Get(r.URL() + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
			lastErr = fmt.Errorf("GET /v2/: %s", resp.Status)
		} else {
			lastErr = err
		}
		time.Sleep(50 * time.Millisecond)
	}
	if lastErr == nil {
		lastErr = errors.New("no answer")
	}
	return fmt.Errorf("GET %s/v2/ not answering after %s: %v", r.URL(), timeout, lastErr)
}

func registryYAML(dir, host, htpasswd string) string {
	secret := make([]byte, 16)
	_, _ = rand.Read(secret)
	var b strings.Builder
	fmt.Fprintf(&b, `version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %q
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %q
  secret: %q
`, dir, host, hex.EncodeToString(secret))
	if htpasswd != "" {
		fmt.Fprintf(&b, `auth:
  htpasswd:
    realm: release-tests
    path: %q
`, htpasswd)
	}
	return b.String()
}

// freePort asks the kernel for a free port on 127.0.0.1 and releases it.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// lockedBuffer collects a child's output while tests read it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() > 1<<20 { // keep memory bounded; the start is what matters
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
