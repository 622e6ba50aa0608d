package config

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
)

// The raw types of addons mirror cue/schema/addons.cue, which documents them.
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
		Linux   []rawAddonImage `json:"linux"`
		Windows []rawAddonImage `json:"windows"`
	} `json:"images"`
	Packages struct {
		Debian  map[string][]rawAddonFile `json:"debian"`
		Linux   []rawAddonFile            `json:"linux"`
		Windows []rawAddonFile            `json:"windows"`
	} `json:"packages"`
}

type rawAddonImage struct {
	Ref     string     `json:"ref"`
	OS      *string    `json:"os"`
	Archive *rawSource `json:"archive"`
}

type rawAddonFile struct {
	File *rawSource `json:"file"`
	Deb  *AddonDeb  `json:"deb"`
	Name *string    `json:"name"`
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

// Addon is an addon exported as OCI artifacts (K2s's format).
type Addon struct {
	// Name is the key under addons and the manifest's metadata.name.
	Name string
	// Dir is the absolute addon directory holding addon.manifest.yaml.
	Dir     string
	Version string
	// Implementations are the selected implementations by name; empty
	// means every implementation of the manifest, with no images or
	// packages.
	Implementations map[string]*AddonImplementation
	OmitImages      bool
	OmitPackages    bool
	// ProductVersion is written as k2sVersion (default: newest release).
	ProductVersion string
	License        string
	Pos            Pos
}

// AddonImplementation is what one implementation ships besides its files.
type AddonImplementation struct {
	Name          string
	LinuxImages   []AddonImage
	WindowsImages []AddonImage
	// Debian maps a package name to its .debs (debianpackages/<name>/).
	Debian         map[string][]AddonFile
	Linux, Windows []AddonFile
	Pos            Pos
}

// AddonImage is an image built by the pipeline for an OS target (OS set)
// or an existing archive (Archive set), known by Ref.
type AddonImage struct {
	Ref     string
	OS      string
	Archive *Source
	Pos     Pos
}

// AddonFile is an existing file (File) or a .deb the pipeline builds (Deb),
// stored under Name.
type AddonFile struct {
	File *Source
	Deb  *AddonDeb
	// Name is the file name in the layer ("" = the file's own name, or
	// the built .deb's).
	Name string
	Pos  Pos
}

// AddonDeb names a .deb built for an OS target.
type AddonDeb struct {
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
	Pos    Pos
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

// dnsLabelRE is RFC 1123's label: addon and implementation names become
// Kubernetes object names and registry repository names.
var dnsLabelRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// hostRE is host[:port] as registry references write it.
var hostRE = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?(:[0-9]{1,5})?$|^\[[0-9a-fA-F:]+\](:[0-9]{1,5})?$`)

// repoPathRE is a registry repository path (lower case components).
var repoPathRE = regexp.MustCompile(`^[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*$`)

func (b *builder) addons(raw map[string]rawAddon, rs map[string]*Release, versions []string, os map[string]*OSTarget) (map[string]*Addon, []string) {
	if len(raw) == 0 {
		return nil, nil
	}
	out := map[string]*Addon{}
	names := sortedKeys(raw)
	for _, name := range names {
		r := raw[name]
		out[name] = b.addon(name, &r, versions, os)
	}
	return out, names
}

func (b *builder) addon(name string, raw *rawAddon, versions []string, os map[string]*OSTarget) *Addon {
	ap := at("addons", name)
	a := &Addon{Name: name, Version: raw.Version, OmitImages: raw.OmitImages, OmitPackages: raw.OmitPackages,
		License: raw.License, Pos: b.ps.posOf(ap), Implementations: map[string]*AddonImplementation{}}
	if !dnsLabelRE.MatchString(name) {
		b.ps.at(ap, "%q cannot name an addon, which becomes a registry repository and Kubernetes object names; use lower-case letters, digits and \"-\" (at most 63, starting and ending with a letter or digit)", name)
	}
	a.Dir = b.local(join(ap, "dir"), raw.Dir)
	if !validVersion(raw.Version) || strings.Contains(raw.Version, "+") {
		msg := fmt.Sprintf("%q is not a semver version X.Y.Z[-pre]", raw.Version)
		if w, ok := strings.CutPrefix(raw.Version, "v"); ok && validVersion(w) {
			msg = fmt.Sprintf("%q has a leading v; write %q (the tag gets the v)", raw.Version, strings.SplitN(w, "+", 2)[0])
		} else if validVersion(raw.Version) {
			msg = fmt.Sprintf("%q has build metadata; the artifact is tagged v<version>, and tags cannot hold \"+\"; write %q", raw.Version, strings.SplitN(raw.Version, "+", 2)[0])
		}
		b.ps.at(join(ap, "version"), "%s", msg)
	}
	switch {
	case raw.ProductVersion != nil:
		a.ProductVersion = *raw.ProductVersion
		if !validVersion(a.ProductVersion) {
			b.ps.at(join(ap, "productVersion"), "%q is not a semver version X.Y.Z[-pre][+build]", a.ProductVersion)
		}
	case len(versions) > 0:
		a.ProductVersion = versions[len(versions)-1]
	}
	for _, impl := range sortedKeys(raw.Implementations) {
		ip := join(ap, "implementations", impl)
		if !dnsLabelRE.MatchString(impl) {
			b.ps.at(ip, "%q cannot name an implementation; use lower-case letters, digits and \"-\"", impl)
		}
		ri := raw.Implementations[impl]
		a.Implementations[impl] = b.addonImpl(ip, impl, &ri, os)
	}
	return a
}

func (b *builder) addonImpl(ip cue.Path, name string, raw *rawAddonImpl, os map[string]*OSTarget) *AddonImplementation {
	im := &AddonImplementation{Name: name, Pos: b.ps.posOf(ip), Debian: map[string][]AddonFile{}}
	seen := map[string]Pos{}
	images := func(family string, list []rawAddonImage) []AddonImage {
		var out []AddonImage
		for i := range list {
			p := join(ip, "images", family, i)
			img := b.addonImage(p, &list[i], os)
			if prev, dup := seen[family+" "+img.Ref]; dup && img.Ref != "" {
				b.ps.at(p, "image %s is also listed at %s; list each image once", img.Ref, prev)
			}
			seen[family+" "+img.Ref] = img.Pos
			out = append(out, img)
		}
		return out
	}
	im.LinuxImages = images("linux", raw.Images.Linux)
	im.WindowsImages = images("windows", raw.Images.Windows)
	names := map[string]Pos{}
	files := func(p cue.Path, dir string, list []rawAddonFile) []AddonFile {
		var out []AddonFile
		for i := range list {
			fp := join(p, i)
			f := b.addonFile(fp, &list[i], os)
			if n := f.Name; n != "" {
				if prev, dup := names[dir+"/"+n]; dup {
					b.ps.at(fp, "%s/%s is also written by the entry at %s; give one a different name", dir, n, prev)
				}
				names[dir+"/"+n] = f.Pos
			}
			out = append(out, f)
		}
		return out
	}
	for _, pkg := range sortedKeys(raw.Packages.Debian) {
		pp := join(ip, "packages", "debian", pkg)
		if !osNameRE.MatchString(pkg) {
			b.ps.at(pp, "%q cannot be a folder of debianpackages/; %s", pkg, nameRule)
		}
		im.Debian[pkg] = files(pp, "debianpackages/"+pkg, raw.Packages.Debian[pkg])
	}
	im.Linux = files(join(ip, "packages", "linux"), "linuxpackages", raw.Packages.Linux)
	im.Windows = files(join(ip, "packages", "windows"), "windowspackages", raw.Packages.Windows)
	return im
}

func (b *builder) addonImage(p cue.Path, raw *rawAddonImage, os map[string]*OSTarget) AddonImage {
	img := AddonImage{Ref: raw.Ref, Pos: b.ps.posOf(p)}
	if raw.Ref == "" {
		b.ps.at(join(p, "ref"), `empty; name the image reference, e.g. "registry.k8s.io/pause:3.10"`)
	}
	switch {
	case raw.OS != nil && raw.Archive != nil:
		b.ps.at(p, "set either os (an image the pipeline builds) or archive (an existing image tarball), not both")
	case raw.OS == nil && raw.Archive == nil:
		b.ps.at(p, "set os (the OS target whose image with this ref the pipeline builds) or archive (an existing image tarball)")
	case raw.OS != nil:
		img.OS = *raw.OS
		t, ok := os[img.OS]
		if !ok {
			b.ps.at(join(p, "os"), "OS target %q is not declared under os; declare it or use archive", img.OS)
			break
		}
		if raw.Ref != "" && !osBuildsImage(t, raw.Ref) {
			b.ps.at(join(p, "ref"), "no release of os %s builds image %s; add it to one of its releases, or use archive", img.OS, raw.Ref)
		}
	default:
		img.Archive = b.source(join(p, "archive"), raw.Archive)
	}
	return img
}

func osBuildsImage(t *OSTarget, ref string) bool {
	for _, v := range t.Versions {
		for _, im := range t.Releases[v].Images {
			if im.Ref == ref {
				return true
			}
		}
	}
	return false
}

func osBuildsDeb(t *OSTarget, d *AddonDeb) bool {
	for _, v := range t.Versions {
		for _, dr := range t.Releases[v].Debs {
			if s := dr.Build; s != nil && s.Name == d.Name && s.Version == d.Version && s.Arch == d.Arch {
				return true
			}
		}
	}
	return false
}

func (b *builder) addonFile(p cue.Path, raw *rawAddonFile, os map[string]*OSTarget) AddonFile {
	f := AddonFile{Pos: b.ps.posOf(p), Deb: raw.Deb}
	switch {
	case raw.File != nil && raw.Deb != nil:
		b.ps.at(p, "set either file (an existing file) or deb (a .deb the pipeline builds), not both")
	case raw.File == nil && raw.Deb == nil:
		b.ps.at(p, "set file (an existing file) or deb (a .deb the pipeline builds)")
	case raw.File != nil:
		f.File = b.source(join(p, "file"), raw.File)
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
		t, ok := os[d.OS]
		switch {
		case !ok:
			b.ps.at(join(p, "deb", "os"), "OS target %q is not declared under os", d.OS)
		case !osBuildsDeb(t, d):
			b.ps.at(join(p, "deb"), "no release of os %s builds %s %s for %s; add that build to one of its releases, or use file", d.OS, d.Name, d.Version, d.Arch)
		}
	}
	if raw.Name != nil {
		f.Name = *raw.Name
	}
	if f.Name == "" || f.Name == "." || f.Name == ".." || strings.ContainsAny(f.Name, `/\:*?"<>|`) {
		b.ps.at(p, "file name %q cannot be stored in the layer; set name to a plain file name", f.Name)
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

func (b *builder) registry(raw *rawRegistry) *Registry {
	if raw == nil {
		return nil
	}
	rp := at("registry")
	r := &Registry{Host: raw.Host, PlainHTTP: raw.PlainHTTP, Insecure: raw.Insecure, Prefix: raw.Prefix, Pos: b.ps.posOf(rp)}
	if err := CheckRegistryHost(raw.Host); err != nil {
		b.ps.at(join(rp, "host"), "%v", err)
	}
	if !repoPathRE.MatchString(raw.Prefix) {
		b.ps.at(join(rp, "prefix"), "%q is not a repository path of lower-case components separated by \"/\", e.g. \"addons\"", raw.Prefix)
	}
	return r
}

func (b *builder) gitops(raw *rawGitOps, reg *Registry) GitOps {
	gp := at("gitops")
	g := GitOps{Namespace: raw.Namespace, TargetNamespace: raw.TargetNamespace}
	if reg != nil {
		g.Registry, g.Insecure = reg.Host, reg.PlainHTTP || reg.Insecure
	}
	if raw.Registry != nil {
		g.Registry = *raw.Registry
		if !hostRE.MatchString(g.Registry) {
			b.ps.at(join(gp, "registry"), "%q is not a registry host[:port], e.g. \"k2s.registry.local:30500\"", g.Registry)
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
			b.ps.at(join(gp, d.field), "%q is not a positive duration like \"5m\" or \"1h30m\"", d.raw)
			continue
		}
		*d.into = v
	}
	for _, n := range []struct{ field, v string }{{"namespace", raw.Namespace}, {"targetNamespace", raw.TargetNamespace}} {
		if !dnsLabelRE.MatchString(n.v) {
			b.ps.at(join(gp, n.field), "%q is not a Kubernetes namespace name (lower-case letters, digits and \"-\")", n.v)
		}
	}
	return g
}

// ImplementationNames lists the selected implementations in order.
func (a *Addon) ImplementationNames() []string {
	return slices.Sorted(maps.Keys(a.Implementations))
}
