package image

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/relcue/release/pipeline/step"
)

var buildDate = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)

type tfile struct {
	data string
	mode fs.FileMode
}

func writeTree(t testing.TB, root string, files map[string]tfile) string {
	t.Helper()
	for name, f := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := f.mode
		if mode == 0 {
			mode = 0o644
		}
		if err := os.WriteFile(p, []byte(f.data), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // umask-proof
			t.Fatal(err)
		}
	}
	return root
}

func writeFile(t testing.TB, p, data string, mode fs.FileMode) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// newSpec is a spec for ref with the fixed date and its output path.
func newSpec(ref string, platforms ...string) Spec {
	if len(platforms) == 0 {
		platforms = []string{DefaultPlatform}
	}
	return Spec{Ref: ref, Output: OutputPath("debian12", ref), Date: buildDate.Format(time.RFC3339), Platforms: platforms}
}

// recorder is a step.Progress that checks the total covers what was added.
type recorder struct {
	mu           sync.Mutex
	total, added int64
}

func (r *recorder) SetTotal(n int64) { r.mu.Lock(); r.total = n; r.mu.Unlock() }
func (r *recorder) Add(n int64)      { r.mu.Lock(); r.added += n; r.mu.Unlock() }

// runStep runs the step into a fresh directory and returns the archive's
// path. It checks that the step leaves exactly its artifact behind.
func runStep(t testing.TB, spec Spec, sources map[string]string) (string, error) {
	t.Helper()
	raw, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	var log bytes.Buffer
	out := t.TempDir()
	in := &step.Input{
		Target: "image/test", Spec: raw, Sources: sources, OutDir: out,
		Workers: 2, Progress: rec, Log: &log,
	}
	arts, err := Step{}.Run(context.Background(), in)
	left := listFiles(t, out)
	if err != nil {
		if len(left) != 0 {
			t.Errorf("failed run left %v behind", left)
		}
		return "", err
	}
	if len(arts) != 1 || arts[0].Path != spec.Output || arts[0].Kind != ArtifactKind {
		t.Fatalf("artifacts %+v, want one %s at %s", arts, ArtifactKind, spec.Output)
	}
	if len(left) != 1 || left[0] != spec.Output {
		t.Fatalf("the step left %v in its output directory, want only %s", left, spec.Output)
	}
	if rec.total == 0 || rec.total != rec.added {
		t.Errorf("progress: total %d, added %d", rec.total, rec.added)
	}
	if !strings.Contains(log.String(), spec.Ref) {
		t.Errorf("log %q does not name the image", log.String())
	}
	return filepath.Join(out, filepath.FromSlash(spec.Output)), nil
}

func mustRun(t testing.TB, spec Spec, sources map[string]string) string {
	t.Helper()
	p, err := runStep(t, spec, sources)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func listFiles(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(root, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// tool finds a real peer; tests fail rather than skip without it.
func tool(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found: install %s (.ci/run does)", name, pkg)
	}
	return p
}

func skopeo(t testing.TB, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(tool(t, "skopeo", "skopeo"), args...)
	// No registries.conf, policy or auth of the machine matter for local
	// archives; an empty home keeps them out anyway.
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("skopeo %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// skopeoCopy copies between transports with the default signature policy
// replaced by one that accepts local unsigned images.
func skopeoCopy(t testing.TB, args ...string) {
	t.Helper()
	policy := writeFile(t, filepath.Join(t.TempDir(), "policy.json"), `{"default":[{"type":"insecureAcceptAnything"}]}`, 0o644)
	skopeo(t, append([]string{"--policy", policy, "copy", "--quiet"}, args...)...)
}

// extract unpacks a tar into a new directory (a layout directory, for an
// OCI archive).
func extract(t testing.TB, tarPath string) string {
	t.Helper()
	dir := t.TempDir()
	f, err := os.Open(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return dir
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.FromSlash(h.Name))
		if h.Typeflag == tar.TypeDir {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

type tarEntry struct {
	hdr  *tar.Header
	data string
}

// readTar lists a tar's entries in order.
func readTar(t testing.TB, r io.Reader) []tarEntry {
	t.Helper()
	var out []tarEntry
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tarEntry{h, string(b)})
	}
}

func readTarFile(t testing.TB, p string) []tarEntry {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return readTar(t, f)
}

// layoutBlob reads a blob of a layout directory.
func layoutBlob(t testing.TB, dir string, h v1.Hash) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "blobs", h.Algorithm, h.Hex))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readJSON(t testing.TB, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
}

func wantErr(t testing.TB, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not contain %q", err, p)
		}
	}
}

// layoutImage is the image of a layout directory's only index.json entry.
func layoutImage(t testing.TB, dir string) v1.Image {
	t.Helper()
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil || len(im.Manifests) != 1 {
		t.Fatalf("%s: index %+v %v", dir, im, err)
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	return img
}
