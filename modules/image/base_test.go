package image

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/relcue/release/pipeline/step"
)

// tarOf writes headers (regular files get their Size from data) as a tar.
func tarOf(t testing.TB, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := *e.hdr
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func dirH(name string, mode int64, uid int) tarEntry {
	return tarEntry{hdr: &tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode, Uid: uid, Gid: uid}}
}
func fileH(name, data string) tarEntry {
	return tarEntry{hdr: &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644}, data: data}
}
func linkH(name, target string) tarEntry {
	return tarEntry{hdr: &tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}}
}

// craftBase writes an amd64 image whose layers are the given tars, gzipped
// by ggcr with Docker's layer media type, as the only image of a new
// layout directory named ref.
func craftBase(t testing.TB, ref string, layers ...[]byte) string {
	t.Helper()
	img := empty.Image
	for _, b := range layers {
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			t.Fatal(err)
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf.OS, cf.Architecture = "linux", "amd64"
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{annotationRefName: ref})); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestLayersKeepBaseDirectories: the directories a layer emits carry the
// base's modes and owners, and a layer never writes through a symlink or
// below a file; whiteouts and opaque directories of the base count.
func TestLayersKeepBaseDirectories(t *testing.T) {
	const baseRef = "registry.example.com/base/crafted:1"
	l1 := tarOf(t,
		linkH("bin", "usr/bin"), dirH("usr/", 0o755, 0), dirH("usr/bin/", 0o755, 0),
		dirH("tmp/", 0o1777, 0), dirH("./opt/", 0o700, 1000), dirH("etc/", 0o755, 0), fileH("etc/hosts", "127.0.0.1\n"),
		linkH("old", "/elsewhere"), dirH("var/", 0o755, 0), linkH("var/run", "/run"),
	)
	l2 := tarOf(t,
		fileH(".wh.old", ""), dirH("var/", 0o711, 0), fileH("var/.wh..wh..opq", ""),
	)
	baseDir := craftBase(t, baseRef, l1, l2)
	src := t.TempDir()
	files := map[string]string{
		"sock": writeFile(t, filepath.Join(src, "sock"), "s", 0o644),
		"app":  writeTree(t, filepath.Join(src, "app"), map[string]tfile{"bin/x": {"x", 0o755}}),
	}

	spec := newSpec("registry.example.com/edge/on-crafted:1")
	spec.Base = &Base{Source: "base", Format: FormatLayout}
	spec.Layers = []Layer{
		{Source: "layer0", Dest: "/tmp/app.sock"},
		{Source: "layer1", Dir: true, Dest: "/opt/app"},
		{Source: "layer2", Dest: "/old/x"},
		{Source: "layer3", Dest: "/var/run/x"},
	}
	sources := map[string]string{"base": baseDir, "layer0": files["sock"], "layer1": files["app"], "layer2": files["sock"], "layer3": files["sock"]}
	out := mustRun(t, spec, sources)

	lp, err := layout.FromPath(extract(t, out))
	if err != nil {
		t.Fatal(err)
	}
	info, err := Inspect(out)
	if err != nil {
		t.Fatal(err)
	}
	img, err := lp.Image(v1.Hash{Algorithm: "sha256", Hex: strings.TrimPrefix(info.Digest, "sha256:")})
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	base := layoutImage(t, baseDir)
	bm, err := base.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	// Base layers: same bytes, Docker's type mapped to OCI's.
	if len(m.Layers) != 6 || m.Layers[0].Digest != bm.Layers[0].Digest || m.Layers[1].Digest != bm.Layers[1].Digest ||
		bm.Layers[0].MediaType != types.DockerLayer || m.Layers[0].MediaType != types.OCILayer {
		t.Fatalf("layers %+v\nbase %+v", m.Layers, bm.Layers)
	}
	type d struct {
		name     string
		mode     int64
		uid, gid int
	}
	want := [][]d{
		{{"tmp/", 0o1777, 0, 0}, {"tmp/app.sock", 0o644, 0, 0}},
		{{"opt/", 0o700, 1000, 1000}, {"opt/app/", 0o755, 0, 0}, {"opt/app/bin/", 0o755, 0, 0}, {"opt/app/bin/x", 0o755, 0, 0}},
		{{"old/", 0o755, 0, 0}, {"old/x", 0o644, 0, 0}},
		{{"var/", 0o711, 0, 0}, {"var/run/", 0o755, 0, 0}, {"var/run/x", 0o644, 0, 0}},
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range layers[2:] {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		var got []d
		for _, e := range readTar(t, rc) {
			got = append(got, d{e.hdr.Name, e.hdr.Mode, e.hdr.Uid, e.hdr.Gid})
		}
		rc.Close()
		if !slices.Equal(got, want[i]) {
			t.Errorf("layer %d: got %v, want %v", i, got, want[i])
		}
	}
	si := inspectSkopeo(t, "oci-archive:"+out)
	if len(si.Layers) != 6 || si.Layers[0] != bm.Layers[0].Digest.String() {
		t.Errorf("skopeo: %+v", si)
	}

	for _, c := range []struct {
		layers []Layer
		want   []string
	}{
		{[]Layer{{Source: "layer0", Dest: "/bin/tool"}}, []string{"layer 1 (layer0 at /bin/tool)", "/bin is a symbolic link to usr/bin in base layer 1", "use the path the link points to"}},
		{[]Layer{{Source: "layer0", Dest: "/etc/hosts/x"}}, []string{"/etc/hosts is a file in base layer 1"}},
		{[]Layer{{Source: "layer0", Dest: "/usr/bin"}}, []string{"/usr/bin is a directory in base layer 1", "give the file's full path"}},
		{[]Layer{{Source: "layer0", Dest: "/cfg"}, {Source: "layer2", Dest: "/cfg/x"}}, []string{"layer 2 (layer2 at /cfg/x)", "/cfg is a file in layer 1 (/cfg)"}},
	} {
		s := spec
		s.Layers = c.layers
		_, err := runStep(t, s, sources)
		wantErr(t, err, c.want...)
	}
}

func TestDamagedBase(t *testing.T) {
	baseTar := buildBase(t, "registry.example.com/base/tiny:1")
	info, err := Inspect(baseTar)
	if err != nil {
		t.Fatal(err)
	}
	motd := writeFile(t, filepath.Join(t.TempDir(), "motd"), "hi\n", 0o644)
	// damage flips a byte of the amd64 base layer in a copy of the layout.
	damage := func(remove bool) (string, v1.Hash) {
		dir := extract(t, baseTar)
		var m v1.Manifest
		readJSON(t, layoutBlob(t, dir, v1.Hash{Algorithm: "sha256", Hex: strings.TrimPrefix(info.Images[0].Digest, "sha256:")}), &m)
		p := filepath.Join(dir, "blobs", "sha256", m.Layers[0].Digest.Hex)
		if remove {
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			return dir, m.Layers[0].Digest
		}
		b := layoutBlob(t, dir, m.Layers[0].Digest)
		i := bytes.LastIndex(b, []byte("libc")) // the content, not the name
		b[i] = 'L'
		writeFile(t, p, string(b), 0o644)
		return dir, m.Layers[0].Digest
	}
	withLayer := newSpec("registry.example.com/edge/app:1")
	withLayer.Base = &Base{Source: "base", Format: FormatLayout}
	withLayer.Layers = []Layer{{Source: "layer0", Dest: "/etc/motd"}}
	configOnly := withLayer
	configOnly.Layers = nil
	configOnly.Labels = map[string]string{"only": "config"}

	dir, d := damage(false)
	// Read for directories first: the diff ID does not match.
	_, err = runStep(t, withLayer, map[string]string{"base": dir, "layer0": motd})
	wantErr(t, err, "base layer 1 ("+d.String()+")", "but the config says", "the base is damaged")
	// Copied only: the digest does not match.
	_, err = runStep(t, configOnly, map[string]string{"base": dir})
	wantErr(t, err, "blob "+d.String()+" has content with digest", "the base image is damaged")

	dir, d = damage(true)
	_, err = runStep(t, configOnly, map[string]string{"base": dir})
	wantErr(t, err, "blob "+d.String(), "no such file")
}

func TestStepRejectsBadSpecs(t *testing.T) {
	good := newSpec("registry.example.com/edge/app:1")
	good.Layers = []Layer{{Source: "layer0", Dest: "/x"}}
	raw := func(s Spec) json.RawMessage {
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	mod := func(f func(*Spec)) json.RawMessage {
		s := good
		s.Layers = slices.Clone(good.Layers)
		f(&s)
		return raw(s)
	}
	for name, c := range map[string]struct {
		spec json.RawMessage
		want string
	}{
		"unknown field":     {json.RawMessage(`{"ref":"registry.example.com/edge/app:1","extra":1}`), `unknown field "extra"`},
		"trailing data":     {json.RawMessage(`{"ref":"registry.example.com/edge/app:1"} {}`), "unexpected data after the JSON object"},
		"output":            {mod(func(s *Spec) { s.Output = "images/debian12/other.tar" }), "is not images/<os>/registry.example.com_edge_app__1.tar"},
		"platform spelling": {mod(func(s *Spec) { s.Platforms = []string{"linux/arm64/v8"} }), `platform "linux/arm64/v8" is not canonical ("linux/arm64")`},
		"platform order":    {mod(func(s *Spec) { s.Platforms = []string{"linux/arm64", "linux/amd64"} }), "not sorted"},
		"date":              {mod(func(s *Spec) { s.Date = "yesterday" }), "date"},
		"dest":              {mod(func(s *Spec) { s.Layers[0].Dest = "/a/../../b" }), "escapes the image root"},
		"layer platform":    {mod(func(s *Spec) { s.Layers[0].Platform = "linux/arm64" }), "platform linux/arm64 is not one of the image's"},
		"missing source":    {mod(func(s *Spec) { s.Layers[0].Source = "layer7" }), `source "layer7" but the pipeline provided none`},
	} {
		t.Run(name, func(t *testing.T) {
			out := t.TempDir()
			in := &step.Input{Spec: c.spec, Sources: map[string]string{"layer0": writeFile(t, filepath.Join(t.TempDir(), "f"), "f", 0o644)}, OutDir: out, Workers: 1, Progress: step.Discard, Log: io.Discard}
			_, err := Step{}.Run(context.Background(), in)
			wantErr(t, err, c.want)
			if left := listFiles(t, out); len(left) != 0 {
				t.Errorf("left %v", left)
			}
		})
	}

	// A cancelled build stops and leaves nothing.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out := t.TempDir()
	src := writeTree(t, t.TempDir(), map[string]tfile{"a": {"a", 0o644}})
	s := good
	s.Layers = []Layer{{Source: "layer0", Dir: true, Dest: "/"}}
	_, err := Step{}.Run(ctx, &step.Input{Spec: raw(s), Sources: map[string]string{"layer0": src}, OutDir: out, Workers: 2, Progress: step.Discard, Log: io.Discard})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled build: %v", err)
	}
	if left := listFiles(t, out); len(left) != 0 {
		t.Errorf("cancelled build left %v", left)
	}
}
