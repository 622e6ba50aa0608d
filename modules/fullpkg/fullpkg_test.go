package fullpkg

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relcue/release/modules/pkgmanifest"
	"github.com/relcue/release/modules/pkgzip"
	"github.com/relcue/release/pipeline/config"
	"github.com/relcue/release/pipeline/digest"
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

// recorder is a step.Progress that checks the total covers what was added.
type recorder struct {
	mu           sync.Mutex
	total, added int64
}

func (r *recorder) SetTotal(n int64) { r.mu.Lock(); r.total = n; r.mu.Unlock() }
func (r *recorder) Add(n int64)      { r.mu.Lock(); r.added += n; r.mu.Unlock() }

func run(t testing.TB, spec Spec, sources map[string]string, workers int) (string, *recorder, error) {
	t.Helper()
	raw, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	in := &step.Input{
		Target: TargetID(spec.Version), Spec: raw, Sources: sources, SourceDigests: planned(sources), OutDir: t.TempDir(),
		Workers: workers, Progress: rec, Log: io.Discard,
	}
	arts, err := Step{}.Run(context.Background(), in)
	if err != nil {
		if _, serr := os.Stat(filepath.Join(in.OutDir, filepath.FromSlash(spec.Output))); serr == nil {
			t.Errorf("failed run left %s behind", spec.Output)
		}
		return "", rec, err
	}
	if len(arts) != 1 || arts[0] != (step.Artifact{Path: spec.Output, Kind: "package"}) {
		t.Fatalf("artifacts %+v", arts)
	}
	left, _ := os.ReadDir(filepath.Dir(filepath.Join(in.OutDir, spec.Output)))
	if len(left) != 1 {
		t.Errorf("OutDir holds more than the package: %v", left)
	}
	return filepath.Join(in.OutDir, filepath.FromSlash(spec.Output)), rec, nil
}

func baseSpec(version string) Spec {
	return Spec{Product: "k2s", Version: version, Output: OutputPath("k2s", version), Date: buildDate.Format(time.RFC3339), Level: 6}
}

func shaHex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func TestIDsAndPaths(t *testing.T) {
	if got := TargetID("1.5.0"); got != "package/1.5.0" {
		t.Errorf("TargetID = %q", got)
	}
	if got := OutputPath("k2s", "1.5.0"); got != "packages/k2s-1.5.0.zip" {
		t.Errorf("OutputPath = %q", got)
	}
	if (Step{}).Kind() != "fullpkg" || (Step{}).Version() != "1" {
		t.Error("Kind/Version changed")
	}
}

