package deb

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/relcue/release/pipeline/config"
	"github.com/relcue/release/pipeline/step"
)

func TestTargetsPlanOnePackagePerOS(t *testing.T) {
	root := payload(t)
	kubelet := func(line int) *BuildConfig {
		d := kubeletDecl(root)
		d.Pos = at(line)
		return d
	}
	kubectl := &BuildConfig{
		Name: "kubectl", Version: "1:1.32.2-1", Arch: "arm64", License: "Apache-2.0",
		Maintainer: "Example Edge Systems <release@example.com>", Description: "Kubernetes CLI\nTalks to the API server.",
		Contents: []ContentConfig{{Src: filepath.Join(root, "bin", "kubelet"), Dst: "/usr/bin/kubectl"}},
		Pos:      at(60),
	}
	m := model(map[string][]*BuildConfig{
		"1.4.0": {kubelet(10)},
		"1.5.0": {kubelet(30), kubectl},
	})
	// A second OS with its own folder and a prebuilt .deb, which is not
	// this module's to build.
	m.OS["debian13"] = &config.OSTarget{
		Name: "debian13", Dir: "trixie", Arch: []string{"amd64"},
		Releases: map[string]*config.NodeRelease{"1.5.0": {Version: "1.5.0"}},
	}
	config.SectionOf[*Config](m, SectionName).Nodes["debian13"] = map[string][]Entry{"1.5.0": {
		{Group: "kubernetes", Build: kubelet(70)},
		{Group: "tools", File: &config.Source{Path: "/x/k2s-node-tools_1.0.0_all.deb"}},
	}}
	m.OSNames = []string{"debian12", "debian13"}
	m.OS["debian12"].Versions = []string{"1.4.0", "1.5.0"}

	ts, err := Targets(m)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, tg := range ts {
		ids = append(ids, tg.ID)
	}
	want := []string{"deb/debian12/kubelet_1.32.2-1_amd64", "deb/debian12/kubectl_1:1.32.2-1_arm64", "deb/debian13/kubelet_1.32.2-1_amd64"}
	if !slices.Equal(ids, want) {
		t.Fatalf("targets %q, want %q", ids, want)
	}
	byID := map[string]step.Target{}
	for _, tg := range ts {
		byID[tg.ID] = tg
		if tg.Kind != Kind || len(tg.Deps) != 0 {
			t.Errorf("%s: kind %s, deps %v", tg.ID, tg.Kind, tg.Deps)
		}
	}
	if got := byID[want[0]]; got.Pos != "/cfg/os.cue:10:3" || !slices.Equal(got.Outputs, []string{"debs/debian12/kubelet_1.32.2-1_amd64.deb"}) {
		t.Errorf("kubelet: pos %s (want the first declaration), outputs %v", got.Pos, got.Outputs)
	}
	if got := byID[want[1]].Outputs; !slices.Equal(got, []string{"debs/debian12/kubectl_1.32.2-1_arm64.deb"}) {
		t.Errorf("kubectl outputs %v: the epoch stays out of file names", got)
	}
	if got := byID[want[2]].Outputs; !slices.Equal(got, []string{"debs/trixie/kubelet_1.32.2-1_amd64.deb"}) {
		t.Errorf("debian13 outputs %v: the OS dir names the folder", got)
	}

	k := byID[want[0]]
	type src struct {
		path string
		dir  bool
		pos  string
	}
	gotSrc := map[string]src{}
	for _, s := range k.Sources {
		gotSrc[s.Name] = src{s.Path, s.Dir, s.Pos}
	}
	wantSrc := map[string]src{
		"content0": {filepath.Join(root, "bin", "kubelet"), false, "/cfg/os.cue:21:3"},
		"content1": {filepath.Join(root, "kubelet.default"), false, "/cfg/os.cue:22:3"},
		"content2": {filepath.Join(root, "plugins"), true, "/cfg/os.cue:23:3"},
		"content3": {filepath.Join(root, "token"), false, "/cfg/os.cue:24:3"},
		"unit0":    {filepath.Join(root, "units", "kubelet.service"), false, "/cfg/os.cue:27:3"},
		"postinst": {filepath.Join(root, "scripts", "postinst"), false, "/cfg/os.cue:10:3"},
		"prerm":    {filepath.Join(root, "scripts", "prerm"), false, "/cfg/os.cue:10:3"},
	}
	if len(gotSrc) != len(wantSrc) {
		t.Errorf("sources %v, want %v", gotSrc, wantSrc)
	}
	for name, w := range wantSrc {
		if gotSrc[name] != w {
			t.Errorf("source %s: %+v, want %+v", name, gotSrc[name], w)
		}
	}

	s := k.Spec.(Spec)
	if s.Section != "admin" || s.Priority != DefaultPriority || s.Date != "2025-06-01T00:00:00Z" {
		t.Errorf("section %q, priority %q, date %q", s.Section, s.Priority, s.Date)
	}
	if c := byID[want[1]].Spec.(Spec); c.Section != DefaultSection || c.Priority != DefaultPriority {
		t.Errorf("defaults not applied: section %q, priority %q", c.Section, c.Priority)
	}
	wantContents := []Content{
		{Source: "content0", Dst: "/usr/bin/kubelet", Type: TypeFile},
		{Source: "content1", Dst: "/etc/default/kubelet", Type: TypeConfig},
		{Source: "content2", Dst: "/usr/lib/kubelet/plugins", Type: TypeFile},
		{Source: "content3", Dst: "/etc/kubelet/token", Mode: 0o600, Type: TypeFile},
		{Dst: "/var/lib/kubelet", Mode: 0o750, Type: TypeDir},
		{Source: "unit0", Dst: "/lib/systemd/system/kubelet.service", Mode: 0o644, Type: TypeFile},
	}
	if len(s.Contents) != len(wantContents) {
		t.Fatalf("contents %+v", s.Contents)
	}
	for i, c := range s.Contents {
		w := wantContents[i]
		if c.Source != w.Source || c.Dst != w.Dst || c.Mode != w.Mode || c.Type != w.Type {
			t.Errorf("contents[%d] %+v, want %+v", i, c, w)
		}
	}
	if s.Scripts != (Scripts{PostInst: "postinst", PreRm: "prerm"}) {
		t.Errorf("scripts %+v", s.Scripts)
	}
	if raw := string(mustJSON(t, s)); strings.Contains(raw, root) {
		t.Errorf("the spec holds a local path, so the cache key would depend on the checkout:\n%s", raw)
	}
}

