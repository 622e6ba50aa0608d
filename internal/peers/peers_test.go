package peers_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/relcue/release/internal/peers"
)

var client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func do(t *testing.T, method, u string, body []byte, hdr map[string]string) *http.Response {
	t.Helper()
	resp, err := tryDo(method, u, body, hdr)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	return resp
}

func tryDo(method, u string, body []byte, hdr map[string]string) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp, nil
}

func want(t *testing.T, resp *http.Response, status int) {
	t.Helper()
	if resp.StatusCode != status {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("%s %s: got %s, want %d: %s", resp.Request.Method, resp.Request.URL, resp.Status, status, b)
	}
}

// pushBlob uploads data monolithically: POST to open an upload, PUT with
// the digest and the whole body to close it.
func pushBlob(t *testing.T, host, repo string, data []byte) string {
	t.Helper()
	base := "http://" + host
	resp := do(t, "POST", base+"/v2/"+repo+"/blobs/uploads/", nil, nil)
	want(t, resp, http.StatusAccepted)
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.Header.Get("Location") == "" {
		t.Fatalf("upload Location %q: %v", resp.Header.Get("Location"), err)
	}
	if loc.Host != "" && loc.Host != host {
		t.Fatalf("upload Location %s leads to %s, not back to %s", loc, loc.Host, host)
	}
	u, _ := url.Parse(base)
	loc = u.ResolveReference(loc)
	dgst := digestOf(data)
	q := loc.Query()
	q.Set("digest", dgst)
	loc.RawQuery = q.Encode()
	resp = do(t, "PUT", loc.String(), data, map[string]string{"Content-Type": "application/octet-stream"})
	want(t, resp, http.StatusCreated)
	return dgst
}

const ociManifest = "application/vnd.oci.image.manifest.v1+json"

func manifestFor(config, layer []byte) []byte {
	m := map[string]any{
		"schemaVersion": 2,
		"mediaType":     ociManifest,
		"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json",
			"digest": digestOf(config), "size": len(config)},
		"layers": []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar",
			"digest": digestOf(layer), "size": len(layer)}},
	}
	b, _ := json.Marshal(m)
	return b
}

