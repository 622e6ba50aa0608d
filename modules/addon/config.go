package addon

import (
	"fmt"
	"maps"
	"net/url"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"cuelang.org/go/cue"

	"github.com/relcue/release/modules/deb"
	"github.com/relcue/release/modules/image"
	"github.com/relcue/release/pipeline/config"
)

// SectionName is the addon module's configuration section: addons,
// registry and gitops.
const SectionName = "addon"

// Section decodes and checks the addons, where they are pushed and how a
// cluster follows them.
var Section = config.Section{Name: SectionName, Decode: decodeSection}

// Settings is the addon section.
type Settings struct {
	// Addons by name (nil when none); Names lists them in order.
	Addons map[string]*Config
	Names  []string
	// Registry is where addons are pushed (nil when not configured).
	Registry *Registry
	GitOps   GitOps
}

// SettingsOf returns the addon section of m (empty when m has none).
func SettingsOf(m *config.Model) *Settings {
	if s := config.SectionOf[*Settings](m, SectionName); s != nil {
		return s
	}
	return &Settings{}
}

// decoder reads the addon section through the loader's Decoder.
type decoder struct{ *config.Decoder }

type rawSection struct {
	Addons   map[string]rawAddon `json:"addons"`
	Registry *rawRegistry        `json:"registry"`
	GitOps   rawGitOps           `json:"gitops"`
}

func decodeSection(d *config.Decoder) any {
	b := decoder{d}
	// Addon images and .debs refer to what the OS targets build.
	d.Section(deb.SectionName)
	d.Section(image.SectionName)
	var raw rawSection
	for field, into := range map[string]any{"addons": &raw.Addons, "registry": &raw.Registry, "gitops": &raw.GitOps} {
		d.Decode(config.At(field), into)
	}
	s := &Settings{}
	s.Registry = b.registry(raw.Registry)
	s.GitOps = b.gitops(&raw.GitOps, s.Registry)
	s.Addons, s.Names = b.addons(raw.Addons, d.Model().Versions)
	return s
}

func (b decoder) osBuildsImage(t *config.OSTarget, ref string) bool {
	for _, v := range t.Versions {
		for _, im := range image.NodeImages(b.Model(), t.Name, v) {
			if im.Ref == ref {
				return true
			}
		}
	}
	return false
}

func (b decoder) osBuildsDeb(t *config.OSTarget, d *DebConfig) bool {
	for _, v := range t.Versions {
		for _, dr := range deb.NodeDebs(b.Model(), t.Name, v) {
			if s := dr.Build; s != nil && s.Name == d.Name && s.Version == d.Version && s.Arch == d.Arch {
				return true
			}
		}
	}
	return false
}

type rawAddon struct {
	Dir             string                  `json:"dir"`
	Version         string                  `json:"version"`
	Implementations map[string]rawAddonImpl `json:"implementations"`
	OmitImages      bool                    `json:"omitImages"`
	OmitPackages    bool                    `json:"omitPackages"`
	ProductVersion  *string                 `json:"productVersion"`
	License         string                  `json:"license"`
}

type rawAddonImpl struct {
	Images struct {
		Linux   []rawImageConfig `json:"linux"`
		Windows []rawImageConfig `json:"windows"`
	} `json:"images"`
	Packages struct {
		Debian  map[string][]rawFileConfig `json:"debian"`
		Linux   []rawFileConfig            `json:"linux"`
		Windows []rawFileConfig            `json:"windows"`
	} `json:"packages"`
}

type rawImageConfig struct {
	Ref     string            `json:"ref"`
	OS      *string           `json:"os"`
	Archive *config.RawSource `json:"archive"`
}

type rawFileConfig struct {
	File *config.RawSource `json:"file"`
	Deb  *DebConfig        `json:"deb"`
	Name *string           `json:"name"`
}

type rawRegistry struct {
	Host      string `json:"host"`
	PlainHTTP bool   `json:"plainHTTP"`
	Insecure  bool   `json:"insecure"`
	Prefix    string `json:"prefix"`
}

type rawGitOps struct {
	Registry        *string `json:"registry"`
	Insecure        *bool   `json:"insecure"`
	Interval        string  `json:"interval"`
	Timeout         string  `json:"timeout"`
	Namespace       string  `json:"namespace"`
	TargetNamespace string  `json:"targetNamespace"`
}

