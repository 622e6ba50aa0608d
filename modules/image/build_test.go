package image

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// skopeoImage is what `skopeo inspect` prints.
type skopeoImage struct {
	Digest       string
	Created      string
	Architecture string
	Os           string
	Variant      string
	Labels       map[string]string
	Env          []string
	Layers       []string
}

func inspectSkopeo(t testing.TB, args ...string) skopeoImage {
	t.Helper()
	var si skopeoImage
	readJSON(t, skopeo(t, append([]string{"inspect"}, args...)...), &si)
	return si
}

// appTree is a small payload: an executable, a config file, a nested file.
func appTree(t testing.TB) string {
	return writeTree(t, t.TempDir(), map[string]tfile{
		"bin/app":           {"#!/bin/sh\necho app\n", 0o755},
		"etc/app.conf":      {"level=1\n", 0o644},
		"share/doc/a/b.txt": {"deep\n", 0o600},
	})
}

func TestScratchImageReadBySkopeoAndGGCR(t *testing.T) {
	const ref = "registry.example.com/edge/app:1.0.0"
	src := appTree(t)
	extra := writeFile(t, filepath.Join(t.TempDir(), "extra.conf"), "secret\n", 0o644)
	spec := newSpec(ref)
	spec.Layers = []Layer{
		{Source: "layer0", Dir: true, Dest: "/opt/app"},
		{Source: "layer1", Dest: "/etc/app/extra.conf", Mode: 0o600},
	}
	spec.Entrypoint = []string{"/opt/app/bin/app"}
	spec.Cmd = []string{"--serve"}
	spec.Env = map[string]string{"B": "2", "A": "1"}
	spec.Labels = map[string]string{"org.opencontainers.image.version": "1.0.0"}
	spec.WorkingDir = "/opt/app"
	spec.User = "65532"
	out := mustRun(t, spec, map[string]string{"layer0": src, "layer1": extra})
	if filepath.Base(out) != "registry.example.com_edge_app__1.0.0.tar" {
		t.Errorf("archive name %s", filepath.Base(out))
	}

	// The archive itself: sorted members, fixed metadata, nothing else.
	members := readTarFile(t, out)
	var names []string
	for _, m := range members {
		names = append(names, m.hdr.Name)
		if !m.hdr.ModTime.Equal(buildDate) || m.hdr.Uid != 0 || m.hdr.Gid != 0 || m.hdr.Uname != "" || m.hdr.Gname != "" {
			t.Errorf("member %s: mtime %v uid %d gid %d uname %q gname %q", m.hdr.Name, m.hdr.ModTime, m.hdr.Uid, m.hdr.Gid, m.hdr.Uname, m.hdr.Gname)
		}
	}
	if !slices.IsSorted(names) {
		t.Errorf("members not sorted: %v", names)
	}
	// manifest, config, two layers
	if len(names) != 2+4+2 || names[0] != "blobs/" || names[1] != "blobs/sha256/" || names[6] != "index.json" || names[7] != "oci-layout" {
		t.Errorf("members %v", names)
	}
	if members[7].data != `{"imageLayoutVersion":"1.0.0"}` {
		t.Errorf("oci-layout %q", members[7].data)
	}
	var index v1.IndexManifest
	readJSON(t, []byte(members[6].data), &index)
	if len(index.Manifests) != 1 {
		t.Fatalf("index.json: %+v", index)
	}
	entry := index.Manifests[0]
	if entry.MediaType != types.OCIManifestSchema1 || entry.Annotations[annotationRefName] != ref {
		t.Errorf("index.json entry %+v", entry)
	}

	info, err := Inspect(out)
	if err != nil {
		t.Fatal(err)
	}
	if info.RefName != ref || info.Digest != entry.Digest.String() || len(info.Images) != 1 ||
		info.Images[0].Platform != "linux/amd64" || info.Images[0].Digest != info.Digest {
		t.Errorf("Inspect: %+v", info)
	}
	var blobSum int64
	for _, m := range members[2:6] {
		blobSum += m.hdr.Size
	}
	if info.Size != blobSum || info.Images[0].Size != blobSum {
		t.Errorf("sizes %d / %d, blobs hold %d bytes", info.Size, info.Images[0].Size, blobSum)
	}

	// skopeo, without and with the reference.
	for _, arg := range []string{"oci-archive:" + out, "oci-archive:" + out + ":" + ref} {
		si := inspectSkopeo(t, arg)
		if si.Digest != info.Digest || si.Architecture != "amd64" || si.Os != "linux" || len(si.Layers) != 2 ||
			si.Labels["org.opencontainers.image.version"] != "1.0.0" || strings.Join(si.Env, ",") != "A=1,B=2" {
			t.Errorf("skopeo inspect %s: %+v", arg, si)
		}
		if c, err := time.Parse(time.RFC3339, si.Created); err != nil || !c.Equal(buildDate) {
			t.Errorf("skopeo: created %q", si.Created)
		}
	}
	dir := extract(t, out)
	if raw := skopeo(t, "inspect", "--raw", "oci-archive:"+out); !bytes.Equal(raw, layoutBlob(t, dir, entry.Digest)) {
		t.Errorf("skopeo inspect --raw printed %s", raw)
	}
	var cf v1.ConfigFile
	readJSON(t, skopeo(t, "inspect", "--config", "oci-archive:"+out), &cf)
	c := cf.Config
	if strings.Join(c.Entrypoint, " ") != "/opt/app/bin/app" || strings.Join(c.Cmd, " ") != "--serve" || c.WorkingDir != "/opt/app" || c.User != "65532" {
		t.Errorf("config %+v", c)
	}
	if len(cf.History) != 2 || !cf.History[1].Created.Equal(buildDate) || cf.History[1].CreatedBy != "release: add file layer1 at /etc/app/extra.conf" {
		t.Errorf("history %+v", cf.History)
	}

	// ggcr reads the extracted layout; the layer tars are deterministic.
	lp, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	img, err := lp.Image(entry.Digest)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 2 {
		t.Fatalf("layers %v %v", layers, err)
	}
	for i, l := range layers {
		mt, _ := l.MediaType()
		d, _ := l.Digest()
		diff, _ := l.DiffID()
		if mt != types.OCIUncompressedLayer || d != diff || d != cf.RootFS.DiffIDs[i] {
			t.Errorf("layer %d: %s digest %s diff ID %s config %s", i, mt, d, diff, cf.RootFS.DiffIDs[i])
		}
	}
	type e struct {
		name string
		mode int64
		data string
	}
	want := [][]e{{
		{"opt/", 0o755, ""}, {"opt/app/", 0o755, ""}, {"opt/app/bin/", 0o755, ""}, {"opt/app/bin/app", 0o755, "#!/bin/sh\necho app\n"},
		{"opt/app/etc/", 0o755, ""}, {"opt/app/etc/app.conf", 0o644, "level=1\n"},
		{"opt/app/share/", 0o755, ""}, {"opt/app/share/doc/", 0o755, ""}, {"opt/app/share/doc/a/", 0o755, ""}, {"opt/app/share/doc/a/b.txt", 0o644, "deep\n"},
	}, {
		{"etc/", 0o755, ""}, {"etc/app/", 0o755, ""}, {"etc/app/extra.conf", 0o600, "secret\n"},
	}}
	for i, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		var got []e
		for _, te := range readTar(t, rc) {
			got = append(got, e{te.hdr.Name, te.hdr.Mode, te.data})
			h := te.hdr
			if !h.ModTime.Equal(buildDate) || h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" || !h.AccessTime.IsZero() || len(h.PAXRecords) != 0 {
				t.Errorf("layer %d: %s: header %+v", i, h.Name, h)
			}
		}
		rc.Close()
		if !slices.Equal(got, want[i]) {
			t.Errorf("layer %d:\n got %v\nwant %v", i, got, want[i])
		}
	}
}

