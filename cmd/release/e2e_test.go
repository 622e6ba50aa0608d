package main

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relcue/release/internal/winetest"
	"github.com/relcue/release/modules/delta"
)

// binPath is the release binary built once for the end-to-end tests.
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "release-e2e-")
	if err != nil {
		panic(err)
	}
	binPath = filepath.Join(dir, "release")
	if runtime.GOOS == "windows" {
		binPath += ".exe"
	}
	build := exec.Command("go", "build", "-o", binPath, ".")
	// Static, as the dagger engine's step image needs it.
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		panic("building release: " + err.Error())
	}
	code := m.Run()
	// The Wine tests' prefix, if they made one: no Wine process may
	// outlive the tests.
	if err := winetest.Shutdown(); err != nil {
		fmt.Fprintln(os.Stderr, "shutting Wine down:", err)
		code = 1
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	stdout, stderr string
	code           int
}

func releaseCmd(t *testing.T, env []string, args ...string) result {
	t.Helper()
	// A hang (a lock never released, say) must fail the test, not stall CI.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Env = append(os.Environ(), "CI=true")
	cmd.Env = append(cmd.Env, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("release %s: still running after 2 minutes\nstderr:\n%s", strings.Join(args, " "), errb.String())
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{out.String(), errb.String(), code}
}

func mustRun(t *testing.T, args ...string) result {
	t.Helper()
	r := releaseCmd(t, nil, args...)
	if r.code != 0 {
		t.Fatalf("release %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// copySample copies fixtures/sample into a temp dir so dist/ lands there.
func copySample(t *testing.T) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "sample")
	src := filepath.Join("..", "..", "fixtures", "sample")
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if rel == "dist" || strings.HasPrefix(rel, "dist"+string(filepath.Separator)) {
			return fs.SkipDir
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, info.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

type planJSON struct {
	Targets []struct {
		ID     string   `json:"id"`
		Kind   string   `json:"kind"`
		Deps   []string `json:"deps"`
		Key    string   `json:"key"`
		Cached bool     `json:"cached"`
		Effect bool     `json:"effect"`
	} `json:"targets"`
}

func runPlan(t *testing.T, dir, cache string) planJSON {
	t.Helper()
	r := mustRun(t, "plan", "-C", dir, "--cache", cache, "--format", "json")
	var p planJSON
	if err := json.Unmarshal([]byte(r.stdout), &p); err != nil {
		t.Fatalf("plan json: %v\n%s", err, r.stdout)
	}
	return p
}

type buildJSON struct {
	Targets []struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	} `json:"targets"`
	Artifacts []struct {
		Target, Kind, Path, SHA256 string
		Size                       int64
	} `json:"artifacts"`
}

func runBuild(t *testing.T, dir, cache string, extra ...string) buildJSON {
	t.Helper()
	r := mustRun(t, append([]string{"build", "-C", dir, "--cache", cache, "--format", "json"}, extra...)...)
	var b buildJSON
	if err := json.Unmarshal([]byte(r.stdout), &b); err != nil {
		t.Fatalf("build json: %v\n%s", err, r.stdout)
	}
	return b
}

func statuses(b buildJSON) map[string]string {
	m := map[string]string{}
	for _, t := range b.Targets {
		m[t.ID] = t.Status
	}
	return m
}

// sampleTargets are the sample's targets besides its 16 debs and 8 images.
var sampleTargets = []string{"package/1.4.0", "package/1.4.1", "package/1.5.0", "delta/1.4.0..1.5.0", "delta/1.4.1..1.5.0",
	"node/debian12/1.4.0", "node/debian12/1.4.1", "node/debian12/1.5.0", "node/debian13/1.4.1", "node/debian13/1.5.0",
	"node-delta/debian12/1.4.0..1.5.0", "node-delta/debian12/1.4.1..1.5.0", "node-delta/debian13/1.4.1..1.5.0",
	"addon/ingress/1.4.0", "addon/metrics/0.7.2", "plans/1.4.0", "plans/1.4.1", "plans/1.5.0",
}

// attested are the sample's targets with an SBOM and a provenance
// statement: every package, node package and addon.
var attested = []string{"package/1.4.0", "package/1.4.1", "package/1.5.0",
	"node/debian12/1.4.0", "node/debian12/1.4.1", "node/debian12/1.5.0", "node/debian13/1.4.1", "node/debian13/1.5.0",
	"addon/ingress/1.4.0", "addon/metrics/0.7.2"}

func init() {
	for _, a := range attested {
		sampleTargets = append(sampleTargets, "sbom/"+a, "provenance/"+a)
	}
}

// sampleTotal counts every target of the sample.
const sampleTotal = 65

func TestSamplePlanBuildCacheReproducible(t *testing.T) {
	dir := copySample(t)
	cache := filepath.Join(t.TempDir(), "cache")

	p := runPlan(t, dir, cache)
	var ids []string
	kinds := map[string]int{}
	for _, tg := range p.Targets {
		kinds[tg.Kind]++
		if tg.Kind != "deb" && tg.Kind != "image" && tg.Kind != "push-addon" {
			ids = append(ids, tg.ID)
		}
		if tg.Cached {
			t.Errorf("%s cached in an empty cache", tg.ID)
		}
	}
	if strings.Join(sorted(ids), ",") != strings.Join(sorted(sampleTargets), ",") {
		t.Fatalf("plan targets %v, want %v", ids, sampleTargets)
	}
	if kinds["deb"] != 16 || kinds["image"] != 11 {
		t.Fatalf("planned %d debs and %d images, want 16 and 11", kinds["deb"], kinds["image"])
	}
	text := mustRun(t, "plan", "-C", dir, "--cache", cache).stdout
	if !strings.Contains(text, "67 targets: 0 cached, 65 to build, 2 with effects") {
		t.Fatalf("text plan:\n%s", text)
	}

	b1 := runBuild(t, dir, cache)
	for id, s := range statuses(b1) {
		if s != "built" {
			t.Errorf("first build: %s %s", id, s)
		}
	}
	// One artifact per target, except addon exports (the archive, the
	// Flux resources and every file of the OCI layout) and plans (a file
	// per policy, and per delta into the release).
	perTarget := map[string]int{}
	for _, a := range b1.Artifacts {
		perTarget[a.Target]++
	}
	wantPlans := map[string]int{"plans/1.4.0": 1, "plans/1.4.1": 1, "plans/1.5.0": 4}
	for _, tg := range b1.Targets {
		want := 1
		if n, ok := wantPlans[tg.ID]; ok {
			want = n
		}
		if strings.HasPrefix(tg.ID, "addon/") {
			want = perTarget[tg.ID] // checked below
			if want < 5 {
				t.Errorf("%s published %d artifacts; want the .oci.tar, the Flux resources and the layout", tg.ID, want)
			}
		}
		if perTarget[tg.ID] != want {
			t.Errorf("%s published %d artifacts, want %d", tg.ID, perTarget[tg.ID], want)
		}
	}
	if len(perTarget) != sampleTotal {
		t.Fatalf("artifacts of %d targets, want %d: %+v", len(perTarget), sampleTotal, b1.Artifacts)
	}
	dist := filepath.Join(dir, "dist")
	first := readFile(t, filepath.Join(dist, "artifacts.json"))
	checkSums(t, dist)

	for _, tg := range runPlan(t, dir, cache).Targets {
		if !tg.Cached && !tg.Effect {
			t.Errorf("%s not cached after build", tg.ID)
		}
	}
	b2 := runBuild(t, dir, cache)
	for id, s := range statuses(b2) {
		if s != "cached" {
			t.Errorf("second build: %s %s, want cached", id, s)
		}
	}
	if second := readFile(t, filepath.Join(dist, "artifacts.json")); !bytes.Equal(first, second) {
		t.Fatalf("artifacts.json differs between builds:\n%s\n%s", first, second)
	}

	// A fresh cache in another directory: the same bytes, built again.
	dir2 := copySample(t)
	runBuild(t, dir2, filepath.Join(t.TempDir(), "cache2"), "-j", "1")
	if other := readFile(t, filepath.Join(dir2, "dist", "artifacts.json")); !bytes.Equal(first, other) {
		t.Fatalf("artifacts.json differs between caches and -j:\n%s\n%s", first, other)
	}

	// Every artifact verifies.
	var zips []string
	filepath.WalkDir(dist, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".zip") {
			zips = append(zips, p)
		}
		return nil
	})
	mustRun(t, append([]string{"verify"}, zips...)...)
}

func TestAddingOneDeltaPathBuildsOnlyIt(t *testing.T) {
	dir := copySample(t)
	cache := filepath.Join(t.TempDir(), "cache")
	runBuild(t, dir, cache)
	cfg := filepath.Join(dir, "release.cue")
	src := string(readFile(t, cfg))
	src = strings.Replace(src, `paths: [{from: "1.4.0", to: "1.5.0"}]`, `paths: [{from: "1.4.0", to: "1.5.0"}, {from: "1.4.0", to: "1.4.1"}]`, 1)
	if err := os.WriteFile(cfg, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	var toBuild []string
	for _, tg := range runPlan(t, dir, cache).Targets {
		if !tg.Cached && !tg.Effect {
			toBuild = append(toBuild, tg.ID)
		}
	}
	// The new path, the node delta it brings for the control-plane OS,
	// and the plans of 1.4.1, which gain the upgrade from 1.4.0 through it;
	// and the provenance statements, which name the edited release.cue's
	// digest (the SBOMs, which read the artifacts, stay cached).
	var provenance []string
	for _, a := range attested {
		provenance = append(provenance, "provenance/"+a)
	}
	want := sorted(append([]string{"delta/1.4.0..1.4.1", "node-delta/debian12/1.4.0..1.4.1", "plans/1.4.1"}, provenance...))
	if strings.Join(sorted(toBuild), " ") != strings.Join(want, " ") {
		t.Fatalf("to build: %v, want only %v", toBuild, want)
	}
	b := runBuild(t, dir, cache)
	for id, s := range statuses(b) {
		want := "cached"
		if id == "delta/1.4.0..1.4.1" || id == "node-delta/debian12/1.4.0..1.4.1" || id == "plans/1.4.1" || strings.HasPrefix(id, "provenance/") {
			want = "built"
		}
		if s != want {
			t.Errorf("%s: %s, want %s", id, s, want)
		}
	}
}

func TestTargetSelectionPublishesOnlySelected(t *testing.T) {
	dir := copySample(t)
	cache := filepath.Join(t.TempDir(), "cache")
	b := runBuild(t, dir, cache, "--target", "delta/1.4.1..1.5.0")
	st := statuses(b)
	// package/1.4.0 comes along: package/1.4.1 copies its unchanged
	// entries from it (build.reuse).
	if len(st) != 3+1+2+13 || st["package/1.4.0"] != "built" || st["delta/1.4.0..1.5.0"] != "" || st["node/debian13/1.5.0"] != "" {
		t.Fatalf("built %v; want the delta, its two packages and the one they reuse, the two debian12 node packages and their 13 debs and images only", st)
	}
	if len(b.Artifacts) != 1 || b.Artifacts[0].Kind != "delta" {
		t.Fatalf("published %+v; want only the delta", b.Artifacts)
	}
	r := releaseCmd(t, nil, "build", "-C", dir, "--cache", cache, "--target", "nope/*")
	if r.code != 2 || !strings.Contains(r.stderr, `"nope/*" matches no target`) {
		t.Fatalf("unknown target: exit %d, %s", r.code, r.stderr)
	}
}

func TestConcurrentBuildsShareOneCache(t *testing.T) {
	cache := filepath.Join(t.TempDir(), "cache")
	dirs := []string{copySample(t), copySample(t)}
	var wg sync.WaitGroup
	results := make([]result, 2)
	for i := range dirs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = releaseCmd(t, nil, "build", "-C", dirs[i], "--cache", cache, "--format", "json")
		}()
	}
	wg.Wait()
	for i, r := range results {
		if r.code != 0 {
			t.Fatalf("build %d: exit %d\n%s", i, r.code, r.stderr)
		}
	}
	a := readFile(t, filepath.Join(dirs[0], "dist", "artifacts.json"))
	b := readFile(t, filepath.Join(dirs[1], "dist", "artifacts.json"))
	if !bytes.Equal(a, b) {
		t.Fatal("concurrent builds disagree")
	}
	var total int
	for _, r := range results {
		var bj buildJSON
		json.Unmarshal([]byte(r.stdout), &bj)
		for _, s := range statuses(bj) {
			if s == "built" {
				total++
			}
		}
	}
	if total != sampleTotal {
		t.Fatalf("%d targets built across two concurrent builds; each of the %d must be built once", total, sampleTotal)
	}
}

