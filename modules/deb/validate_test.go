package deb

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relcue/release/pipeline/config"
	"github.com/relcue/release/pipeline/step"
)

func TestTargetsRejectInvalidDeclarations(t *testing.T) {
	root := payload(t)
	noShebang := writeTree(t, t.TempDir(), map[string]tfile{"postinst": {"echo hi\n", 0o755}, "kubelet.conf": {"x\n", 0o644}})
	missing := filepath.Join(root, "no", "such", "kubelet")
	spec, content, unit := "/cfg/os.cue:20:3: deb ", "/cfg/os.cue:21:3: deb ", "/cfg/os.cue:27:3: deb "
	cases := []struct {
		name   string
		change func(d *BuildConfig, m *config.Model)
		want   string
	}{
		{"name upper case", func(d *BuildConfig, _ *config.Model) { d.Name = "Kubelet" }, spec + `Kubelet 1.32.2-1: name "Kubelet" is not a Debian package name`},
		{"name too short", func(d *BuildConfig, _ *config.Model) { d.Name = "k" }, `name "k" is not a Debian package name: use at least two characters`},
		{"name empty", func(d *BuildConfig, _ *config.Model) { d.Name = "" }, "name is empty"},
		{"version with v", func(d *BuildConfig, _ *config.Model) { d.Version = "v1.32.2-1" }, `version "v1.32.2-1": the upstream version "v1.32.2" must start with a digit`},
		{"version epoch", func(d *BuildConfig, _ *config.Model) { d.Version = "a:1.0-1" }, `version "a:1.0-1": the epoch before ':' must be a number`},
		{"version trailing dash", func(d *BuildConfig, _ *config.Model) { d.Version = "1.0-" }, `version "1.0-" ends in '-'`},
		{"version underscore", func(d *BuildConfig, _ *config.Model) { d.Version = "1.0_1" }, `the upstream version "1.0_1" may hold only letters, digits`},
		{"version colon", func(d *BuildConfig, _ *config.Model) { d.Version = "1:2:3" }, `(':' only after an epoch)`},
		{"version revision", func(d *BuildConfig, _ *config.Model) { d.Version = "1.0-1_2" }, `the Debian revision "1_2" may hold only`},
		{"version space", func(d *BuildConfig, _ *config.Model) { d.Version = "1.0 1" }, `version "1.0 1" contains white space`},
		{"version empty", func(d *BuildConfig, _ *config.Model) { d.Version = "" }, "version is empty"},
		{"arch unknown", func(d *BuildConfig, _ *config.Model) { d.Arch = "x86_64" }, `arch "x86_64" is not a known Debian architecture; use one of all, amd64, arm64`},
		{"arch not of os", func(d *BuildConfig, _ *config.Model) { d.Arch = "riscv64" }, "arch riscv64 is not an architecture of os debian12 (amd64, arm64)"},
		{"maintainer empty", func(d *BuildConfig, _ *config.Model) { d.Maintainer = "" }, `maintainer is empty; give "Full Name <address@example.com>"`},
		{"maintainer bare address", func(d *BuildConfig, _ *config.Model) { d.Maintainer = "release@example.com" }, `maintainer "release@example.com" is not "Full Name <address@example.com>"`},
		{"description empty", func(d *BuildConfig, _ *config.Model) { d.Description = " \n" }, "description is empty; give a one-line synopsis"},
		{"description synopsis only", func(d *BuildConfig, _ *config.Model) { d.Description = "Kubernetes node agent\n \n" }, `description "Kubernetes node agent" has only a synopsis (lintian: extended-description-is-empty)`},
		{"description one word", func(d *BuildConfig, _ *config.Model) { d.Description = "agent\nRuns pods." }, `description synopsis "agent" is a single word (lintian: description-too-short)`},
		{"description package name", func(d *BuildConfig, _ *config.Model) { d.Description = "Kubelet - the node agent\nRuns pods." }, `description synopsis "Kubelet - the node agent" starts with the package name (lintian: description-starts-with-package-name)`},
		{"description repeated", func(d *BuildConfig, _ *config.Model) {
			d.Description = "Kubernetes node agent\nKubernetes node-agent."
		}, `description repeats the synopsis "Kubernetes node agent" as its second line (lintian: description-synopsis-is-duplicated)`},
		{"description tab", func(d *BuildConfig, _ *config.Model) { d.Description = "Kubernetes node agent\n\tRuns pods." }, "description contains a tab (lintian: description-contains-tabs)"},
		{"description dot line", func(d *BuildConfig, _ *config.Model) {
			d.Description = "Kubernetes node agent\nRuns pods.\n.profile is read"
		}, `description line 3 ".profile is read" starts with '.'`},
		{"version revision zero", func(d *BuildConfig, _ *config.Model) { d.Version = "1.32.2-0" }, `version "1.32.2-0": the Debian revision 0 is not used (lintian: debian-revision-is-zero)`},
		{"maintainer host", func(d *BuildConfig, _ *config.Model) { d.Maintainer = "Ops <ops@localhost>" }, `maintainer "Ops <ops@localhost>" is not "Full Name <address@example.com>"`},
		{"conflicts alternatives", func(d *BuildConfig, _ *config.Model) { d.Conflicts = []string{"ab | cd"} }, `conflicts[0] "ab | cd" has alternatives, which only depends, preDepends, recommends and suggests allow`},
		{"provides range", func(d *BuildConfig, _ *config.Model) { d.Provides = []string{"kubernetes-kubelet (>= 1.32)"} }, `provides[0] "kubernetes-kubelet (>= 1.32)": a provided version can only be exact`},
		{"depends essential", func(d *BuildConfig, _ *config.Model) { d.Depends = []string{"iptables", "bash"} }, `depends[1] "bash": bash is essential and always installed (lintian: depends-on-essential-package-without-using-version)`},
		{"description control char", func(d *BuildConfig, _ *config.Model) { d.Description = "a\x1b\nb" }, "description contains control characters"},
		{"section", func(d *BuildConfig, _ *config.Model) { d.Section = "Admin Tools" }, `section "Admin Tools" is not a Debian section`},
		{"priority extra", func(d *BuildConfig, _ *config.Model) { d.Priority = "extra" }, `priority "extra" is deprecated since Debian Policy 4.0.1; use "optional"`},
		{"priority unknown", func(d *BuildConfig, _ *config.Model) { d.Priority = "high" }, `priority "high" is not a Debian priority`},
		{"homepage", func(d *BuildConfig, _ *config.Model) { d.Homepage = "kubernetes.io" }, `homepage "kubernetes.io" is not an http(s) URL`},
		{"license newline", func(d *BuildConfig, _ *config.Model) { d.License = "MIT\nX" }, `license "MIT\nX" contains a line break`},
		{"no license", func(d *BuildConfig, _ *config.Model) { d.License = "" }, "license is empty and no contents entry provides /usr/share/doc/kubelet/copyright; set license"},
		{"depends bad version", func(d *BuildConfig, _ *config.Model) { d.Depends = []string{"iptables (>= v1.8)"} }, `depends[0] "iptables (>= v1.8)": version "v1.8": the upstream version "v1.8" must start with a digit`},
		{"depends comma", func(d *BuildConfig, _ *config.Model) { d.Depends = []string{"a, b"} }, `depends[0] "a, b" contains ','; give each relation as its own list element`},
		{"breaks operator", func(d *BuildConfig, _ *config.Model) { d.Breaks = []string{"kubeadm (< 1.31)"} }, `breaks[0] "kubeadm (< 1.31)" is not a Debian relation`},
		{"preDepends empty", func(d *BuildConfig, _ *config.Model) { d.PreDepends = []string{""} }, "preDepends[0] is empty"},
		{"src missing", func(d *BuildConfig, _ *config.Model) { d.Contents[0].Src = missing }, content + "kubelet 1.32.2-1: contents[0].src " + missing + " does not exist; fix the path or create it"},
		{"dst relative", func(d *BuildConfig, _ *config.Model) { d.Contents[0].Dst = "usr/bin/kubelet" }, content + `kubelet 1.32.2-1: contents[0].dst "usr/bin/kubelet" is not absolute; give the path on the node, e.g. /usr/bin/kubelet`},
		{"dst dotdot", func(d *BuildConfig, _ *config.Model) { d.Contents[0].Dst = "/usr/../etc/kubelet" }, `contents[0].dst "/usr/../etc/kubelet" contains ".."`},
		{"dst unclean", func(d *BuildConfig, _ *config.Model) { d.Contents[0].Dst = "/usr//bin/kubelet/" }, `contents[0].dst "/usr//bin/kubelet/" is not clean; write "/usr/bin/kubelet"`},
		{"dst root", func(d *BuildConfig, _ *config.Model) { d.Contents[0].Dst = "/" }, `contents[0].dst is "/"`},
		{"dst empty", func(d *BuildConfig, _ *config.Model) { d.Contents[0].Dst = "" }, "contents[0].dst is empty"},
		{"dst twice", func(d *BuildConfig, _ *config.Model) { d.Contents[3].Dst = "/usr/bin/kubelet" }, "/cfg/os.cue:24:3: deb kubelet 1.32.2-1: contents[3].dst /usr/bin/kubelet is also written by contents[0]"},
		{"unit over content", func(d *BuildConfig, _ *config.Model) { d.Contents[0].Dst = "/lib/systemd/system/kubelet.service" }, unit + "kubelet 1.32.2-1: systemdUnits[0].dst /lib/systemd/system/kubelet.service is also written by contents[0]"},
		{"conffile outside etc", func(d *BuildConfig, _ *config.Model) { d.Contents[0].Type = "config" }, content + "kubelet 1.32.2-1: contents[0].dst /usr/bin/kubelet: a conffile must be below /etc"},
		{"dir with src", func(d *BuildConfig, _ *config.Model) { d.Contents[4].Src = root }, `contents[4].src is set, but type "dir" creates an empty directory`},
		{"file without src", func(d *BuildConfig, _ *config.Model) { d.Contents[0].Src = "" }, `contents[0].src is empty; type "file" needs a local file or directory`},
		{"type unknown", func(d *BuildConfig, _ *config.Model) { d.Contents[0].Type = "symlink" }, `contents[0].type "symlink" is not "file", "config" or "dir"`},
		{"mode too big", func(d *BuildConfig, _ *config.Model) { d.Contents[0].Mode = 0o10755 }, "contents[0].mode 010755 has bits beyond permissions"},
		{"unit name", func(d *BuildConfig, _ *config.Model) {
			d.SystemdUnits[0].Src = filepath.Join(noShebang, "kubelet.conf")
		}, unit + "kubelet 1.32.2-1: systemdUnits[0].src " + filepath.Join(noShebang, "kubelet.conf") + " is not named like a systemd unit"},
		{"unit missing", func(d *BuildConfig, _ *config.Model) { d.SystemdUnits[0].Src = filepath.Join(root, "gone.service") }, "systemdUnits[0].src " + filepath.Join(root, "gone.service") + " does not exist"},
		{"script without shebang", func(d *BuildConfig, _ *config.Model) { d.Scripts.PostInst = filepath.Join(noShebang, "postinst") }, spec + "kubelet 1.32.2-1: scripts.postinst " + filepath.Join(noShebang, "postinst") + ` does not start with "#!"`},
		{"script missing", func(d *BuildConfig, _ *config.Model) { d.Scripts.PreRm = filepath.Join(root, "gone") }, "scripts.prerm " + filepath.Join(root, "gone") + " does not exist"},
		{"no date", func(_ *BuildConfig, m *config.Model) { m.Build.Date = time.Time{} }, "the build date is not set; set build.date"},
		{"os dir", func(_ *BuildConfig, m *config.Model) { m.OS["debian12"].Dir = "a/b" }, `/cfg/os.cue:1:3: deb kubelet 1.32.2-1: os dir "a/b" cannot name a folder`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := kubeletDecl(root)
			m := model(map[string][]*BuildConfig{"1.5.0": {d}})
			c.change(d, m)
			_, err := Targets(m)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error:\n%v\nwant it to contain:\n%s", err, c.want)
			}
		})
	}
}