func TestRegistryPushThroughCountingProxy(t *testing.T) {
	reg := peers.StartRegistry(t)
	px := reg.CountingProxy(t)
	base := px.URL()
	const repo = "peers/test"

	resp := do(t, "GET", base+"/v2/", nil, nil)
	want(t, resp, http.StatusOK)
	if v := resp.Header.Get("Docker-Distribution-API-Version"); v != "registry/2.0" {
		t.Errorf("API version header %q", v)
	}

	config := []byte(`{"architecture":"amd64","os":"linux"}`)
	layer := bytes.Repeat([]byte("peers layer\n"), 1000)
	manifest := manifestFor(config, layer)
	mhdr := map[string]string{"Content-Type": ociManifest}

	// First push: every blob is uploaded.
	pushBlob(t, px.Host, repo, config)
	layerDigest := pushBlob(t, px.Host, repo, layer)
	resp = do(t, "PUT", base+"/v2/"+repo+"/manifests/v1", manifest, mhdr)
	want(t, resp, http.StatusCreated)
	if got := resp.Header.Get("Docker-Content-Digest"); got != digestOf(manifest) {
		t.Errorf("manifest digest %s, want %s", got, digestOf(manifest))
	}
	c := px.Counts()
	if c["POST blob-upload"] != 2 || c["PUT blob-upload"] != 2 || c["PUT manifest"] != 1 || px.Uploads() != 4 {
		t.Errorf("first push counts %v", px)
	}

	// The blob is in the registry's storage on disk.
	hexd := strings.TrimPrefix(layerDigest, "sha256:")
	onDisk, err := os.ReadFile(filepath.Join(reg.Dir, "docker", "registry", "v2", "blobs", "sha256", hexd[:2], hexd, "data"))
	if err != nil || !bytes.Equal(onDisk, layer) {
		t.Errorf("layer not stored under Dir %s: %v", reg.Dir, err)
	}

	// Second push, as a careful client does it: HEAD finds each blob, so
	// nothing is uploaded; only the manifest is put again.
	px.Reset()
	for _, b := range [][]byte{config, layer} {
		resp = do(t, "HEAD", base+"/v2/"+repo+"/blobs/"+digestOf(b), nil, nil)
		want(t, resp, http.StatusOK)
	}
	resp = do(t, "PUT", base+"/v2/"+repo+"/manifests/v1", manifest, mhdr)
	want(t, resp, http.StatusCreated)
	if px.Uploads() != 0 || px.Count("HEAD", peers.KindBlob) != 2 || px.Count("PUT", peers.KindManifest) != 1 || px.Total() != 3 {
		t.Errorf("second push counts %v, log %q", px, px.Log())
	}

	// Fault injection: the next manifest PUT fails with 503, then works.
	px.Reset()
	px.FailNext(1, http.StatusServiceUnavailable, peers.On("PUT", peers.KindManifest))
	resp = do(t, "GET", base+"/v2/"+repo+"/tags/list", nil, nil) // not matched: forwarded
	want(t, resp, http.StatusOK)
	resp = do(t, "PUT", base+"/v2/"+repo+"/manifests/v2", manifest, mhdr)
	want(t, resp, http.StatusServiceUnavailable)
	resp = do(t, "PUT", base+"/v2/"+repo+"/manifests/v2", manifest, mhdr)
	want(t, resp, http.StatusCreated)
	if px.Injected() != 1 || px.Count("PUT", peers.KindManifest) != 2 || px.Count("GET", peers.KindTags) != 1 {
		t.Errorf("fault counts %v, injected %d", px, px.Injected())
	}

	// Status 0 drops the connection: an interrupted upload.
	px.FailNext(1, 0, peers.On("POST", peers.KindBlobUpload))
	if resp, err := tryDo("POST", base+"/v2/"+repo+"/blobs/uploads/", nil, nil); err == nil {
		t.Fatalf("interrupted POST answered %s", resp.Status)
	}
	pushBlob(t, px.Host, repo, []byte("after the interruption"))

	// Both tags are served, by the digest pushed.
	resp = do(t, "GET", base+"/v2/"+repo+"/tags/list", nil, nil)
	want(t, resp, http.StatusOK)
	var tags struct{ Tags []string }
	if err := json.NewDecoder(resp.Body).Decode(&tags); err != nil || strings.Join(tags.Tags, ",") != "v1,v2" {
		t.Errorf("tags %v (%v)", tags.Tags, err)
	}

	// A registry that goes down: direct requests fail, the proxy says 502.
	reg.Stop()
	reg.Stop() // idempotent
	if resp, err := tryDo("GET", reg.URL()+"/v2/", nil, nil); err == nil {
		t.Errorf("stopped registry still answers: %s", resp.Status)
	}
	resp = do(t, "GET", base+"/v2/", nil, nil)
	want(t, resp, http.StatusBadGateway)
}

func TestRegistryBasicAuth(t *testing.T) {
	reg := peers.StartRegistry(t, peers.WithBasicAuth("alice", "s3cret"))
	if reg.Username != "alice" || reg.Password != "s3cret" {
		t.Fatalf("credentials %q/%q", reg.Username, reg.Password)
	}
	resp := do(t, "GET", reg.URL()+"/v2/", nil, nil)
	want(t, resp, http.StatusUnauthorized)
	if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic") {
		t.Errorf("WWW-Authenticate %q", resp.Header.Get("WWW-Authenticate"))
	}
	for pass, status := range map[string]int{"s3cret": http.StatusOK, "wrong": http.StatusUnauthorized} {
		req, _ := http.NewRequest("GET", reg.URL()+"/v2/", nil)
		req.SetBasicAuth("alice", pass)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != status {
			t.Errorf("password %q: %s, want %d", pass, resp.Status, status)
		}
	}
}

