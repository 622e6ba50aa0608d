package addon

import (
	"archive/tar"
	"bytes"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// The media types and file names of SPEC's table, written out rather than
// taken from the package's constants, so that a typo there fails here.
var specLayers = []struct{ title, mediaType string }{
	{"config.tar.gz", "application/vnd.k2s.addon.configfiles.v1.tar+gzip"},
	{"manifests.tar.gz", "application/vnd.k2s.addon.manifests.v1.tar+gzip"},
	{"charts.tar.gz", "application/vnd.cncf.helm.chart.content.v1.tar+gzip"},
	{"scripts.tar.gz", "application/vnd.k2s.addon.scripts.v1.tar+gzip"},
	{"images-linux.tar", "application/vnd.oci.image.layer.v1.tar"},
	{"images-windows.tar", "application/vnd.k2s.addon.images-windows.v1.tar"},
	{"packages.tar.gz", "application/vnd.k2s.addon.packages.v1.tar+gzip"},
}

const (
	wantArtifactType = "application/vnd.k2s.addon.v1"
	wantConfigType   = "application/vnd.k2s.addon.config.v1+json"
)

// payloads writes image archives and packages outside the addon directory
// and returns the Impl fields that name them.
func payloads(t testing.TB) (linux, windows, pkgs []File) {
	t.Helper()
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"pause.tar":   "linux image archive\n",
		"nano.tar":    "windows image archive\n",
		"tools.deb":   "debian package\n",
		"helm":        "linux binary\n",
		"helm.exe":    "windows binary\n",
		"kubectl.deb": "another debian package\n",
	})
	in := func(n string) string { return filepath.Join(dir, n) }
	linux = []File{{Name: ImageTarName("registry.k8s.io/pause:3.10", false), Path: in("pause.tar")}}
	windows = []File{{Name: ImageTarName("mcr.microsoft.com/windows/nanoserver:ltsc2022", true), Path: in("nano.tar")}}
	pkgs = []File{
		{Name: "debianpackages/k2s-node-tools/k2s-node-tools_1.0.0_all.deb", Path: in("tools.deb")},
		{Name: "linuxpackages/helm", Path: in("helm")},
		{Name: "windowspackages/helm.exe", Path: in("helm.exe")},
		{Name: "debianpackages/kubectl/kubectl_1.32.2-1_amd64.deb", Path: in("kubectl.deb")},
	}
	return linux, windows, pkgs
}

func metricsOptions(t testing.TB, dir string) Options {
	t.Helper()
	man, err := LoadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	linux, windows, pkgs := payloads(t)
	return Options{
		Name: "metrics", Version: "0.7.2", Dir: dir, Manifest: man,
		Impls: []Impl{{Name: "metrics", LinuxImages: linux, WindowsImages: windows, Packages: pkgs,
			Sync: syncFor(t, "metrics", "0.7.2", "metrics")}},
		Vendor: "Example Edge Systems", License: "MIT", ProductVersion: "1.5.0", Date: buildDate,
	}
}

// export runs Export into a fresh directory.
func export(t testing.TB, opts Options) (*Exported, string) {
	t.Helper()
	out := t.TempDir()
	opts.LayoutDir = filepath.Join(out, "layout")
	opts.TarPath = filepath.Join(out, "addon.oci.tar")
	ex, err := Export(opts)
	if err != nil {
		t.Fatal(err)
	}
	return ex, out
}

