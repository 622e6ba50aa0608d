package image

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relcue/release/pipeline/config"
	"github.com/relcue/release/pipeline/step"
)

func pos(line int) config.Pos { return config.Pos{File: "/cfg/os.cue", Line: line, Col: 5} }

// model has OS targets of one release each unless releases says more.
func model(dir string, oses ...*osImages) *config.Model {
	m := &config.Model{Dir: dir, Build: config.Build{Date: buildDate}, OS: map[string]*config.OSTarget{}}
	c := &SectionConfig{Nodes: map[string]map[string][]Config{}}
	for _, o := range oses {
		m.OS[o.Name] = o.OSTarget
		m.OSNames = append(m.OSNames, o.Name)
		c.Nodes[o.Name] = o.images
	}
	slices.Sort(m.OSNames)
	m.SetSection(SectionName, c)
	return m
}

// osImages is an OS target with the images of its releases.
type osImages struct {
	*config.OSTarget
	images map[string][]Config
}

func osTarget(name, dir string, releases map[string][]Config) *osImages {
	o := &config.OSTarget{Name: name, Dir: dir, Releases: map[string]*config.NodeRelease{}, Pos: pos(1)}
	for v := range releases {
		o.Releases[v] = &config.NodeRelease{Version: v}
		o.Versions = append(o.Versions, v)
	}
	slices.Sort(o.Versions)
	return &osImages{o, releases}
}

func TestTargetsShareImagesAndNameThem(t *testing.T) {
	src := appTree(t)
	pause := func(line int) Config {
		return Config{
			Ref:       "registry.k8s.io/pause:3.10",
			Platforms: []string{"linux/arm64/v8", "linux/amd64"},
			Layers:    []LayerConfig{{Dir: src, Dest: "/", Pos: pos(line + 1)}},
			Env:       map[string]string{"A": "1"},
			Pos:       pos(line),
		}
	}
	coredns := Config{Ref: "registry.k8s.io/coredns/coredns:v1.11.3", Layers: []LayerConfig{{File: filepath.Join(src, "bin/app"), Dest: "/coredns", Mode: 0o755, Pos: pos(41)}}, Pos: pos(40)}
	m := model(t.TempDir(),
		osTarget("debian12", "", map[string][]Config{"1.0.0": {pause(10)}, "1.1.0": {pause(20), coredns}}),
		osTarget("debian13", "trixie", map[string][]Config{"1.1.0": {pause(30)}}),
	)
	ts, err := Targets(m)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, tg := range ts {
		ids = append(ids, tg.ID)
	}
	want := []string{"image/debian12/registry.k8s.io_pause__3.10", "image/debian12/registry.k8s.io_coredns_coredns__v1.11.3", "image/debian13/registry.k8s.io_pause__3.10"}
	if !slices.Equal(ids, want) {
		t.Fatalf("IDs %v, want %v", ids, want)
	}
	p := ts[0]
	if p.ID != TargetID("debian12", "registry.k8s.io/pause:3.10") || p.Kind != Kind || p.Pos != pos(10).String() ||
		!slices.Equal(p.Outputs, []string{"images/debian12/registry.k8s.io_pause__3.10.tar"}) {
		t.Errorf("pause target %+v", p)
	}
	if !slices.Equal(ts[2].Outputs, []string{"images/trixie/registry.k8s.io_pause__3.10.tar"}) {
		t.Errorf("debian13 outputs %v", ts[2].Outputs)
	}
	if want := []step.Source{{Name: "layer0", Path: src, Dir: true, Pos: pos(11).String()}}; !slices.Equal(p.Sources, want) {
		t.Errorf("sources %+v, want %+v", p.Sources, want)
	}
	spec := p.Spec.(Spec)
	if !slices.Equal(spec.Platforms, []string{"linux/amd64", "linux/arm64"}) || spec.Date != "2025-06-01T00:00:00Z" || spec.Layers[0] != (Layer{Source: "layer0", Dir: true, Dest: "/"}) {
		t.Errorf("spec %+v", spec)
	}
	if c := ts[1].Spec.(Spec).Layers[0]; c != (Layer{Source: "layer0", Dest: "/coredns", Mode: 0o755}) || ts[1].Sources[0].Dir {
		t.Errorf("coredns layer %+v, sources %+v", c, ts[1].Sources)
	}
	// The cache key must not depend on where the checkout is.
	for _, tg := range ts {
		b, err := json.Marshal(tg.Spec)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), src) || strings.Contains(string(b), "/cfg/") {
			t.Errorf("spec of %s holds a local path: %s", tg.ID, b)
		}
	}

	// The planned spec builds, and skopeo agrees on the platforms.
	raw, _ := json.Marshal(spec)
	var back Spec
	readJSON(t, raw, &back)
	out := mustRun(t, back, map[string]string{"layer0": src})
	info, err := Inspect(out)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(info.Platforms(), []string{"linux/amd64", "linux/arm64"}) || filepath.Base(out) != "registry.k8s.io_pause__3.10.tar" {
		t.Errorf("built %s: %+v", out, info)
	}
}