func TestTargetsRejectOneVersionWithTwoContents(t *testing.T) {
	root := payload(t)
	other := payload(t)
	cases := []struct {
		name   string
		change func(d *BuildConfig)
		want   string
	}{
		{"description", func(d *BuildConfig) { d.Description += "\nMore." }, "(they differ in description)"},
		{"contents", func(d *BuildConfig) { d.Contents[0].Mode = 0o700 }, "(they differ in contents)"},
		{"systemd units", func(d *BuildConfig) { d.SystemdUnits = nil }, "(they differ in contents)"},
		{"depends", func(d *BuildConfig) { d.Depends = d.Depends[:1] }, "(they differ in depends)"},
		{"source file", func(d *BuildConfig) { d.Contents[0].Src = filepath.Join(other, "bin", "kubelet") }, "(they differ in the local file of source content0 (" + filepath.Join(root, "bin", "kubelet") + " vs " + filepath.Join(other, "bin", "kubelet") + "))"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, b := kubeletDecl(root), kubeletDecl(root)
			b.Pos = at(90)
			c.change(b)
			m := model(map[string][]*BuildConfig{"1.4.0": {a}, "1.5.0": {b}})
			m.OS["debian12"].Versions = []string{"1.4.0", "1.5.0"}
			_, err := Targets(m)
			const msg = "deb kubelet 1.32.2-1 (amd64) is declared twice with different contents at /cfg/os.cue:20:3 and /cfg/os.cue:90:3 "
			if err == nil || !strings.Contains(err.Error(), msg) || !strings.Contains(err.Error(), c.want) ||
				!strings.HasSuffix(err.Error(), "; a Debian version must always mean the same bytes — bump the version") {
				t.Fatalf("error:\n%v\nwant %q and %q", err, msg, c.want)
			}
		})
	}

	// Another version, or the same package on another OS, is fine.
	a, b := kubeletDecl(root), kubeletDecl(root)
	b.Version, b.Description = "1.32.2-2", b.Description+"\nMore."
	b.Provides = nil
	ts, err := Targets(model(map[string][]*BuildConfig{"1.4.0": {a}, "1.5.0": {b}}))
	if err != nil || len(ts) != 2 {
		t.Fatalf("two versions: %d targets, %v", len(ts), err)
	}
}

func TestTargetsWithoutOS(t *testing.T) {
	ts, err := Targets(&config.Model{})
	if err != nil || len(ts) != 0 {
		t.Fatalf("%v, %v", ts, err)
	}
}

func TestNames(t *testing.T) {
	if got := TargetID("debian12", "kubelet", "1:1.32.2-1", "amd64"); got != "deb/debian12/kubelet_1:1.32.2-1_amd64" {
		t.Errorf("TargetID %s", got)
	}
	if got := FileName("kubelet", "1:1.32.2-1", "amd64"); got != "kubelet_1.32.2-1_amd64.deb" {
		t.Errorf("FileName %s", got)
	}
	if got := OutputPath("debian12", "kubelet", "1.32.2-1", "all"); got != "debs/debian12/kubelet_1.32.2-1_all.deb" {
		t.Errorf("OutputPath %s", got)
	}
	for _, v := range []string{"1", "0:1.0", "1.32.2-1", "1.4~rc1-0ubuntu1", "2:1.0+dfsg-1~bpo12+1", "1.0-1-2", "20250601"} {
		if err := CheckVersion(v); err != nil {
			t.Errorf("%s: %v", v, err)
		}
	}
	for _, r := range []string{"ab", "libc6 (>= 2.36)", "ab | cd (<< 2:1.0-1)", "python3:any", "foo:amd64 (= 1.0)", "bash (>= 5)", "dash", "diffutils"} {
		if err := checkRelation("depends", r); err != nil {
			t.Errorf("%s: %v", r, err)
		}
	}
}
