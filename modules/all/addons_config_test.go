package all

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/relcue/release/modules/addon"
	"github.com/relcue/release/pipeline/config"
	"github.com/relcue/release/pipeline/config/configtest"
)

// addonOS adds, on line 11, an OS target that builds _img and _deb in
// release 1.5.0; a case's own lines start at line 12.
const addonOS = osValid + `os: debian12: {distro: "debian", codename: "bookworm", releases: "1.5.0": {images: [_img], debs: k: [{build: _deb}]}}
`

var addonErrorCases = []struct {
	name string
	src  string
	want []string
}{
	{
		name: "versions",
		src: addonOS + `addons: a: {dir: "addons/a", version: "1.2"}
addons: b: {dir: "addons/b", version: "v1.2.0"}
addons: c: {dir: "addons/c", version: "1.2.0+b"}
addons: d: {dir: "addons/d", version: "1.2.0-rc.1"}
addons: e: {dir: "addons/e", version: ""}
addons: f: {dir: "addons/f", version: "v1.2.0+b"}
addons: g: {dir: "addons/g", version: "1.2.0", productVersion: "1.x"}
addons: h: {dir: "addons/h", version: "01.2.0"}
`,
		want: []string{
			`release.cue:12:39: addons.a.version: "1.2" is not a semver version X.Y.Z[-pre]`,
			`release.cue:13:39: addons.b.version: "v1.2.0" has a leading v; write "1.2.0" (the tag gets the v)`,
			`release.cue:14:39: addons.c.version: "1.2.0+b" has build metadata; the artifact is tagged v<version>, and tags cannot hold "+"; write "1.2.0"`,
			`release.cue:16:39: addons.e.version: "" is not a semver version X.Y.Z[-pre]`,
			`release.cue:17:39: addons.f.version: "v1.2.0+b" has a leading v; write "1.2.0" (the tag gets the v)`,
			`release.cue:18:64: addons.g.productVersion: "1.x" is not a semver version X.Y.Z[-pre][+build]`,
			`release.cue:19:39: addons.h.version: "01.2.0" is not a semver version X.Y.Z[-pre]`,
		},
	},
	{
		name: "names and dir",
		src: addonOS + `addons: My_Addon: {dir: "addons/a", version: "1.0.0"}
addons: b: {dir: "../b", version: "1.0.0"}
addons: c: {dir: "/abs/c", version: "1.0.0"}
addons: d: {dir: "", version: "1.0.0"}
addons: e: {dir: "addons\\e", version: "1.0.0", implementations: Nginx: {}}
`,
		want: []string{
			`release.cue:12:9: addons.My_Addon: "My_Addon" cannot name an addon, which becomes a registry repository and Kubernetes object names; use lower-case letters, digits and "-" (at most 63, starting and ending with a letter or digit)`,
			`release.cue:13:18: addons.b.dir: "../b" contains ".."; inputs must stay inside the configuration directory`,
			`release.cue:14:18: addons.c.dir: "/abs/c" is absolute; write it relative to the configuration directory, which holds the inputs of node packages`,
			`release.cue:15:18: addons.d.dir: empty; name a path relative to the configuration directory`,
			`release.cue:16:18: addons.e.dir: "addons\\e" contains a backslash; use forward slashes`,
			`release.cue:16:66: addons.e.implementations.Nginx: "Nginx" cannot name an implementation; use lower-case letters, digits and "-"`,
		},
	},
	{
		name: "images",
		src: addonOS + `addons: a: {dir: "addons/a", version: "1.0.0", implementations: a: {
	images: windows: [{os: "debian12", ref: "registry.k8s.io/pause:3.10", archive: path: "p.tar"}, {ref: "x:1"}]
	images: linux: [{os: "debian13", ref: "registry.k8s.io/pause:3.10"}, {os: "debian12", ref: "example.com/nope:1"},
		{os: "debian12", ref: ""}, {archive: url: "https://example.com/i.tar", ref: "registry.k8s.io/pause:3.10"}]
}}
`,
		want: []string{
			`release.cue:13:20: addons.a.implementations.a.images.windows[0]: set either os (an image the pipeline builds) or archive (an existing image tarball), not both`,
			`release.cue:13:97: addons.a.implementations.a.images.windows[1]: set os (the OS target whose image with this ref the pipeline builds) or archive (an existing image tarball)`,
			`release.cue:14:23: addons.a.implementations.a.images.linux[0].os: OS target "debian13" is not declared under os; declare it or use archive`,
			`release.cue:14:93: addons.a.implementations.a.images.linux[1].ref: no release of os debian12 builds image example.com/nope:1; add it to one of its releases, or use archive`,
			`release.cue:15:25: addons.a.implementations.a.images.linux[2].ref: empty; name the image reference, e.g. "registry.k8s.io/pause:3.10"`,
			`release.cue:15:30: addons.a.implementations.a.images.linux[3]: image registry.k8s.io/pause:3.10 is also listed at RELDIR/release.cue:14:18; list each image once`,
			`release.cue:15:31: addons.a.implementations.a.images.linux[3].archive: url without sha256: a download must be pinned to be reproducible; add sha256 (the file's sha256sum), or use path for a local file`,
		},
	},
	{
		name: "same image twice",
		src: addonOS + `addons: a: {dir: "addons/a", version: "1.0.0", implementations: a: images: linux: [
	{os: "debian12", ref: "registry.k8s.io/pause:3.10"},
	{archive: path: "pause.tar", ref: "registry.k8s.io/pause:3.10"},
]}
`,
		want: []string{
			`release.cue:14:2: addons.a.implementations.a.images.linux[1]: image registry.k8s.io/pause:3.10 is also listed at RELDIR/release.cue:13:2; list each image once`,
		},
	},
	{
		name: "packages",
		src: addonOS + `addons: a: {dir: "addons/a", version: "1.0.0", implementations: a: packages: {
	debian: k: [{deb: {os: "debian13", name: "kubelet", version: "1.32.2-1", arch: "amd64"}}, {deb: {os: "debian12", name: "kubelet", version: "1.0", arch: "amd64"}}]
	debian: Tools: [{file: path: "t.deb"}]
	linux: [{file: path: "bin/helm"}, {file: path: "other/helm"}, {}]
	windows: [{file: path: "helm.exe", deb: {os: "debian12", name: "kubelet", version: "1.32.2-1", arch: "amd64"}}, {file: path: "x", name: "a/b"}, {file: url: "https://example.com/"}]
}}
`,
		want: []string{
			`release.cue:13:25: addons.a.implementations.a.packages.debian.k[0].deb.os: OS target "debian13" is not declared under os`,
			`release.cue:13:93: addons.a.implementations.a.packages.debian.k[1].deb: no release of os debian12 builds kubelet 1.0 for amd64; add that build to one of its releases, or use file`,
			`release.cue:14:10: addons.a.implementations.a.packages.debian.Tools: "Tools" cannot be a folder of debianpackages/; use lower-case letters, digits, ".", "_" and "-", starting with a letter or digit`,
			`release.cue:15:36: addons.a.implementations.a.packages.linux[1]: linuxpackages/helm is also written by the entry at RELDIR/release.cue:15:10; give one a different name`,
			`release.cue:15:64: addons.a.implementations.a.packages.linux[2]: file name "" cannot be stored in the layer; set name to a plain file name`,
			`release.cue:15:64: addons.a.implementations.a.packages.linux[2]: set file (an existing file) or deb (a .deb the pipeline builds)`,
			`release.cue:16:12: addons.a.implementations.a.packages.windows[0]: file name "" cannot be stored in the layer; set name to a plain file name`,
			`release.cue:16:12: addons.a.implementations.a.packages.windows[0]: set either file (an existing file) or deb (a .deb the pipeline builds), not both`,
			`release.cue:16:114: addons.a.implementations.a.packages.windows[1]: file name "a/b" cannot be stored in the layer; set name to a plain file name`,
			// A URL whose path has no last segment names no file (not "example.com").
			`release.cue:16:146: addons.a.implementations.a.packages.windows[2]: file name "" cannot be stored in the layer; set name to a plain file name`,
			`release.cue:16:147: addons.a.implementations.a.packages.windows[2].file: url without sha256: a download must be pinned to be reproducible; add sha256 (the file's sha256sum), or use path for a local file`,
		},
	},
	{
		name: "registry",
		src: addonOS + `registry: host: "http://x"
registry: prefix: "Addons/"
`,
		want: []string{
			`release.cue:12:17: registry.host: "http://x" is not a registry host[:port] (no scheme, no path), e.g. "127.0.0.1:5000"`,
			`release.cue:13:19: registry.prefix: "Addons/" is not a repository path of lower-case components separated by "/", e.g. "addons"`,
		},
	},
	{
		name: "registry host with a path",
		src:  addonOS + `registry: host: "a/b"` + "\n",
		want: []string{`release.cue:12:17: registry.host: "a/b" is not a registry host[:port] (no scheme, no path), e.g. "127.0.0.1:5000"`},
	},
	{
		name: "gitops",
		src: addonOS + `gitops: registry: "a/b"
gitops: interval: "5"
gitops: timeout: "-1m"
gitops: namespace: "Flux"
gitops: targetNamespace: ""
`,
		want: []string{
			`release.cue:12:19: gitops.registry: "a/b" is not a registry host[:port], e.g. "k2s.registry.local:30500"`,
			`release.cue:13:19: gitops.interval: "5" is not a positive duration like "5m" or "1h30m"`,
			`release.cue:14:18: gitops.timeout: "-1m" is not a positive duration like "5m" or "1h30m"`,
			`release.cue:15:20: gitops.namespace: "Flux" is not a Kubernetes namespace name (lower-case letters, digits and "-")`,
			`release.cue:16:26: gitops.targetNamespace: "" is not a Kubernetes namespace name (lower-case letters, digits and "-")`,
		},
	},
	{
		name: "gitops zero interval",
		src:  addonOS + `gitops: interval: "0s"` + "\n" + `gitops: registry: "http://k2s.registry.local"` + "\n",
		want: []string{
			`release.cue:12:19: gitops.interval: "0s" is not a positive duration like "5m" or "1h30m"`,
			`release.cue:13:19: gitops.registry: "http://k2s.registry.local" is not a registry host[:port], e.g. "k2s.registry.local:30500"`,
		},
	},
	{
		name: "schema: unknown field",
		src:  addonOS + `addons: b: {dir: "addons/b", version: "1.0.0", colour: 1}` + "\n",
		want: []string{
			`release.cue:12:48: addons.b.colour: field not allowed (allowed: dir, version, implementations, omitImages, omitPackages, productVersion, license)`,
		},
	},
	{
		name: "schema: required fields",
		src: addonOS + `addons: a: {dir: "addons/a"}
addons: b: {dir: "addons/b", version: "1.0.0", implementations: b: images: linux: [{os: "debian12"}]}
registry: plainHTTP: true
`,
		want: []string{
			`release.cue:12:9: addons.a.version: field is required but not present`,
			`release.cue:13:84: addons.b.implementations.b.images.linux[0].ref: field is required but not present`,
			`release.cue:14:1: registry.host: field is required but not present`,
		},
	},
}