func TestApplyDeltaThroughCLI(t *testing.T) {
	dir := copySample(t)
	cache := filepath.Join(t.TempDir(), "cache")
	runBuild(t, dir, cache)
	dist := filepath.Join(dir, "dist")
	install := installed(t, filepath.Join(dist, "packages/k2s-1.4.0.zip"), "k2s")
	want := appliedWant(t, filepath.Join(dist, "packages/k2s-1.4.0.zip"), filepath.Join(dist, "packages/k2s-1.5.0.zip"), filepath.Join(dist, "deltas/k2s-delta-1.4.0-to-1.5.0.zip"))

	// The wrong delta is refused and changes nothing.
	before := treeHash(t, install)
	r := releaseCmd(t, nil, "apply", filepath.Join(dist, "deltas/k2s-delta-1.4.1-to-1.5.0.zip"), "--install-dir", install)
	if r.code != 1 || !strings.Contains(r.stderr, "1.4.0") || !strings.Contains(r.stderr, "1.4.1") {
		t.Fatalf("wrong base: exit %d\n%s", r.code, r.stderr)
	}
	if treeHash(t, install) != before {
		t.Fatal("refused apply changed the installation")
	}

	// Dry run touches nothing.
	mustRun(t, "apply", filepath.Join(dist, "deltas/k2s-delta-1.4.0-to-1.5.0.zip"), "--install-dir", install, "--dry-run")
	if treeHash(t, install) != before {
		t.Fatal("dry run changed the installation")
	}

	// A crash during commit, then a re-run that completes it.
	r = releaseCmd(t, []string{"RELEASE_TEST_CRASH=commit:2"}, "apply", filepath.Join(dist, "deltas/k2s-delta-1.4.0-to-1.5.0.zip"), "--install-dir", install)
	if r.code != 137 {
		t.Fatalf("simulated crash: exit %d\n%s", r.code, r.stderr)
	}
	rec := mustRun(t, "apply", "--recover", "--install-dir", install)
	if !strings.Contains(rec.stdout, "recovered an interrupted apply") {
		t.Fatalf("recover: %s", rec.stdout)
	}
	again := mustRun(t, "apply", filepath.Join(dist, "deltas/k2s-delta-1.4.0-to-1.5.0.zip"), "--install-dir", install, "--format", "json")
	if !strings.Contains(again.stdout, `"alreadyApplied": true`) {
		t.Fatalf("re-apply after recovery: %s", again.stdout)
	}
	if got, wantH := treeHash(t, install), treeHash(t, want); got != wantH {
		t.Fatalf("installation after apply differs from 1.5.0:\n%s", diffTrees(t, install, want))
	}
}