func TestTargets(t *testing.T) {
	pos := func(line int) config.Pos { return config.Pos{File: "/cfg/release.cue", Line: line, Col: 3} }
	m := &config.Model{
		Product: config.Product{Name: "k2s"},
		Build:   config.Build{Date: buildDate, CompressionLevel: 9},
		Releases: map[string]*config.Release{
			"1.4.0": {Version: "1.4.0", Zip: &config.Source{URL: "https://example.com/k2s-1.4.0.zip", SHA256: shaHex("z")}, Pos: pos(10)},
			"1.5.0": {Version: "1.5.0", Pos: pos(20), Inputs: []config.Input{
				{Dir: "/payload/common", Pos: pos(21)},
				{Dir: "/payload/bin", Dest: "bin", Mode: 0o755, Pos: pos(22)},
				{File: &config.Source{Path: "/dl/kubectl.exe", SHA256: shaHex("k"), Pos: pos(23)}, Dest: "bin/kubectl.exe", Pos: pos(23)},
			}},
		},
		Versions: []string{"1.4.0", "1.5.0"},
	}
	ts, err := SignedTargets(nil)(m)
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 2 {
		t.Fatalf("%d targets", len(ts))
	}
	zipT, asm := ts[0], ts[1]
	if zipT.ID != "package/1.4.0" || zipT.Kind != "fullpkg" || zipT.Pos != "/cfg/release.cue:10:3" || len(zipT.Deps) != 0 {
		t.Errorf("zip target %+v", zipT)
	}
	if want := []step.Source{{Name: "zip", URL: "https://example.com/k2s-1.4.0.zip", SHA256: shaHex("z"), Pos: "/cfg/release.cue:10:3"}}; fmt.Sprint(zipT.Sources) != fmt.Sprint(want) {
		t.Errorf("zip sources %+v", zipT.Sources)
	}
	specJSON, _ := json.Marshal(zipT.Spec)
	if want := `{"product":"k2s","version":"1.4.0","output":"packages/k2s-1.4.0.zip","date":"2025-06-01T00:00:00Z","level":9,"zip":"zip"}`; string(specJSON) != want {
		t.Errorf("zip spec\n%s\nwant\n%s", specJSON, want)
	}
	specJSON, _ = json.Marshal(asm.Spec)
	if want := `{"product":"k2s","version":"1.5.0","output":"packages/k2s-1.5.0.zip","date":"2025-06-01T00:00:00Z","level":9,` +
		`"layers":[{"source":"layer0","dest":"","mode":0},{"source":"layer1","dest":"bin","mode":493},{"source":"layer2","dest":"bin/kubectl.exe","mode":0}]}`; string(specJSON) != want {
		t.Errorf("layers spec\n%s\nwant\n%s", specJSON, want)
	}
	wantSrc := []step.Source{
		{Name: "layer0", Path: "/payload/common", Dir: true, Pos: "/cfg/release.cue:21:3"},
		{Name: "layer1", Path: "/payload/bin", Dir: true, Pos: "/cfg/release.cue:22:3"},
		{Name: "layer2", Path: "/dl/kubectl.exe", SHA256: shaHex("k"), Pos: "/cfg/release.cue:23:3"},
	}
	if fmt.Sprint(asm.Sources) != fmt.Sprint(wantSrc) {
		t.Errorf("layer sources\n%+v\nwant\n%+v", asm.Sources, wantSrc)
	}

	bad := []struct {
		name string
		rel  config.Release
		want string
	}{
		{"neither", config.Release{Version: "2.0.0", Pos: pos(30)}, "/cfg/release.cue:30:3: release 2.0.0: has neither zip nor inputs"},
		{"both", config.Release{Version: "2.0.0", Pos: pos(30), Zip: &config.Source{Path: "/a.zip"}, Inputs: []config.Input{{Dir: "/d"}}}, "has both zip and inputs"},
		{"file without dest", config.Release{Version: "2.0.0", Pos: pos(30), Inputs: []config.Input{{Dir: "/d", Pos: pos(31)}, {File: &config.Source{Path: "/f"}, Pos: pos(32)}}},
			"/cfg/release.cue:32:3: release 2.0.0: input 2: a file input needs dest"},
		{"dir and file", config.Release{Version: "2.0.0", Inputs: []config.Input{{Dir: "/d", File: &config.Source{Path: "/f"}, Dest: "x"}}}, "has both dir and file"},
		{"empty input", config.Release{Version: "2.0.0", Inputs: []config.Input{{}}}, "has neither dir nor file"},
		{"escaping dest", config.Release{Version: "2.0.0", Inputs: []config.Input{{Dir: "/d", Dest: "../x"}}}, `dest: package path "../x" contains a ".." segment`},
		{"backslash dest", config.Release{Version: "2.0.0", Inputs: []config.Input{{Dir: "/d", Dest: `a\b`}}}, "contains a backslash"},
		{"mode", config.Release{Version: "2.0.0", Inputs: []config.Input{{Dir: "/d", Mode: 0o4755}}}, "has bits beyond permissions"},
		{"version", config.Release{Version: "2.0/0", Inputs: []config.Input{{Dir: "/d"}}}, `version "2.0/0" cannot be part of a file name`},
	}
	for _, tt := range bad {
		rel := tt.rel
		m := &config.Model{Product: config.Product{Name: "k2s"}, Build: config.Build{Date: buildDate}, Releases: map[string]*config.Release{rel.Version: &rel}, Versions: []string{rel.Version}}
		_, err := SignedTargets(nil)(m)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want %q", tt.name, err, tt.want)
		}
	}
	noProduct := &config.Model{Releases: map[string]*config.Release{"1": {Version: "1", Inputs: []config.Input{{Dir: "/d"}}}}, Versions: []string{"1"}}
	if _, err := SignedTargets(nil)(noProduct); err == nil || !strings.Contains(err.Error(), "product name is empty") {
		t.Errorf("no product: %v", err)
	}
}

