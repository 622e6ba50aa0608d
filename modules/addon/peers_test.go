package addon

import (
	"bytes"
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/relcue/release/internal/peers"
)

// run runs a peer and returns its stdout, failing the test with its
// output when it fails.
func run(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "DOCKER_CONFIG="+t.TempDir()) // no credentials, no cache
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", filepath.Base(name), strings.Join(args, " "), err, stdout.Bytes(), stderr.Bytes())
	}
	return stdout.Bytes()
}

// The export of a single-implementation addon, pushed with oras from the
// .oci.tar and from the layout directory, is what oras, crane and skopeo
// read back: the same manifest bytes, and a manifests layer that
// extracts (with GNU tar) to the addon's manifests and gitops-sync/.
func TestPeersPushAndReadSingleImplementation(t *testing.T) {
	oras := peers.Tool(t, "oras")
	reg := peers.StartRegistry(t)

	dir := metricsAddon(t)
	opts := metricsOptions(t, dir)
	ex, out := export(t, opts)
	l := readLayout(t, filepath.Join(out, "layout"))
	md := ex.Manifests[0]
	ourManifest := l.blob(md)
	m := l.manifest(md)

	repo := reg.Host + "/addons/metrics"
	run(t, oras, "copy", "--no-tty", "--from-oci-layout", filepath.Join(out, "addon.oci.tar")+":v0.7.2", "--to-plain-http", repo+":v0.7.2")
	run(t, oras, "copy", "--no-tty", "--from-oci-layout", filepath.Join(out, "layout")+":v0.7.2", "--to-plain-http", reg.Host+"/addons/from-layout:v0.7.2")

	for _, ref := range []string{repo + ":v0.7.2", reg.Host + "/addons/from-layout:v0.7.2"} {
		if got := run(t, oras, "manifest", "fetch", "--plain-http", ref); !bytes.Equal(got, ourManifest) {
			t.Errorf("oras manifest fetch %s:\n%s\nwant our manifest\n%s", ref, got, ourManifest)
		}
		var d ocispec.Descriptor
		strictJSON(t, run(t, oras, "manifest", "fetch", "--plain-http", "--descriptor", ref), &d)
		if d.Digest != md.Digest || d.Size != md.Size || d.MediaType != ocispec.MediaTypeImageManifest {
			t.Errorf("%s: descriptor %+v, want %s", ref, d, md.Digest)
		}
	}
	if tags := strings.Fields(string(run(t, oras, "repo", "tags", "--plain-http", repo))); len(tags) != 1 || tags[0] != "v0.7.2" {
		t.Errorf("tags %q", tags)
	}

	// Every blob arrived intact.
	for _, d := range append([]ocispec.Descriptor{m.Config}, m.Layers...) {
		got := run(t, oras, "blob", "fetch", "--plain-http", "--output", "-", repo+"@"+d.Digest.String())
		if !bytes.Equal(got, l.blob(d)) {
			t.Errorf("blob %s (%s) differs from ours", d.Digest, d.Annotations["org.opencontainers.image.title"])
		}
	}

	// The manifests layer, as Flux's layerSelector picks it, extracted by
	// GNU tar: the addon's manifests and the generated gitops-sync/.
	var layer ocispec.Descriptor
	for _, d := range m.Layers {
		if d.MediaType == "application/vnd.k2s.addon.manifests.v1.tar+gzip" {
			layer = d
		}
	}
	tgz := filepath.Join(t.TempDir(), "manifests.tar.gz")
	run(t, oras, "blob", "fetch", "--plain-http", "--output", tgz, repo+"@"+layer.Digest.String())
	x := t.TempDir()
	run(t, peers.Tool(t, "tar"), "-xzf", tgz, "-C", x)
	got := treeBytes(t, x)
	want := treeBytes(t, filepath.Join(dir, "manifests"))
	for _, f := range opts.Impls[0].Sync {
		want[f.Path] = string(f.Data)
	}
	if len(got) != len(want) {
		t.Errorf("extracted %d files, want %d: %v", len(got), len(want), slices.Sorted(maps.Keys(got)))
	}
	for name, data := range want {
		if got[name] != data {
			t.Errorf("extracted %s differs from the addon's (or is missing)", name)
		}
	}
	for _, f := range []string{"gitops-sync/kustomization.yaml", "gitops-sync/sync-job.yaml", "kustomization.yaml", "rbac/cluster-role.yaml"} {
		if _, ok := got[f]; !ok {
			t.Errorf("%s not extracted", f)
		}
	}
	fi, err := os.Stat(filepath.Join(x, "gitops-sync", "sync-job.yaml"))
	if err != nil || !fi.ModTime().Equal(buildDate) {
		t.Errorf("extracted sync-job.yaml: %v, mtime %v, want the build date", err, fi.ModTime())
	}

	// crane reads the pushed artifact; skopeo reads it from the registry,
	// the layout directory and the .oci.tar (raw: neither has to
	// understand an artifact's config).
	if got := run(t, peers.Tool(t, "crane"), "manifest", "--insecure", repo+":v0.7.2"); !bytes.Equal(got, ourManifest) {
		t.Errorf("crane manifest:\n%s", got)
	}
	if got := strings.TrimSpace(string(run(t, peers.Tool(t, "crane"), "digest", "--insecure", repo+":v0.7.2"))); got != md.Digest.String() {
		t.Errorf("crane digest %s, want %s", got, md.Digest)
	}
	skopeo := peers.Tool(t, "skopeo")
	for _, ref := range []string{
		"docker://" + repo + ":v0.7.2",
		"oci:" + filepath.Join(out, "layout") + ":v0.7.2",
		"oci-archive:" + filepath.Join(out, "addon.oci.tar") + ":v0.7.2",
	} {
		if got := run(t, skopeo, "inspect", "--raw", "--tls-verify=false", ref); !bytes.Equal(got, ourManifest) {
			t.Errorf("skopeo inspect --raw %s:\n%s", ref, got)
		}
	}
}

