package all

import (
	"errors"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/relcue/release/modules/deb"
	"github.com/relcue/release/modules/image"
	"github.com/relcue/release/pipeline/config"
	"github.com/relcue/release/pipeline/config/configtest"
	"github.com/relcue/release/pipeline/step"
)

// Sections are the configuration sections of every module, to load a
// configuration as the binary does.
func Sections() []config.Section { return step.Sections(Modules(Keys{})) }

// osValid adds a minimal image and .deb, for cases about something else,
// on line 9 and 10; a case's own lines start at line 11.
const osValid = configtest.Valid + `_img: {ref: "registry.k8s.io/pause:3.10", layers: [{dir: "images/pause"}]}
_deb: {name: "kubelet", version: *"1.32.2-1" | string, arch: *"amd64" | string, maintainer: "M <m@example.com>", description: "d"}
`

var sha = strings.Repeat("4", 64)

var osErrorCases = []struct {
	name string
	src  string
	want []string
}{
	{
		name: "undeclared release, empty release",
		src: osValid + `os: debian12: {distro: "debian", codename: "bookworm"}
os: debian12: releases: "1.6.0": images: [_img]
os: debian12: releases: "1.5.0": {}
`,
		want: []string{
			`release.cue:12:25: os.debian12.releases."1.6.0": release 1.6.0 is not declared in releases; declare it there or remove it from os.debian12.releases`,
			`release.cue:13:25: os.debian12.releases."1.5.0": nothing for a node to install; list debs or images, or remove the release`,
		},
	},
	{
		name: "same dir",
		src: osValid + `os: debian12: {distro: "debian", codename: "bookworm", dir: "debian"}
os: debian13: {distro: "debian", codename: "trixie", dir: "debian"}
os: trixie: {distro: "debian", codename: "trixie"}
os: "debian13-slim": {distro: "debian", codename: "trixie", dir: "trixie"}
`,
		want: []string{
			`release.cue:12:59: os.debian13.dir: "debian" is also the dir of os.debian12 (RELDIR/release.cue:11:61); each OS needs its own packages/<dir>, so set another dir on one of them`,
			`release.cue:13:5: os.trixie.dir: "trixie" is also the dir of os."debian13-slim" (RELDIR/release.cue:14:66); each OS needs its own packages/<dir>, so set another dir on one of them`,
		},
	},
	{
		name: "two control planes",
		src: osValid + `os: a: {distro: "debian", codename: "bookworm", controlPlane: true}
os: b: {distro: "debian", codename: "trixie", controlPlane: true}
os: c: {distro: "debian", codename: "trixie", controlPlane: false}
os: d: {distro: "debian", codename: "trixie", controlPlane: true}
`,
		want: []string{
			`release.cue:12:61: os.b.controlPlane: os.a (RELDIR/release.cue:11:63) is the control-plane OS already; set controlPlane on one OS only`,
			`release.cue:14:61: os.d.controlPlane: os.a (RELDIR/release.cue:11:63) is the control-plane OS already; set controlPlane on one OS only`,
		},
	},
	{
		name: "os fields",
		src: osValid + `os: Debian12: {distro: "", codename: "", arch: ["amd64", "all", "", "amd64"]}
os: debian13: {distro: "debian", codename: "trixie", dir: "a/b", arch: []}
`,
		want: []string{
			`release.cue:11:5: os.Debian12: "Debian12" cannot name an OS, which appears in target IDs and package paths; use lower-case letters, digits, ".", "_" and "-", starting with a letter or digit (e.g. "debian12")`,
			`release.cue:11:24: os.Debian12.distro: empty; name the distribution, e.g. "debian"`,
			`release.cue:11:38: os.Debian12.codename: empty; name the distribution release, e.g. "bookworm"`,
			`release.cue:11:58: os.Debian12.arch[1]: "all" marks architecture-independent .debs; name the nodes' architecture, e.g. "amd64"`,
			`release.cue:11:65: os.Debian12.arch[2]: empty; name a Debian architecture, e.g. "amd64"`,
			`release.cue:11:69: os.Debian12.arch[3]: "amd64" is listed twice; remove one`,
			`release.cue:12:59: os.debian13.dir: "a/b" cannot be a folder of packages/; use lower-case letters, digits, ".", "_" and "-", starting with a letter or digit, or leave dir out to use the OS name`,
			`release.cue:12:66: os.debian13.arch: empty; list the Debian architectures of the OS's nodes, e.g. ["amd64"]`,
		},
	},
	{
		name: "deb entries",
		src: osValid + `os: debian12: {distro: "debian", codename: "bookworm", releases: "1.5.0": debs: {
	kubernetes: [
		{},
		{build: _deb, file: path: "x.deb"},
		{file: url: "https://example.com/x.deb"},
		{file: sha256: "` + sha + `"},
		{file: {path: "debs/y.deb", sha256: "` + sha + `"}},
	]
	Tools: [{file: path: "t.deb"}]
	empty: []
}}
`,
		want: []string{
			`release.cue:13:3: os.debian12.releases."1.5.0".debs.kubernetes[0]: set build (a .deb made from local files) or file (an existing .deb)`,
			`release.cue:14:3: os.debian12.releases."1.5.0".debs.kubernetes[1]: set either build or file, not both`,
			`release.cue:15:4: os.debian12.releases."1.5.0".debs.kubernetes[2].file: url without sha256: a download must be pinned to be reproducible; add sha256 (the file's sha256sum), or use path for a local file`,
			`release.cue:16:4: os.debian12.releases."1.5.0".debs.kubernetes[3].file: set path (a local file) or url (a download, with sha256)`,
			`release.cue:19:2: os.debian12.releases."1.5.0".debs.Tools: "Tools" cannot be a group folder of packages/debian12/; use lower-case letters, digits, ".", "_" and "-", starting with a letter or digit (e.g. "kubernetes")`,
			`release.cue:20:2: os.debian12.releases."1.5.0".debs.empty: no debs; list at least one, or remove the group`,
		},
	},
	{
		name: "deb build fields",
		src: osValid + `os: debian12: {distro: "debian", codename: "bookworm", releases: "1.5.0": debs: {
	a: [{build: {name: "", version: "", arch: "", maintainer: "", description: ""}}]
	b: [{build: _deb & {arch: "arm64", depends: ["iptables", " "], provides: [""]}}]
	c: [{build: _deb}, {build: _deb & {arch: "all"}}]
	d: [{build: _deb & {version: "1.32.3-1"}}]
}}
`,
		want: []string{
			`release.cue:12:21: os.debian12.releases."1.5.0".debs.a[0].build.name: empty; the .deb needs it, e.g. "kubelet"`,
			`release.cue:12:34: os.debian12.releases."1.5.0".debs.a[0].build.version: empty; the .deb needs it, e.g. "1.32.2-1"`,
			`release.cue:12:44: os.debian12.releases."1.5.0".debs.a[0].build.arch: empty; the .deb needs it, e.g. "amd64" or "all"`,
			`release.cue:12:60: os.debian12.releases."1.5.0".debs.a[0].build.maintainer: empty; the .deb needs it, e.g. "Example Edge Systems <release@example.com>"`,
			`release.cue:12:77: os.debian12.releases."1.5.0".debs.a[0].build.description: empty; the .deb needs it, e.g. "Kubernetes node agent"`,
			`release.cue:13:28: os.debian12.releases."1.5.0".debs.b[0].build.arch: "arm64" is not an arch of os.debian12 (amd64); use one of them or "all", or add it to os.debian12.arch`,
			`release.cue:13:59: os.debian12.releases."1.5.0".debs.b[0].build.depends[1]: empty; write a package relation such as "iptables (>= 1.8)", or remove the entry`,
			`release.cue:13:76: os.debian12.releases."1.5.0".debs.b[0].build.provides[0]: empty; write a package relation such as "iptables (>= 1.8)", or remove the entry`,
			`release.cue:15:7: os.debian12.releases."1.5.0".debs.d[0].build: kubelet for amd64 is also built at RELDIR/release.cue:14:7; a node installs one version of a package per architecture, so build it once`,
		},
	},
	{
		name: "deb contents",
		src: osValid + `os: debian12: {distro: "debian", codename: "bookworm", releases: "1.5.0": debs: k: [{build: _deb & {
	contents: [
		{src: "/usr/bin/kubelet", dst: "/usr/bin/kubelet"},
		{src: "../kubelet", dst: "usr/bin/kubelet"},
		{src: "node\\kubelet", dst: "/usr/bin/../kubelet"},
		{src: ".", dst: "/usr/bin/"},
		{src: "./node/kubelet", dst: ""},
		{src: "node/x", dst: "/etc/x", type: "dir"},
		{dst: "/etc/y"},
		{src: "node/cfg", dst: "/", type: "config"},
		{src: "node/root", dst: "/"},
	]
	systemdUnits: [{src: "node/kubelet.svc"}, {src: "../kubelet.service"}, {src: "node/.service"}]
	scripts: {preinst: "/tmp/preinst", postrm: ""}
}}]}
`,
		want: []string{
			`release.cue:13:9: os.debian12.releases."1.5.0".debs.k[0].build.contents[0].src: "/usr/bin/kubelet" is absolute; write it relative to the configuration directory, which holds the inputs of node packages`,
			`release.cue:14:9: os.debian12.releases."1.5.0".debs.k[0].build.contents[1].src: "../kubelet" contains ".."; inputs must stay inside the configuration directory`,
			`release.cue:14:28: os.debian12.releases."1.5.0".debs.k[0].build.contents[1].dst: "usr/bin/kubelet" is relative; write the absolute path on the node, e.g. "/usr/bin/kubelet"`,
			`release.cue:15:9: os.debian12.releases."1.5.0".debs.k[0].build.contents[2].src: "node\\kubelet" contains a backslash; use forward slashes`,
			`release.cue:15:31: os.debian12.releases."1.5.0".debs.k[0].build.contents[2].dst: "/usr/bin/../kubelet" contains ".."; write the path without it`,
			`release.cue:16:9: os.debian12.releases."1.5.0".debs.k[0].build.contents[3].src: "." names the configuration directory itself; name a file or directory in it`,
			`release.cue:16:19: os.debian12.releases."1.5.0".debs.k[0].build.contents[3].dst: "/usr/bin/" is not in clean form; write "/usr/bin"`,
			`release.cue:17:9: os.debian12.releases."1.5.0".debs.k[0].build.contents[4].src: "./node/kubelet" is not in clean form; write "node/kubelet"`,
			`release.cue:17:32: os.debian12.releases."1.5.0".debs.k[0].build.contents[4].dst: empty; write the absolute path on the node, e.g. "/usr/bin/kubelet"`,
			`release.cue:18:9: os.debian12.releases."1.5.0".debs.k[0].build.contents[5].src: type "dir" creates an empty directory and takes no src; remove src, or remove type to place src at dst`,
			`release.cue:19:3: os.debian12.releases."1.5.0".debs.k[0].build.contents[6]: no src; name the local file or directory to place at dst, or set type: "dir" for an empty directory`,
			`release.cue:20:26: os.debian12.releases."1.5.0".debs.k[0].build.contents[7].dst: "/" is the root directory; name a path below it, e.g. "/usr/bin/kubelet"`,
			`release.cue:21:27: os.debian12.releases."1.5.0".debs.k[0].build.contents[8].dst: "/" is the root directory; name a path below it, e.g. "/usr/bin/kubelet"`,
			`release.cue:23:23: os.debian12.releases."1.5.0".debs.k[0].build.systemdUnits[0].src: "kubelet.svc" is not a unit file name, which systemd would ignore; name the file <unit>.service (or .socket, .timer, .path, .mount, .automount, .swap, .target, .slice, .scope, .device)`,
			`release.cue:23:50: os.debian12.releases."1.5.0".debs.k[0].build.systemdUnits[1].src: "../kubelet.service" contains ".."; inputs must stay inside the configuration directory`,
			`release.cue:23:79: os.debian12.releases."1.5.0".debs.k[0].build.systemdUnits[2].src: ".service" is not a unit file name, which systemd would ignore; name the file <unit>.service (or .socket, .timer, .path, .mount, .automount, .swap, .target, .slice, .scope, .device)`,
			`release.cue:24:21: os.debian12.releases."1.5.0".debs.k[0].build.scripts.preinst: "/tmp/preinst" is absolute; write it relative to the configuration directory, which holds the inputs of node packages`,
			`release.cue:24:45: os.debian12.releases."1.5.0".debs.k[0].build.scripts.postrm: empty; name a path relative to the configuration directory`,
		},
	},
	{
		name: "deb schema",
		src: osValid + `os: debian12: {distro: "debian", codename: "bookworm", releases: "1.5.0": debs: k: [
	{build: _deb & {contents: [{src: "a", dst: "/a", type: "conffile"}], scripts: {postinstall: "p"}}},
]}
`,
		want: []string{
			`release.cue:12:57: os.debian12.releases."1.5.0".debs.k[0].build.contents[0].type: invalid value "conffile" (want *"file" | "config" | "dir")`,
			`release.cue:12:81: os.debian12.releases."1.5.0".debs.k[0].build.scripts.postinstall: field not allowed (allowed: preinst, postinst, prerm, postrm)`,
		},
	},
	{
		// CUE reports missing fields only once nothing else is wrong.
		name: "deb required fields",
		src: osValid + `os: debian12: {distro: "debian", codename: "bookworm", releases: "1.5.0": debs: k: [
	{build: {name: "x", arch: "amd64"}},
]}
`,
		want: []string{
			`release.cue:12:3: os.debian12.releases."1.5.0".debs.k[0].build.description: field is required but not present`,
			`release.cue:12:3: os.debian12.releases."1.5.0".debs.k[0].build.maintainer: field is required but not present`,
			`release.cue:12:3: os.debian12.releases."1.5.0".debs.k[0].build.version: field is required but not present`,
		},
	},
	{
		name: "images",
		src: osValid + `os: debian12: {distro: "debian", codename: "bookworm", releases: "1.5.0": images: [
	{ref: "", layers: []},
	{ref: "a:1", base: {layout: "b", tarball: "b.tar", ref: ""}},
	{ref: "b:1", base: {}},
	{ref: "c:1", base: layout: "../b", platforms: ["linux", "linux/amd64", "linux/amd64", "Linux/ARM64"]},
	{ref: "d:1", platforms: [], layers: [{dir: "x"}]},
	{ref: "a:1", base: tarball: "b.tar"},
]}
`,
		want: []string{
			`release.cue:12:2: os.debian12.releases."1.5.0".images[0]: an image from scratch needs at least one layer; add layers, or a base`,
			`release.cue:12:8: os.debian12.releases."1.5.0".images[0].ref: empty; name the image as nodes know it, e.g. "registry.k8s.io/pause:3.10"`,
			`release.cue:13:15: os.debian12.releases."1.5.0".images[1].base: set either layout or tarball, not both`,
			`release.cue:13:58: os.debian12.releases."1.5.0".images[1].base.ref: empty; name the image to use from the base, or leave ref out if it holds one`,
			`release.cue:14:15: os.debian12.releases."1.5.0".images[2].base: set layout (an OCI image layout directory) or tarball (an OCI archive or docker save tarball)`,
			`release.cue:15:29: os.debian12.releases."1.5.0".images[3].base.layout: "../b" contains ".."; inputs must stay inside the configuration directory`,
			`release.cue:15:49: os.debian12.releases."1.5.0".images[3].platforms[0]: "linux" is not a platform; write os/arch[/variant], e.g. "linux/amd64" or "linux/arm/v7"`,
			`release.cue:15:73: os.debian12.releases."1.5.0".images[3].platforms[2]: "linux/amd64" is listed twice; remove one`,
			`release.cue:15:88: os.debian12.releases."1.5.0".images[3].platforms[3]: "Linux/ARM64" is not a platform; write os/arch[/variant], e.g. "linux/amd64" or "linux/arm/v7"`,
			`release.cue:16:15: os.debian12.releases."1.5.0".images[4].platforms: empty; list at least one platform, or leave platforms out for those of the OS's arch`,
			`release.cue:17:2: os.debian12.releases."1.5.0".images[5]: image a:1 is also listed at RELDIR/release.cue:13:2; list each image once`,
		},
	},
	{
		name: "image layers",
		src: osValid + `os: debian12: {distro: "debian", codename: "bookworm", releases: "1.5.0": images: [{
	ref: "a:1"
	layers: [
		{},
		{dir: "x", file: "y", dest: "/y"},
		{file: "y"},
		{dir: "x", dest: "opt", mode: 0o755},
		{file: "/y", dest: "/"},
		{dir: "x", dest: "/opt/../etc", platform: "linux/arm64"},
		{dir: "x", platform: "amd64"},
	]
	env: {"": "x", "A=B": "y", PATH: "/bin"}
	labels: {" ": "x"}
}]}
`,
		want: []string{
			`release.cue:14:3: os.debian12.releases."1.5.0".images[0].layers[0]: set dir (a directory tree) or file (a single file)`,
			`release.cue:15:3: os.debian12.releases."1.5.0".images[0].layers[1]: set either dir or file, not both`,
			`release.cue:16:3: os.debian12.releases."1.5.0".images[0].layers[2].dest: a file layer needs dest, the file's absolute path in the image (e.g. "/usr/local/bin/tool")`,
			`release.cue:17:20: os.debian12.releases."1.5.0".images[0].layers[3].dest: "opt" is relative; write the absolute path in the image, e.g. "/usr/local/bin/tool"`,
			`release.cue:17:33: os.debian12.releases."1.5.0".images[0].layers[3].mode: mode applies to file layers only; a directory's files keep their own modes`,
			`release.cue:18:10: os.debian12.releases."1.5.0".images[0].layers[4].file: "/y" is absolute; write it relative to the configuration directory, which holds the inputs of node packages`,
			`release.cue:18:22: os.debian12.releases."1.5.0".images[0].layers[4].dest: "/" is the root directory; name a path below it, e.g. "/usr/local/bin/tool"`,
			`release.cue:19:20: os.debian12.releases."1.5.0".images[0].layers[5].dest: "/opt/../etc" contains ".."; write the path without it`,
			`release.cue:19:45: os.debian12.releases."1.5.0".images[0].layers[5].platform: "linux/arm64" is not a platform of the image (linux/amd64); use one of them, or add it to platforms`,
			`release.cue:20:24: os.debian12.releases."1.5.0".images[0].layers[6].platform: "amd64" is not a platform; write os/arch[/variant], e.g. "linux/amd64" or "linux/arm/v7"`,
			`release.cue:22:12: os.debian12.releases."1.5.0".images[0].env."": empty variable name; name it, or remove the entry`,
			`release.cue:22:24: os.debian12.releases."1.5.0".images[0].env."A=B": "A=B" contains "=", which ends a variable name; rename it`,
			`release.cue:23:16: os.debian12.releases."1.5.0".images[0].labels." ": empty label name; name it, or remove the entry`,
		},
	},
	{
		name: "no default platform",
		src: osValid + `os: debian12: {distro: "debian", codename: "bookworm", arch: ["sparc64"], releases: "1.5.0": images: [_img]}
`,
		want: []string{
			`release.cue:11:103: os.debian12.releases."1.5.0".images[0]: no default platform for arch "sparc64" of os.debian12; set platforms (e.g. ["linux/amd64"])`,
		},
	},
}