// TestBuildRejectsWhatOnlyTheFilesShow covers problems the planner cannot
// see without walking trees, and specs that did not come from the planner.
func TestBuildRejectsWhatOnlyTheFilesShow(t *testing.T) {
	root := payload(t)
	tg := onlyTarget(t, model(map[string][]*BuildConfig{"1.5.0": {kubeletDecl(root)}}))
	base := tg.Spec.(Spec)
	sources := map[string]string{}
	for _, s := range tg.Sources {
		sources[s.Name] = s.Path
	}
	link := filepath.Join(t.TempDir(), "linked")
	writeTree(t, link, map[string]tfile{"a": {"a\n", 0o644}})
	if err := os.Symlink(filepath.Join(link, "a"), filepath.Join(link, "b")); err != nil {
		t.Fatal(err)
	}
	fifoDir := t.TempDir()
	cases := []struct {
		name   string
		change func(s *Spec, src map[string]string)
		want   string
	}{
		{"tree and file on one path", func(s *Spec, _ map[string]string) {
			s.Contents[0].Dst = "/usr/lib/kubelet/plugins/cni/bridge"
		}, "deb kubelet 1.32.2-1: contents[0] and contents[2] both write /usr/lib/kubelet/plugins/cni/bridge; each path on the node comes from one entry"},
		{"file where a directory is needed", func(s *Spec, _ map[string]string) {
			s.Contents[0].Dst = "/usr/lib/kubelet/plugins/cni"
		}, "contents[0] writes the file /usr/lib/kubelet/plugins/cni, but contents[2] needs it to be a directory for /usr/lib/kubelet/plugins/cni/README"},
		{"tree provides the generated copyright", func(s *Spec, src map[string]string) {
			s.Contents[2].Dst = "/usr/share/doc/kubelet"
			src["content2"] = filepath.Join(root, "units") // holds kubelet.service only
			s.License = ""
		}, "license is empty and no contents entry provides /usr/share/doc/kubelet/copyright"},
		{"symlink in tree", func(s *Spec, src map[string]string) { src["content2"] = link }, "contents[2].src: " + filepath.Join(link, "b") + " is a symbolic link"},
		{"fifo", func(s *Spec, src map[string]string) { src["content0"] = mkfifo(t, fifoDir) }, "contents[0].src " + filepath.Join(fifoDir, "fifo") + " is a named pipe"},
		{"source gone", func(s *Spec, src map[string]string) { src["content0"] = filepath.Join(root, "gone") }, "contents[0].src " + filepath.Join(root, "gone") + " does not exist"},
		{"source not provided", func(s *Spec, src map[string]string) { delete(src, "content1") }, `contents[1] names source "content1", but none was provided (planner bug)`},
		{"script not provided", func(s *Spec, src map[string]string) { delete(src, "postinst") }, `scripts.postinst names source "postinst", but none was provided`},
		{"output elsewhere", func(s *Spec, _ map[string]string) { s.Output = "debs/x/other.deb" }, `output "debs/x/other.deb" is not a clean relative path to a file named kubelet_1.32.2-1_amd64.deb`},
		{"output escapes", func(s *Spec, _ map[string]string) { s.Output = "../kubelet_1.32.2-1_amd64.deb" }, "is not a clean relative path"},
		{"date", func(s *Spec, _ map[string]string) { s.Date = "yesterday" }, `date "yesterday" is not RFC 3339`},
		{"date 1970", func(s *Spec, _ map[string]string) { s.Date = "1970-01-01T00:00:00Z" }, "date 1970-01-01T00:00:00Z is not after 1970"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := base
			s.Contents = append([]Content(nil), base.Contents...)
			src := map[string]string{}
			for k, v := range sources {
				src[k] = v
			}
			c.change(&s, src)
			out := filepath.Join(t.TempDir(), "k.deb")
			_, err := Build(context.Background(), s, src, out)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error:\n%v\nwant it to contain:\n%s", err, c.want)
			}
			if _, serr := os.Stat(out); serr == nil {
				t.Error("a failed build left its output behind")
			}
			if left, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".deb-docs-*")); len(left) > 0 {
				t.Errorf("scratch left behind: %v", left)
			}
		})
	}
}

