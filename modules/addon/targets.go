// Package addon exports addons as OCI artifacts in K2s's format: an OCI
// image layout (and the same as .oci.tar) with one manifest per
// implementation, whose config blob and up to seven layers carry the
// addon's configuration, manifests (with the gitops-sync/ folder Flux
// applies), charts, scripts, images and packages; plus the Flux resources
// that make a cluster follow it. Unlike K2s's own export, every byte is
// reproducible: fixed times, sorted entries, stable JSON.
package addon

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/relcue/release/modules/deb"
	"github.com/relcue/release/modules/gitops"
	"github.com/relcue/release/modules/image"
	"github.com/relcue/release/pipeline/config"
	"github.com/relcue/release/pipeline/step"
)

const (
	// Kind is the step kind of an export.
	Kind = "addon"
	// Artifact kinds of an export.
	ArchiveKind = "addon-archive" // the .oci.tar
	LayoutKind  = "addon-layout"  // a file of the OCI image layout
	FluxKind    = "flux"          // the Flux resources
	// StepVersion changes whenever Export's bytes could change for the
	// same inputs. 2: gzip headers store time 0, not a date in 2042.
	StepVersion = "2"
)

// TargetID is the ID of the export of one addon version.
func TargetID(name, version string) string { return "addon/" + name + "/" + version }

// Paths of an export's outputs, relative to dist/.
func LayoutPath(name, version string) string  { return "addons/" + name + "-" + version }
func ArchivePath(name, version string) string { return LayoutPath(name, version) + ".oci.tar" }
func FluxPath(name, version string) string    { return LayoutPath(name, version) + ".flux.yaml" }

// Spec is the canonical JSON spec of an export. Local files are named by
// source, never by path, so the key does not depend on the checkout's
// location.
type Spec struct {
	Name           string     `json:"name"`
	Version        string     `json:"version"`
	Vendor         string     `json:"vendor,omitempty"`
	License        string     `json:"license,omitempty"`
	ProductVersion string     `json:"productVersion,omitempty"`
	Date           string     `json:"date"`
	OmitImages     bool       `json:"omitImages"`
	OmitPackages   bool       `json:"omitPackages"`
	Impls          []SpecImpl `json:"implementations"`
	// GitOps is nil when no registry is known for the cluster: then no
	// Flux resources are written.
	GitOps *SpecGitOps `json:"gitops,omitempty"`
}

// SpecImpl is one implementation's images and packages.
type SpecImpl struct {
	Name          string     `json:"name"`
	LinuxImages   []SpecFile `json:"linuxImages"`
	WindowsImages []SpecFile `json:"windowsImages"`
	Packages      []SpecFile `json:"packages"`
}

// SpecFile is a file stored at Name: a dependency's artifact (Target) or
// a source (Source).
type SpecFile struct {
	Name   string `json:"name"`
	Target string `json:"target,omitempty"`
	Source string `json:"source,omitempty"`
}

// SpecGitOps is what the Flux resources and the sync Job need.
type SpecGitOps struct {
	Registry        string `json:"registry"`
	Prefix          string `json:"prefix"`
	Insecure        bool   `json:"insecure"`
	Interval        string `json:"interval"`
	Timeout         string `json:"timeout"`
	Namespace       string `json:"namespace"`
	TargetNamespace string `json:"targetNamespace"`
}

// dirSource is the source name of the addon directory.
const dirSource = "dir"