func TestTargetsTagMeansOneImage(t *testing.T) {
	src := appTree(t)
	img := func(line int, env string) Config {
		return Config{Ref: "registry.k8s.io/pause:3.10", Env: map[string]string{"V": env},
			Layers: []LayerConfig{{Dir: src, Dest: "/", Pos: pos(line + 1)}}, Pos: pos(line)}
	}
	m := model(t.TempDir(), osTarget("debian12", "", map[string][]Config{"1.0.0": {img(10, "a")}, "1.1.0": {img(20, "b")}}))
	_, err := Targets(m)
	wantErr(t, err, "/cfg/os.cue:20:5", "release 1.0.0 (/cfg/os.cue:10:5)", "release 1.1.0", "registry.k8s.io/pause:3.10",
		"a tag must always mean the same image: change the tag")

	// Two references that map to one file name.
	a := Config{Ref: "registry.example.com/a/b_c:1", Layers: []LayerConfig{{Dir: src, Dest: "/", Pos: pos(11)}}, Pos: pos(10)}
	b := Config{Ref: "registry.example.com/a_b/c:1", Layers: []LayerConfig{{Dir: src, Dest: "/", Pos: pos(21)}}, Pos: pos(20)}
	m = model(t.TempDir(), osTarget("debian12", "", map[string][]Config{"1.0.0": {a, b}}))
	_, err = Targets(m)
	wantErr(t, err, "/cfg/os.cue:20:5", "registry.example.com/a/b_c:1", "/cfg/os.cue:10:5", "would both be stored as registry.example.com_a_b_c__1.tar", "rename one")
}

