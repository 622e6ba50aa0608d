package deb

import (
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relcue/release/pipeline/config"
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

// payloadFiles are the local files of the sample kubelet package.
var payloadFiles = map[string]tfile{
	"bin/kubelet":                  {"#!/bin/sh\necho \"kubelet v1.32.2\"\n", 0o755},
	"kubelet.default":              {"KUBELET_ARGS=\n", 0o644},
	"token":                        {"not-a-secret\n", 0o644},
	"plugins/cni/bridge":           {"#!/bin/sh\necho bridge\n", 0o755},
	"plugins/cni/README":           {"CNI plugins used by the kubelet.\n", 0o644},
	"plugins/conf/10-net.conflist": {"{\"cniVersion\": \"1.0.0\"}\n", 0o644},
	"units/kubelet.service":        {"[Unit]\nDescription=kubelet\n\n[Service]\nExecStart=/usr/bin/kubelet\n\n[Install]\nWantedBy=multi-user.target\n", 0o755},
	"scripts/postinst":             {"#!/bin/sh\nset -e\nif [ \"$1\" = configure ]; then\n\techo \"kubelet configured\"\nfi\n", 0o755},
	"scripts/prerm":                {"#!/bin/sh\nset -e\nif [ \"$1\" = remove ]; then\n\techo \"kubelet removed\"\nfi\n", 0o755},
}

func payload(t testing.TB) string {
	t.Helper()
	root := writeTree(t, t.TempDir(), payloadFiles)
	// An empty directory in a tree is not shipped (the planner's digest
	// does not see it either).
	if err := os.MkdirAll(filepath.Join(root, "plugins", "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	return root
}

func at(line int) config.Pos { return config.Pos{File: "/cfg/os.cue", Line: line, Col: 3} }

// kubeletDecl declares the sample package with files below root.
func kubeletDecl(root string) *BuildConfig {
	p := func(rel string) string { return filepath.Join(root, filepath.FromSlash(rel)) }
	return &BuildConfig{
		Name: "kubelet", Version: "1.32.2-1", Arch: "amd64",
		Maintainer:  "Example Edge Systems <release@example.com>",
		Description: "Kubernetes node agent\nThe kubelet runs the pods scheduled to a node.\n\nBuilt by the release pipeline's tests.",
		Section:     "admin", Homepage: "https://kubernetes.io", License: "Apache-2.0",
		Depends:    []string{"iptables (>= 1.8.7)", "conntrack | conntrack-tools"},
		PreDepends: []string{"init-system-helpers (>= 1.54~)"},
		Recommends: []string{"ca-certificates"},
		Conflicts:  []string{"kubernetes-node"},
		Breaks:     []string{"kubeadm (<< 1.31)"},
		Replaces:   []string{"kubernetes-node"},
		Provides:   []string{"kubernetes-kubelet (= 1.32.2-1)"},
		Contents: []ContentConfig{
			{Src: p("bin/kubelet"), Dst: "/usr/bin/kubelet", Pos: at(21)},
			{Src: p("kubelet.default"), Dst: "/etc/default/kubelet", Type: "config", Pos: at(22)},
			{Src: p("plugins"), Dst: "/usr/lib/kubelet/plugins", Pos: at(23)},
			{Src: p("token"), Dst: "/etc/kubelet/token", Mode: 0o600, Pos: at(24)},
			{Dst: "/var/lib/kubelet", Type: "dir", Mode: 0o750, Pos: at(25)},
		},
		SystemdUnits: []ContentConfig{{Src: p("units/kubelet.service"), Pos: at(27)}},
		Scripts:      ScriptsConfig{PostInst: p("scripts/postinst"), PreRm: p("scripts/prerm")},
		Pos:          at(20),
	}
}

// model puts the declarations into releases of one OS target, debian12.
func model(decls map[string][]*BuildConfig) *config.Model {
	o := &config.OSTarget{Name: "debian12", Distro: "debian", Codename: "bookworm", Arch: []string{"amd64", "arm64"}, Releases: map[string]*config.NodeRelease{}, Pos: at(1)}
	c := &Config{Nodes: map[string]map[string][]Entry{"debian12": {}}}
	for v, ds := range decls {
		o.Releases[v] = &config.NodeRelease{Version: v, Pos: at(2)}
		for _, d := range ds {
			c.Nodes["debian12"][v] = append(c.Nodes["debian12"][v], Entry{Group: "kubernetes", Build: d, Pos: d.Pos})
		}
	}
	m := &config.Model{Build: config.Build{Date: buildDate}, OS: map[string]*config.OSTarget{"debian12": o}}
	m.SetSection(SectionName, c)
	return m
}

func onlyTarget(t testing.TB, m *config.Model) step.Target {
	t.Helper()
	ts, err := Targets(m)
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 1 {
		t.Fatalf("got %d targets, want 1", len(ts))
	}
	return ts[0]
}

// runTarget builds a planned target through the Step, as the pipeline
// would, and returns the path of the .deb.
func runTarget(t testing.TB, tg step.Target) string {
	t.Helper()
	raw, err := json.Marshal(tg.Spec)
	if err != nil {
		t.Fatal(err)
	}
	sources := map[string]string{}
	for _, s := range tg.Sources {
		sources[s.Name] = s.Path
	}
	out := t.TempDir()
	arts, err := Step{}.Run(context.Background(), &step.Input{
		Target: tg.ID, Spec: raw, Sources: sources, OutDir: out, Workers: 1, Progress: step.Discard, Log: io.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(arts) != 1 || arts[0].Kind != ArtifactKind || arts[0].Path != tg.Outputs[0] {
		t.Fatalf("artifacts %+v, want one %s at %s", arts, ArtifactKind, tg.Outputs[0])
	}
	// Only the artifact is left: no scratch files.
	var left []string
	filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(out, p)
			left = append(left, filepath.ToSlash(rel))
		}
		return nil
	})
	if len(left) != 1 || left[0] != arts[0].Path {
		t.Fatalf("the step left %v in its output directory, want only %s", left, arts[0].Path)
	}
	return filepath.Join(out, filepath.FromSlash(arts[0].Path))
}

// tool finds a real peer; tests fail rather than skip without it.
func tool(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found: install %s (.ci/run does)", name, pkg)
	}
	return p
}

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr)
	}
	return string(out)
}

// dpkgBuild makes a .deb with dpkg-deb itself from a tree holding DEBIAN/.
func dpkgBuild(t testing.TB, root, compression string) string {
	t.Helper()
	tool(t, "dpkg-deb", "dpkg")
	out := filepath.Join(t.TempDir(), filepath.Base(root)+"-"+compression+".deb")
	run(t, "dpkg-deb", "--root-owner-group", "-Z"+compression, "--build", root, out)
	return out
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
