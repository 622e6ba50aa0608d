package all

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relcue/release/pipeline"
)

// FIRST-USE 3: an input directory holding dist/ or the cache would make
// every build package the previous one's output. It is refused when the
// plan is made, naming the input's position, before anything is hashed.
func TestOutputsInsideInputsRefused(t *testing.T) {
	cfg := t.TempDir()
	write := func(rel, content string) { writeFile(t, filepath.Join(cfg, filepath.FromSlash(rel)), content) }
	write("payload/bin/a.exe", "a")
	write("other/b.txt", "b")
	ctx := context.Background()
	open := func(input, cache string) error {
		write("release.cue", "package release\nproduct: {name: \"dot\", vendor: \"x\"}\nbuild: date: \"2025-06-01T00:00:00Z\"\nreleases: \"1.0.0\": inputs: [{dir: \""+input+"\"}]\n")
		_, err := pipeline.Open(ctx, Modules(Keys{}), pipeline.Options{Dir: cfg, CacheDir: cache})
		return err
	}
	err := open(".", t.TempDir())
	if !pipeline.IsConfigError(err) || !strings.Contains(err.Error(), "release.cue:4:") ||
		!strings.Contains(err.Error(), "contains the output directory (build.dist, --dist) "+filepath.Join(cfg, "dist")) {
		t.Errorf("dist/ inside input \".\": %v", err)
	}
	err = open("payload", filepath.Join(cfg, "payload", ".cache"))
	if !pipeline.IsConfigError(err) || !strings.Contains(err.Error(), "contains the cache") {
		t.Errorf("cache inside an input: %v", err)
	}

	// --dist given to the build only.
	write("release.cue", "package release\nproduct: {name: \"dot\", vendor: \"x\"}\nbuild: date: \"2025-06-01T00:00:00Z\"\nreleases: \"1.0.0\": inputs: [{dir: \"payload\"}]\n")
	s, err := pipeline.Open(ctx, Modules(Keys{}), pipeline.Options{Dir: cfg, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Build(ctx, pipeline.BuildOptions{Dist: filepath.Join(cfg, "payload", "out")})
	if !pipeline.IsConfigError(err) || !strings.Contains(err.Error(), "release.cue:4:") || !strings.Contains(err.Error(), "contains the output directory (--dist)") {
		t.Errorf("--dist inside an input: %v", err)
	}
	if _, err := s.Build(ctx, pipeline.BuildOptions{Dist: filepath.Join(cfg, "out")}); err != nil {
		t.Errorf("--dist beside the input: %v", err)
	}
}