// Config is an addon exported as OCI artifacts (K2s's format).
type Config struct {
	// Name is the key under addons and the manifest's metadata.name.
	Name string
	// Dir is the absolute addon directory holding addon.manifest.yaml.
	Dir     string
	Version string
	// Implementations are the selected implementations by name; empty
	// means every implementation of the manifest, with no images or
	// packages.
	Implementations map[string]*ImplConfig
	OmitImages      bool
	OmitPackages    bool
	// ProductVersion is written as k2sVersion (default: newest release).
	ProductVersion string
	License        string
	Pos            config.Pos
}

// ImplConfig is what one implementation ships besides its files.
type ImplConfig struct {
	Name          string
	LinuxImages   []ImageConfig
	WindowsImages []ImageConfig
	// Debian maps a package name to its .debs (debianpackages/<name>/).
	Debian         map[string][]FileConfig
	Linux, Windows []FileConfig
	Pos            config.Pos
}

// ImageConfig is an image built by the pipeline for an OS target (OS set)
// or an existing archive (Archive set), known by Ref.
type ImageConfig struct {
	Ref     string
	OS      string
	Archive *config.Source
	Pos     config.Pos
}

// FileConfig is an existing file (File) or a .deb the pipeline builds (Deb),
// stored under Name.
type FileConfig struct {
	File *config.Source
	Deb  *DebConfig
	// Name is the file name in the layer ("" = the file's own name, or
	// the built .deb's).
	Name string
	Pos  config.Pos
}

// DebConfig names a .deb built for an OS target.
type DebConfig struct {
	OS      string `json:"os"`
	Name    string `json:"name"`
	Version string `json:"version"`
	Arch    string `json:"arch"`
}

// Registry is where addon artifacts are pushed.
type Registry struct {
	Host      string
	PlainHTTP bool
	Insecure  bool
	// Prefix is the repository path before the export name ("addons").
	Prefix string
	Pos    config.Pos
}

// GitOps configures the Flux resources of addons.
type GitOps struct {
	// Registry is what the cluster pulls from ("" = none known: no Flux
	// resources are written).
	Registry        string
	Insecure        bool
	Interval        time.Duration
	Timeout         time.Duration
	Namespace       string
	TargetNamespace string
}