func TestAddonErrors(t *testing.T) {
	for _, tc := range addonErrorCases {
		t.Run(tc.name, func(t *testing.T) {
			configtest.CheckErrors(t, tc.src, "", tc.want, Sections())
		})
	}
}

func TestLoadAddons(t *testing.T) {
	dir := configtest.Write(t, addonOS+`addons: metrics: {
	dir: "addons/metrics"
	version: "0.7.2"
	license: "MIT"
	implementations: metrics: {
		images: linux: [{os: "debian12", ref: "registry.k8s.io/pause:3.10"}]
		images: windows: [{ref: "mcr.microsoft.com/windows/nanoserver:ltsc2022", archive: {url: "https://example.com/nano.tar", sha256: "`+sha+`"}}]
		packages: debian: kubelet: [{deb: {os: "debian12", name: "kubelet", version: "1.32.2-1", arch: "amd64"}}]
		packages: linux: [{file: path: "bin/helm"}, {file: {url: "https://example.com/dl/kubectl?x=1#f", sha256: "`+sha+`"}, name: "kubectl"}]
		packages: windows: [{file: {url: "https://example.com/dl/helm.exe?x=1", sha256: "`+sha+`"}}]
	}
}
addons: ingress: {dir: "addons/ingress", version: "1.4.0-rc.1", omitImages: true, omitPackages: true, productVersion: "1.4.0"}
`)
	m, err := config.Load(dir, config.LoadOptions{Env: configtest.NoEnv, Sections: Sections()})
	if err != nil {
		t.Fatal(err)
	}
	at := func(line, col int) config.Pos {
		return config.Pos{File: filepath.Join(dir, "release.cue"), Line: line, Col: col}
	}
	want := map[string]*addon.Config{
		"metrics": {
			Name: "metrics", Dir: filepath.Join(dir, "addons", "metrics"), Version: "0.7.2", License: "MIT",
			ProductVersion: "1.5.0", // the newest release
			Implementations: map[string]*addon.ImplConfig{"metrics": {
				Name:          "metrics",
				LinuxImages:   []addon.ImageConfig{{Ref: "registry.k8s.io/pause:3.10", OS: "debian12", Pos: at(17, 19)}},
				WindowsImages: []addon.ImageConfig{{Ref: "mcr.microsoft.com/windows/nanoserver:ltsc2022", Archive: &config.Source{URL: "https://example.com/nano.tar", SHA256: sha, Pos: at(18, 76)}, Pos: at(18, 21)}},
				Debian: map[string][]addon.FileConfig{"kubelet": {{
					Deb:  &addon.DebConfig{OS: "debian12", Name: "kubelet", Version: "1.32.2-1", Arch: "amd64"},
					Name: "kubelet_1.32.2-1_amd64.deb", Pos: at(19, 31),
				}}},
				Linux: []addon.FileConfig{
					{File: &config.Source{Path: filepath.Join(dir, "bin", "helm"), Pos: at(20, 22)}, Name: "helm", Pos: at(20, 21)},
					{File: &config.Source{URL: "https://example.com/dl/kubectl?x=1#f", SHA256: sha, Pos: at(20, 48)}, Name: "kubectl", Pos: at(20, 47)},
				},
				Windows: []addon.FileConfig{
					{File: &config.Source{URL: "https://example.com/dl/helm.exe?x=1", SHA256: sha, Pos: at(21, 24)}, Name: "helm.exe", Pos: at(21, 23)},
				},
				Pos: at(16, 19),
			}},
			Pos: at(12, 9),
		},
		"ingress": {
			Name: "ingress", Dir: filepath.Join(dir, "addons", "ingress"), Version: "1.4.0-rc.1",
			OmitImages: true, OmitPackages: true, ProductVersion: "1.4.0",
			Implementations: map[string]*addon.ImplConfig{},
			Pos:             at(24, 9),
		},
	}
	configtest.Equal(t, addon.SettingsOf(m).Addons, want)
	configtest.Equal(t, addon.SettingsOf(m).Names, []string{"ingress", "metrics"})
	configtest.Equal(t, addon.SettingsOf(m).Addons["metrics"].ImplementationNames(), []string{"metrics"})
	if addon.SettingsOf(m).Registry != nil {
		t.Errorf("registry %+v, want none", addon.SettingsOf(m).Registry)
	}
	// No registry anywhere: no Flux resources, the other defaults.
	configtest.Equal(t, addon.SettingsOf(m).GitOps, defaultGitOps)
}

