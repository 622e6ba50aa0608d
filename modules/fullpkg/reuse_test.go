package fullpkg

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relcue/release/pipeline/step"
)

// A package that copies unchanged entries from the previous package is
// byte-identical to one compressed from scratch, whatever the workers.
func TestReuseGivesTheSameBytes(t *testing.T) {
	dir := t.TempDir()
	mk := func(v string, files map[string]string) string {
		root := filepath.Join(dir, v)
		for p, c := range files {
			full := filepath.Join(root, filepath.FromSlash(p))
			os.MkdirAll(filepath.Dir(full), 0o755)
			os.WriteFile(full, []byte(c), 0o644)
		}
		return root
	}
	big := bytes.Repeat([]byte("kubelet containerd flannel 0123456789 "), 200000)
	shared := map[string]string{"bin/kubelet.exe": string(big), "lib/a.ps1": "Write-Host a\n", "empty": ""}
	a := mk("a", mergeMaps(shared, map[string]string{"VERSION": "1.0.0", "only-a.txt": "a"}))
	b := mk("b", mergeMaps(shared, map[string]string{"VERSION": "1.1.0", "lib/b.ps1": "b\n", "moved/kubelet.exe": string(big)}))
	os.Chmod(filepath.Join(b, "bin", "kubelet.exe"), 0o755) // mode change: not reused

	var log strings.Builder
	run := func(version, src string, reuse string, deps map[string]step.Result, workers int) (string, []step.Artifact) {
		t.Helper()
		log.Reset()
		spec := Spec{Product: "k2s", Version: version, Output: OutputPath("k2s", version), Date: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Format(time.RFC3339),
			Level: 6, Layers: []Layer{{Source: "layer0"}}, Reuse: reuse}
		raw, _ := json.Marshal(spec)
		out := t.TempDir()
		arts, err := Step{}.Run(context.Background(), &step.Input{Target: TargetID(version), Spec: raw, Sources: map[string]string{"layer0": src}, SourceDigests: planned(map[string]string{"layer0": src}),
			Deps: deps, OutDir: out, Workers: workers, Progress: step.Discard, Log: &log})
		if err != nil {
			t.Fatal(err)
		}
		return out, arts
	}
	aDir, aArts := run("1.0.0", a, "", nil, 2)
	deps := map[string]step.Result{TargetID("1.0.0"): {Dir: aDir, Artifacts: aArts}}
	fresh, _ := run("1.1.0", b, "", nil, 1)
	for _, w := range []int{1, 8} {
		reused, _ := run("1.1.0", b, TargetID("1.0.0"), deps, w)
		x, _ := os.ReadFile(filepath.Join(fresh, "packages", "k2s-1.1.0.zip"))
		y, _ := os.ReadFile(filepath.Join(reused, "packages", "k2s-1.1.0.zip"))
		if !bytes.Equal(x, y) {
			t.Fatalf("-j %d: the package built with reuse differs from the one built from scratch", w)
		}
		// moved/kubelet.exe and the two unchanged files are copied;
		// bin/kubelet.exe changed mode, lib/b.ps1 and VERSION are new.
		if want := "copied 3 of 6 files"; !strings.Contains(log.String(), want) {
			t.Fatalf("-j %d: log %q, want %q", w, log.String(), want)
		}
	}
}

func mergeMaps(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}