// TestStandaloneDeltaMatchesPipeline: release delta --profile k2s on the
// pipeline's packages and node packages makes the pipeline's delta, byte
// for byte; and the generic profile's likewise.
func TestStandaloneDeltaMatchesPipeline(t *testing.T) {
	dir := copySample(t)
	os.Remove(filepath.Join(dir, "addons.cue"))
	os.Remove(filepath.Join(dir, "rollout.cue"))
	runBuild(t, dir, filepath.Join(t.TempDir(), "cache"), "--target", "delta/1.4.0..1.5.0", "--target", "package/*", "--target", "node/debian12/*")
	dist := filepath.Join(dir, "dist")
	out := filepath.Join(t.TempDir(), "d.zip")
	mustRun(t, "delta", "--profile", "k2s", "--from", filepath.Join(dist, "packages/k2s-1.4.0.zip"), "--to", filepath.Join(dist, "packages/k2s-1.5.0.zip"),
		"--from-node", filepath.Join(dist, "nodes/k2s-node-debian12-1.4.0.zip"), "--to-node", filepath.Join(dist, "nodes/k2s-node-debian12-1.5.0.zip"),
		"-o", out, "--date", "2025-06-01T00:00:00Z")
	if a, b := fileHash(t, out), fileHash(t, filepath.Join(dist, "deltas/k2s-delta-1.4.0-to-1.5.0.zip")); a != b {
		t.Fatal("release delta --profile k2s and the pipeline's delta target differ for the same inputs and options")
	}
	r := releaseCmd(t, nil, "delta", "--profile", "k2s", "--from", filepath.Join(dist, "packages/k2s-1.4.0.zip"), "--to", filepath.Join(dist, "packages/k2s-1.5.0.zip"), "-o", out)
	if r.code != 2 || !strings.Contains(r.stderr, "--profile k2s needs --from-node and --to-node") {
		t.Fatalf("k2s without node packages: exit %d\n%s", r.code, r.stderr)
	}

	generic := copySample(t)
	genericSample(t, generic)
	runBuild(t, generic, filepath.Join(t.TempDir(), "cache"))
	gdist := filepath.Join(generic, "dist")
	mustRun(t, "delta", "--from", filepath.Join(gdist, "packages/k2s-1.4.0.zip"), "--to", filepath.Join(gdist, "packages/k2s-1.5.0.zip"),
		"-o", out, "--date", "2025-06-01T00:00:00Z")
	if a, b := fileHash(t, out), fileHash(t, filepath.Join(gdist, "deltas/k2s-delta-1.4.0-to-1.5.0.zip")); a != b {
		t.Fatal("release delta and the pipeline's generic delta target differ for the same inputs and options")
	}
}