// layeredInputs makes a realistic assembled release: a common tree, a
// version tree, and one downloaded file, through SignedTargets, as the planner
// would hand it to Run.
func layeredInputs(t *testing.T) (Spec, map[string]string) {
	dir := t.TempDir()
	common := writeTree(t, filepath.Join(dir, "common"), map[string]tfile{
		"bin/k2s.exe":                         {"MZ k2s " + strings.Repeat("code ", 300000), 0o755},
		"lib/modules/k2s.psm1":                {"function Start-K2s {}", 0o644},
		"cfg/config.json":                     {`{"a":1}`, 0o600},
		"docs/ünïcödé/日本語.txt":                {"こんにちは", 0o644},
		"empty.txt":                           {"", 0o644},
		strings.Repeat("d/", 25) + "deep.txt": {"deep", 0o644},
	})
	os.MkdirAll(filepath.Join(common, "emptydir"), 0o755)
	v150 := writeTree(t, filepath.Join(dir, "1.5.0"), map[string]tfile{
		"VERSION":            {"1.5.0\n", 0o644},
		"scripts/install.sh": {"#!/bin/sh\necho hi\n", 0o644},
	})
	kubectl := writeTree(t, filepath.Join(dir, "dl"), map[string]tfile{"kubectl": {"kubectl binary", 0o644}})
	m := &config.Model{
		Product: config.Product{Name: "k2s"},
		Build:   config.Build{Date: buildDate, CompressionLevel: 6},
		Releases: map[string]*config.Release{"1.5.0": {Version: "1.5.0", Inputs: []config.Input{
			{Dir: common},
			{Dir: filepath.Join(v150), Mode: 0o755},
			{File: &config.Source{Path: filepath.Join(kubectl, "kubectl")}, Dest: "bin/kubectl.exe", Mode: 0o755},
		}}},
		Versions: []string{"1.5.0"},
	}
	ts, err := SignedTargets(nil)(m)
	if err != nil {
		t.Fatal(err)
	}
	sources := map[string]string{}
	for _, s := range ts[0].Sources {
		sources[s.Name] = s.Path
	}
	return ts[0].Spec.(Spec), sources
}

func TestRunAssembles(t *testing.T) {
	spec, sources := layeredInputs(t)
	out, rec, err := run(t, spec, sources, 3)
	if err != nil {
		t.Fatal(err)
	}
	if rec.total != rec.added || rec.total == 0 {
		t.Errorf("progress: total %d, added %d", rec.total, rec.added)
	}
	unzip, err := exec.LookPath("unzip")
	if err != nil {
		t.Fatal("unzip is needed as an independent reader of our zips; install it (.ci/run does)")
	}
	if b, err := exec.Command(unzip, "-t", out).CombinedOutput(); err != nil {
		t.Fatalf("unzip -t: %v\n%s", err, b)
	}
	r, err := pkgzip.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	wantModes := map[string]fs.FileMode{
		"VERSION":                             0o755, // the 1.5.0 layer's mode applies to all its files
		"bin/k2s.exe":                         0o755,
		"bin/kubectl.exe":                     0o755,
		"cfg/config.json":                     0o644,
		"docs/ünïcödé/日本語.txt":                0o644,
		"empty.txt":                           0o644,
		"lib/modules/k2s.psm1":                0o644,
		"scripts/install.sh":                  0o755,
		strings.Repeat("d/", 25) + "deep.txt": 0o644,
		pkgmanifest.Name:                      0o644,
	}
	if len(r.Entries) != len(wantModes) {
		var names []string
		for _, e := range r.Entries {
			names = append(names, e.Name)
		}
		t.Fatalf("entries %q", names)
	}
	for _, e := range r.Entries {
		if m, ok := wantModes[e.Name]; !ok || m != e.Mode {
			t.Errorf("%s: mode %v, want %v (listed %v)", e.Name, e.Mode, m, ok)
		}
	}
	m, ok, err := pkgmanifest.Read(r)
	if err != nil || !ok {
		t.Fatalf("manifest: %v %v", ok, err)
	}
	if m.Product != "k2s" || m.Version != "1.5.0" || len(m.Files) != len(wantModes)-1 {
		t.Errorf("manifest %+v", m)
	}
	if err := pkgmanifest.Check(r, m); err != nil {
		t.Error(err)
	}
	digests, err := r.HashAll(context.Background(), 2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := pkgmanifest.Verify(m, digests, out); err != nil {
		t.Error(err)
	}
	if digests["VERSION"].SHA256 != shaHex("1.5.0\n") {
		t.Error("a provided VERSION must be packaged as it is")
	}

	// Same inputs, other worker counts: the same bytes.
	first, _ := os.ReadFile(out)
	for _, workers := range []int{1, 8} {
		again, _, err := run(t, spec, sources, workers)
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(again); !bytes.Equal(b, first) {
			t.Errorf("workers=%d: output differs", workers)
		}
	}
}

func TestRunWritesVersion(t *testing.T) {
	src := writeTree(t, t.TempDir(), map[string]tfile{"a.txt": {"a", 0o644}})
	spec := baseSpec("2.0.0-rc.1")
	spec.Layers = []Layer{{Source: "layer0", Dest: "app"}}
	out, _, err := run(t, spec, map[string]string{"layer0": src}, 2)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zip.OpenReader(out)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
		if f.Name == "VERSION" {
			rc, _ := f.Open()
			b, _ := io.ReadAll(rc)
			rc.Close()
			if string(b) != "2.0.0-rc.1" {
				t.Errorf("VERSION = %q", b)
			}
		}
	}
	if got := strings.Join(names, ","); got != "VERSION,app/a.txt,"+pkgmanifest.Name {
		t.Errorf("entries %s", got)
	}
}

