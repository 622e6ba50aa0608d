package addon

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/relcue/release/modules/deb"
	"github.com/relcue/release/modules/image"
	"github.com/relcue/release/pipeline/config"
	"github.com/relcue/release/pipeline/step"
)

// configHead is a configuration whose OS target debian12 builds the pause
// image and a kubelet .deb; the addons and registry follow it.
const configHead = `package release

product: {name: "k2s", vendor: "Example Edge Systems"}
build: date: "2025-06-01T12:30:45Z"
releases: {"1.4.0": zip: path: "a.zip", "1.5.0": zip: path: "b.zip"}
_img: {ref: "registry.k8s.io/pause:3.10", layers: [{dir: "images/pause"}]}
_deb: {name: "kubelet", version: "1.32.2-1", arch: "amd64", maintainer: "M <m@example.com>", description: "d"}
os: debian12: {distro: "debian", codename: "bookworm", releases: "1.5.0": {images: [_img], debs: k: [{build: _deb}]}}
`

// loadConfig writes configHead+src as release.cue next to a copy of the
// metrics and ingress addons (addons/metrics, addons/ingress) and loads it.
func loadConfig(t *testing.T, src string, edit func(dir string)) (*config.Model, string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "addons"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, src := range map[string]string{"metrics": metricsAddon(t), "ingress": ingressAddon(t)} {
		if err := os.Rename(src, filepath.Join(dir, "addons", name)); err != nil {
			t.Fatal(err)
		}
	}
	writeTree(t, dir, map[string]string{"release.cue": configHead + src, "nano.tar": "windows image\n", "bin/helm": "helm\n"})
	if edit != nil {
		edit(dir)
	}
	m, err := config.Load(dir, config.LoadOptions{Env: func(string) string { return "" }, Sections: []config.Section{deb.Section, image.Section, Section}})
	if err != nil {
		t.Fatal(err)
	}
	return m, dir
}

const twoAddons = `addons: metrics: {
	dir: "addons/metrics"
	version: "0.7.2"
	license: "MIT"
	implementations: metrics: {
		images: linux: [{os: "debian12", ref: "registry.k8s.io/pause:3.10"}]
		images: windows: [{ref: "mcr.microsoft.com/windows/nanoserver:ltsc2022", archive: path: "nano.tar"}]
		packages: debian: kubelet: [{deb: {os: "debian12", name: "kubelet", version: "1.32.2-1", arch: "amd64"}}]
		packages: linux: [{file: path: "bin/helm"}]
	}
}
addons: ingress: {dir: "addons/ingress", version: "1.4.0", omitImages: true}
registry: {host: "127.0.0.1:5000", plainHTTP: true}
gitops: registry: "k2s.registry.local:30500"
`