func TestMultiPlatformIndex(t *testing.T) {
	const ref = "registry.example.com/edge/multi:2"
	common := appTree(t)
	armOnly := writeFile(t, filepath.Join(t.TempDir(), "qemu.conf"), "arm\n", 0o644)
	spec := newSpec(ref, "linux/amd64", "linux/arm64")
	spec.Layers = []Layer{
		{Source: "layer0", Dir: true, Dest: "/opt/app"},
		{Source: "layer1", Dest: "/etc/arm.conf", Platform: "linux/arm64"},
	}
	out := mustRun(t, spec, map[string]string{"layer0": common, "layer1": armOnly})
	info, err := Inspect(out)
	if err != nil {
		t.Fatal(err)
	}
	if info.MediaType != string(types.OCIImageIndex) || !slices.Equal(info.Platforms(), []string{"linux/amd64", "linux/arm64"}) {
		t.Fatalf("Inspect: %+v", info)
	}

	raw := skopeo(t, "inspect", "--raw", "oci-archive:"+out)
	sum := sha256.Sum256(raw)
	if "sha256:"+hex.EncodeToString(sum[:]) != info.Digest {
		t.Errorf("skopeo's raw index has digest %x, Inspect says %s", sum, info.Digest)
	}
	var idx v1.IndexManifest
	readJSON(t, raw, &idx)
	if idx.MediaType != types.OCIImageIndex || len(idx.Manifests) != 2 {
		t.Fatalf("index %s", raw)
	}
	for i, arch := range []string{"amd64", "arm64"} {
		d := idx.Manifests[i]
		if d.Platform == nil || d.Platform.OS != "linux" || d.Platform.Architecture != arch || d.Digest.String() != info.Images[i].Digest {
			t.Errorf("index entry %d: %+v", i, d)
		}
	}
	amd := inspectSkopeo(t, "--override-arch", "amd64", "oci-archive:"+out)
	arm := inspectSkopeo(t, "--override-arch", "arm64", "oci-archive:"+out)
	if amd.Architecture != "amd64" || len(amd.Layers) != 1 || arm.Architecture != "arm64" || len(arm.Layers) != 2 {
		t.Fatalf("amd64 %+v\narm64 %+v", amd, arm)
	}
	if amd.Layers[0] != arm.Layers[0] {
		t.Errorf("the common layer differs between platforms: %s, %s", amd.Layers[0], arm.Layers[0])
	}
	// index, 2 manifests, 2 configs, the common layer once, the arm layer
	if n := len(readTarFile(t, out)) - 4; n != 7 {
		t.Errorf("%d blobs, want 7", n)
	}
}