func TestOSErrors(t *testing.T) {
	for _, tc := range osErrorCases {
		t.Run(tc.name, func(t *testing.T) {
			configtest.CheckErrors(t, tc.src, "", tc.want, Sections())
		})
	}
}

// The node testdata shares a .deb definition between releases (_kubelet)
// and an image between OS targets (_pause); positions inside the shared
// definitions are where the user wrote them.
func TestLoadNode(t *testing.T) {
	m, err := config.Load("testdata/node", config.LoadOptions{Env: configtest.NoEnv, Sections: Sections()})
	if err != nil {
		t.Fatal(err)
	}
	dir, err := filepath.Abs("testdata/node")
	if err != nil {
		t.Fatal(err)
	}
	in := func(p ...string) string { return filepath.Join(append([]string{dir}, p...)...) }
	at := func(line, col int) config.Pos { return config.Pos{File: "testdata/node/os.cue", Line: line, Col: col} }
	kubelet := func(k8s string, pos config.Pos) *deb.BuildConfig {
		return &deb.BuildConfig{
			Name:        "kubelet",
			Version:     k8s + "-1",
			Arch:        "amd64",
			Maintainer:  "Example Edge Systems <release@example.com>",
			Description: "Kubernetes node agent",
			Section:     "admin",
			Priority:    "optional",
			Homepage:    "https://kubernetes.io",
			License:     "Apache-2.0",
			Depends:     []string{"iptables", "conntrack (>= 1.4)"},
			Contents: []deb.ContentConfig{
				{Src: in("node", k8s, "kubelet"), Dst: "/usr/bin/kubelet", Mode: 0o755, Type: deb.TypeFile, Pos: at(21, 3)},
				{Src: in("node", "kubelet.env"), Dst: "/etc/default/kubelet", Type: deb.TypeConfig, Pos: at(22, 3)},
				{Dst: "/var/lib/kubelet", Mode: 0o700, Type: deb.TypeDir, Pos: at(23, 3)},
			},
			SystemdUnits: []deb.ContentConfig{
				{Src: in("node", "kubelet.service"), Dst: "/lib/systemd/system/kubelet.service", Type: deb.TypeFile, Pos: at(25, 17)},
			},
			Scripts: deb.ScriptsConfig{PostInst: in("node", "postinst"), PreRm: in("node", "prerm")},
			Pos:     pos,
		}
	}
	pause := func(pos config.Pos, platforms ...string) image.Config {
		return image.Config{
			Ref:        "registry.k8s.io/pause:3.10",
			Platforms:  platforms,
			Layers:     []image.LayerConfig{{Dir: in("images", "pause"), Dest: "/", Pos: at(31, 11)}},
			Entrypoint: []string{"/pause"},
			Pos:        pos,
		}
	}
	want := map[string]*osTarget{
		"debian12": {
			Name:         "debian12",
			Dir:          "debian12",
			Distro:       "debian",
			Codename:     "bookworm",
			Arch:         []string{"amd64"},
			ControlPlane: true,
			Releases: map[string]*nodeRelease{
				"1.4.0": {
					Version: "1.4.0",
					Debs:    []deb.Entry{{Group: "kubernetes", Build: kubelet("1.31.4", at(40, 32)), Pos: at(40, 31)}},
					Pos:     at(40, 3),
				},
				"1.5.0": {
					Version: "1.5.0",
					Debs: []deb.Entry{
						{Group: "kubernetes", Build: kubelet("1.32.2", at(44, 7)), Pos: at(44, 6)},
						{Group: "kubernetes", File: &config.Source{
							Path:   in("debs", "cri-tools_1.32.0-1_amd64.deb"),
							SHA256: strings.Repeat("4", 64),
							Pos:    at(45, 7),
						}, Pos: at(45, 6)},
						{Group: "tools", File: &config.Source{
							URL:    "https://downloads.example.com/k2s-node-tools_1.0.0_all.deb",
							SHA256: strings.Repeat("5", 64),
							Pos:    at(47, 14),
						}, Pos: at(47, 13)},
					},
					Images: []image.Config{
						pause(at(50, 5), "linux/amd64"),
						{
							Ref:        "example.com/tools:1.0",
							Base:       &image.BaseConfig{Layout: in("bases", "busybox"), Ref: "busybox:1.36", Pos: at(53, 6)},
							Platforms:  []string{"linux/amd64"},
							Layers:     []image.LayerConfig{{File: in("images", "tools", "x.sh"), Dest: "/usr/local/bin/x.sh", Mode: 0o755, Pos: at(54, 15)}},
							Cmd:        []string{"x.sh"},
							Env:        map[string]string{"PATH": "/usr/local/bin:/bin"},
							Labels:     map[string]string{"org.opencontainers.image.version": "1.0"},
							WorkingDir: "/work",
							User:       "65534",
							Pos:        at(51, 5),
						},
					},
					Pos: at(41, 3),
				},
			},
			Versions: []string{"1.4.0", "1.5.0"},
			Pos:      at(35, 5),
		},
		"debian13": {
			Name:     "debian13",
			Dir:      "trixie",
			Distro:   "debian",
			Codename: "trixie",
			Arch:     []string{"amd64", "arm64"},
			Releases: map[string]*nodeRelease{
				"1.5.0": {
					Version: "1.5.0",
					Images: []image.Config{
						// Platforms default to the OS's arch.
						pause(at(72, 3), "linux/amd64", "linux/arm64"),
						{
							Ref:       "example.com/agent:2.0",
							Base:      &image.BaseConfig{Tarball: in("bases", "agent.tar"), Pos: at(75, 4)},
							Platforms: []string{"linux/amd64", "linux/arm64"},
							Layers: []image.LayerConfig{
								{Dir: in("images", "agent", "amd64"), Dest: "/opt/agent", Platform: "linux/amd64", Pos: at(77, 5)},
								{Dir: in("images", "agent", "arm64"), Dest: "/opt/agent", Platform: "linux/arm64", Pos: at(78, 5)},
							},
							Pos: at(73, 3),
						},
						{
							Ref:       "example.com/legacy:1.0",
							Base:      &image.BaseConfig{Tarball: in("bases", "legacy.tar"), Pos: at(81, 35)},
							Platforms: []string{"linux/arm64"},
							Pos:       at(81, 3),
						},
					},
					Pos: at(71, 12),
				},
			},
			Versions: []string{"1.5.0"},
			Pos:      at(66, 5),
		},
	}
	configtest.Equal(t, nodeView(m), want)
	configtest.Equal(t, m.OSNames, []string{"debian12", "debian13"})
	checkNodeInvariants(t, m)
}