func TestAddonDefaults(t *testing.T) {
	const addonA = `addons: a: {dir: "a", version: "1.0.0"}` + "\n"
	for _, tc := range []struct {
		name, src      string
		registry       *addon.Registry // without config.Pos
		gitops         addon.GitOps
		productVersion string
	}{
		{
			name:           "no registry",
			src:            configtest.Valid + addonA,
			gitops:         defaultGitOps,
			productVersion: "1.5.0",
		},
		{
			name:           "registry over plain HTTP: the cluster pulls from it, insecurely",
			src:            configtest.Valid + addonA + `registry: {host: "127.0.0.1:5000", plainHTTP: true}` + "\n",
			registry:       &addon.Registry{Host: "127.0.0.1:5000", PlainHTTP: true, Prefix: "addons"},
			gitops:         withGitOps(func(g *addon.GitOps) { g.Registry, g.Insecure = "127.0.0.1:5000", true }),
			productVersion: "1.5.0",
		},
		{
			name:     "insecure TLS registry",
			src:      configtest.Valid + addonA + `registry: {host: "[::1]:5443", insecure: true, prefix: "k2s/addons"}` + "\n",
			registry: &addon.Registry{Host: "[::1]:5443", Insecure: true, Prefix: "k2s/addons"},
			gitops:   withGitOps(func(g *addon.GitOps) { g.Registry, g.Insecure = "[::1]:5443", true }),
		},
		{
			name:     "HTTPS registry",
			src:      configtest.Valid + addonA + `registry: host: "registry.example.com"` + "\n",
			registry: &addon.Registry{Host: "registry.example.com", Prefix: "addons"},
			gitops:   withGitOps(func(g *addon.GitOps) { g.Registry = "registry.example.com" }),
		},
		{
			name: "the cluster's own registry and settings win",
			src: configtest.Valid + addonA + `registry: {host: "127.0.0.1:5000", plainHTTP: true}
gitops: {registry: "k2s.registry.local:30500", insecure: false, interval: "1h30m", timeout: "90s", namespace: "flux-system", targetNamespace: "jobs"}
`,
			registry: &addon.Registry{Host: "127.0.0.1:5000", PlainHTTP: true, Prefix: "addons"},
			gitops: addon.GitOps{Registry: "k2s.registry.local:30500", Interval: 90 * time.Minute, Timeout: 90 * time.Second,
				Namespace: "flux-system", TargetNamespace: "jobs"},
		},
		{
			name:   "gitops registry without a push registry",
			src:    configtest.Valid + addonA + `gitops: {registry: "k2s.registry.local:30500", insecure: true}` + "\n",
			gitops: withGitOps(func(g *addon.GitOps) { g.Registry, g.Insecure = "k2s.registry.local:30500", true }),
		},
		{
			name: "newest release by semver, not by text",
			src: `product: name: "k2s"
build: sourceDateEpoch: 0
releases: {"1.9.0": zip: path: "a.zip", "1.10.0": zip: path: "b.zip", "1.10.0-rc.1": zip: path: "c.zip"}
` + addonA,
			gitops:         defaultGitOps,
			productVersion: "1.10.0",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := config.Load(configtest.Write(t, tc.src), config.LoadOptions{Env: configtest.NoEnv, Sections: Sections()})
			if err != nil {
				t.Fatal(err)
			}
			if r := addon.SettingsOf(m).Registry; r != nil {
				if r.Pos.Line == 0 {
					t.Errorf("registry without position")
				}
				r.Pos = config.Pos{}
			}
			configtest.Equal(t, addon.SettingsOf(m).Registry, tc.registry)
			configtest.Equal(t, addon.SettingsOf(m).GitOps, tc.gitops)
			if tc.productVersion != "" && addon.SettingsOf(m).Addons["a"].ProductVersion != tc.productVersion {
				t.Errorf("productVersion %q, want %q", addon.SettingsOf(m).Addons["a"].ProductVersion, tc.productVersion)
			}
			if a := addon.SettingsOf(m).Addons["a"]; a.OmitImages || a.OmitPackages || a.License != "" || len(a.Implementations) != 0 || len(a.ImplementationNames()) != 0 {
				t.Errorf("addon defaults %+v", a)
			}
		})
	}
}

func withGitOps(f func(*addon.GitOps)) addon.GitOps {
	g := defaultGitOps
	f(&g)
	return g
}

// Without addons the model has none, and no registry.
func TestNoAddons(t *testing.T) {
	m, err := config.Load(configtest.Write(t, configtest.Valid), config.LoadOptions{Env: configtest.NoEnv, Sections: Sections()})
	if err != nil {
		t.Fatal(err)
	}
	if addon.SettingsOf(m).Addons != nil || addon.SettingsOf(m).Names != nil || addon.SettingsOf(m).Registry != nil {
		t.Fatalf("addons %v %v, registry %v", addon.SettingsOf(m).Addons, addon.SettingsOf(m).Names, addon.SettingsOf(m).Registry)
	}
}

var defaultGitOps = addon.GitOps{Interval: 5 * time.Minute, Timeout: 10 * time.Minute, Namespace: "k2s-addon-sync", TargetNamespace: "k2s-addon-sync"}
