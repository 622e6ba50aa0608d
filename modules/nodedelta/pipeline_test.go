package nodedelta_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/relcue/release/modules/deb"
	"github.com/relcue/release/modules/delta"
	"github.com/relcue/release/modules/fullpkg"
	"github.com/relcue/release/modules/image"
	"github.com/relcue/release/modules/nodedelta"
	"github.com/relcue/release/modules/nodepkg"
	"github.com/relcue/release/modules/nodepkg/nodepkgtest"
	"github.com/relcue/release/modules/pkgzip"
	"github.com/relcue/release/pipeline"
	"github.com/relcue/release/pipeline/step"
)

// The node modules in the real pipeline: a CUE configuration with an OS
// target whose .debs are built by modules/deb (nfpm) or given as a file,
// and whose images are built by modules/image, planned and built with the
// cache and scheduler like `release build` does.
const pipelineConfig = `package release

product: name: "k2s"
build: date: "2026-03-01T12:00:00Z"
releases: {
	"1.4.0": inputs: [{dir: "tree/1.4.0"}]
	"1.5.0": inputs: [{dir: "tree/1.5.0"}]
}
deltas: paths: [{from: "1.4.0", to: "1.5.0"}]

_kubelet: {
	_v:          string
	name:        "kubelet"
	version:     "\(_v)-1"
	arch:        "amd64"
	maintainer:  "Release Tests <tests@example.com>"
	description: "Kubernetes node agent\nThe kubelet of the release tests."
	license:     "Apache-2.0"
	contents: [{src: "node/\(_v)/kubelet", dst: "/usr/bin/kubelet", mode: 0o755}]
}
_tools: file: path: "debs/relcue-tools_1.0-1_all.deb"

os: debian12: {
	distro:       "debian"
	codename:     "bookworm"
	controlPlane: true
	releases: {
		"1.4.0": {
			debs: {kubernetes: [{build: _kubelet & {_v: "1.31.4"}}], tools: [_tools]}
			images: [{ref: "registry.example.com/k2s/pause:3.9", layers: [{dir: "img/pause-3.9"}]}]
		}
		"1.5.0": {
			debs: {kubernetes: [{build: _kubelet & {_v: "1.31.6"}}], tools: [_tools]}
			images: [{ref: "registry.example.com/k2s/pause:3.10", layers: [{dir: "img/pause-3.10"}]}]
		}
	}
}
`

func writeFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, c := range files {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func modules() []step.Module {
	return []step.Module{fullpkg.Module(nil), delta.Module(nil), deb.Module, image.Module, nodepkg.Module, nodedelta.Module}
}

func TestPipeline(t *testing.T) {
	cfg := t.TempDir()
	writeFiles(t, cfg, map[string]string{
		"release.cue":            pipelineConfig,
		"tree/1.4.0/README":      "k2s 1.4.0\n",
		"tree/1.5.0/README":      "k2s 1.5.0\n",
		"node/1.31.4/kubelet":    "#!/bin/sh\necho 1.31.4\n",
		"node/1.31.6/kubelet":    "#!/bin/sh\necho 1.31.6\n",
		"img/pause-3.9/pause":    "pause 3.9\n",
		"img/pause-3.10/pause":   "pause 3.10\n",
		"tree/1.5.0/bin/kubelet": "new\n",
	})
	tools := nodepkgtest.BuildDeb(t, filepath.Join(cfg, "debs"), nodepkgtest.Deb{Name: "relcue-tools", Version: "1.0-1", Files: map[string]string{"/opt/tools/x": "x\n"}})
	if filepath.Base(tools) != "relcue-tools_1.0-1_all.deb" {
		t.Fatalf("built %s", tools)
	}

	build := func(workers int) (map[string][]byte, *pipeline.BuildReport) {
		t.Helper()
		ctx := context.Background()
		s, err := pipeline.Open(ctx, modules(), pipeline.Options{Dir: cfg, CacheDir: t.TempDir(), Workers: workers})
		if err != nil {
			t.Fatal(err)
		}
		dist := t.TempDir()
		rep, err := s.Build(ctx, pipeline.BuildOptions{Dist: dist})
		if err != nil {
			t.Fatalf("build: %v\n%+v", err, rep)
		}
		out := map[string][]byte{}
		for _, a := range rep.Artifacts {
			out[a.Path] = mustRead(t, filepath.Join(dist, filepath.FromSlash(a.Path)))
		}
		return out, rep
	}
	first, rep := build(2)
	var ids []string
	for _, o := range rep.Targets {
		ids = append(ids, o.ID)
	}
	for _, want := range []string{"node/debian12/1.4.0", "node/debian12/1.5.0", "node-delta/debian12/1.4.0..1.5.0", "delta/1.4.0..1.5.0"} {
		if !slices.Contains(ids, want) {
			t.Errorf("target %s was not built; targets: %v", want, ids)
		}
	}
	nodeDelta := "node-deltas/k2s-node-delta-debian12-1.4.0-to-1.5.0.zip"
	for _, p := range []string{"nodes/k2s-node-debian12-1.4.0.zip", "nodes/k2s-node-debian12-1.5.0.zip", nodeDelta, "deltas/k2s-delta-1.4.0-to-1.5.0.zip"} {
		if first[p] == nil {
			t.Fatalf("dist has no %s", p)
		}
	}

	// The node delta ships the new kubelet and pause image, not the
	// unchanged existing .deb.
	p := filepath.Join(t.TempDir(), "nd.zip")
	os.WriteFile(p, first[nodeDelta], 0o644)
	r, err := pkgzip.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	m, err := nodedelta.ReadManifest(r)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"images/registry.example.com_k2s_pause__3.10.tar", "packages/debian12/kubernetes/kubelet_1.31.6-1_amd64.deb"}
	if !slices.Equal(m.Added, want) || len(m.Changed) != 0 || !slices.Equal(m.DebianPackageDiff.Changed, []string{"kubernetes/kubelet_1.31.6-1_amd64.deb"}) {
		t.Errorf("node delta: added %v changed %v, package diff %+v", m.Added, m.Changed, m.DebianPackageDiff)
	}

	// The cluster delta's diffs come from the control plane's node packages.
	cp := filepath.Join(t.TempDir(), "d.zip")
	os.WriteFile(cp, first["deltas/k2s-delta-1.4.0-to-1.5.0.zip"], 0o644)
	cr, err := pkgzip.Open(cp)
	if err != nil {
		t.Fatal(err)
	}
	defer cr.Close()
	dm, err := delta.ReadManifest(cr)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(dm.DebianPackageDiff.Changed, []string{"kubelet: 1.31.4-1 -> 1.31.6-1"}) || !dm.DebianPackageDiff.Processed ||
		len(dm.ContainerImageDiff.AddedImages) != 1 || dm.ContainerImageDiff.AddedImages[0].FullName != "registry.example.com/k2s/pause:3.10" ||
		len(dm.ContainerImageDiff.RemovedImages) != 1 {
		t.Errorf("cluster delta diffs: %+v %+v", dm.DebianPackageDiff, dm.ContainerImageDiff)
	}

	// A second build from an empty cache with other parallelism gives the
	// same bytes for every artifact.
	second, _ := build(1)
	for path, data := range first {
		if !bytes.Equal(second[path], data) {
			t.Errorf("%s differs between two builds", path)
		}
	}
	if len(second) != len(first) {
		t.Errorf("second build made %d artifacts, the first %d", len(second), len(first))
	}
}