// TestReproducible builds the same image from two copies of the sources
// in different directories, made at different times in a different
// order: the archives must be byte-identical, and a changed byte must
// change them.
func TestReproducible(t *testing.T) {
	const ref = "registry.example.com/edge/repro:1"
	files := map[string]tfile{"a/x": {"x", 0o755}, "b/y": {"y", 0o644}, "c": {"c", 0o644}}
	mk := func(order []string, mtime time.Time) string {
		root := t.TempDir()
		for _, n := range order {
			writeTree(t, root, map[string]tfile{n: files[n]})
			if err := os.Chtimes(filepath.Join(root, n), mtime, mtime); err != nil {
				t.Fatal(err)
			}
		}
		return root
	}
	spec := newSpec(ref, "linux/arm64", "linux/arm/v7")
	slices.Sort(spec.Platforms)
	spec.Layers = []Layer{{Source: "layer0", Dir: true, Dest: "/srv"}}
	spec.Env = map[string]string{"Z": "1", "A": "2", "M": "3"}
	one := mustRun(t, spec, map[string]string{"layer0": mk([]string{"a/x", "b/y", "c"}, time.Unix(1e9, 0))})
	two := mustRun(t, spec, map[string]string{"layer0": mk([]string{"c", "b/y", "a/x"}, time.Now())})
	b1, _ := os.ReadFile(one)
	b2, _ := os.ReadFile(two)
	if !bytes.Equal(b1, b2) {
		t.Fatal("two builds of the same inputs differ")
	}
	changed := mk([]string{"a/x", "b/y", "c"}, time.Unix(1e9, 0))
	writeFile(t, filepath.Join(changed, "c"), "C", 0o644)
	three := mustRun(t, spec, map[string]string{"layer0": changed})
	i1, err := Inspect(one)
	if err != nil {
		t.Fatal(err)
	}
	i3, err := Inspect(three)
	if err != nil {
		t.Fatal(err)
	}
	if i1.Digest == i3.Digest {
		t.Error("changing a file's content did not change the image")
	}
}