// Targets plans one export per addon.
func Targets(m *config.Model) ([]step.Target, error) {
	s := SettingsOf(m)
	var out []step.Target
	for _, name := range s.Names {
		t, err := target(m, s, s.Addons[name])
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

func posErr(pos config.Pos, err error) error {
	if p := pos.String(); p != "" {
		return fmt.Errorf("%s: %w", p, err)
	}
	return err
}

func target(m *config.Model, s *Settings, a *Config) (step.Target, error) {
	fail := func(pos config.Pos, err error) (step.Target, error) {
		return step.Target{}, posErr(pos, fmt.Errorf("addon %s: %w", a.Name, err))
	}
	man, err := LoadManifest(a.Dir)
	if err != nil {
		return fail(a.Pos, err)
	}
	if man.Metadata.Name != a.Name {
		return fail(a.Pos, fmt.Errorf("%s names the addon %q; the key under addons must match it", ManifestFile, man.Metadata.Name))
	}
	spec := Spec{
		Name: a.Name, Version: a.Version, Vendor: m.Product.Vendor, License: a.License,
		ProductVersion: a.ProductVersion, Date: m.Build.Date.UTC().Format(time.RFC3339),
		OmitImages: a.OmitImages, OmitPackages: a.OmitPackages, Impls: []SpecImpl{},
	}
	x := &exportTarget{t: step.Target{
		ID: TargetID(a.Name, a.Version), Kind: Kind, Pos: a.Pos.String(),
		Sources: []step.Source{{Name: dirSource, Path: a.Dir, Dir: true, Pos: a.Pos.String()}},
		Outputs: []string{ArchivePath(a.Name, a.Version)},
	}, deps: map[string]bool{}}
	implNames := a.ImplementationNames()
	if len(implNames) == 0 {
		for _, im := range man.Spec.Implementations {
			implNames = append(implNames, im.Name)
		}
	}
	for _, name := range implNames {
		si, pos, err := x.impl(a, man, name)
		if err != nil {
			return fail(pos, err)
		}
		spec.Impls = append(spec.Impls, si)
	}
	if g := s.GitOps; g.Registry != "" {
		prefix := "addons"
		if s.Registry != nil {
			prefix = s.Registry.Prefix
		}
		spec.GitOps = &SpecGitOps{Registry: g.Registry, Prefix: prefix, Insecure: g.Insecure, Interval: g.Interval.String(),
			Timeout: g.Timeout.String(), Namespace: g.Namespace, TargetNamespace: g.TargetNamespace}
		x.t.Outputs = append(x.t.Outputs, FluxPath(a.Name, a.Version))
	}
	// Generating the GitOps files now turns their mistakes (a name too
	// long for a Kubernetes object) into configuration errors.
	for _, si := range spec.Impls {
		if _, _, err := gitopsFiles(&spec, si.Name); err != nil {
			return fail(a.Pos, err)
		}
	}
	x.t.Spec = spec
	return x.t, nil
}

// exportTarget collects an export's sources (numbered in the order they
// are met) and its dependencies on built images and .debs (each once).
type exportTarget struct {
	t    step.Target
	deps map[string]bool
	n    int
}

func (x *exportTarget) dependOn(id string) {
	if !x.deps[id] {
		x.deps[id] = true
		x.t.Deps = append(x.t.Deps, id)
	}
}

func (x *exportTarget) source(path, url, sha256 string, pos config.Pos) string {
	name := fmt.Sprintf("file%d", x.n)
	x.n++
	x.t.Sources = append(x.t.Sources, step.Source{Name: name, Path: path, URL: url, SHA256: sha256, Pos: pos.String()})
	return name
}

func (x *exportTarget) file(name string, f FileConfig) SpecFile {
	sf := SpecFile{Name: name}
	if f.Deb != nil {
		sf.Target = deb.TargetID(f.Deb.OS, f.Deb.Name, f.Deb.Version, f.Deb.Arch)
		x.dependOn(sf.Target)
		return sf
	}
	sf.Source = x.source(f.File.Path, f.File.URL, f.File.SHA256, f.Pos)
	return sf
}

func (x *exportTarget) image(i ImageConfig, windows bool) SpecFile {
	sf := SpecFile{Name: ImageTarName(i.Ref, windows)}
	if i.Archive == nil {
		sf.Target = image.TargetID(i.OS, i.Ref)
		x.dependOn(sf.Target)
		return sf
	}
	sf.Source = x.source(i.Archive.Path, i.Archive.URL, i.Archive.SHA256, i.Pos)
	return sf
}

// impl plans one implementation: checked against the manifest, with the
// images and packages the configuration selects for it.
func (x *exportTarget) impl(a *Config, man *Manifest, name string) (SpecImpl, config.Pos, error) {
	mi, ok := man.Implementation(name)
	ci := a.Implementations[name]
	pos := a.Pos
	if ci != nil {
		pos = ci.Pos
	}
	if !ok {
		return SpecImpl{}, pos, fmt.Errorf("implementation %q is not in %s (it lists %s)", name, ManifestFile, implList(man))
	}
	if mi.Version != "" && mi.Version != a.Version {
		return SpecImpl{}, pos, fmt.Errorf("%s gives implementation %s version %s but the configuration says %s; make them agree", ManifestFile, name, mi.Version, a.Version)
	}
	if dir := ImplDir(a.Dir, a.Name, name); !isDir(dir) {
		return SpecImpl{}, pos, fmt.Errorf("implementation %s has no directory %s; an implementation named unlike its addon keeps its files in <addon dir>/<implementation>", name, dir)
	}
	si := SpecImpl{Name: name, LinuxImages: []SpecFile{}, WindowsImages: []SpecFile{}, Packages: []SpecFile{}}
	if ci == nil {
		return si, pos, nil
	}
	names := map[string]bool{}
	for _, group := range []struct {
		list    []ImageConfig
		windows bool
		into    *[]SpecFile
	}{{ci.LinuxImages, false, &si.LinuxImages}, {ci.WindowsImages, true, &si.WindowsImages}} {
		for _, i := range group.list {
			sf := x.image(i, group.windows)
			if names[sf.Name] {
				return SpecImpl{}, i.Pos, fmt.Errorf("image %s is stored as %s, like another image of the implementation; K2s's file names cannot tell them apart", i.Ref, sf.Name)
			}
			names[sf.Name] = true
			*group.into = append(*group.into, sf)
		}
	}
	for _, pkg := range sortedKeys(ci.Debian) {
		for _, f := range ci.Debian[pkg] {
			si.Packages = append(si.Packages, x.file("debianpackages/"+pkg+"/"+f.Name, f))
		}
	}
	for _, f := range ci.Linux {
		si.Packages = append(si.Packages, x.file("linuxpackages/"+f.Name, f))
	}
	for _, f := range ci.Windows {
		si.Packages = append(si.Packages, x.file("windowspackages/"+f.Name, f))
	}
	return si, pos, nil
}

func implList(m *Manifest) string {
	s := ""
	for i, im := range m.Spec.Implementations {
		if i > 0 {
			s += ", "
		}
		s += im.Name
	}
	return s
}

// gitopsFiles returns the gitops-sync/ files of an implementation and,
// when a registry is known, its Flux resources.
func gitopsFiles(s *Spec, impl string) ([]SyncFile, []byte, error) {
	ga := gitops.Addon{Name: s.Name, Version: s.Version, Implementation: impl}
	if g := s.GitOps; g != nil {
		ga.Registry = g.Registry
		ga.Repository = g.Prefix + "/" + ExportName(s.Name, impl)
		ga.Insecure = g.Insecure
		ga.Interval, _ = time.ParseDuration(g.Interval)
		ga.Timeout, _ = time.ParseDuration(g.Timeout)
		ga.Namespace, ga.TargetNamespace = g.Namespace, g.TargetNamespace
	}
	files, err := gitops.SyncFolder(ga)
	if err != nil {
		return nil, nil, err
	}
	var sync []SyncFile
	for _, f := range files {
		sync = append(sync, SyncFile{Path: f.Path, Data: f.Data})
	}
	if s.GitOps == nil {
		return sync, nil, nil
	}
	flux, err := gitops.Flux(ga)
	if err != nil {
		return nil, nil, err
	}
	return sync, flux, nil
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
