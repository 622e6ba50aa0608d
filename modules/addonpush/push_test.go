package addonpush

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/relcue/release/internal/peers"
	"github.com/relcue/release/modules/addon"
	"github.com/relcue/release/modules/gitops"
)

var date = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)

// exportSample writes a single-implementation addon "demo" with a 2 MiB
// image archive and exports it; it returns the layout dir.
func exportSample(t *testing.T, version, manifestText string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "demo")
	write := func(rel, data string) {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(addon.ManifestFile, `apiVersion: v1
kind: AddonManifest
metadata: {name: demo, description: A demo addon}
spec:
  implementations:
    - name: demo
`)
	write("manifests/app.yaml", manifestText)
	write("Enable.ps1", "Write-Output enable\n")
	img := filepath.Join(t.TempDir(), "img.tar")
	if err := os.WriteFile(img, []byte(strings.Repeat("layer-bytes-", 2<<20/12)), 0o644); err != nil {
		t.Fatal(err)
	}
	man, err := addon.LoadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	sync, err := gitops.SyncFolder(gitops.Addon{Name: "demo", Version: version})
	if err != nil {
		t.Fatal(err)
	}
	var sf []addon.SyncFile
	for _, f := range sync {
		sf = append(sf, addon.SyncFile{Path: f.Path, Data: f.Data})
	}
	layout := filepath.Join(t.TempDir(), "layout")
	_, err = addon.Export(addon.Options{
		Name: "demo", Version: version, Dir: dir, Manifest: man, Date: date, LayoutDir: layout,
		Impls: []addon.Impl{{Name: "demo", Sync: sf, LinuxImages: []addon.File{{Name: "example.com_demo_1.0.tar", Path: img}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return layout
}

func push(ctx context.Context, layout, host, tag string) ([]Pushed, error) {
	return Push(ctx, layout, Options{
		Registry:    Registry{Host: host, PlainHTTP: true, Prefix: "addons"},
		Tag:         tag,
		ExportName:  exportName,
		Concurrency: 2,
	})
}

// layoutManifest returns the digest of the layout's only manifest.
func layoutManifest(t *testing.T, layout string) ocispec.Descriptor {
	t.Helper()
	idx, err := readIndex(layout)
	if err != nil {
		t.Fatal(err)
	}
	return idx.Manifests[0]
}

func TestPushIsReadByOrasAndSkipsExistingBlobs(t *testing.T) {
	oras := peers.Tool(t, "oras")
	reg := peers.StartRegistry(t)
	proxy := reg.CountingProxy(t)
	t.Setenv("DOCKER_CONFIG", t.TempDir()) // no credentials on this machine leak in
	layout := exportSample(t, "1.0.0", "kind: ConfigMap\n")
	want := layoutManifest(t, layout)

	pushed, err := push(context.Background(), layout, proxy.Host, "v1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	if len(pushed) != 1 || pushed[0].Reference != proxy.Host+"/addons/demo:v1.0.0" || pushed[0].Digest != want.Digest.String() {
		t.Fatalf("pushed %+v, want demo at %s", pushed, want.Digest)
	}
	first := proxy.Uploads()
	if first == 0 || pushed[0].Uploaded < 4 {
		t.Fatalf("first push uploaded %d requests / %d nodes; want config, layers and manifest (%s)", first, pushed[0].Uploaded, proxy)
	}

	// An independent client reads what we pushed.
	ref := reg.Host + "/addons/demo:v1.0.0"
	raw := run(t, oras, "manifest", "fetch", "--plain-http", ref)
	var m ocispec.Manifest
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		t.Fatalf("oras manifest fetch: %v\n%s", err, raw)
	}
	if m.ArtifactType != addon.ArtifactType || m.Config.MediaType != addon.ConfigMediaType ||
		m.Annotations["vnd.k2s.addon.name"] != "demo" || m.Annotations["org.opencontainers.image.version"] != "1.0.0" {
		t.Fatalf("manifest as oras reads it: %s", raw)
	}
	desc := run(t, oras, "manifest", "fetch", "--plain-http", "--descriptor", ref)
	if !strings.Contains(desc, want.Digest.String()) {
		t.Fatalf("oras resolves the tag to %s, want %s", desc, want.Digest)
	}
	var manifests ocispec.Descriptor
	for _, l := range m.Layers {
		if l.MediaType == addon.ManifestsType {
			manifests = l
		}
	}
	blob := filepath.Join(t.TempDir(), "manifests.tar.gz")
	run(t, oras, "blob", "fetch", "--plain-http", "--output", blob, reg.Host+"/addons/demo@"+manifests.Digest.String())
	names := tarNames(t, blob)
	for _, n := range []string{"app.yaml", "gitops-sync/kustomization.yaml", "gitops-sync/sync-job.yaml"} {
		if !names[n] {
			t.Fatalf("the layer Flux selects lacks %s: %v", n, names)
		}
	}

	// A second push of the same artifact uploads no blob at all.
	proxy.Reset()
	pushed, err = push(context.Background(), layout, proxy.Host, "v1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	if proxy.Uploads() != 0 || !pushed[0].Present {
		t.Fatalf("second push: %d blob upload requests, present=%v; want 0 and true (%s)", proxy.Uploads(), pushed[0].Present, proxy)
	}

	// A new version that changes one file uploads only what changed.
	layout2 := exportSample(t, "1.1.0", "kind: ConfigMap\ndata: {a: b}\n")
	proxy.Reset()
	pushed, err = push(context.Background(), layout2, proxy.Host, "v1.1.0")
	if err != nil {
		t.Fatal(err)
	}
	if pushed[0].Skipped == 0 {
		t.Fatalf("the unchanged image layer was uploaded again: %+v (%s)", pushed[0], proxy)
	}
	tags := run(t, oras, "repo", "tags", "--plain-http", reg.Host+"/addons/demo")
	if strings.Fields(tags)[0] != "v1.0.0" || strings.Fields(tags)[1] != "v1.1.0" {
		t.Fatalf("tags: %q", tags)
	}
}

func TestTransientErrorsAreRetried(t *testing.T) {
	reg := peers.StartRegistry(t)
	proxy := reg.CountingProxy(t)
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	layout := exportSample(t, "1.0.0", "kind: ConfigMap\n")
	proxy.FailNext(2, http.StatusServiceUnavailable, peers.On("PUT", peers.KindManifest))
	if _, err := push(context.Background(), layout, proxy.Host, "v1.0.0"); err != nil {
		t.Fatalf("two 503s on the manifest were not retried: %v", err)
	}
	if proxy.Injected() != 2 {
		t.Fatalf("injected %d faults, want 2", proxy.Injected())
	}
}

func TestInterruptedPushNeverTagsAnIncompleteArtifact(t *testing.T) {
	reg := peers.StartRegistry(t)
	proxy := reg.CountingProxy(t)
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	layout := exportSample(t, "1.0.0", "kind: ConfigMap\n")
	// Every manifest upload dies mid-request, however often it is retried.
	proxy.FailNext(100, 0, peers.On("PUT", peers.KindManifest))
	_, err := push(context.Background(), layout, proxy.Host, "v1.0.0")
	if err == nil {
		t.Fatal("push succeeded although every manifest upload was cut off")
	}
	if !strings.Contains(err.Error(), "addons/demo:v1.0.0") {
		t.Fatalf("error does not name the reference: %v", err)
	}
	if code := head(t, "http://"+reg.Host+"/v2/addons/demo/manifests/v1.0.0"); code != http.StatusNotFound {
		t.Fatalf("tag v1.0.0 answers HTTP %d after the failed push; want 404", code)
	}
	// The next push completes it, without uploading the blobs again.
	proxy.ClearFaults()
	proxy.Reset()
	if _, err := push(context.Background(), layout, proxy.Host, "v1.0.0"); err != nil {
		t.Fatal(err)
	}
	if proxy.Uploads() != 0 {
		t.Fatalf("resumed push uploaded blobs again: %s", proxy)
	}
	if code := head(t, "http://"+reg.Host+"/v2/addons/demo/manifests/v1.0.0"); code != http.StatusOK {
		t.Fatalf("tag v1.0.0 answers HTTP %d after the resumed push", code)
	}
}

func TestUnreachableRegistry(t *testing.T) {
	reg := peers.StartRegistry(t)
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	layout := exportSample(t, "1.0.0", "kind: ConfigMap\n")
	reg.Stop()
	start := time.Now()
	_, err := push(context.Background(), layout, reg.Host, "v1.0.0")
	if err == nil || !strings.Contains(err.Error(), "registry "+reg.Host+" is unreachable") {
		t.Fatalf("err = %v, want it to say the registry is unreachable", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Fatalf("giving up took %s", d)
	}
}

func TestCredentialsFromDockerConfig(t *testing.T) {
	reg := peers.StartRegistry(t, peers.WithBasicAuth("ci", "s3cret"))
	layout := exportSample(t, "1.0.0", "kind: ConfigMap\n")

	t.Setenv("DOCKER_CONFIG", t.TempDir())
	_, err := push(context.Background(), layout, reg.Host, "v1.0.0")
	if err == nil || !strings.Contains(err.Error(), "has none for "+reg.Host+" (HTTP 401)") {
		t.Fatalf("without credentials: err = %v", err)
	}

	bad := t.TempDir()
	wrong := base64.StdEncoding.EncodeToString([]byte("ci:wrong"))
	if err := os.WriteFile(filepath.Join(bad, "config.json"), fmt.Appendf(nil, `{"auths": {%q: {"auth": %q}}}`, reg.Host, wrong), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", bad)
	_, err = push(context.Background(), layout, reg.Host, "v1.0.0")
	if err == nil || !strings.Contains(err.Error(), "refused the credentials (HTTP 401)") {
		t.Fatalf("with a wrong password: err = %v", err)
	}

	cfg := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte("ci:s3cret"))
	if err := os.WriteFile(filepath.Join(cfg, "config.json"), fmt.Appendf(nil, `{"auths": {%q: {"auth": %q}}}`, reg.Host, auth), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", cfg)
	if _, err := push(context.Background(), layout, reg.Host, "v1.0.0"); err != nil {
		t.Fatalf("with credentials in $DOCKER_CONFIG/config.json: %v", err)
	}
}

func TestCanceledPush(t *testing.T) {
	reg := peers.StartRegistry(t)
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	layout := exportSample(t, "1.0.0", "kind: ConfigMap\n")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := push(ctx, layout, reg.Host, "v1.0.0"); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if code := head(t, "http://"+reg.Host+"/v2/addons/demo/manifests/v1.0.0"); code != http.StatusNotFound {
		t.Fatalf("a canceled push left tag v1.0.0 (HTTP %d)", code)
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return string(out)
}

func head(t *testing.T, url string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodHead, url, nil)
	req.Header.Set("Accept", ocispec.MediaTypeImageManifest)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func tarNames(t *testing.T, p string) map[string]bool {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names[h.Name] = true
	}
}