func TestParseSpecIsStrict(t *testing.T) {
	root := payload(t)
	tg := onlyTarget(t, model(map[string][]*BuildConfig{"1.5.0": {kubeletDecl(root)}}))
	raw := string(mustJSON(t, tg.Spec))
	if _, err := ParseSpec([]byte(raw)); err != nil {
		t.Fatalf("the planner's spec does not parse: %v", err)
	}
	bad := strings.Replace(raw, `"name":"kubelet"`, `"name":"kubelet","extra":1`, 1)
	if _, err := ParseSpec([]byte(bad)); err == nil || !strings.Contains(err.Error(), `bad deb spec: json: unknown field "extra"`) {
		t.Errorf("unknown field: %v", err)
	}
	if _, err := ParseSpec([]byte(raw + " {}")); err == nil || !strings.Contains(err.Error(), "bad deb spec: unexpected data after the JSON object") {
		t.Errorf("trailing data: %v", err)
	}
	bad = strings.Replace(raw, `"version":"1.32.2-1"`, `"version":"v1"`, 1)
	if _, err := ParseSpec([]byte(bad)); err == nil || !strings.Contains(err.Error(), `bad deb spec: version "v1"`) {
		t.Errorf("bad version: %v", err)
	}
}

type progress struct{ total, added int64 }