// hostRE is host[:port] as registry references write it.
var hostRE = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?(:[0-9]{1,5})?$|^\[[0-9a-fA-F:]+\](:[0-9]{1,5})?$`)

// repoPathRE is a registry repository path (lower case components).
var repoPathRE = regexp.MustCompile(`^[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*$`)

func (b decoder) addons(raw map[string]rawAddon, versions []string) (map[string]*Config, []string) {
	if len(raw) == 0 {
		return nil, nil
	}
	out := map[string]*Config{}
	names := slices.Sorted(maps.Keys(raw))
	for _, name := range names {
		r := raw[name]
		out[name] = b.addon(name, &r, versions)
	}
	return out, names
}

func (b decoder) addon(name string, raw *rawAddon, versions []string) *Config {
	ap := config.At("addons", name)
	a := &Config{Name: name, Version: raw.Version, OmitImages: raw.OmitImages, OmitPackages: raw.OmitPackages,
		License: raw.License, Pos: b.Pos(ap), Implementations: map[string]*ImplConfig{}}
	if !config.ValidDNSLabel(name) {
		b.Problem(ap, "%q cannot name an addon, which becomes a registry repository and Kubernetes object names; use lower-case letters, digits and \"-\" (at most 63, starting and ending with a letter or digit)", name)
	}
	a.Dir = b.Local(config.Join(ap, "dir"), raw.Dir)
	if !config.ValidVersion(raw.Version) || strings.Contains(raw.Version, "+") {
		msg := fmt.Sprintf("%q is not a semver version X.Y.Z[-pre]", raw.Version)
		if w, ok := strings.CutPrefix(raw.Version, "v"); ok && config.ValidVersion(w) {
			msg = fmt.Sprintf("%q has a leading v; write %q (the tag gets the v)", raw.Version, strings.SplitN(w, "+", 2)[0])
		} else if config.ValidVersion(raw.Version) {
			msg = fmt.Sprintf("%q has build metadata; the artifact is tagged v<version>, and tags cannot hold \"+\"; write %q", raw.Version, strings.SplitN(raw.Version, "+", 2)[0])
		}
		b.Problem(config.Join(ap, "version"), "%s", msg)
	}
	switch {
	case raw.ProductVersion != nil:
		a.ProductVersion = *raw.ProductVersion
		if !config.ValidVersion(a.ProductVersion) {
			b.Problem(config.Join(ap, "productVersion"), "%q is not a semver version X.Y.Z[-pre][+build]", a.ProductVersion)
		}
	case len(versions) > 0:
		a.ProductVersion = versions[len(versions)-1]
	}
	for _, impl := range slices.Sorted(maps.Keys(raw.Implementations)) {
		ip := config.Join(ap, "implementations", impl)
		if !config.ValidDNSLabel(impl) {
			b.Problem(ip, "%q cannot name an implementation; use lower-case letters, digits and \"-\"", impl)
		}
		ri := raw.Implementations[impl]
		a.Implementations[impl] = b.addonImpl(ip, impl, &ri)
	}
	return a
}

func (b decoder) addonImpl(ip cue.Path, name string, raw *rawAddonImpl) *ImplConfig {
	im := &ImplConfig{Name: name, Pos: b.Pos(ip), Debian: map[string][]FileConfig{}}
	seen := map[string]config.Pos{}
	images := func(family string, list []rawImageConfig) []ImageConfig {
		var out []ImageConfig
		for i := range list {
			p := config.Join(ip, "images", family, i)
			img := b.addonImage(p, &list[i])
			if prev, dup := seen[family+" "+img.Ref]; dup && img.Ref != "" {
				b.Problem(p, "image %s is also listed at %s; list each image once", img.Ref, prev)
			}
			seen[family+" "+img.Ref] = img.Pos
			out = append(out, img)
		}
		return out
	}
	im.LinuxImages = images("linux", raw.Images.Linux)
	im.WindowsImages = images("windows", raw.Images.Windows)
	names := map[string]config.Pos{}
	files := func(p cue.Path, dir string, list []rawFileConfig) []FileConfig {
		var out []FileConfig
		for i := range list {
			fp := config.Join(p, i)
			f := b.addonFile(fp, &list[i])
			if n := f.Name; n != "" {
				if prev, dup := names[dir+"/"+n]; dup {
					b.Problem(fp, "%s/%s is also written by the entry at %s; give one a different name", dir, n, prev)
				}
				names[dir+"/"+n] = f.Pos
			}
			out = append(out, f)
		}
		return out
	}
	for _, pkg := range slices.Sorted(maps.Keys(raw.Packages.Debian)) {
		pp := config.Join(ip, "packages", "debian", pkg)
		if !config.ValidName(pkg) {
			b.Problem(pp, "%q cannot be a folder of debianpackages/; %s", pkg, config.NameRule)
		}
		im.Debian[pkg] = files(pp, "debianpackages/"+pkg, raw.Packages.Debian[pkg])
	}
	im.Linux = files(config.Join(ip, "packages", "linux"), "linuxpackages", raw.Packages.Linux)
	im.Windows = files(config.Join(ip, "packages", "windows"), "windowspackages", raw.Packages.Windows)
	return im
}

func (b decoder) addonImage(p cue.Path, raw *rawImageConfig) ImageConfig {
	img := ImageConfig{Ref: raw.Ref, Pos: b.Pos(p)}
	if raw.Ref == "" {
		b.Problem(config.Join(p, "ref"), `empty; name the image reference, e.g. "registry.k8s.io/pause:3.10"`)
	}
	switch {
	case raw.OS != nil && raw.Archive != nil:
		b.Problem(p, "set either os (an image the pipeline builds) or archive (an existing image tarball), not both")
	case raw.OS == nil && raw.Archive == nil:
		b.Problem(p, "set os (the OS target whose image with this ref the pipeline builds) or archive (an existing image tarball)")
	case raw.OS != nil:
		img.OS = *raw.OS
		t, ok := b.Model().OS[img.OS]
		if !ok {
			b.Problem(config.Join(p, "os"), "OS target %q is not declared under os; declare it or use archive", img.OS)
			break
		}
		if raw.Ref != "" && !b.osBuildsImage(t, raw.Ref) {
			b.Problem(config.Join(p, "ref"), "no release of os %s builds image %s; add it to one of its releases, or use archive", img.OS, raw.Ref)
		}
	default:
		img.Archive = b.Source(config.Join(p, "archive"), raw.Archive)
	}
	return img
}

func (b decoder) addonFile(p cue.Path, raw *rawFileConfig) FileConfig {
	f := FileConfig{Pos: b.Pos(p), Deb: raw.Deb}
	switch {
	case raw.File != nil && raw.Deb != nil:
		b.Problem(p, "set either file (an existing file) or deb (a .deb the pipeline builds), not both")
	case raw.File == nil && raw.Deb == nil:
		b.Problem(p, "set file (an existing file) or deb (a .deb the pipeline builds)")
	case raw.File != nil:
		f.File = b.Source(config.Join(p, "file"), raw.File)
		if f.File.Path != "" {
			f.Name = filepath.Base(f.File.Path)
		} else if u, err := url.Parse(f.File.URL); err == nil && f.File.URL != "" {
			// The last segment of the URL's path: "https://example.com/"
			// has none (and is not named "example.com").
			if base := path.Base(u.Path); base != "/" && base != "." {
				f.Name = base
			}
		}
	default:
		d := raw.Deb
		f.Name = d.Name + "_" + d.Version + "_" + d.Arch + ".deb"
		t, ok := b.Model().OS[d.OS]
		switch {
		case !ok:
			b.Problem(config.Join(p, "deb", "os"), "OS target %q is not declared under os", d.OS)
		case !b.osBuildsDeb(t, d):
			b.Problem(config.Join(p, "deb"), "no release of os %s builds %s %s for %s; add that build to one of its releases, or use file", d.OS, d.Name, d.Version, d.Arch)
		}
	}
	if raw.Name != nil {
		f.Name = *raw.Name
	}
	if f.Name == "" || f.Name == "." || f.Name == ".." || strings.ContainsAny(f.Name, `/\:*?"<>|`) {
		b.Problem(p, "file name %q cannot be stored in the layer; set name to a plain file name", f.Name)
	}
	return f
}