func TestTargets(t *testing.T) {
	m, dir := loadConfig(t, twoAddons, nil)
	ts, err := Targets(m)
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 2 || ts[0].ID != "addon/ingress/1.4.0" || ts[1].ID != "addon/metrics/0.7.2" {
		t.Fatalf("targets %+v", ts)
	}
	pos := func(line, col int) string {
		return filepath.Join(dir, "release.cue") + ":" + strconv.Itoa(line) + ":" + strconv.Itoa(col)
	}

	ing := ts[0]
	if ing.Kind != "addon" || ing.Pos != pos(20, 9) || len(ing.Deps) != 0 || ing.Effect {
		t.Errorf("ingress target %+v", ing)
	}
	if !reflect.DeepEqual(ing.Outputs, []string{"addons/ingress-1.4.0.oci.tar", "addons/ingress-1.4.0.flux.yaml"}) {
		t.Errorf("ingress outputs %q", ing.Outputs)
	}
	gitops := &SpecGitOps{Registry: "k2s.registry.local:30500", Prefix: "addons", Insecure: true, Interval: "5m0s",
		Timeout: "10m0s", Namespace: "k2s-addon-sync", TargetNamespace: "k2s-addon-sync"}
	// No implementations selected: every one of the manifest, without
	// images or packages.
	wantIng := Spec{Name: "ingress", Version: "1.4.0", Vendor: "Example Edge Systems", ProductVersion: "1.5.0",
		Date: "2025-06-01T12:30:45Z", OmitImages: true, GitOps: gitops, Impls: []SpecImpl{
			{Name: "nginx", LinuxImages: []SpecFile{}, WindowsImages: []SpecFile{}, Packages: []SpecFile{}},
			{Name: "traefik", LinuxImages: []SpecFile{}, WindowsImages: []SpecFile{}, Packages: []SpecFile{}},
		}}
	if !reflect.DeepEqual(ing.Spec, wantIng) {
		t.Errorf("ingress spec\n%+v\nwant\n%+v", ing.Spec, wantIng)
	}
	if want := []step.Source{{Name: "dir", Path: filepath.Join(dir, "addons", "ingress"), Dir: true, Pos: pos(20, 9)}}; !reflect.DeepEqual(ing.Sources, want) {
		t.Errorf("ingress sources %+v", ing.Sources)
	}

	met := ts[1]
	imageDep := image.TargetID("debian12", "registry.k8s.io/pause:3.10")
	debDep := deb.TargetID("debian12", "kubelet", "1.32.2-1", "amd64")
	if !reflect.DeepEqual(met.Deps, []string{imageDep, debDep}) {
		t.Errorf("metrics deps %q, want %q and %q", met.Deps, imageDep, debDep)
	}
	wantSources := []step.Source{
		{Name: "dir", Path: filepath.Join(dir, "addons", "metrics"), Dir: true, Pos: pos(9, 9)},
		{Name: "file0", Path: filepath.Join(dir, "nano.tar"), Pos: pos(15, 21)},
		{Name: "file1", Path: filepath.Join(dir, "bin", "helm"), Pos: pos(17, 21)},
	}
	if !reflect.DeepEqual(met.Sources, wantSources) {
		t.Errorf("metrics sources\n%+v\nwant\n%+v", met.Sources, wantSources)
	}
	wantMet := Spec{Name: "metrics", Version: "0.7.2", Vendor: "Example Edge Systems", License: "MIT", ProductVersion: "1.5.0",
		Date: "2025-06-01T12:30:45Z", GitOps: gitops, Impls: []SpecImpl{{
			Name:          "metrics",
			LinuxImages:   []SpecFile{{Name: "registry.k8s.io_pause_3.10.tar", Target: imageDep}},
			WindowsImages: []SpecFile{{Name: "windows_mcr.microsoft.com_windows_nanoserver_ltsc2022.tar", Source: "file0"}},
			Packages: []SpecFile{
				{Name: "debianpackages/kubelet/kubelet_1.32.2-1_amd64.deb", Target: debDep},
				{Name: "linuxpackages/helm", Source: "file1"},
			},
		}}}
	if !reflect.DeepEqual(met.Spec, wantMet) {
		t.Errorf("metrics spec\n%+v\nwant\n%+v", met.Spec, wantMet)
	}

	// The spec survives the planner's JSON and the step's strict decoding.
	raw, err := json.Marshal(met.Spec)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseSpec(raw)
	if err != nil || !reflect.DeepEqual(*back, wantMet) {
		t.Fatalf("ParseSpec: %v\n%+v", err, back)
	}
}

// Without a registry for the cluster, no Flux resources are planned.
func TestTargetsWithoutGitOpsRegistry(t *testing.T) {
	m, _ := loadConfig(t, `addons: ingress: {dir: "addons/ingress", version: "1.4.0"}`+"\n", nil)
	ts, err := Targets(m)
	if err != nil {
		t.Fatal(err)
	}
	if s := ts[0].Spec.(Spec); s.GitOps != nil || !reflect.DeepEqual(ts[0].Outputs, []string{"addons/ingress-1.4.0.oci.tar"}) {
		t.Errorf("gitops %+v, outputs %q", s.GitOps, ts[0].Outputs)
	}
}

func TestTargetsErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  string
		edit func(dir string)
		want string // after "<dir>/release.cue:"
	}{
		{
			name: "key is not the manifest's name",
			src:  `addons: monitoring: {dir: "addons/metrics", version: "0.7.2"}` + "\n",
			want: `9:9: addon monitoring: addon.manifest.yaml names the addon "metrics"; the key under addons must match it`,
		},
		{
			name: "implementation not in the manifest",
			src:  `addons: ingress: {dir: "addons/ingress", version: "1.4.0", implementations: {nginx: {}, haproxy: {}}}` + "\n",
			want: `9:89: addon ingress: implementation "haproxy" is not in addon.manifest.yaml (it lists nginx, traefik)`,
		},
		{
			name: "implementation version disagrees",
			src:  `addons: ingress: {dir: "addons/ingress", version: "1.4.0", implementations: traefik: {}}` + "\n",
			edit: func(dir string) {
				p := filepath.Join(dir, "addons", "ingress", ManifestFile)
				b, _ := os.ReadFile(p)
				b = bytes.Replace(b, []byte("    - name: traefik\n"), []byte("    - name: traefik\n      version: 1.3.0\n"), 1)
				writeTree(t, filepath.Dir(p), map[string]string{ManifestFile: string(b)})
			},
			want: `9:77: addon ingress: addon.manifest.yaml gives implementation traefik version 1.3.0 but the configuration says 1.4.0; make them agree`,
		},
		{
			name: "implementation without its directory",
			src:  `addons: ingress: {dir: "addons/ingress", version: "1.4.0"}` + "\n",
			edit: func(dir string) {
				if err := os.RemoveAll(filepath.Join(dir, "addons", "ingress", "traefik")); err != nil {
					t.Fatal(err)
				}
				// The manifest's scripts are in traefik/ too.
				p := filepath.Join(dir, "addons", "ingress", ManifestFile)
				b, _ := os.ReadFile(p)
				b = bytes.Replace(b, []byte("      commands:\n        enable:\n          script:\n            subPath: traefik/Enable.ps1\n"), nil, 1)
				writeTree(t, filepath.Dir(p), map[string]string{ManifestFile: string(b)})
			},
			want: `9:9: addon ingress: implementation traefik has no directory DIR/addons/ingress/traefik; an implementation named unlike its addon keeps its files in <addon dir>/<implementation>`,
		},
		{
			name: "bad manifest",
			src:  `addons: metrics: {dir: "addons/metrics", version: "0.7.2"}` + "\n",
			edit: func(dir string) {
				writeTree(t, filepath.Join(dir, "addons", "metrics"), map[string]string{ManifestFile: "apiVersion: v1\nkind: AddonManifest\nmetadata: {name: metrics, description: d}\nspec: {implementation: []}\n"})
			},
			want: `9:9: addon metrics: DIR/addons/metrics/addon.manifest.yaml: spec.implementation: unknown field "implementation"; check its spelling against K2s's addon manifest schema`,
		},
		{
			name: "no manifest",
			src:  `addons: metrics: {dir: "addons", version: "0.7.2"}` + "\n",
			want: `9:9: addon metrics: DIR/addons/addon.manifest.yaml: missing; an addon directory holds an addon.manifest.yaml (apiVersion: v1, kind: AddonManifest)`,
		},
		{
			name: "two images with one file name",
			src: `addons: metrics: {dir: "addons/metrics", version: "0.7.2", implementations: metrics: images: linux: [
	{ref: "example.com/a/b:1", archive: path: "nano.tar"},
	{ref: "example.com/a_b:1", archive: path: "nano.tar"},
]}
`,
			want: `11:2: addon metrics: image example.com/a_b:1 is stored as example.com_a_b_1.tar, like another image of the implementation; K2s's file names cannot tell them apart`,
		},
		{
			name: "names too long for Kubernetes objects",
			src:  `addons: ingress: {dir: "addons/ingress", version: "1.4.0"}` + "\n",
			edit: func(dir string) {
				long := strings.Repeat("n", 50)
				p := filepath.Join(dir, "addons", "ingress")
				b, _ := os.ReadFile(filepath.Join(p, ManifestFile))
				b = bytes.ReplaceAll(b, []byte("nginx"), []byte(long))
				writeTree(t, p, map[string]string{ManifestFile: string(b)})
				if err := os.Rename(filepath.Join(p, "nginx"), filepath.Join(p, long)); err != nil {
					t.Fatal(err)
				}
			},
			want: `9:9: addon ingress: gitops: Addon.Implementation "` + strings.Repeat("n", 50) + `": object name "addon-sync-ingress-` +
				strings.Repeat("n", 50) + `" too long: must be no more than 63 characters`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, dir := loadConfig(t, tc.src, tc.edit)
			_, err := Targets(m)
			if err == nil {
				t.Fatal("planned without error")
			}
			want := filepath.Join(dir, "release.cue") + ":" + strings.ReplaceAll(tc.want, "DIR", dir)
			if got := err.Error(); got != want {
				t.Fatalf("error\n%s\nwant\n%s", got, want)
			}
		})
	}
}