// treeBytes reads every file below dir (relative slash path -> bytes) and
// fails on anything but regular files and directories.
func treeBytes(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if !d.Type().IsRegular() {
			t.Errorf("%s is not a regular file", p)
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestExportReproducible(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts func(t *testing.T) Options
	}{
		{"single implementation", func(t *testing.T) Options { return metricsOptions(t, metricsAddon(t)) }},
		{"two implementations", func(t *testing.T) Options { return ingressOptions(t, ingressAddon(t)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.opts(t)
			ex1, out1 := export(t, opts)
			ex2, out2 := export(t, opts)
			if !reflect.DeepEqual(ex1, ex2) {
				t.Fatalf("Exported differs:\n%+v\n%+v", ex1, ex2)
			}
			l1, l2 := treeBytes(t, filepath.Join(out1, "layout")), treeBytes(t, filepath.Join(out2, "layout"))
			if !reflect.DeepEqual(l1, l2) {
				t.Fatal("the two layouts differ")
			}
			// Files lists exactly the layout's files: no temporary blob
			// was left behind.
			if got := slices.Sorted(maps.Keys(l1)); !slices.Equal(got, ex1.Files) {
				t.Fatalf("layout holds %q, Files says %q", got, ex1.Files)
			}
			t1, err := os.ReadFile(filepath.Join(out1, "addon.oci.tar"))
			if err != nil {
				t.Fatal(err)
			}
			t2, err := os.ReadFile(filepath.Join(out2, "addon.oci.tar"))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(t1, t2) {
				t.Fatal("the two .oci.tar differ")
			}
			// The .oci.tar is the layout: the same files and bytes, with
			// its directories.
			entries := readTar(t, t1)
			wantNames := []string{"blobs/", "blobs/sha256/"}
			for _, f := range ex1.Files {
				if strings.HasPrefix(f, "blobs/") {
					wantNames = append(wantNames, f)
				}
			}
			wantNames = append(wantNames, "index.json", "oci-layout")
			if got := names(entries); !slices.Equal(got, wantNames) {
				t.Fatalf(".oci.tar entries\n%q\nwant\n%q", got, wantNames)
			}
			for _, e := range entries {
				switch {
				case e.Type == tar.TypeDir:
					if e.Mode != 0o755 {
						t.Errorf("%s: mode %o", e.Name, e.Mode)
					}
				case e.Type != tar.TypeReg || e.Mode != 0o644 || e.Data != l1[e.Name]:
					t.Errorf("%s: type %c mode %o, or bytes differ from the layout", e.Name, e.Type, e.Mode)
				}
			}
			if got := l1["oci-layout"]; got != `{"imageLayoutVersion":"1.0.0"}` {
				t.Errorf("oci-layout %s", got)
			}
			// Every manifest is a blob of the layout, and so is everything it names.
			l := readLayout(t, filepath.Join(out1, "layout"))
			if !reflect.DeepEqual(l.index.Manifests, ex1.Manifests) {
				t.Errorf("index.json manifests differ from Exported.Manifests")
			}
			for _, md := range l.index.Manifests {
				m := l.manifest(md)
				l.blob(m.Config)
				for _, ld := range m.Layers {
					l.blob(ld)
				}
			}
		})
	}
}

// layerDigests maps each layer title to its digest.
func layerDigests(m ocispec.Manifest) map[string]string {
	out := map[string]string{}
	for _, l := range m.Layers {
		out[l.Annotations["org.opencontainers.image.title"]] = l.Digest.String()
	}
	return out
}

func TestExportChangedManifestFileChangesOnlyItsLayer(t *testing.T) {
	dir := metricsAddon(t)
	opts := metricsOptions(t, dir)
	ex1, out1 := export(t, opts)

	p := filepath.Join(dir, "manifests", "metrics-server.yaml")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-2] ^= 1 // one bit of one byte
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	ex2, out2 := export(t, opts)

	m1 := readLayout(t, filepath.Join(out1, "layout")).manifest(ex1.Manifests[0])
	m2 := readLayout(t, filepath.Join(out2, "layout")).manifest(ex2.Manifests[0])
	if ex1.Manifests[0].Digest == ex2.Manifests[0].Digest {
		t.Fatal("the manifest digest did not change")
	}
	d1, d2 := layerDigests(m1), layerDigests(m2)
	if len(d1) != 6 || !slices.Equal(slices.Sorted(maps.Keys(d1)), slices.Sorted(maps.Keys(d2))) {
		t.Fatalf("layers %v and %v", d1, d2)
	}
	for title := range d1 {
		if changed := d1[title] != d2[title]; changed != (title == "manifests.tar.gz") {
			t.Errorf("layer %s: changed %v", title, changed)
		}
	}
	if m1.Config.Digest != m2.Config.Digest {
		t.Errorf("the config blob changed")
	}
	t1, _ := os.ReadFile(filepath.Join(out1, "addon.oci.tar"))
	t2, _ := os.ReadFile(filepath.Join(out2, "addon.oci.tar"))
	if bytes.Equal(t1, t2) {
		t.Error("the .oci.tar did not change")
	}
}

// checkManifest checks the manifest of one implementation against SPEC:
// artifact type, config, layers in the table's order with the wanted
// titles, annotations; and returns the layers' bytes by title.
func checkManifest(t *testing.T, l *layoutOf, md ocispec.Descriptor, wantTitles []string, wantConfig string, wantAnn map[string]string) map[string][]byte {
	t.Helper()
	if md.MediaType != "application/vnd.oci.image.manifest.v1+json" || md.ArtifactType != wantArtifactType {
		t.Errorf("index entry media type %s, artifact type %s", md.MediaType, md.ArtifactType)
	}
	raw := l.blob(md)
	m := l.manifest(md)
	if m.SchemaVersion != 2 || m.MediaType != "application/vnd.oci.image.manifest.v1+json" || m.ArtifactType != wantArtifactType {
		t.Errorf("manifest schemaVersion %d mediaType %s artifactType %s", m.SchemaVersion, m.MediaType, m.ArtifactType)
	}
	if m.Subject != nil || m.Config.Annotations != nil {
		t.Errorf("manifest has a subject or config annotations: %s", raw)
	}
	if m.Config.MediaType != wantConfigType {
		t.Errorf("config media type %s", m.Config.MediaType)
	}
	if got := string(l.blob(m.Config)); got != wantConfig {
		t.Errorf("config\n%s\nwant\n%s", got, wantConfig)
	}
	if !reflect.DeepEqual(m.Annotations, wantAnn) {
		t.Errorf("manifest annotations\n%v\nwant\n%v", m.Annotations, wantAnn)
	}
	var titles []string
	last := -1
	out := map[string][]byte{}
	for _, ld := range m.Layers {
		title := ld.Annotations["org.opencontainers.image.title"]
		titles = append(titles, title)
		if len(ld.Annotations) != 1 {
			t.Errorf("layer %s annotations %v, want only the title", title, ld.Annotations)
		}
		i := slices.IndexFunc(specLayers, func(s struct{ title, mediaType string }) bool { return s.title == title })
		if i < 0 {
			t.Errorf("layer title %q is not in SPEC's table", title)
			continue
		}
		if ld.MediaType != specLayers[i].mediaType {
			t.Errorf("layer %s media type %s, want %s", title, ld.MediaType, specLayers[i].mediaType)
		}
		if i <= last {
			t.Errorf("layer %s is out of SPEC's order", title)
		}
		last = i
		out[title] = l.blob(ld)
	}
	if !slices.Equal(titles, wantTitles) {
		t.Errorf("layers %q, want %q", titles, wantTitles)
	}
	return out
}

// layerEntries reads a layer (inflating .gz ones) and checks that the
// entries are sorted, every directory comes before what it holds and each
// file's parent directories are there.
func layerEntries(t *testing.T, title string, b []byte) []tarEntry {
	t.Helper()
	if strings.HasSuffix(title, ".gz") {
		b = gunzip(t, b)
	}
	es := readTar(t, b)
	seen := map[string]bool{}
	for i, e := range es {
		if i > 0 && strings.TrimSuffix(es[i-1].Name, "/") >= strings.TrimSuffix(e.Name, "/") {
			t.Errorf("%s: %s after %s", title, e.Name, es[i-1].Name)
		}
		dir := e.Name[:strings.LastIndex(strings.TrimSuffix(e.Name, "/"), "/")+1]
		if dir != "" && !seen[dir] {
			t.Errorf("%s: %s comes before (or without) its directory %s", title, e.Name, dir)
		}
		seen[e.Name] = true
		if (e.Type == tar.TypeDir) != strings.HasSuffix(e.Name, "/") {
			t.Errorf("%s: %s has type %c", title, e.Name, e.Type)
		}
	}
	return es
}

// want is an expected tar entry: a name ending in "/" is a directory
// (mode 0755), a file has mode 0644 unless given.
func wantEntries(spec ...any) []tarEntry {
	var out []tarEntry
	for i := 0; i < len(spec); i++ {
		name := spec[i].(string)
		if strings.HasSuffix(name, "/") {
			out = append(out, tarEntry{Name: name, Mode: 0o755, Type: tar.TypeDir})
			continue
		}
		e := tarEntry{Name: name, Mode: 0o644, Type: tar.TypeReg}
		if i+1 < len(spec) {
			if m, ok := spec[i+1].(int); ok {
				e.Mode = int64(m)
				i++
			}
		}
		out = append(out, e)
	}
	return out
}

func checkEntries(t *testing.T, title string, got, want []tarEntry) {
	t.Helper()
	strip := make([]tarEntry, len(got))
	for i, e := range got {
		strip[i] = tarEntry{Name: e.Name, Mode: e.Mode, Type: e.Type}
	}
	if !reflect.DeepEqual(strip, want) {
		t.Errorf("%s entries:\n%v\nwant\n%v", title, strip, want)
	}
}

func dataOf(es []tarEntry, name string) string {
	for _, e := range es {
		if e.Name == name {
			return e.Data
		}
	}
	return "<missing>"
}

func TestExportSingleImplementationContents(t *testing.T) {
	dir := metricsAddon(t)
	opts := metricsOptions(t, dir)
	ex, out := export(t, opts)
	l := readLayout(t, filepath.Join(out, "layout"))

	if l.index.SchemaVersion != 2 || l.index.MediaType != "application/vnd.oci.image.index.v1+json" || len(l.index.Manifests) != 1 {
		t.Fatalf("index %+v", l.index)
	}
	md := ex.Manifests[0]
	wantIdxAnn := map[string]string{
		"org.opencontainers.image.ref.name": "v0.7.2",
		"org.opencontainers.image.title":    "metrics",
		"org.opencontainers.image.version":  "0.7.2",
		"vnd.k2s.addon.name":                "metrics",
		"vnd.k2s.addon.implementation":      "metrics",
		"vnd.k2s.addon.export-name":         "metrics",
	}
	if !reflect.DeepEqual(md.Annotations, wantIdxAnn) {
		t.Errorf("index entry annotations %v", md.Annotations)
	}
	if got := l.index.Annotations["vnd.k2s.addon.count"]; got != "1" {
		t.Errorf("index count annotation %q", got)
	}
	if got := l.index.Annotations["org.opencontainers.image.created"]; got != "2025-06-01T12:30:45Z" {
		t.Errorf("index created %q", got)
	}

	wantConfig := `{"name":"metrics","version":"0.7.2","implementation":"metrics","description":"metrics-server",` +
		`"k2sVersion":"1.5.0","exportDate":"2025-06-01T12:30:45Z"}`
	wantAnn := map[string]string{
		"org.opencontainers.image.title":       "metrics",
		"org.opencontainers.image.version":     "0.7.2",
		"org.opencontainers.image.created":     "2025-06-01T12:30:45Z",
		"org.opencontainers.image.vendor":      "Example Edge Systems",
		"org.opencontainers.image.licenses":    "MIT",
		"org.opencontainers.image.description": "metrics-server",
		"vnd.k2s.addon.name":                   "metrics",
		"vnd.k2s.addon.implementation":         "metrics",
		"vnd.k2s.addon.export-name":            "metrics",
		"vnd.k2s.version":                      "1.5.0",
		"vnd.k2s.export.date":                  "2025-06-01T12:30:45Z",
		"vnd.k2s.export.type":                  "specific",
	}
	layers := checkManifest(t, l, md, []string{"config.tar.gz", "manifests.tar.gz", "scripts.tar.gz",
		"images-linux.tar", "images-windows.tar", "packages.tar.gz"}, wantConfig, wantAnn)

	cfg := layerEntries(t, "config.tar.gz", layers["config.tar.gz"])
	checkEntries(t, "config.tar.gz", cfg, wantEntries(
		"addon.manifest.yaml", "config/", "config/extra.config.json", "values-ha.yaml", "values.yaml"))
	if dataOf(cfg, "addon.manifest.yaml") != metricsManifest {
		t.Error("config.tar.gz: addon.manifest.yaml is not the addon's")
	}

	man := layerEntries(t, "manifests.tar.gz", layers["manifests.tar.gz"])
	checkEntries(t, "manifests.tar.gz", man, wantEntries(
		"gitops-sync/", "gitops-sync/kustomization.yaml", "gitops-sync/sync-job.yaml",
		"kustomization.yaml", "metrics-server.yaml", "rbac/", "rbac/cluster-role.yaml"))
	for _, f := range opts.Impls[0].Sync {
		if got := dataOf(man, f.Path); got != string(f.Data) {
			t.Errorf("manifests.tar.gz: %s holds %q, want the generated %q", f.Path, got, f.Data)
		}
	}
	if got := dataOf(man, "gitops-sync/kustomization.yaml"); !strings.Contains(got, "kind: Kustomization") || !strings.Contains(got, "sync-job.yaml") {
		t.Errorf("gitops-sync/kustomization.yaml:\n%s", got)
	}
	if got := dataOf(man, "gitops-sync/sync-job.yaml"); !strings.Contains(got, "kind: Job") {
		t.Errorf("gitops-sync/sync-job.yaml:\n%s", got)
	}
	src, _ := os.ReadFile(filepath.Join(dir, "manifests", "metrics-server.yaml"))
	if dataOf(man, "metrics-server.yaml") != string(src) {
		t.Error("manifests.tar.gz: metrics-server.yaml differs from the addon's")
	}

	// Scripts: the top-level PowerShell and docs, with the executable bit
	// kept; not the manifest, configuration, manifests/ or other files.
	checkEntries(t, "scripts.tar.gz", layerEntries(t, "scripts.tar.gz", layers["scripts.tar.gz"]),
		wantEntries("Disable.ps1", "Enable.ps1", 0o755, "README.md"))

	lin := layerEntries(t, "images-linux.tar", layers["images-linux.tar"])
	checkEntries(t, "images-linux.tar", lin, wantEntries("registry.k8s.io_pause_3.10.tar"))
	if dataOf(lin, "registry.k8s.io_pause_3.10.tar") != "linux image archive\n" {
		t.Error("images-linux.tar: wrong bytes")
	}
	checkEntries(t, "images-windows.tar", layerEntries(t, "images-windows.tar", layers["images-windows.tar"]),
		wantEntries("windows_mcr.microsoft.com_windows_nanoserver_ltsc2022.tar"))
	pk := layerEntries(t, "packages.tar.gz", layers["packages.tar.gz"])
	checkEntries(t, "packages.tar.gz", pk, wantEntries(
		"debianpackages/", "debianpackages/k2s-node-tools/", "debianpackages/k2s-node-tools/k2s-node-tools_1.0.0_all.deb",
		"debianpackages/kubectl/", "debianpackages/kubectl/kubectl_1.32.2-1_amd64.deb",
		"linuxpackages/", "linuxpackages/helm", "windowspackages/", "windowspackages/helm.exe"))
	if dataOf(pk, "windowspackages/helm.exe") != "windows binary\n" {
		t.Error("packages.tar.gz: wrong bytes")
	}
}

func ingressOptions(t testing.TB, dir string) Options {
	t.Helper()
	man, err := LoadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	// Given out of order: Export sorts implementations by name.
	return Options{
		Name: "ingress", Version: "1.4.0", Dir: dir, Manifest: man,
		Impls: []Impl{
			{Name: "traefik", Sync: syncFor(t, "ingress", "1.4.0", "traefik")},
			{Name: "nginx", Sync: syncFor(t, "ingress", "1.4.0", "nginx")},
		},
		Vendor: "Example Edge Systems", ProductVersion: "1.5.0", Date: buildDate,
	}
}

func TestExportTwoImplementationsContents(t *testing.T) {
	dir := ingressAddon(t)
	ex, out := export(t, ingressOptions(t, dir))
	l := readLayout(t, filepath.Join(out, "layout"))
	if len(l.index.Manifests) != 2 || l.index.Annotations["vnd.k2s.addon.count"] != "2" {
		t.Fatalf("index %+v", l.index)
	}
	for i, impl := range []string{"nginx", "traefik"} {
		md := ex.Manifests[i]
		if got := md.Annotations["vnd.k2s.addon.implementation"]; got != impl {
			t.Fatalf("index entry %d is %s, want %s (sorted by name)", i, got, impl)
		}
		if got := md.Annotations["org.opencontainers.image.ref.name"]; got != "v1.4.0" {
			t.Errorf("%s: ref.name %q", impl, got)
		}
		if got := md.Annotations["vnd.k2s.addon.export-name"]; got != "ingress-"+impl {
			t.Errorf("%s: export name %q", impl, got)
		}
	}
	if ex.Manifests[0].Digest == ex.Manifests[1].Digest {
		t.Fatal("both implementations have the same manifest")
	}

	ann := func(impl, desc string) map[string]string {
		return map[string]string{
			"org.opencontainers.image.title":       "ingress-" + impl,
			"org.opencontainers.image.version":     "1.4.0",
			"org.opencontainers.image.created":     "2025-06-01T12:30:45Z",
			"org.opencontainers.image.vendor":      "Example Edge Systems",
			"org.opencontainers.image.description": desc,
			"vnd.k2s.addon.name":                   "ingress",
			"vnd.k2s.addon.implementation":         impl,
			"vnd.k2s.addon.export-name":            "ingress-" + impl,
			"vnd.k2s.version":                      "1.5.0",
			"vnd.k2s.export.date":                  "2025-06-01T12:30:45Z",
			"vnd.k2s.export.type":                  "specific",
		}
	}
	cfg := func(impl, desc string) string {
		return `{"name":"ingress","version":"1.4.0","implementation":"` + impl + `","description":"` + desc +
			`","k2sVersion":"1.5.0","exportDate":"2025-06-01T12:30:45Z"}`
	}

	// nginx: no chart, so no charts layer; no images or packages.
	nginxDesc := "Ingress controller that uses nginx as a reverse proxy"
	nl := checkManifest(t, l, ex.Manifests[0], []string{"config.tar.gz", "manifests.tar.gz", "scripts.tar.gz"},
		cfg("nginx", nginxDesc), ann("nginx", nginxDesc))
	checkEntries(t, "nginx config.tar.gz", layerEntries(t, "config.tar.gz", nl["config.tar.gz"]),
		wantEntries("addon.manifest.yaml", "values.yaml"))
	checkEntries(t, "nginx manifests.tar.gz", layerEntries(t, "manifests.tar.gz", nl["manifests.tar.gz"]),
		wantEntries("gitops-sync/", "gitops-sync/kustomization.yaml", "gitops-sync/sync-job.yaml", "namespace.yaml"))
	checkEntries(t, "nginx scripts.tar.gz", layerEntries(t, "scripts.tar.gz", nl["scripts.tar.gz"]),
		wantEntries("Disable.ps1", "Enable.ps1"))

	// traefik has no description of its own: the addon's is used.
	traefikDesc := "Ingress controllers for external access"
	tl := checkManifest(t, l, ex.Manifests[1], []string{"config.tar.gz", "manifests.tar.gz", "charts.tar.gz", "scripts.tar.gz"},
		cfg("traefik", traefikDesc), ann("traefik", traefikDesc))
	tc := layerEntries(t, "config.tar.gz", tl["config.tar.gz"])
	checkEntries(t, "traefik config.tar.gz", tc, wantEntries("addon.manifest.yaml"))
	if dataOf(tc, "addon.manifest.yaml") != ingressManifest {
		t.Error("traefik config.tar.gz: addon.manifest.yaml is not the addon's")
	}
	tm := layerEntries(t, "manifests.tar.gz", tl["manifests.tar.gz"])
	checkEntries(t, "traefik manifests.tar.gz", tm, wantEntries(
		"chart/", "chart/Chart.yaml", "chart/templates/", "chart/templates/dep.yaml",
		"gitops-sync/", "gitops-sync/kustomization.yaml", "gitops-sync/sync-job.yaml", "namespace.yaml"))
	if !strings.Contains(dataOf(tm, "gitops-sync/sync-job.yaml"), "traefik") {
		t.Error("traefik's sync Job does not name its implementation")
	}
	checkEntries(t, "traefik charts.tar.gz", layerEntries(t, "charts.tar.gz", tl["charts.tar.gz"]),
		wantEntries("Chart.yaml", "templates/", "templates/dep.yaml"))
	checkEntries(t, "traefik scripts.tar.gz", layerEntries(t, "scripts.tar.gz", tl["scripts.tar.gz"]),
		wantEntries("Enable.ps1", "README.md"))

	// A single implementation selected exports one manifest.
	opts := ingressOptions(t, dir)
	opts.Impls = opts.Impls[:1]
	ex1, _ := export(t, opts)
	if len(ex1.Manifests) != 1 || ex1.Manifests[0].Digest != ex.Manifests[1].Digest {
		t.Errorf("traefik alone: %v, want the same manifest %s", ex1.Manifests, ex.Manifests[1].Digest)
	}
}

func TestExportOmitImagesAndPackages(t *testing.T) {
	dir := metricsAddon(t)
	base := metricsOptions(t, dir)
	_, fullOut := export(t, base)
	full := readLayout(t, filepath.Join(fullOut, "layout"))
	fullLayers := layerDigests(full.manifest(full.index.Manifests[0]))
	for _, tc := range []struct {
		name                 string
		omitImages, omitPkgs bool
		want                 []string
	}{
		{"images", true, false, []string{"config.tar.gz", "manifests.tar.gz", "scripts.tar.gz", "packages.tar.gz"}},
		{"packages", false, true, []string{"config.tar.gz", "manifests.tar.gz", "scripts.tar.gz", "images-linux.tar", "images-windows.tar"}},
		{"both", true, true, []string{"config.tar.gz", "manifests.tar.gz", "scripts.tar.gz"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := base
			opts.OmitImages, opts.OmitPackages = tc.omitImages, tc.omitPkgs
			ex, out := export(t, opts)
			l := readLayout(t, filepath.Join(out, "layout"))
			m := l.manifest(ex.Manifests[0])
			var titles []string
			for _, ld := range m.Layers {
				title := ld.Annotations["org.opencontainers.image.title"]
				titles = append(titles, title)
				if fullLayers[title] != ld.Digest.String() {
					t.Errorf("layer %s differs from the full export's", title)
				}
			}
			if !slices.Equal(titles, tc.want) {
				t.Errorf("layers %q, want %q", titles, tc.want)
			}
			// The left-out layers' blobs are not in the layout either.
			blobs := 0
			for _, f := range ex.Files {
				if strings.HasPrefix(f, "blobs/") {
					blobs++
				}
			}
			if blobs != len(tc.want)+2 { // + config + manifest
				t.Errorf("%d blobs in %q", blobs, ex.Files)
			}
		})
	}
}

// The manifests layer is there even when the addon has no manifests and
// no gitops-sync files: an empty tar, which Flux extracts to nothing.
func TestExportManifestsLayerAlwaysPresent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "metrics")
	writeTree(t, dir, map[string]string{
		ManifestFile: "apiVersion: v1\nkind: AddonManifest\nmetadata: {name: metrics, description: d}\nspec: {implementations: [{name: metrics}]}\n",
	})
	man, err := LoadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	ex, out := export(t, Options{Name: "metrics", Version: "1.0.0", Dir: dir, Manifest: man, Impls: []Impl{{Name: "metrics"}}, Date: buildDate})
	l := readLayout(t, filepath.Join(out, "layout"))
	layers := checkManifest(t, l, ex.Manifests[0], []string{"config.tar.gz", "manifests.tar.gz"},
		`{"name":"metrics","version":"1.0.0","implementation":"metrics","description":"d","k2sVersion":"","exportDate":"2025-06-01T12:30:45Z"}`,
		map[string]string{
			"org.opencontainers.image.title":       "metrics",
			"org.opencontainers.image.version":     "1.0.0",
			"org.opencontainers.image.created":     "2025-06-01T12:30:45Z",
			"org.opencontainers.image.description": "d",
			"vnd.k2s.addon.name":                   "metrics",
			"vnd.k2s.addon.implementation":         "metrics",
			"vnd.k2s.addon.export-name":            "metrics",
			"vnd.k2s.export.date":                  "2025-06-01T12:30:45Z",
			"vnd.k2s.export.type":                  "specific",
		})
	if es := layerEntries(t, "manifests.tar.gz", layers["manifests.tar.gz"]); len(es) != 0 {
		t.Errorf("manifests layer holds %v", names(es))
	}
}