// buildBase makes a two-platform base image with our own step and
// returns its archive.
func buildBase(t testing.TB, ref string) string {
	t.Helper()
	spec := newSpec(ref, "linux/amd64", "linux/arm64")
	spec.Layers = []Layer{{Source: "layer0", Dir: true, Dest: "/usr"}}
	spec.Env = map[string]string{"PATH": "/usr/bin", "LANG": "C.UTF-8"}
	spec.Labels = map[string]string{"base": "yes", "tier": "base"}
	spec.Cmd = []string{"sh"}
	tree := writeTree(t, t.TempDir(), map[string]tfile{"bin/sh": {"#!sh", 0o755}, "lib/libc.so": {"libc", 0o644}})
	return mustRun(t, spec, map[string]string{"layer0": tree})
}

func TestOnBaseLayoutArchiveAndDockerSave(t *testing.T) {
	const baseRef = "registry.example.com/base/tiny:1"
	const ref = "registry.example.com/edge/app:2"
	baseTar := buildBase(t, baseRef)
	baseInfo, err := Inspect(baseTar)
	if err != nil {
		t.Fatal(err)
	}
	layoutDir := extract(t, baseTar)
	appFile := writeFile(t, filepath.Join(t.TempDir(), "run"), "#!/bin/sh\n", 0o755)

	spec := newSpec(ref, "linux/amd64", "linux/arm64")
	spec.Base = &Base{Source: "base", Format: FormatLayout, Ref: baseRef}
	spec.Layers = []Layer{{Source: "layer0", Dest: "/app/run"}}
	spec.Env = map[string]string{"PATH": "/app:/usr/bin", "APP": "1"}
	spec.Labels = map[string]string{"tier": "app"}
	spec.Entrypoint = []string{"/app/run"}
	out := mustRun(t, spec, map[string]string{"base": layoutDir, "layer0": appFile})
	info, err := Inspect(out)
	if err != nil {
		t.Fatal(err)
	}
	dir := extract(t, out)
	baseDir := layoutDir
	for i, arch := range []string{"amd64", "arm64"} {
		var m, bm v1.Manifest
		readJSON(t, layoutBlob(t, dir, v1.Hash{Algorithm: "sha256", Hex: strings.TrimPrefix(info.Images[i].Digest, "sha256:")}), &m)
		bd := v1.Hash{Algorithm: "sha256", Hex: strings.TrimPrefix(baseInfo.Images[i].Digest, "sha256:")}
		readJSON(t, layoutBlob(t, baseDir, bd), &bm)
		if len(m.Layers) != len(bm.Layers)+1 || m.Layers[0].Digest != bm.Layers[0].Digest {
			t.Errorf("%s: layers %+v, base layers %+v", arch, m.Layers, bm.Layers)
		}
		if m.Annotations[annotationBaseDigest] != bd.String() || m.Annotations[annotationBaseName] != baseRef {
			t.Errorf("%s: annotations %v", arch, m.Annotations)
		}
		var cf, bcf v1.ConfigFile
		readJSON(t, layoutBlob(t, dir, m.Config.Digest), &cf)
		readJSON(t, layoutBlob(t, baseDir, bm.Config.Digest), &bcf)
		c := cf.Config
		if strings.Join(c.Env, ",") != "LANG=C.UTF-8,PATH=/app:/usr/bin,APP=1" {
			t.Errorf("%s: env %v (base %v)", arch, c.Env, bcf.Config.Env)
		}
		if c.Labels["base"] != "yes" || c.Labels["tier"] != "app" || c.Cmd != nil || strings.Join(c.Entrypoint, "") != "/app/run" {
			t.Errorf("%s: config %+v", arch, c)
		}
		if len(cf.History) != len(bcf.History)+1 || cf.History[0] != bcf.History[0] || cf.Architecture != arch {
			t.Errorf("%s: history %+v, base %+v", arch, cf.History, bcf.History)
		}
		si := inspectSkopeo(t, "--override-arch", arch, "oci-archive:"+out)
		if len(si.Layers) != 2 || si.Layers[0] != bm.Layers[0].Digest.String() {
			t.Errorf("skopeo %s: %+v", arch, si)
		}
	}

	// The base as an OCI archive (read in place) is the same base.
	spec2 := spec
	spec2.Base = &Base{Source: "base", Format: FormatTarball, Ref: baseRef}
	out2 := mustRun(t, spec2, map[string]string{"base": baseTar, "layer0": appFile})
	b1, _ := os.ReadFile(out)
	b2, _ := os.ReadFile(out2)
	if !bytes.Equal(b1, b2) {
		t.Error("building on the base's layout directory and on its archive differ")
	}

	// A docker-save tarball of the amd64 base, written by ggcr.
	baseIdx, err := layout.ImageIndexFromPath(layoutDir)
	if err != nil {
		t.Fatal(err)
	}
	platforms, err := baseIdx.ImageIndex(v1.Hash{Algorithm: "sha256", Hex: strings.TrimPrefix(baseInfo.Digest, "sha256:")})
	if err != nil {
		t.Fatal(err)
	}
	baseImg, err := platforms.Image(v1.Hash{Algorithm: "sha256", Hex: strings.TrimPrefix(baseInfo.Images[0].Digest, "sha256:")})
	if err != nil {
		t.Fatal(err)
	}
	docker := writeDockerSave(t, baseRef, baseImg)
	spec3 := spec
	spec3.Platforms = []string{"linux/amd64"}
	spec3.Base = &Base{Source: "base", Format: FormatTarball, Ref: baseRef}
	out3 := mustRun(t, spec3, map[string]string{"base": docker, "layer0": appFile})
	info3, err := Inspect(out3)
	if err != nil {
		t.Fatal(err)
	}
	// Same config (the base's diff IDs and ours), so the same image ID.
	if info3.Images[0].ConfigDigest != info.Images[0].ConfigDigest {
		t.Errorf("image ID on the docker-save base %s, on the layout %s", info3.Images[0].ConfigDigest, info.Images[0].ConfigDigest)
	}
	si := inspectSkopeo(t, "oci-archive:"+out3+":"+ref)
	if len(si.Layers) != 2 || si.Architecture != "amd64" {
		t.Errorf("skopeo: %+v", si)
	}
}