// The step runs the planned spec: its outputs are what Export writes for
// the same inputs, listed as artifacts, and the Flux resources name both
// implementations.
func TestStepRunsPlannedSpec(t *testing.T) {
	m, _ := loadConfig(t, twoAddons, nil)
	ts, err := Targets(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, tg := range ts {
		t.Run(tg.ID, func(t *testing.T) {
			raw, err := json.Marshal(tg.Spec)
			if err != nil {
				t.Fatal(err)
			}
			in := &step.Input{Target: tg.ID, Spec: raw, Sources: map[string]string{}, Deps: map[string]step.Result{},
				OutDir: t.TempDir(), Workers: 1, Progress: step.Discard, Log: io.Discard}
			for _, s := range tg.Sources {
				in.Sources[s.Name] = s.Path
			}
			// The dependencies' results, as the image and deb steps leave them.
			depDir := t.TempDir()
			writeTree(t, depDir, map[string]string{"images/debian12/pause.tar": "pause image\n", "debs/debian12/kubelet.deb": "kubelet deb\n"})
			for _, d := range tg.Deps {
				kind, p := image.ArtifactKind, "images/debian12/pause.tar"
				if strings.HasPrefix(d, "deb/") {
					kind, p = deb.ArtifactKind, "debs/debian12/kubelet.deb"
				}
				in.Deps[d] = step.Result{Dir: depDir, Artifacts: []step.Artifact{{Path: "other", Kind: "other"}, {Path: p, Kind: kind}}}
			}
			arts, err := Step{}.Run(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			s := tg.Spec.(Spec)
			var paths []string
			for _, a := range arts {
				paths = append(paths, a.Kind+" "+a.Path)
			}
			if paths[0] != "addon-archive "+ArchivePath(s.Name, s.Version) || paths[len(paths)-1] != "flux "+FluxPath(s.Name, s.Version) {
				t.Errorf("artifacts %q", paths)
			}
			for _, a := range arts {
				if _, err := os.Stat(filepath.Join(in.OutDir, filepath.FromSlash(a.Path))); err != nil {
					t.Errorf("artifact %s: %v", a.Path, err)
				}
			}
			flux, err := os.ReadFile(filepath.Join(in.OutDir, FluxPath(s.Name, s.Version)))
			if err != nil {
				t.Fatal(err)
			}
			for _, si := range s.Impls {
				if !strings.Contains(string(flux), "oci://k2s.registry.local:30500/addons/"+ExportName(s.Name, si.Name)) {
					t.Errorf("flux resources do not name %s:\n%s", ExportName(s.Name, si.Name), flux)
				}
			}
			l := readLayout(t, filepath.Join(in.OutDir, LayoutPath(s.Name, s.Version)))
			if len(l.index.Manifests) != len(s.Impls) {
				t.Fatalf("%d manifests", len(l.index.Manifests))
			}
			if s.Name == "metrics" {
				layers := map[string][]byte{}
				for _, ld := range l.manifest(l.index.Manifests[0]).Layers {
					layers[ld.Annotations["org.opencontainers.image.title"]] = l.blob(ld)
				}
				lin := readTar(t, layers["images-linux.tar"])
				if len(lin) != 1 || lin[0].Name != "registry.k8s.io_pause_3.10.tar" || lin[0].Data != "pause image\n" {
					t.Errorf("images-linux.tar %v", lin)
				}
				pk := readTar(t, gunzip(t, layers["packages.tar.gz"]))
				if got := dataOf(pk, "debianpackages/kubelet/kubelet_1.32.2-1_amd64.deb"); got != "kubelet deb\n" {
					t.Errorf("packages.tar.gz: kubelet %q", got)
				}
				if got := dataOf(pk, "linuxpackages/helm"); got != "helm\n" {
					t.Errorf("packages.tar.gz: helm %q", got)
				}
			}
			// Running again gives the same bytes.
			in2 := *in
			in2.OutDir = t.TempDir()
			if _, err := (Step{}).Run(context.Background(), &in2); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(treeBytes(t, in.OutDir), treeBytes(t, in2.OutDir)) {
				t.Error("a second run wrote different bytes")
			}
		})
	}
}