// exportErr exports opts and returns the error, failing if there is none.
func exportErr(t *testing.T, opts Options) error {
	t.Helper()
	out := t.TempDir()
	opts.LayoutDir = filepath.Join(out, "layout")
	opts.TarPath = filepath.Join(out, "addon.oci.tar")
	_, err := Export(opts)
	if err == nil {
		t.Fatal("exported without error")
	}
	if _, serr := os.Stat(opts.TarPath); serr == nil {
		t.Error("a failed export wrote the .oci.tar")
	}
	return err
}

func TestExportRefusesSymlinks(t *testing.T) {
	for _, tc := range []struct {
		name, link, target string
		dir                bool
	}{
		{"manifest file", "manifests/linked.yaml", "../values.yaml", false},
		{"script", "Uninstall.ps1", "Disable.ps1", false},
		{"configuration file", "values-link.yaml", "values.yaml", false},
		{"file in config/", "config/link.json", "extra.config.json", false},
		{"chart", "manifests/rbac/role.yaml", "cluster-role.yaml", false},
		{"dangling", "manifests/gone.yaml", "does-not-exist.yaml", false},
		{"manifests directory", "manifests", "real-manifests", true},
		{"config directory", "config", "real-config", true},
		{"directory inside manifests", "manifests/more", "../real-more", true},
		// Even where no layer would take the file: refused, not skipped.
		{"file in no layer", "notes-link.txt", "notes.txt", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := metricsAddon(t)
			link := filepath.Join(dir, filepath.FromSlash(tc.link))
			if tc.dir {
				// Move the real directory aside (or make one) and link to it.
				real := filepath.Join(filepath.Dir(link), filepath.FromSlash(tc.target))
				if err := os.Rename(link, real); err != nil {
					writeTree(t, real, map[string]string{"x.yaml": "kind: X\n"})
				}
			}
			if err := os.Symlink(filepath.FromSlash(tc.target), link); err != nil {
				t.Fatal(err)
			}
			err := exportErr(t, metricsOptions(t, dir))
			if !strings.Contains(err.Error(), link) {
				t.Fatalf("error %q does not name %s", err, link)
			}
			if !strings.Contains(err.Error(), "symlink") {
				t.Errorf("error %q does not say what is wrong", err)
			}
		})
	}
}