func TestRunAssembleErrors(t *testing.T) {
	dir := t.TempDir()
	a := writeTree(t, filepath.Join(dir, "a"), map[string]tfile{"bin/tool.exe": {"a", 0}, "README": {"r", 0}})
	b := writeTree(t, filepath.Join(dir, "b"), map[string]tfile{"bin/tool.exe": {"b", 0}})
	caseDup := writeTree(t, filepath.Join(dir, "case"), map[string]tfile{"readme": {"r", 0}})
	wrongVersion := writeTree(t, filepath.Join(dir, "wv"), map[string]tfile{"VERSION": {" 1.4.0\n", 0}})
	lowerVersion := writeTree(t, filepath.Join(dir, "lv"), map[string]tfile{"version": {"1.5.0", 0}})
	manifest := writeTree(t, filepath.Join(dir, "m"), map[string]tfile{"Package-Manifest.json": {"{}", 0}})
	backslash := writeTree(t, filepath.Join(dir, "bs"), map[string]tfile{`odd\name.txt`: {"x", 0}})
	fileDir := writeTree(t, filepath.Join(dir, "fd"), map[string]tfile{"bin": {"not a dir", 0}})
	link := writeTree(t, filepath.Join(dir, "link"), map[string]tfile{"real.txt": {"x", 0}})
	if err := os.Symlink("real.txt", filepath.Join(link, "alias.txt")); err != nil {
		t.Fatal(err)
	}
	fifo := writeTree(t, filepath.Join(dir, "fifo"), map[string]tfile{"x": {"x", 0}})
	if err := mkfifo(filepath.Join(fifo, "pipe")); err != nil {
		t.Fatal(err)
	}
	single := filepath.Join(a, "README")
	sources := map[string]string{"a": a, "b": b, "case": caseDup, "wv": wrongVersion, "lv": lowerVersion, "m": manifest,
		"bs": backslash, "fd": fileDir, "link": link, "fifo": fifo, "single": single, "missing": filepath.Join(dir, "nope")}

	tests := []struct {
		name   string
		layers []Layer
		want   string
	}{
		{"same path", []Layer{{Source: "a"}, {Source: "b"}},
			`"bin/tool.exe" (input a: ` + filepath.Join(a, "bin/tool.exe") + `) and "bin/tool.exe" (input b: ` + filepath.Join(b, "bin/tool.exe") + `): the same path twice`},
		{"case", []Layer{{Source: "a"}, {Source: "case"}}, `"README" (input a: ` + single + `) and "readme" (input case: ` + filepath.Join(caseDup, "readme") + `) differ only in letter case`},
		{"file over dir", []Layer{{Source: "a"}, {Source: "fd"}}, `"bin" (input fd: ` + filepath.Join(fileDir, "bin") + `) is a file, but "bin/tool.exe"`},
		{"wrong version", []Layer{{Source: "wv"}}, `VERSION (input wv: ` + filepath.Join(wrongVersion, "VERSION") + `) contains "1.4.0", but the release is 1.5.0`},
		{"lower-case version", []Layer{{Source: "lv"}}, `"version" (input lv: ` + filepath.Join(lowerVersion, "version") + `) and "VERSION" (generated by release) differ only in letter case`},
		{"manifest", []Layer{{Source: "m"}}, "m/Package-Manifest.json: Package-Manifest.json is written by release from the package content"},
		{"backslash", []Layer{{Source: "bs"}}, `input bs: ` + filepath.Join(backslash, `odd\name.txt`) + `: package path "odd\\name.txt" contains a backslash`},
		{"symlink", []Layer{{Source: "link"}}, filepath.Join(link, "alias.txt") + " is a symbolic link; packages hold regular files only"},
		{"fifo", []Layer{{Source: "fifo"}}, filepath.Join(fifo, "pipe") + " is a named pipe"},
		{"file without dest", []Layer{{Source: "single"}}, "is a file, and a file input needs dest"},
		{"missing source dir", []Layer{{Source: "missing"}}, "input missing: stat " + filepath.Join(dir, "nope")},
		{"unknown source", []Layer{{Source: "ghost"}}, `the spec uses source "ghost" but the pipeline provided none`},
		{"dest over file", []Layer{{Source: "single", Dest: "bin/tool.exe"}, {Source: "a"}}, `the same path twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := baseSpec("1.5.0")
			spec.Layers = tt.layers
			_, _, err := run(t, spec, sources, 2)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v\nwant one containing %q", err, tt.want)
			}
		})
	}
}

func TestRunRejectsBadSpecs(t *testing.T) {
	good := baseSpec("1.5.0")
	good.Zip = "zip"
	tests := []struct {
		name   string
		mutate func(*Spec)
		raw    string
		want   string
	}{
		{"both", func(s *Spec) { s.Layers = []Layer{{Source: "l"}} }, "", "exactly one of zip and layers"},
		{"neither", func(s *Spec) { s.Zip = "" }, "", "exactly one of zip and layers"},
		{"level", func(s *Spec) { s.Level = 0 }, "", "level 0 is out of range"},
		{"date", func(s *Spec) { s.Date = "yesterday" }, "", "date: parsing time"},
		{"output", func(s *Spec) { s.Output = "../escape.zip" }, "", `output: package path "../escape.zip"`},
		{"unknown field", nil, `{"product":"k2s","version":"1","output":"p.zip","date":"2025-06-01T00:00:00Z","level":6,"zip":"z","extra":1}`, `unknown field "extra"`},
	}
	for _, tt := range tests {
		raw := []byte(tt.raw)
		if tt.mutate != nil {
			s := good
			tt.mutate(&s)
			raw, _ = json.Marshal(s)
		}
		in := &step.Input{Spec: raw, OutDir: t.TempDir(), Workers: 1, Progress: step.Discard, Log: io.Discard}
		_, err := Step{}.Run(context.Background(), in)
		if err == nil || !strings.HasPrefix(err.Error(), "fullpkg spec: ") || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want %q", tt.name, err, tt.want)
		}
	}
}

// writeZip writes a package with archive/zip, the way other tools do.
func writeZip(t testing.TB, files map[string]string) string {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, data := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, data)
	}
	zw.Close()
	p := filepath.Join(t.TempDir(), "in.zip")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func manifestFor(t testing.TB, product, version string, files map[string]string) string {
	d := map[string]pkgzip.Digest{}
	for name, data := range files {
		d[strings.ReplaceAll(name, `\`, "/")] = pkgzip.Digest{SHA256: shaHex(data), Size: int64(len(data))}
	}
	b, err := pkgmanifest.New(product, version, d).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func with(files map[string]string, name, data string) map[string]string {
	out := map[string]string{name: data}
	for k, v := range files {
		if k != name {
			out[k] = v
		}
	}
	return out
}

func TestRunUsesExistingZip(t *testing.T) {
	files := map[string]string{"VERSION": "1.5.0\r\n", `bin\k2s.exe`: strings.Repeat("MZ", 5000), "cfg/a.yaml": "a: 1"}
	withManifest := with(files, pkgmanifest.Name, manifestFor(t, "k2s", "1.5.0", files))
	for name, content := range map[string]map[string]string{"foreign without manifest": files, "with manifest": withManifest} {
		src := writeZip(t, content)
		spec := baseSpec("1.5.0")
		spec.Zip = "zip"
		out, rec, err := run(t, spec, map[string]string{"zip": src}, 2)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want, _ := os.ReadFile(src)
		if got, _ := os.ReadFile(out); !bytes.Equal(got, want) {
			t.Errorf("%s: output is not a byte-for-byte copy", name)
		}
		if rec.total != rec.added || rec.total <= int64(len(want)) {
			t.Errorf("%s: progress total %d added %d", name, rec.total, rec.added)
		}
	}
}

func TestRunExistingZipErrors(t *testing.T) {
	files := map[string]string{"VERSION": "1.5.0", "bin/k2s.exe": strings.Repeat("MZ", 5000)}
	good := manifestFor(t, "k2s", "1.5.0", files)
	corrupt := func() string {
		p := writeZip(t, files)
		r, err := pkgzip.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		e := r.Lookup("bin/k2s.exe")
		off, _ := e.File.DataOffset()
		size := int64(e.File.CompressedSize64)
		r.Close()
		data, _ := os.ReadFile(p)
		data[off+size/2] ^= 0xff
		os.WriteFile(p, data, 0o644)
		return p
	}
	tests := []struct {
		name string
		zip  string
		want string
	}{
		{"no version", writeZip(t, map[string]string{"bin/k2s.exe": "x"}), "has no VERSION at its root"},
		{"wrong version", writeZip(t, with(files, "VERSION", "1.4.0\n")), `VERSION contains "1.4.0", but the release is 1.5.0`},
		{"nested version only", writeZip(t, map[string]string{"k2s/VERSION": "1.5.0"}), "has no VERSION at its root"},
		{"unsafe entry", writeZip(t, with(files, "../evil.dll", "x")), `entry "../evil.dll" contains a ".." segment`},
		{"manifest lists missing file", writeZip(t, with(files, pkgmanifest.Name, manifestFor(t, "k2s", "1.5.0", with(files, "gone", "x")))), `"gone" is listed but not in the zip`},
		{"manifest misses file", writeZip(t, with(with(files, "extra", "x"), pkgmanifest.Name, good)), `"extra" is in the zip but not listed`},
		{"manifest hash", writeZip(t, with(with(files, "bin/k2s.exe", strings.Repeat("mz", 5000)), pkgmanifest.Name, good)), `"bin/k2s.exe" has SHA256`},
		{"manifest version", writeZip(t, with(files, pkgmanifest.Name, manifestFor(t, "k2s", "1.4.0", files))), "is for version 1.4.0, but the release is 1.5.0"},
		{"manifest product", writeZip(t, with(files, pkgmanifest.Name, manifestFor(t, "other", "1.5.0", files))), `is for product "other", but this is "k2s"`},
		{"manifest invalid", writeZip(t, with(files, pkgmanifest.Name, "{}")), pkgmanifest.Name + ": ManifestVersion"},
		{"corrupt entry", corrupt(), `entry "bin/k2s.exe"`},
	}
	notZip := filepath.Join(t.TempDir(), "x.zip")
	os.WriteFile(notZip, []byte("not a zip"), 0o644)
	tests = append(tests, struct{ name, zip, want string }{"not a zip", notZip, "not a readable zip (truncated or corrupt?)"})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := baseSpec("1.5.0")
			spec.Zip = "zip"
			_, _, err := run(t, spec, map[string]string{"zip": tt.zip}, 2)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v\nwant one containing %q", err, tt.want)
			}
		})
	}
}

// windowsNames has one input path per class of name a Windows installation
// cannot hold, and what the refusal says.
var windowsNames = []struct{ class, path, want string }{
	{"device", "lib/CON", `package path "lib/CON" has "CON", which Windows opens as the device CON`},
	{"device with extension", "bin/nul.txt", `has "nul.txt", which Windows opens as the device NUL`},
	{"device as directory", "lpt3/x.ps1", `has "lpt3", which Windows opens as the device LPT3`},
	{"trailing dot", "lib/trail.", `has "trail.", which ends with a dot that Windows strips`},
	{"trailing space", "lib/trail. ", `has "trail. ", which ends with a space that Windows strips`},
	{"reserved character", "lib/a:b.ps1", `has ':' in "a:b.ps1"; Windows reserves the characters <>:"|?*`},
	{"control character", "lib/a\x1bb", `has '\x1b', a control character`},
}

func TestRunRefusesNamesWindowsCannotHold(t *testing.T) {
	for _, c := range windowsNames {
		t.Run(c.class, func(t *testing.T) {
			dir := writeTree(t, t.TempDir(), map[string]tfile{c.path: {"x", 0}, "VERSION": {"1.5.0", 0}})
			spec := baseSpec("1.5.0")
			spec.Layers = []Layer{{Source: "in"}}
			_, _, err := run(t, spec, map[string]string{"in": dir}, 2)
			for _, want := range []string{"input in: " + filepath.Join(dir, filepath.FromSlash(c.path)), c.want,
				`a Windows installation cannot hold it: rename it, or set build: paths: "posix" if the product is never installed on Windows`} {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("error %v\nwant one containing %q", err, want)
				}
			}
			// An existing package with the name is refused as well.
			spec = baseSpec("1.5.0")
			spec.Zip = "zip"
			zipped := writeZip(t, map[string]string{"VERSION": "1.5.0", c.path: "x"})
			_, _, err = run(t, spec, map[string]string{"zip": zipped}, 2)
			if err == nil || !strings.Contains(err.Error(), "input zip ("+zipped+"): package path "+strconv.Quote(c.path)) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), `build: paths: "posix"`) {
				t.Fatalf("existing zip: error %v\nwant one naming the zip and saying %q", err, c.want)
			}
			// A product never installed on Windows may hold it.
			spec = baseSpec("1.5.0")
			spec.Layers, spec.Paths = []Layer{{Source: "in"}}, pkgzip.PathsPOSIX
			out, _, err := run(t, spec, map[string]string{"in": dir}, 2)
			if err != nil {
				t.Fatalf("posix: %v", err)
			}
			r, err := pkgzip.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if r.Lookup(c.path) == nil {
				t.Errorf("posix: %s is not in the package", c.path)
			}
		})
	}
}