// DefaultRegistryPrefix is the repository path before an addon's export
// name, as K2s lays out its registry.
const DefaultRegistryPrefix = "addons"

// CheckRegistryHost says what is wrong with host as a registry host[:port].
func CheckRegistryHost(host string) error {
	if !hostRE.MatchString(host) {
		return fmt.Errorf("%q is not a registry host[:port] (no scheme, no path), e.g. \"127.0.0.1:5000\"", host)
	}
	return nil
}

func (b decoder) registry(raw *rawRegistry) *Registry {
	if raw == nil {
		return nil
	}
	rp := config.At("registry")
	r := &Registry{Host: raw.Host, PlainHTTP: raw.PlainHTTP, Insecure: raw.Insecure, Prefix: raw.Prefix, Pos: b.Pos(rp)}
	if err := CheckRegistryHost(raw.Host); err != nil {
		b.Problem(config.Join(rp, "host"), "%v", err)
	}
	if !repoPathRE.MatchString(raw.Prefix) {
		b.Problem(config.Join(rp, "prefix"), "%q is not a repository path of lower-case components separated by \"/\", e.g. \"addons\"", raw.Prefix)
	}
	return r
}

func (b decoder) gitops(raw *rawGitOps, reg *Registry) GitOps {
	gp := config.At("gitops")
	g := GitOps{Namespace: raw.Namespace, TargetNamespace: raw.TargetNamespace}
	if reg != nil {
		g.Registry, g.Insecure = reg.Host, reg.PlainHTTP || reg.Insecure
	}
	if raw.Registry != nil {
		g.Registry = *raw.Registry
		if !hostRE.MatchString(g.Registry) {
			b.Problem(config.Join(gp, "registry"), "%q is not a registry host[:port], e.g. \"k2s.registry.local:30500\"", g.Registry)
		}
	}
	if raw.Insecure != nil {
		g.Insecure = *raw.Insecure
	}
	for _, d := range []struct {
		field string
		raw   string
		into  *time.Duration
	}{{"interval", raw.Interval, &g.Interval}, {"timeout", raw.Timeout, &g.Timeout}} {
		v, err := time.ParseDuration(d.raw)
		if err != nil || v <= 0 {
			b.Problem(config.Join(gp, d.field), "%q is not a positive duration like \"5m\" or \"1h30m\"", d.raw)
			continue
		}
		*d.into = v
	}
	for _, n := range []struct{ field, v string }{{"namespace", raw.Namespace}, {"targetNamespace", raw.TargetNamespace}} {
		if !config.ValidDNSLabel(n.v) {
			b.Problem(config.Join(gp, n.field), "%q is not a Kubernetes namespace name (lower-case letters, digits and \"-\")", n.v)
		}
	}
	return g
}

// ImplementationNames lists the selected implementations in order.
func (a *Config) ImplementationNames() []string {
	return slices.Sorted(maps.Keys(a.Implementations))
}
