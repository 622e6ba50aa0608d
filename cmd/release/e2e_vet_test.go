package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// vetConfig writes a configuration with one release assembled from a
// directory p (bin/x.exe) and the file input given, and returns the
// directory.
func vetConfig(t *testing.T, fileInput string) string {
	t.Helper()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "p", "bin"), 0o755)
	os.WriteFile(filepath.Join(dir, "p", "bin", "x.exe"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(dir, "tool.sh"), []byte("echo tool\n"), 0o755)
	cfg := `package release

product: name: "min"
build: date: "2025-06-01T00:00:00Z"
releases: "1.5.0": inputs: [
	{dir: "p"},
	` + fileInput + `,
]
`
	if err := os.WriteFile(filepath.Join(dir, "release.cue"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// vet, plan and build each refuse the configuration with exit 2 and an
// error containing every want.
func refusedByAll(t *testing.T, dir string, want ...string) {
	t.Helper()
	cache := filepath.Join(t.TempDir(), "cache")
	for _, cmd := range []string{"vet", "plan", "build"} {
		r := releaseCmd(t, nil, cmd, "-C", dir, "--cache", cache)
		if r.code != 2 {
			t.Errorf("%s: exit %d, want 2\n%s", cmd, r.code, r.stderr)
		}
		for _, w := range want {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("%s: stderr lacks %q:\n%s", cmd, w, r.stderr)
			}
		}
	}
	assertNoDist(t, dir)
}

// FIRST-USE 4: vet passed a wrong sha256 on a local file, and a path given
// by two inputs, which build then refused with exit 1 (and, for the path,
// no position and internal input names).
func TestVetRefusesWhatBuildWould(t *testing.T) {
	t.Run("wrong sha256", func(t *testing.T) {
		dir := vetConfig(t, `{file: {path: "tool.sh", sha256: "`+strings.Repeat("b", 64)+`"}, dest: "bin/tool.sh"}`)
		refusedByAll(t, dir, "release.cue:7:", "sha256 mismatch for "+filepath.Join(dir, "tool.sh"),
			"content is "+sha256Hex([]byte("echo tool\n")), "update its sha256")
	})
	t.Run("same path twice", func(t *testing.T) {
		dir := vetConfig(t, `{file: {path: "tool.sh", sha256: "`+sha256Hex([]byte("echo tool\n"))+`"}, dest: "bin/x.exe"}`)
		cfg := filepath.Join(dir, "release.cue")
		refusedByAll(t, dir, `"bin/x.exe" (inputs[0] at `+cfg+`:6:2: `, `"bin/x.exe" (inputs[1] at `+cfg+`:7:`, "the same path twice")
	})
	t.Run("wrong sha256 of a zip", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "old.zip"), []byte("not checked for being a zip"), 0o644)
		cfg := "package release\nproduct: name: \"min\"\nbuild: date: \"2025-06-01T00:00:00Z\"\n" +
			`releases: "1.0.0": zip: {path: "old.zip", sha256: "` + strings.Repeat("0", 64) + `"}` + "\n"
		os.WriteFile(filepath.Join(dir, "release.cue"), []byte(cfg), 0o644)
		refusedByAll(t, dir, "release.cue:4:", "sha256 mismatch for "+filepath.Join(dir, "old.zip"), "update its sha256")
	})
}

// RELIABILITY D9-D11: the limits on loading, set by flag or environment.
func TestConfigLimits(t *testing.T) {
	var b strings.Builder
	b.WriteString("package release\n_junk: [")
	for i := range 20000 {
		fmt.Fprintf(&b, "%d,\n", 1000000+i)
	}
	b.WriteString("]\n")
	dir := vetConfig(t, `{file: path: "tool.sh", dest: "bin/tool.sh"}`)
	cache := filepath.Join(t.TempDir(), "cache")
	mustRun(t, "vet", "-C", dir, "--cache", cache)
	os.WriteFile(filepath.Join(dir, "big.cue"), []byte(b.String()), 0o644)
	for _, tc := range []struct {
		env  []string
		args []string
		code int
		want string
	}{
		{nil, []string{"--cue-timeout", "50ms"}, 2, "took longer than 50ms"},
		{[]string{"RELEASE_CUE_TIMEOUT=50ms"}, nil, 2, "took longer than 50ms"},
		{[]string{"RELEASE_CUE_TIMEOUT=soon"}, nil, 2, `$RELEASE_CUE_TIMEOUT "soon": want a positive duration`},
		{nil, []string{"--max-config-bytes", "64KiB"}, 2, "more than the limit of 64KiB (--max-config-bytes"},
		{[]string{"RELEASE_MAX_CONFIG_BYTES=64KiB"}, []string{"--max-config-bytes", "1MiB", "--cue-timeout", "50ms"}, 2, "took longer than 50ms"},
		{nil, []string{"--max-delta-paths", "0"}, 2, `--max-delta-paths "0": want a positive whole number`},
	} {
		r := releaseCmd(t, tc.env, append([]string{"vet", "-C", dir, "--cache", cache}, tc.args...)...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("vet %v with %v: exit %d, want %d and %q:\n%s", tc.args, tc.env, r.code, tc.code, tc.want, r.stderr)
		}
	}

	os.Remove(filepath.Join(dir, "big.cue"))
	os.WriteFile(filepath.Join(dir, "deltas.cue"), []byte(`package release
releases: "1.6.0": inputs: [{dir: "p"}]
releases: "1.7.0": inputs: [{dir: "p"}]
deltas: policies: [{from: "all-earlier", to: "newest"}]
`), 0o644)
	r := releaseCmd(t, []string{"RELEASE_MAX_DELTA_PATHS=1"}, "vet", "-C", dir, "--cache", cache)
	if r.code != 2 || !strings.Contains(r.stderr, "deltas.cue:4:20: deltas.policies[0]: ") || !strings.Contains(r.stderr, "makes 2 delta paths, more than the limit of 1") {
		t.Errorf("delta limit: exit %d\n%s", r.code, r.stderr)
	}
	mustRun(t, "vet", "-C", dir, "--cache", cache, "--max-delta-paths", "2")
}

// vet --help says what it checks and what it leaves to build.
func TestVetHelpNamesWhatItDoesNotCheck(t *testing.T) {
	r := mustRun(t, "vet", "--help")
	for _, want := range []string{"Downloads (url:) are not fetched", "declared sha256 must\nmatch", "--cue-timeout"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("vet --help lacks %q:\n%s", want, r.stdout)
		}
	}
}