// TestOrasPushTwice drives the pinned oras CLI through the counting proxy:
// a second push of the same content uploads no blob.
func TestOrasPushTwice(t *testing.T) {
	oras := peers.Tool(t, "oras")
	reg := peers.StartRegistry(t)
	px := reg.CountingProxy(t)

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "addon.txt"), []byte("addon content\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	push := func() {
		t.Helper()
		cmd := exec.Command(oras, "push", "--plain-http", "--disable-path-validation",
			px.Host+"/addons/demo:1.0.0", "addon.txt:text/plain")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("oras push: %v\n%s", err, out)
		}
	}
	push()
	if px.Uploads() == 0 || px.Count("PUT", peers.KindManifest) != 1 {
		t.Fatalf("first oras push counts %v", px)
	}
	px.Reset()
	push()
	if px.Uploads() != 0 {
		t.Errorf("second oras push uploaded blobs: %v\n%q", px, px.Log())
	}

	// crane, an independent client, reads back what oras pushed.
	if crane, err := peers.Lookup("crane"); err == nil {
		out, err := exec.Command(crane, "manifest", "--insecure", reg.Host+"/addons/demo:1.0.0").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "text/plain") {
			t.Errorf("crane manifest: %v\n%s", err, out)
		}
	}
}

// recTB records what Tool does when a peer is missing.
type recTB struct {
	testing.TB
	skipped, failed string
}

func (r *recTB) Helper()                      {}
func (r *recTB) Skipf(f string, args ...any)  { r.skipped = fmt.Sprintf(f, args...) }
func (r *recTB) Fatalf(f string, args ...any) { r.failed = fmt.Sprintf(f, args...) }

func TestTool(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("shell-script fake tool")
	}
	tools := t.TempDir()
	t.Setenv(peers.EnvTools, tools)
	t.Setenv("PATH", t.TempDir())
	if err := os.MkdirAll(filepath.Join(tools, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	fake := filepath.Join(tools, "bin", "oras")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got := peers.Tool(t, "oras"); got != fake {
		t.Errorf("Tool(oras) = %q, want %q", got, fake)
	}

	t.Setenv(peers.EnvRequire, "")
	r := &recTB{TB: t}
	if got := peers.Tool(r, "crane"); got != "" || r.failed != "" || !strings.Contains(r.skipped, "make tools") {
		t.Errorf("missing crane: path %q, skipped %q, failed %q", got, r.skipped, r.failed)
	}
	r = &recTB{TB: t}
	peers.Tool(r, "docker-registry")
	if !strings.Contains(r.skipped, "apt-get install docker-registry") {
		t.Errorf("missing docker-registry: skipped %q", r.skipped)
	}

	t.Setenv(peers.EnvRequire, "1")
	r = &recTB{TB: t}
	peers.Tool(r, "crane")
	if r.skipped != "" || !strings.Contains(r.failed, "make tools") {
		t.Errorf("required crane: skipped %q, failed %q", r.skipped, r.failed)
	}
}

// TestStartRegistryReportsOutput: a registry that cannot start fails the
// test with its own output in the message.
func TestStartRegistryReportsOutput(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("shell-script fake registry")
	}
	tools := t.TempDir()
	t.Setenv(peers.EnvTools, tools)
	if err := os.MkdirAll(filepath.Join(tools, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	fake := "#!/bin/sh\necho 'configuration error: boom' >&2\nexit 1\n"
	if err := os.WriteFile(filepath.Join(tools, "bin", "docker-registry"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	r := &recTB{TB: t}
	if reg := peers.StartRegistry(r); reg != nil {
		t.Fatalf("started a registry that exits: %+v", reg)
	}
	if !strings.Contains(r.failed, "configuration error: boom") || !strings.Contains(r.failed, "exited") {
		t.Errorf("failure message lacks the registry's output: %q", r.failed)
	}
}