func TestTargetsValidation(t *testing.T) {
	src := appTree(t)
	file := filepath.Join(src, "etc/app.conf")
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(file, link); err != nil {
		t.Fatal(err)
	}
	nested := writeTree(t, t.TempDir(), map[string]tfile{"bin/real": {"r", 0o755}})
	if err := os.Symlink("real", filepath.Join(nested, "bin", "alias")); err != nil {
		t.Fatal(err)
	}
	baseTar := buildBase(t, "registry.example.com/base/tiny:1")
	baseDir := extract(t, baseTar)
	// A docker-save base holds one platform.
	lp := extract(t, mustRun(t, func() Spec {
		s := newSpec("registry.example.com/base/amd:1")
		s.Layers = []Layer{{Source: "layer0", Dest: "/x"}}
		return s
	}(), map[string]string{"layer0": file}))
	dockerSave := writeDockerSave(t, "registry.example.com/base/amd:1", layoutImage(t, lp))

	layer := func(l LayerConfig) []LayerConfig {
		l.Pos = pos(12)
		return []LayerConfig{l}
	}
	okLayer := layer(LayerConfig{Dir: src, Dest: "/opt"})
	cases := []struct {
		name string
		img  Config
		want []string
	}{
		{"short ref", Config{Ref: "pause:3.10", Layers: okLayer}, []string{"/cfg/os.cue:10:5", `image ref "pause:3.10" is not a complete reference`, "registry.k8s.io/pause:3.10"}},
		{"ref without tag", Config{Ref: "registry.k8s.io/pause", Layers: okLayer}, []string{"/cfg/os.cue:10:5", "not a complete reference"}},
		{"docker hub", Config{Ref: "docker.io/busybox:1.36", Layers: okLayer}, []string{"write docker.io/library/busybox:1.36"}},
		{"unknown platform", Config{Ref: "r.example.com/a:1", Platforms: []string{"linux/sparc"}, Layers: okLayer}, []string{"/cfg/os.cue:10:5", `unknown platform "linux/sparc"`, "linux/arm/v7"}},
		{"windows", Config{Ref: "r.example.com/a:1", Platforms: []string{"windows/amd64"}, Layers: okLayer}, []string{"unknown platform", "node images are Linux images"}},
		{"unknown variant", Config{Ref: "r.example.com/a:1", Platforms: []string{"linux/arm/v9"}, Layers: okLayer}, []string{`arm has no variant "v9"`}},
		{"same platform twice", Config{Ref: "r.example.com/a:1", Platforms: []string{"linux/arm64", "linux/arm64/v8"}, Layers: okLayer}, []string{"platform linux/arm64 is listed twice"}},
		{"scratch without layers", Config{Ref: "r.example.com/a:1"}, []string{"/cfg/os.cue:10:5", "from scratch needs at least one layer"}},
		{"relative dest", Config{Ref: "r.example.com/a:1", Layers: layer(LayerConfig{Dir: src, Dest: "usr/bin"})}, []string{"/cfg/os.cue:12:5", "layer 1", `dest "usr/bin" is not absolute`}},
		{"escaping dest", Config{Ref: "r.example.com/a:1", Layers: layer(LayerConfig{Dir: src, Dest: "/usr/../../etc"})}, []string{"/cfg/os.cue:12:5", "escapes the image root"}},
		{"unclean dest", Config{Ref: "r.example.com/a:1", Layers: layer(LayerConfig{Dir: src, Dest: "/usr//bin/"})}, []string{"/cfg/os.cue:12:5", `write "/usr/bin"`}},
		{"file at root", Config{Ref: "r.example.com/a:1", Layers: layer(LayerConfig{File: file, Dest: "/"})}, []string{"/cfg/os.cue:12:5", "file layer's dest is the file's absolute path"}},
		{"missing dir", Config{Ref: "r.example.com/a:1", Layers: layer(LayerConfig{Dir: filepath.Join(src, "nope"), Dest: "/"})}, []string{"/cfg/os.cue:12:5", "nope does not exist; create it or correct the path"}},
		{"symlink file", Config{Ref: "r.example.com/a:1", Layers: layer(LayerConfig{File: link, Dest: "/x"})}, []string{"/cfg/os.cue:12:5", "is a symbolic link; point to the real file"}},
		{"symlink in dir", Config{Ref: "r.example.com/a:1", Layers: layer(LayerConfig{Dir: nested, Dest: "/x"})}, []string{"/cfg/os.cue:12:5", "bin/alias: not a regular file or directory"}},
		{"dir is a file", Config{Ref: "r.example.com/a:1", Layers: layer(LayerConfig{Dir: file, Dest: "/x"})}, []string{"/cfg/os.cue:12:5", "is not a directory"}},
		{"dir with mode", Config{Ref: "r.example.com/a:1", Layers: layer(LayerConfig{Dir: src, Dest: "/x", Mode: 0o700})}, []string{"/cfg/os.cue:12:5", "mode applies to file layers only"}},
		{"layer platform", Config{Ref: "r.example.com/a:1", Layers: layer(LayerConfig{Dir: src, Dest: "/x", Platform: "linux/arm64"})}, []string{"/cfg/os.cue:12:5", "platform linux/arm64 is not one of the image's platforms (linux/amd64)"}},
		{"base missing", Config{Ref: "r.example.com/a:1", Base: &BaseConfig{Layout: filepath.Join(src, "gone"), Pos: pos(11)}}, []string{"/cfg/os.cue:11:5", "base layout", "gone does not exist"}},
		{"base not a layout", Config{Ref: "r.example.com/a:1", Base: &BaseConfig{Layout: src, Pos: pos(11)}}, []string{"/cfg/os.cue:11:5", "is not an OCI image layout (no oci-layout file)"}},
		{"base both", Config{Ref: "r.example.com/a:1", Base: &BaseConfig{Layout: baseDir, Tarball: baseTar, Pos: pos(11)}}, []string{"/cfg/os.cue:11:5", "both layout and tarball"}},
		{"base ref unknown", Config{Ref: "r.example.com/a:1", Base: &BaseConfig{Layout: baseDir, Ref: "registry.example.com/base/tiny:2", Pos: pos(11)}}, []string{"/cfg/os.cue:11:5", "has no image named registry.example.com/base/tiny:2 (it has: registry.example.com/base/tiny:1)"}},
		{"base lacks platform", Config{Ref: "r.example.com/a:1", Platforms: []string{"linux/amd64", "linux/arm/v7"}, Base: &BaseConfig{Layout: baseDir, Pos: pos(11)}}, []string{"/cfg/os.cue:11:5", "has no image for platform linux/arm/v7 (it has: linux/amd64, linux/arm64)"}},
		{"archive base lacks platform", Config{Ref: "r.example.com/a:1", Platforms: []string{"linux/s390x"}, Base: &BaseConfig{Tarball: baseTar, Pos: pos(11)}}, []string{"/cfg/os.cue:11:5", "base tarball", "has no image for platform linux/s390x"}},
		{"docker-save base platform", Config{Ref: "r.example.com/a:1", Platforms: []string{"linux/arm64"}, Base: &BaseConfig{Tarball: dockerSave, Pos: pos(11)}}, []string{"/cfg/os.cue:11:5", "is an image for linux/amd64, not linux/arm64"}},
		{"docker-save base tag", Config{Ref: "r.example.com/a:1", Base: &BaseConfig{Tarball: dockerSave, Ref: "registry.example.com/base/other:1", Pos: pos(11)}}, []string{"/cfg/os.cue:11:5", "docker save format", "not found in tarball"}},
		{"base tarball not a tar", Config{Ref: "r.example.com/a:1", Base: &BaseConfig{Tarball: file, Pos: pos(11)}}, []string{"/cfg/os.cue:11:5", "not a tar archive"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.img.Pos = pos(10)
			_, err := Targets(model(t.TempDir(), osTarget("debian12", "", map[string][]Config{"1.0.0": {c.img}})))
			wantErr(t, err, append([]string{"os debian12, release 1.0.0"}, c.want...)...)
		})
	}

	noDate := model(t.TempDir(), osTarget("debian12", "", map[string][]Config{"1.0.0": {{Ref: "r.example.com/a:1", Layers: okLayer, Pos: pos(10)}}}))
	noDate.Build.Date = time.Time{}
	_, err := Targets(noDate)
	wantErr(t, err, "build date is not set")

	// And what is right plans.
	for _, b := range []*BaseConfig{{Layout: baseDir}, {Tarball: baseTar, Ref: "registry.example.com/base/tiny:1"}, {Tarball: dockerSave}} {
		img := Config{Ref: "r.example.com/a:1", Base: b, Pos: pos(10)}
		if _, err := Targets(model(t.TempDir(), osTarget("debian12", "", map[string][]Config{"1.0.0": {img}}))); err != nil {
			t.Errorf("base %+v: %v", b, err)
		}
	}
}