func TestConfigErrorsExitTwo(t *testing.T) {
	cases := []struct {
		name, cue, want string
	}{
		{"type error", `package release
product: name: 42
build: date: "2025-01-01T00:00:00Z"
releases: "1.0.0": inputs: [{dir: "payload/common"}]
`, "release.cue:2:"},
		{"undeclared version", `package release
product: name: "k2s"
build: date: "2025-01-01T00:00:00Z"
releases: "1.0.0": inputs: [{dir: "payload/common"}]
deltas: paths: [{from: "0.9.0", to: "1.0.0"}]
`, "0.9.0"},
		{"missing input dir", `package release
product: name: "k2s"
build: date: "2025-01-01T00:00:00Z"
releases: "1.0.0": inputs: [{dir: "payload/nope"}]
`, "payload/nope"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := copySample(t)
			os.Remove(filepath.Join(dir, "node.cue"))
			os.Remove(filepath.Join(dir, "addons.cue"))
			os.Remove(filepath.Join(dir, "rollout.cue"))
			os.WriteFile(filepath.Join(dir, "release.cue"), []byte(c.cue), 0o644)
			for _, cmd := range []string{"vet", "plan", "build"} {
				r := releaseCmd(t, nil, cmd, "-C", dir, "--cache", filepath.Join(t.TempDir(), "c"))
				if r.code != 2 || !strings.Contains(r.stderr, c.want) {
					t.Fatalf("%s: exit %d, stderr:\n%s\nwant exit 2 and %q", cmd, r.code, r.stderr, c.want)
				}
			}
			if _, err := os.Stat(filepath.Join(dir, "dist")); !errors.Is(err, fs.ErrNotExist) {
				t.Fatal("a config error created dist/")
			}
		})
	}
	if r := releaseCmd(t, nil, "build", "--no-such-flag"); r.code != 2 {
		t.Fatalf("unknown flag: exit %d", r.code)
	}
	if r := releaseCmd(t, nil, "plan", "--format", "yaml", "-C", copySample(t)); r.code != 2 {
		t.Fatalf("bad format: exit %d", r.code)
	}
}

