package dist

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relcue/release/pipeline/cache"
	"github.com/relcue/release/pipeline/step"
)

func entry(t *testing.T, s *cache.Store, key byte, files map[string]string) *cache.Entry {
	t.Helper()
	e, _, err := s.Build(context.Background(), strings.Repeat(string(key), 64), cache.Info{Target: "t"}, 1,
		func(_ context.Context, out string) ([]step.Artifact, error) {
			var arts []step.Artifact
			for p, c := range files {
				os.MkdirAll(filepath.Join(out, filepath.Dir(p)), 0o755)
				os.WriteFile(filepath.Join(out, p), []byte(c), 0o644)
				arts = append(arts, step.Artifact{Path: p, Kind: "package"})
			}
			return arts, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Release)
	return e
}

func TestPublish(t *testing.T) {
	s, _ := cache.Open(t.TempDir())
	a := entry(t, s, 'a', map[string]string{"packages/p-1.zip": "one"})
	b := entry(t, s, 'b', map[string]string{"packages/p-2.zip": "two"})
	dir := filepath.Join(t.TempDir(), "dist")
	res, err := Publish(context.Background(), dir, []Item{{"package/2", b}, {"package/1", a}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	arts := res.Artifacts
	if len(arts) != 2 || arts[0].Path != "packages/p-1.zip" || arts[0].Target != "package/1" {
		t.Fatalf("artifacts %+v", arts)
	}
	var listed []Artifact
	raw, _ := os.ReadFile(filepath.Join(dir, "artifacts.json"))
	if err := json.Unmarshal(raw, &listed); err != nil || len(listed) != 2 || listed[1].SHA256 != arts[1].SHA256 {
		t.Fatalf("artifacts.json: %v\n%s", err, raw)
	}
	sums, _ := os.ReadFile(filepath.Join(dir, "SHA256SUMS"))
	if !strings.HasPrefix(string(sums), arts[0].SHA256+"  packages/p-1.zip\n") {
		t.Fatalf("SHA256SUMS:\n%s", sums)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "packages/p-2.zip")); string(got) != "two" {
		t.Fatalf("content %q", got)
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "packages"))
	if len(ents) != 2 {
		t.Fatalf("temp files left: %v", ents)
	}
}

func TestPublishRejectsClashAndTampering(t *testing.T) {
	s, _ := cache.Open(t.TempDir())
	a := entry(t, s, 'a', map[string]string{"x.zip": "one"})
	b := entry(t, s, 'b', map[string]string{"x.zip": "two"})
	dir := filepath.Join(t.TempDir(), "dist")
	if _, err := Publish(context.Background(), dir, []Item{{"node/debian12/1", a}, {"node/debian13/1", b}}, Options{}); err == nil ||
		!strings.Contains(err.Error(), "targets node/debian12/1 and node/debian13/1 both produce x.zip") {
		t.Fatalf("clash: %v", err)
	}
	os.WriteFile(filepath.Join(a.Dir, "x.zip"), []byte("evil"), 0o644)
	if _, err := Publish(context.Background(), dir, []Item{{"t", a}}, Options{}); err == nil || !strings.Contains(err.Error(), "cached copy changed") {
		t.Fatalf("tampered: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "artifacts.json")); err == nil {
		t.Fatal("artifacts.json written after a failed publish")
	}
	if _, err := os.Stat(filepath.Join(dir, "x.zip")); err == nil {
		t.Fatal("tampered artifact published")
	}
}