// TestSkopeoArchives: skopeo copies our archive (reading and verifying
// every blob) into archives of its own, which Inspect reads and which
// serve as bases with their gzip layers kept byte for byte.
func TestSkopeoArchives(t *testing.T) {
	const ref = "registry.example.com/edge/copy:1"
	spec := newSpec(ref)
	spec.Layers = []Layer{{Source: "layer0", Dir: true, Dest: "/opt"}}
	ours := mustRun(t, spec, map[string]string{"layer0": appTree(t)})
	info, err := Inspect(ours)
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	same := filepath.Join(tmp, "same.tar")
	skopeoCopy(t, "--dest-oci-accept-uncompressed-layers", "oci-archive:"+ours, "oci-archive:"+same+":"+ref)
	sameInfo, err := Inspect(same)
	if err != nil {
		t.Fatal(err)
	}
	if sameInfo.Digest != info.Digest || sameInfo.RefName != ref {
		t.Errorf("skopeo's copy: %+v, ours %+v", sameInfo, info)
	}
	gz := filepath.Join(tmp, "gzip.tar")
	skopeoCopy(t, "oci-archive:"+ours+":"+ref, "oci-archive:"+gz+":base")
	gzInfo, err := Inspect(gz)
	if err != nil {
		t.Fatal(err)
	}
	if gzInfo.Digest == info.Digest || gzInfo.Images[0].ConfigDigest != info.Images[0].ConfigDigest || gzInfo.RefName != "base" {
		t.Errorf("skopeo's compressed copy: %+v, ours %+v", gzInfo, info)
	}
	var gzManifest v1.Manifest
	readJSON(t, skopeo(t, "inspect", "--raw", "oci-archive:"+gz), &gzManifest)
	if gzManifest.Layers[0].MediaType != types.OCILayer {
		t.Fatalf("skopeo wrote %s", gzManifest.Layers[0].MediaType)
	}

	app := newSpec("registry.example.com/edge/on-gzip:1")
	app.Base = &Base{Source: "base", Format: FormatTarball, Ref: "base"}
	app.Layers = []Layer{{Source: "layer0", Dest: "/etc/motd"}}
	out := mustRun(t, app, map[string]string{"base": gz, "layer0": writeFile(t, filepath.Join(tmp, "motd"), "hi\n", 0o644)})
	var m v1.Manifest
	readJSON(t, skopeo(t, "inspect", "--raw", "oci-archive:"+out), &m)
	if len(m.Layers) != 2 || m.Layers[0].Digest != gzManifest.Layers[0].Digest || m.Layers[0].MediaType != types.OCILayer || m.Layers[1].MediaType != types.OCIUncompressedLayer {
		t.Errorf("layers %+v", m.Layers)
	}
}