// A path past the length every system takes is refused under either
// policy, and a 300-byte one, past Windows' old MAX_PATH, is fine.
func TestRunPathLengths(t *testing.T) {
	long := strings.Repeat(strings.Repeat("d", 200)+"/", 19)
	long += strings.Repeat("f", pkgzip.MaxPathBytes+1-len(long))
	ok300 := strings.Repeat("directory/", 29) + "file-0.ps1"
	dir := writeTree(t, t.TempDir(), map[string]tfile{"VERSION": {"1.5.0", 0}, ok300: {"x", 0}})
	spec := baseSpec("1.5.0")
	spec.Layers = []Layer{{Source: "in"}}
	if _, _, err := run(t, spec, map[string]string{"in": dir}, 2); err != nil {
		t.Fatalf("a %d-byte path: %v", len(ok300), err)
	}
	writeTree(t, dir, map[string]tfile{long: {"x", 0}})
	for _, p := range []pkgzip.PathPolicy{"", pkgzip.PathsPOSIX} {
		spec.Paths = p
		_, _, err := run(t, spec, map[string]string{"in": dir}, 2)
		if err == nil || !strings.Contains(err.Error(), "is 3840 bytes long, over the 3839 a package path may have") || strings.Contains(err.Error(), "posix") {
			t.Fatalf("policy %q: error %v, want the length refused with no way out but a shorter path", p, err)
		}
	}
}

// planned digests sources as the planner does; a source it cannot digest
// (missing, special) gets none, and the step must refuse it before it
// compares anything.
func planned(sources map[string]string) map[string]string {
	d := map[string]string{}
	for name, p := range sources {
		st, err := os.Stat(p)
		if err != nil {
			continue
		}
		if st.IsDir() {
			if sum, _, err := digest.Tree(context.Background(), p, 1); err == nil {
				d[name] = "tree:" + sum
			}
		} else if st.Mode().IsRegular() {
			if sum, _, err := digest.File(p); err == nil {
				d[name] = "sha256:" + sum
			}
		}
	}
	return d
}