func (p *progress) SetTotal(n int64) { p.total = n }
func (p *progress) Add(n int64)      { p.added += n }

func TestStepReportsFailuresWithTheTarget(t *testing.T) {
	root := payload(t)
	tg := onlyTarget(t, model(map[string][]*BuildConfig{"1.5.0": {kubeletDecl(root)}}))
	sources := map[string]string{}
	for _, s := range tg.Sources {
		sources[s.Name] = s.Path
	}
	in := func(spec []byte, src map[string]string, p step.Progress) *step.Input {
		return &step.Input{Target: tg.ID, Spec: spec, Sources: src, OutDir: t.TempDir(), Workers: 1, Progress: p, Log: io.Discard}
	}

	ok := in(mustJSON(t, tg.Spec), sources, &progress{})
	if _, err := (Step{}).Run(context.Background(), ok); err != nil {
		t.Fatal(err)
	}
	if p := ok.Progress.(*progress); p.total <= 0 || p.added != p.total {
		t.Errorf("progress total %d, added %d", p.total, p.added)
	}

	gone := filepath.Join(root, "gone")
	broken := map[string]string{}
	for k, v := range sources {
		broken[k] = v
	}
	broken["content0"] = gone
	bad := in(mustJSON(t, tg.Spec), broken, step.Discard)
	_, err := (Step{}).Run(context.Background(), bad)
	if want := tg.ID + ": deb kubelet 1.32.2-1: contents[0].src " + gone + " does not exist"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v, want %q", err, want)
	}
	if debs, _ := filepath.Glob(filepath.Join(bad.OutDir, "debs", "*", "*")); len(debs) > 0 {
		t.Errorf("a failed step left %v", debs)
	}

	_, err = (Step{}).Run(context.Background(), in([]byte(`{"name":"kubelet"`), sources, step.Discard))
	if err == nil || !strings.HasPrefix(err.Error(), tg.ID+": bad deb spec: ") {
		t.Errorf("truncated spec: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := (Step{}).Run(ctx, in(mustJSON(t, tg.Spec), sources, step.Discard)); err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Errorf("cancelled: %v", err)
	}
}
