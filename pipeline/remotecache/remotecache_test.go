package remotecache

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/relcue/release/internal/peers"
	"github.com/relcue/release/pipeline/cache"
	"github.com/relcue/release/pipeline/step"
)

const key = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

var info = cache.Info{Target: "package/1.0.0", Kind: "fullpkg", StepVersion: "1"}

type warnings struct {
	mu    sync.Mutex
	lines []string
}

func (w *warnings) add(format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lines = append(w.lines, fmt.Sprintf(format, args...))
}

func (w *warnings) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.lines, "\n")
}

// localEntry builds an entry with two files in a fresh store.
func localEntry(t *testing.T) (*cache.Store, *cache.Entry) {
	t.Helper()
	s, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e, _, err := s.Build(context.Background(), key, info, 2, func(_ context.Context, out string) ([]step.Artifact, error) {
		os.MkdirAll(filepath.Join(out, "packages"), 0o755)
		os.WriteFile(filepath.Join(out, "packages", "k2s-1.0.0.zip"), []byte(strings.Repeat("zip bytes ", 10000)), 0o644)
		os.WriteFile(filepath.Join(out, "notes.txt"), []byte("notes\n"), 0o644)
		return []step.Artifact{{Path: "notes.txt", Kind: "notes"}, {Path: "packages/k2s-1.0.0.zip", Kind: "package"}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Release)
	return s, e
}

// pull fetches key into a fresh store the way the scheduler does: inside
// the store's Build, so that a refused entry leaves nothing.
func pull(t *testing.T, r *Remote, i cache.Info) (*cache.Entry, error) {
	t.Helper()
	s, err := cache.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e, _, err := s.Build(context.Background(), key, i, 2, func(ctx context.Context, out string) ([]step.Artifact, error) {
		return r.Fetch(ctx, key, i, out)
	})
	if err != nil {
		if s.Has(key) {
			t.Error("a refused entry was stored")
		}
		return nil, err
	}
	t.Cleanup(e.Release)
	return e, nil
}

func TestPushThenPullVerified(t *testing.T) {
	reg := peers.StartRegistry(t)
	proxy := reg.CountingProxy(t)
	var w warnings
	r, err := New(Ref{Host: proxy.Host, Repository: "release/cache"}, Options{PlainHTTP: true, Pull: true, Push: true, Warn: w.add})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pull(t, r, info); !errors.Is(err, ErrMiss) {
		t.Fatalf("empty registry: %v", err)
	}
	_, e := localEntry(t)
	r.Push(context.Background(), e)
	if r.Stats().Pushed != 1 || w.String() != "" {
		t.Fatalf("push: %+v %s", r.Stats(), w.String())
	}
	uploads := proxy.Uploads()
	r.Push(context.Background(), e)
	if got := proxy.Uploads() - uploads; got != 0 {
		t.Errorf("the second push uploaded %d blobs", got)
	}
	got, err := pull(t, r, info)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range got.Meta.Files {
		if f != e.Meta.Files[i] {
			t.Errorf("file %d: %+v, pushed %+v", i, f, e.Meta.Files[i])
		}
		a, _ := os.ReadFile(filepath.Join(got.Dir, f.Path))
		b, _ := os.ReadFile(filepath.Join(e.Dir, f.Path))
		if string(a) != string(b) {
			t.Errorf("%s differs", f.Path)
		}
	}
	if r.Stats().Pulled != 1 {
		t.Errorf("stats %+v", r.Stats())
	}

	// An entry is only served for the key, target, kind and step version
	// it was made for.
	other := info
	other.StepVersion = "2"
	if _, err := pull(t, r, other); err == nil || !strings.Contains(err.Error(), "not package/1.0.0 (fullpkg, step 2") {
		t.Errorf("step version mismatch: %v", err)
	}
}

// A blob changed in the registry's storage is caught while it streams,
// and nothing is stored.
func TestTamperedEntryRefused(t *testing.T) {
	reg := peers.StartRegistry(t)
	var w warnings
	r, _ := New(Ref{Host: reg.Host, Repository: "release/cache"}, Options{PlainHTTP: true, Pull: true, Push: true, Warn: w.add})
	_, e := localEntry(t)
	r.Push(context.Background(), e)
	var zip cache.FileMeta
	for _, f := range e.Meta.Files {
		if f.Kind == "package" {
			zip = f
		}
	}
	blob := filepath.Join(reg.Dir, "docker", "registry", "v2", "blobs", "sha256", zip.SHA256[:2], zip.SHA256, "data")
	data, err := os.ReadFile(blob)
	if err != nil {
		t.Fatal(err)
	}
	data[10] ^= 0xff
	if err := os.WriteFile(blob, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := pull(t, r, info); err == nil || !strings.Contains(err.Error(), "packages/k2s-1.0.0.zip") {
		t.Fatalf("tampered blob: %v", err)
	}
	if r.Stats().Rejected != 1 || !strings.Contains(w.String(), "refused") {
		t.Errorf("stats %+v, warnings %s", r.Stats(), w.String())
	}
}

// A registry that is down costs one warning; nothing fails.
func TestRegistryDown(t *testing.T) {
	reg := peers.StartRegistry(t)
	host := reg.Host
	reg.Stop()
	var w warnings
	r, _ := New(Ref{Host: host, Repository: "release/cache"}, Options{PlainHTTP: true, Pull: true, Push: true, Warn: w.add})
	if _, err := pull(t, r, info); !errors.Is(err, ErrMiss) {
		t.Fatalf("down registry: %v", err)
	}
	_, e := localEntry(t)
	r.Push(context.Background(), e)
	if _, err := pull(t, r, info); !errors.Is(err, ErrMiss) {
		t.Fatal(err)
	}
	if n := strings.Count(w.String(), "unreachable"); n != 1 {
		t.Errorf("%d unreachable warnings:\n%s", n, w.String())
	}
}

func TestParseRef(t *testing.T) {
	for in, want := range map[string]string{
		"oci://127.0.0.1:5000/cache": "oci://127.0.0.1:5000/cache",
		"ghcr.io/acme/release-cache": "oci://ghcr.io/acme/release-cache",
		"oci://ghcr.io/acme/cache/":  "oci://ghcr.io/acme/cache",
		"https://ghcr.io/acme/cache": "",
		"oci://ghcr.io":              "",
		"oci://ghcr.io/Upper/Case":   "",
	} {
		r, err := ParseRef(in)
		switch {
		case want == "" && err == nil:
			t.Errorf("%s: accepted as %s", in, r)
		case want != "" && (err != nil || r.String() != want):
			t.Errorf("%s: %v %v, want %s", in, r, err, want)
		}
	}
}