func TestExportRefusesNamesDifferingInCase(t *testing.T) {
	for _, tc := range []struct{ name, a, b string }{
		{"manifests", "manifests/Deploy.yaml", "manifests/deploy.yaml"},
		{"scripts", "enable.ps1", "Enable.ps1"},
		{"chart", "manifests/chart/values.yaml", "manifests/chart/Values.yaml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := metricsAddon(t)
			writeTree(t, dir, map[string]string{tc.a: "a\n", tc.b: "b\n"})
			err := exportErr(t, metricsOptions(t, dir))
			base := func(p string) string { return strings.TrimPrefix(strings.TrimPrefix(p, "manifests/"), "chart/") }
			for _, n := range []string{base(tc.a), base(tc.b)} {
				if !strings.Contains(err.Error(), n) {
					t.Errorf("error %q does not name %s", err, n)
				}
			}
			if !strings.Contains(err.Error(), "differ only in case") {
				t.Errorf("error %q does not say why", err)
			}
		})
	}
}

func TestExportRefusesOwnGitOpsSyncFolder(t *testing.T) {
	for _, name := range []string{"metrics", "ingress"} {
		t.Run(name, func(t *testing.T) {
			var dir, file string
			var opts Options
			if name == "metrics" {
				dir = metricsAddon(t)
				file = filepath.Join(dir, "manifests", "gitops-sync", "kustomization.yaml")
				opts = metricsOptions(t, dir)
			} else {
				dir = ingressAddon(t)
				file = filepath.Join(dir, "traefik", "manifests", "gitops-sync", "extra", "job.yaml")
				opts = ingressOptions(t, dir)
			}
			writeTree(t, filepath.Dir(file), map[string]string{filepath.Base(file): "kind: Kustomization\n"})
			err := exportErr(t, opts)
			var me *ManifestError
			if !errors.As(err, &me) || me.File != file {
				t.Fatalf("error %v (%T), want a *ManifestError naming %s", err, err, file)
			}
			if !strings.Contains(err.Error(), "manifests/gitops-sync/") {
				t.Errorf("error %q does not name the folder", err)
			}
		})
	}
}

// An addon directory that is itself a symlink is refused too: the walk
// would not enter it, and every file layer would come out empty.
func TestExportRefusesSymlinkedAddonDir(t *testing.T) {
	dir := metricsAddon(t)
	link := filepath.Join(t.TempDir(), "metrics")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	opts := metricsOptions(t, link) // the manifest loads through the link
	opts.Dir = link
	err := exportErr(t, opts)
	if !strings.Contains(err.Error(), link+" is not a regular file or directory") {
		t.Fatalf("error %q does not name %s", err, link)
	}
}
