package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/relcue/release/internal/netx/netxtest"
)

// These tests rebuild the reproductions of RELIABILITY.md D2, D3 and D4
// against the binary. Each run is bounded well below releaseCmd's two
// minutes, so that a build that hangs (the defect) fails the test quickly.

// tinyNet are limits small enough for a test, given through the
// environment as a CI job would.
var tinyNet = []string{"RELEASE_NET_CONNECT_TIMEOUT=200ms", "RELEASE_NET_TIMEOUT=200ms", "RELEASE_NET_ATTEMPTS=2"}

// runBounded runs release and fails the test if it is still running after
// limit; it returns the result and how long the run took.
func runBounded(t *testing.T, limit time.Duration, env []string, args ...string) (result, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Env = append(append(os.Environ(), "CI=true"), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	if ctx.Err() != nil {
		t.Fatalf("release %s: still running after %s\nstderr:\n%s", strings.Join(args, " "), limit, errb.String())
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{out.String(), errb.String(), code}, took
}

// inputConfig writes a one-release configuration whose second input is
// the file input given (CUE), and a payload dir.
func inputConfig(t *testing.T, input string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "payload"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "payload", "a.txt"), []byte("hi\n"), 0o644)
	cfg := `package release
product: {name: "t", vendor: "x"}
build: date: "2025-06-01T00:00:00Z"
releases: "1.0.0": inputs: [{dir: "payload"}` + input + `]
`
	if err := os.WriteFile(filepath.Join(dir, "release.cue"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func urlInput(url, sha string) string {
	return fmt.Sprintf(`, {file: {url: %q, sha256: %q}, dest: "bin/f"}`, url, sha)
}

func sum256(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// assertNoTemps fails if the cache's temp dir holds anything.
func assertNoTemps(t *testing.T, cache string) {
	t.Helper()
	ents, _ := os.ReadDir(filepath.Join(cache, "v1", "tmp"))
	if len(ents) != 0 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("left in the cache's tmp: %v", names)
	}
}

// D2 (a): a URL input on a server that accepts and never answers fails
// the build in bounded time, naming the URL, the limit and its setting.
func TestBuildURLInputFromSilentServer(t *testing.T) {
	addr, _ := netxtest.Silent(t)
	url := "http://" + addr + "/f"
	dir := inputConfig(t, urlInput(url, sum256("x")))
	cache := filepath.Join(t.TempDir(), "cache")
	r, took := runBounded(t, 30*time.Second, tinyNet, "build", "-C", dir, "--cache", cache)
	want := "fetch " + url + ": no response header within 200ms (--net-timeout or $RELEASE_NET_TIMEOUT); gave up after 2 attempts (--net-attempts or $RELEASE_NET_ATTEMPTS)"
	if r.code != 1 || !strings.Contains(r.stderr, want) {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	t.Logf("failed after %s", took)
	assertNoDist(t, dir)
	assertNoTemps(t, cache)
}

// D2 (b): a push to a registry that accepts and never answers fails the
// push target in bounded time, naming the registry and the setting.
func TestBuildPushToSilentRegistry(t *testing.T) {
	addr, _ := netxtest.Silent(t)
	dir := copySample(t)
	cache := filepath.Join(t.TempDir(), "cache")
	r, took := runBounded(t, 90*time.Second, append(tinyNet, "DOCKER_CONFIG="+t.TempDir()),
		"build", "-C", dir, "--cache", cache, "--push", "--registry", addr, "--plain-http", "--target", "push/addon/metrics/*")
	if r.code != 1 || !strings.Contains(r.stderr, "registry "+addr+" stopped answering") || !strings.Contains(r.stderr, "(--net-timeout or $RELEASE_NET_TIMEOUT)") {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	t.Logf("failed after %s", took)
	assertNoDist(t, dir)
	assertNoTemps(t, cache)
}

// D2 (c): a remote cache that accepts and never answers costs one
// warning; the build goes on locally and succeeds.
func TestBuildWithSilentRemoteCache(t *testing.T) {
	addr, _ := netxtest.Silent(t)
	dir := inputConfig(t, "")
	cache := filepath.Join(t.TempDir(), "cache")
	r, took := runBounded(t, 30*time.Second, tinyNet, "build", "-C", dir, "--cache", cache,
		"--remote-cache", "oci://"+addr+"/cache", "--remote-cache-plain-http")
	warning := "warning: remote cache oci://" + addr + "/cache stopped answering"
	if r.code != 0 || strings.Count(r.stderr, warning) != 1 || !strings.Contains(r.stderr, "no response header within 200ms (--net-timeout or $RELEASE_NET_TIMEOUT)") {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	t.Logf("built after %s", took)
	if _, err := os.Stat(filepath.Join(dir, "dist", "artifacts.json")); err != nil {
		t.Fatal(err)
	}
	assertNoTemps(t, cache)
}

// D3: `release cache gc` run while a build downloads a URL input leaves
// the download's temp file alone, and the build succeeds. The server holds
// the second half of the body until gc has run: no sleeps decide the
// order.
func TestCacheGCDuringDownload(t *testing.T) {
	body := strings.Repeat("x", 64<<10)
	started, release := make(chan struct{}, 1), make(chan struct{})
	srv := netxtest.Start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		io.WriteString(w, body[:len(body)/2])
		http.NewResponseController(w).Flush()
		started <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, body[len(body)/2:])
	}))
	dir := inputConfig(t, urlInput(srv.URL+"/f", sum256(body)))
	cache := filepath.Join(t.TempDir(), "cache")
	cmd := exec.Command(binPath, "build", "-q", "-C", dir, "--cache", cache)
	cmd.Env = append(os.Environ(), "CI=true")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer cmd.Process.Kill() // a no-op once the build ended
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("build ended before the download: %v\n%s", err, stderr.String())
	case <-time.After(60 * time.Second):
		t.Fatal("the download never started")
	}
	// The build creates its temp file once the header arrived; wait for
	// it (bounded), so that gc has something to be wrong about.
	tmp := filepath.Join(cache, "v1", "tmp")
	var download string
	for deadline := time.Now().Add(20 * time.Second); download == "" && time.Now().Before(deadline); {
		ents, _ := os.ReadDir(tmp)
		for _, e := range ents {
			if strings.Contains(e.Name(), "fetch-") {
				download = e.Name()
			}
		}
		if download == "" {
			time.Sleep(5 * time.Millisecond)
		}
	}
	if download == "" {
		t.Fatal("no download temp appeared in the cache")
	}
	gc, _ := runBounded(t, 30*time.Second, nil, "cache", "gc", "--cache", cache)
	if gc.code != 0 {
		t.Fatalf("gc: exit %d\n%s", gc.code, gc.stderr)
	}
	if _, err := os.Stat(filepath.Join(tmp, download)); err != nil {
		t.Fatalf("gc removed the in-flight download %s: %v", download, err)
	}
	close(release)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("build after gc: %v\n%s", err, stderr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("build still running")
	}
	if got := readFile(t, filepath.Join(dir, "dist", "artifacts.json")); !bytes.Contains(got, []byte("t-1.0.0")) {
		t.Fatalf("artifacts.json: %s", got)
	}
	assertNoTemps(t, cache)
}

// D4: Ctrl-C while a download waits on a server that never answers ends
// the build at once with exit 130, and leaves nothing behind.
func TestInterruptDuringDownload(t *testing.T) {
	addr, accepted := netxtest.Silent(t)
	dir := inputConfig(t, urlInput("http://"+addr+"/f", sum256("x")))
	cache := filepath.Join(t.TempDir(), "cache")
	cmd := exec.Command(binPath, "build", "-q", "-C", dir, "--cache", cache) // default limits: minutes
	cmd.Env = append(os.Environ(), "CI=true")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-accepted:
	case err := <-done:
		t.Fatalf("build ended before the download: %v\n%s", err, stderr.String())
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatal("the download never started")
	}
	sent := time.Now()
	cmd.Process.Signal(os.Interrupt)
	var err error
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("still running 30s after Ctrl-C")
	}
	took := time.Since(sent)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("interrupted build: %v\n%s", err, stderr.String())
	}
	if took > 5*time.Second {
		t.Errorf("exit %s after Ctrl-C", took)
	}
	t.Logf("exit 130 after %s", took)
	assertNoDist(t, dir)
	assertNoTemps(t, cache)
}