// A two-implementation export tags both index entries v<version>, as K2s
// does. Each implementation is pushed by digest to its own repository
// (<prefix>/<export name>, as the push step does). Resolving the shared
// tag is left to the tool: oras and skopeo each pick one of the two, and
// not the same one; the test records which.
func TestPeersTwoImplementationsShareTheTag(t *testing.T) {
	oras := peers.Tool(t, "oras")
	skopeo := peers.Tool(t, "skopeo")
	reg := peers.StartRegistry(t)

	ex, out := export(t, ingressOptions(t, ingressAddon(t)))
	l := readLayout(t, filepath.Join(out, "layout"))
	byDigest := map[string]string{}
	for _, md := range ex.Manifests {
		impl := md.Annotations["vnd.k2s.addon.implementation"]
		byDigest[md.Digest.String()] = impl
		repo := reg.Host + "/addons/" + md.Annotations["vnd.k2s.addon.export-name"]
		run(t, oras, "copy", "--no-tty", "--from-oci-layout", filepath.Join(out, "addon.oci.tar")+"@"+md.Digest.String(),
			"--to-plain-http", repo+":v1.4.0")
		if got := run(t, oras, "manifest", "fetch", "--plain-http", repo+":v1.4.0"); !bytes.Equal(got, l.blob(md)) {
			t.Errorf("%s: pushed manifest differs from ours", repo)
		}
		var m ocispec.Manifest
		if err := json.Unmarshal(run(t, oras, "manifest", "fetch", "--plain-http", repo+":v1.4.0"), &m); err != nil {
			t.Fatal(err)
		}
		if m.Annotations["vnd.k2s.addon.implementation"] != impl || m.ArtifactType != wantArtifactType {
			t.Errorf("%s: annotations %v, artifactType %s", repo, m.Annotations, m.ArtifactType)
		}
	}

	// The layout lists one tag, shared by both entries.
	if tags := strings.Fields(string(run(t, oras, "repo", "tags", "--oci-layout", filepath.Join(out, "layout")))); len(tags) != 1 || tags[0] != "v1.4.0" {
		t.Errorf("layout tags %q", tags)
	}
	var d ocispec.Descriptor
	strictJSON(t, run(t, oras, "manifest", "fetch", "--oci-layout", "--descriptor", filepath.Join(out, "layout")+":v1.4.0"), &d)
	orasPick, ok := byDigest[d.Digest.String()]
	if !ok {
		t.Fatalf("oras resolved v1.4.0 to %s, none of ours", d.Digest)
	}
	raw := run(t, skopeo, "inspect", "--raw", "oci:"+filepath.Join(out, "layout")+":v1.4.0")
	skopeoPick, ok := byDigest["sha256:"+sha256Hex(raw)]
	if !ok {
		t.Fatalf("skopeo resolved v1.4.0 to a manifest that is none of ours:\n%s", raw)
	}
	t.Logf("the shared tag v1.4.0 resolves to %s with oras and to %s with skopeo", orasPick, skopeoPick)
}