func TestHelpHasExamples(t *testing.T) {
	for _, cmd := range []string{"plan", "build", "vet", "delta", "apply", "verify", "cache", "cache ls", "cache gc"} {
		r := mustRun(t, append(strings.Fields(cmd), "--help")...)
		if !strings.Contains(r.stdout, "Examples:") {
			t.Errorf("release %s --help has no examples:\n%s", cmd, r.stdout)
		}
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func fileHash(t *testing.T, p string) string {
	sum := sha256.Sum256(readFile(t, p))
	return hex.EncodeToString(sum[:])
}

// checkSums runs the real `sha256sum -c` on SHA256SUMS.
func checkSums(t *testing.T, dist string) {
	t.Helper()
	cmd := exec.Command("sha256sum", "--strict", "-c", "SHA256SUMS")
	cmd.Dir = dist
	out, err := cmd.CombinedOutput()
	var arts []json.RawMessage
	json.Unmarshal(readFile(t, filepath.Join(dist, "artifacts.json")), &arts)
	if err != nil || len(arts) < sampleTotal || strings.Count(string(out), ": OK") != len(arts) {
		t.Fatalf("sha256sum -c SHA256SUMS: %v\n%s", err, out)
	}
}

// installed lays a package of the K2s-shaped sample out, in a new
// directory named name, as K2s's installer does: release install
// --profile k2s (bin/WindowsNodeArtifacts.zip unpacked into bin/kube, ...).
func installed(t *testing.T, zipPath, name string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	mustRun(t, "install", zipPath, "--install-dir", dir, "--profile", "k2s", "-q")
	return dir
}

// appliedWant returns a directory holding what applying the sample's
// deltaZip leaves on an installation of baseZip: targetZip installed,
// except the paths the delta skips (addons/, the Windows node archive,
// ...), which stay as the base installation has them.
func appliedWant(t *testing.T, baseZip, targetZip, deltaZip string) string {
	t.Helper()
	base, want := installed(t, baseZip, "base"), installed(t, targetZip, "want")
	var m struct{ SpecialSkippedFiles []string }
	if err := json.Unmarshal(bytes.TrimPrefix(unzipEntry(t, deltaZip, "delta-manifest.json"), []byte("\uFEFF")), &m); err != nil {
		t.Fatal(err)
	}
	for _, p := range m.SpecialSkippedFiles {
		dst := filepath.Join(want, filepath.FromSlash(p))
		data, err := os.ReadFile(filepath.Join(base, filepath.FromSlash(p)))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			os.Remove(dst)
		case err != nil:
			t.Fatal(err)
		default:
			if err := os.WriteFile(dst, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return want
}

// genericSample turns a copy of the sample into a generic product without
// node content, addons or rollouts, for the tests of what does not depend
// on K2s (a k2s delta needs the control plane's node packages).
func genericSample(t *testing.T, dir string) {
	t.Helper()
	for _, f := range []string{"node.cue", "addons.cue", "rollout.cue"} {
		os.Remove(filepath.Join(dir, f))
	}
	p := filepath.Join(dir, "release.cue")
	src := readFile(t, p)
	if !bytes.Contains(src, []byte(`profile: "k2s"`)) {
		t.Fatal("the sample has no profile k2s to turn off")
	}
	if err := os.WriteFile(p, bytes.Replace(src, []byte(`profile: "k2s"`), []byte(`profile: "generic"`), 1), 0o644); err != nil {
		t.Fatal(err)
	}
}

func unzipTo(t *testing.T, zipPath, dir string) {
	t.Helper()
	zr, err := zip.OpenReader(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	for _, f := range zr.File {
		p := filepath.Join(dir, filepath.FromSlash(f.Name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, f.Mode().Perm()|0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// treeHash hashes every file's path and bytes below dir, but for the
// installation record (delta.InstallRecord), which names the packages an
// installation came from: the files are what tests compare, and the
// record has tests of its own.
func treeHash(t *testing.T, dir string) string {
	t.Helper()
	h := sha256.New()
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == delta.InstallRecord {
			return nil
		}
		io.WriteString(h, filepath.ToSlash(rel)+"\x00")
		h.Write(readFile(t, p))
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))
}

func diffTrees(t *testing.T, a, b string) string {
	list := func(dir string) map[string]string {
		m := map[string]string{}
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				if rel, _ := filepath.Rel(dir, p); rel != delta.InstallRecord {
					m[filepath.ToSlash(rel)] = fileHash(t, p)
				}
			}
			return nil
		})
		return m
	}
	ma, mb := list(a), list(b)
	var out []string
	for p, h := range ma {
		if mb[p] != h {
			out = append(out, "differs or extra: "+p)
		}
	}
	for p := range mb {
		if _, ok := ma[p]; !ok {
			out = append(out, "missing: "+p)
		}
	}
	return strings.Join(sorted(out), "\n")
}