func TestDigestReference(t *testing.T) {
	const repo = "registry.example.com/edge/pinned"
	src := appTree(t)
	build := func(ref string) (string, error) {
		spec := newSpec(ref)
		spec.Layers = []Layer{{Source: "layer0", Dir: true, Dest: "/"}}
		return runStep(t, spec, map[string]string{"layer0": src})
	}
	wrong := repo + "@sha256:" + strings.Repeat("0", 64)
	_, err := build(wrong)
	wantErr(t, err, "is pinned by digest, but these inputs build sha256:")
	actual := strings.TrimSuffix(strings.SplitAfter(err.Error(), "build ")[1], "; change the reference's digest to it, or restore the inputs that produced sha256:"+strings.Repeat("0", 64))
	pinned := repo + "@" + actual
	out, err := build(pinned)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(out) != "registry.example.com_edge_pinned@sha256__"+strings.TrimPrefix(actual, "sha256:")+".tar" {
		t.Errorf("file name %s", filepath.Base(out))
	}
	si := inspectSkopeo(t, "oci-archive:"+out+":"+pinned)
	if si.Digest != actual {
		t.Errorf("skopeo: %+v, want %s", si, actual)
	}
}

func TestInspectErrors(t *testing.T) {
	spec := newSpec("registry.example.com/edge/x:1")
	spec.Layers = []Layer{{Source: "layer0", Dir: true, Dest: "/x"}}
	good := mustRun(t, spec, map[string]string{"layer0": appTree(t)})
	info, err := Inspect(good)
	if err != nil {
		t.Fatal(err)
	}
	members := readTarFile(t, good)
	tmp := t.TempDir()
	// rewrite writes a tar of the good archive's members, changed by f.
	rewrite := func(name string, f func(m *tarEntry) bool) string {
		p := filepath.Join(tmp, name)
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, m := range members {
			h := *m.hdr
			m := tarEntry{hdr: &h, data: m.data}
			if !f(&m) {
				continue
			}
			m.hdr.Size = int64(len(m.data))
			if err := tw.WriteHeader(m.hdr); err != nil {
				t.Fatal(err)
			}
			if _, err := tw.Write([]byte(m.data)); err != nil {
				t.Fatal(err)
			}
		}
		tw.Close()
		writeFile(t, p, buf.String(), 0o644)
		return p
	}
	layer := "blobs/sha256/" + strings.TrimPrefix(info.Images[0].Digest, "sha256:")
	var m v1.Manifest
	for _, e := range members {
		if e.hdr.Name == layer {
			readJSON(t, []byte(e.data), &m)
		}
	}
	layerBlob := "blobs/sha256/" + m.Layers[0].Digest.Hex

	cases := []struct {
		name, file string
		want       []string
	}{
		{"not a tar", writeFile(t, filepath.Join(tmp, "text.tar"), strings.Repeat("hello\n", 200), 0o644), []string{"text.tar", "not a tar archive"}},
		{"gzip", writeFile(t, filepath.Join(tmp, "z.tar.gz"), "\x1f\x8b\x08\x00rest", 0o644), []string{"z.tar.gz", "gzip-compressed", "gunzip"}},
		{"missing file", filepath.Join(tmp, "none.tar"), []string{"none.tar", "no such file"}},
		{"no index.json", rewrite("noindex.tar", func(m *tarEntry) bool { return m.hdr.Name != "index.json" }), []string{"noindex.tar", "no index.json"}},
		{"docker save", rewrite("docker.tar", func(m *tarEntry) bool {
			if m.hdr.Name == "index.json" {
				m.hdr.Name = "manifest.json"
			}
			return true
		}), []string{"docker.tar", "docker save archive", "skopeo copy docker-archive:"}},
		{"no oci-layout", rewrite("nolayout.tar", func(m *tarEntry) bool { return m.hdr.Name != "oci-layout" }), []string{"nolayout.tar", "no oci-layout"}},
		{"missing layer", rewrite("nolayer.tar", func(m *tarEntry) bool { return m.hdr.Name != layerBlob }), []string{"nolayer.tar", "blob " + m.Layers[0].Digest.String(), "is missing"}},
		{"damaged layer", rewrite("damaged.tar", func(m *tarEntry) bool {
			if m.hdr.Name == layerBlob {
				b := []byte(m.data)
				b[len(b)/3] ^= 1
				m.data = string(b)
			}
			return true
		}), []string{"damaged.tar", "blob " + m.Layers[0].Digest.String(), "content has digest", "damaged"}},
		{"truncated layer", rewrite("short.tar", func(m *tarEntry) bool {
			if m.hdr.Name == layerBlob {
				m.data = m.data[:len(m.data)-512]
			}
			return true
		}), []string{"short.tar", "bytes, its descriptor says"}},
		{"damaged manifest", rewrite("manifest.tar", func(m *tarEntry) bool {
			if m.hdr.Name == layer {
				m.data = strings.Replace(m.data, `"schemaVersion":2`, `"schemaVersion":3`, 1)
			}
			return true
		}), []string{"manifest.tar", info.Images[0].Digest, "damaged"}},
		{"two images", rewrite("two.tar", func(m *tarEntry) bool {
			if m.hdr.Name == "index.json" {
				var idx v1.IndexManifest
				readJSON(t, []byte(m.data), &idx)
				idx.Manifests = append(idx.Manifests, idx.Manifests[0])
				b, err := json.Marshal(idx)
				if err != nil {
					t.Fatal(err)
				}
				m.data = string(b)
			}
			return true
		}), []string{"two.tar", "lists 2 images", "exactly one"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Inspect(c.file)
			wantErr(t, err, c.want...)
		})
	}
}

// writeDockerSave writes img as `docker save` would, with ggcr's tarball
// writer.
func writeDockerSave(t testing.TB, ref string, img v1.Image) string {
	t.Helper()
	tag, err := name.NewTag(ref)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "docker-save.tar")
	if err := tarball.WriteToFile(p, tag, img); err != nil {
		t.Fatal(err)
	}
	return p
}