// osTarget and nodeRelease show an OS target with the .debs and images of
// its releases together, as the user wrote them.
type osTarget struct {
	Name, Dir, Distro, Codename string
	Arch                        []string
	ControlPlane                bool
	Releases                    map[string]*nodeRelease
	Versions                    []string
	Pos                         config.Pos
}

type nodeRelease struct {
	Version string
	Debs    []deb.Entry
	Images  []image.Config
	Pos     config.Pos
}

func nodeView(m *config.Model) map[string]*osTarget {
	out := map[string]*osTarget{}
	for name, o := range m.OS {
		v := &osTarget{Name: o.Name, Dir: o.Dir, Distro: o.Distro, Codename: o.Codename, Arch: o.Arch,
			ControlPlane: o.ControlPlane, Releases: map[string]*nodeRelease{}, Versions: o.Versions, Pos: o.Pos}
		for ver, r := range o.Releases {
			v.Releases[ver] = &nodeRelease{Version: r.Version, Pos: r.Pos,
				Debs: deb.NodeDebs(m, name, ver), Images: image.NodeImages(m, name, ver)}
		}
		out[name] = v
	}
	return out
}

// checkNodeInvariants holds what the node package modules rely on: each
// .deb is exactly one of built and file, every local path is absolute and
// every target path absolute and clean, every release has content.
func checkNodeInvariants(t *testing.T, m *config.Model) {
	t.Helper()
	cleanAbs := func(p string) bool { return strings.HasPrefix(p, "/") && path.Clean(p) == p }
	for _, name := range m.OSNames {
		for _, v := range m.OS[name].Versions {
			debs, images := deb.NodeDebs(m, name, v), image.NodeImages(m, name, v)
			if len(debs)+len(images) == 0 {
				t.Fatalf("os %s release %s: nothing to install", name, v)
			}
			for _, d := range debs {
				if (d.Build == nil) == (d.File == nil) || d.Group == "" || d.Pos.Line == 0 {
					t.Fatalf("os %s release %s: deb %+v", name, v, d)
				}
				if s := d.Build; s != nil {
					if s.Name == "" || s.Version == "" || s.Arch == "" || s.Pos.Line == 0 {
						t.Fatalf("os %s release %s: deb %+v", name, v, s)
					}
					for _, c := range append(slices.Clone(s.Contents), s.SystemdUnits...) {
						if (c.Type == deb.TypeDir) != (c.Src == "") || c.Src != "" && !filepath.IsAbs(c.Src) || !cleanAbs(c.Dst) || c.Pos.Line == 0 {
							t.Fatalf("os %s release %s: content %+v", name, v, c)
						}
					}
				}
			}
			for _, im := range images {
				if im.Ref == "" || len(im.Platforms) == 0 || im.Base == nil && len(im.Layers) == 0 || im.Pos.Line == 0 {
					t.Fatalf("os %s release %s: image %+v", name, v, im)
				}
				for _, l := range im.Layers {
					if (l.Dir == "") == (l.File == "") || !filepath.IsAbs(l.Dir+l.File) || !cleanAbs(l.Dest) ||
						l.Platform != "" && !slices.Contains(im.Platforms, l.Platform) {
						t.Fatalf("os %s release %s: layer %+v", name, v, l)
					}
				}
			}
		}
	}
}

// Without os, the model has no OS targets.
func TestNoOS(t *testing.T) {
	m, err := config.Load("../../pipeline/config/testdata/minimal", config.LoadOptions{Env: configtest.EnvEpoch("0"), Sections: Sections()})
	if err != nil {
		t.Fatal(err)
	}
	if m.OS != nil || m.OSNames != nil {
		t.Fatalf("os %v %v, want none", m.OS, m.OSNames)
	}
}

// FuzzLoadSections loads arbitrary configurations with every section: a
// configuration either fails with problems or gives node content the
// modules can rely on.
func FuzzLoadSections(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*/*.cue")
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	for _, tc := range osErrorCases {
		f.Add("package release\n" + tc.src)
	}
	for _, tc := range addonErrorCases {
		f.Add("package release\n" + tc.src)
	}
	f.Fuzz(func(t *testing.T, src string) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "release.cue"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		m, err := config.Load(dir, config.LoadOptions{Env: configtest.EnvEpoch("0"), Sections: Sections()})
		if err != nil {
			var e *config.Error
			if !errors.As(err, &e) || len(e.Problems) == 0 {
				t.Fatalf("error %T %q, want a *config.Error with problems", err, err)
			}
			return
		}
		checkNodeInvariants(t, m)
	})
}
