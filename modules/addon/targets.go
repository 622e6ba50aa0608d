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
	var out []step.Target
	for _, name := range m.AddonNames {
		t, err := target(m, m.Addons[name])
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

func target(m *config.Model, a *config.Addon) (step.Target, error) {
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
	t := step.Target{
		ID: TargetID(a.Name, a.Version), Kind: Kind, Pos: a.Pos.String(),
		Sources: []step.Source{{Name: dirSource, Path: a.Dir, Dir: true, Pos: a.Pos.String()}},
		Outputs: []string{ArchivePath(a.Name, a.Version)},
	}
	deps := map[string]bool{}
	addDep := func(id string) {
		if !deps[id] {
			deps[id] = true
			t.Deps = append(t.Deps, id)
		}
	}
	n := 0
	file := func(name string, f config.AddonFile) SpecFile {
		sf := SpecFile{Name: name}
		if f.Deb != nil {
			sf.Target = deb.TargetID(f.Deb.OS, f.Deb.Name, f.Deb.Version, f.Deb.Arch)
			addDep(sf.Target)
			return sf
		}
		sf.Source = fmt.Sprintf("file%d", n)
		n++
		t.Sources = append(t.Sources, step.Source{Name: sf.Source, Path: f.File.Path, URL: f.File.URL, SHA256: f.File.SHA256, Pos: f.Pos.String()})
		return sf
	}
	img := func(i config.AddonImage, windows bool) SpecFile {
		sf := SpecFile{Name: ImageTarName(i.Ref, windows)}
		if i.Archive == nil {
			sf.Target = image.TargetID(i.OS, i.Ref)
			addDep(sf.Target)
			return sf
		}
		sf.Source = fmt.Sprintf("file%d", n)
		n++
		t.Sources = append(t.Sources, step.Source{Name: sf.Source, Path: i.Archive.Path, URL: i.Archive.URL, SHA256: i.Archive.SHA256, Pos: i.Pos.String()})
		return sf
	}
	implNames := a.ImplementationNames()
	if len(implNames) == 0 {
		for _, im := range man.Spec.Implementations {
			implNames = append(implNames, im.Name)
		}
	}
	for _, name := range implNames {
		mi, ok := man.Implementation(name)
		ci := a.Implementations[name]
		pos := a.Pos
		if ci != nil {
			pos = ci.Pos
		}
		if !ok {
			return fail(pos, fmt.Errorf("implementation %q is not in %s (it lists %s)", name, ManifestFile, implList(man)))
		}
		if mi.Version != "" && mi.Version != a.Version {
			return fail(pos, fmt.Errorf("%s gives implementation %s version %s but the configuration says %s; make them agree", ManifestFile, name, mi.Version, a.Version))
		}
		if dir := ImplDir(a.Dir, a.Name, name); !isDir(dir) {
			return fail(pos, fmt.Errorf("implementation %s has no directory %s; an implementation named unlike its addon keeps its files in <addon dir>/<implementation>", name, dir))
		}
		si := SpecImpl{Name: name, LinuxImages: []SpecFile{}, WindowsImages: []SpecFile{}, Packages: []SpecFile{}}
		if ci != nil {
			names := map[string]bool{}
			for _, group := range []struct {
				list    []config.AddonImage
				windows bool
				into    *[]SpecFile
			}{{ci.LinuxImages, false, &si.LinuxImages}, {ci.WindowsImages, true, &si.WindowsImages}} {
				for _, i := range group.list {
					sf := img(i, group.windows)
					if names[sf.Name] {
						return fail(i.Pos, fmt.Errorf("image %s is stored as %s, like another image of the implementation; K2s's file names cannot tell them apart", i.Ref, sf.Name))
					}
					names[sf.Name] = true
					*group.into = append(*group.into, sf)
				}
			}
			for _, pkg := range sortedKeys(ci.Debian) {
				for _, f := range ci.Debian[pkg] {
					si.Packages = append(si.Packages, file("debianpackages/"+pkg+"/"+f.Name, f))
				}
			}
			for _, f := range ci.Linux {
				si.Packages = append(si.Packages, file("linuxpackages/"+f.Name, f))
			}
			for _, f := range ci.Windows {
				si.Packages = append(si.Packages, file("windowspackages/"+f.Name, f))
			}
		}
		spec.Impls = append(spec.Impls, si)
	}
	if g := m.GitOps; g.Registry != "" {
		prefix := "addons"
		if m.Registry != nil {
			prefix = m.Registry.Prefix
		}
		spec.GitOps = &SpecGitOps{Registry: g.Registry, Prefix: prefix, Insecure: g.Insecure, Interval: g.Interval.String(),
			Timeout: g.Timeout.String(), Namespace: g.Namespace, TargetNamespace: g.TargetNamespace}
		t.Outputs = append(t.Outputs, FluxPath(a.Name, a.Version))
	}
	// Generating the GitOps files now turns their mistakes (a name too
	// long for a Kubernetes object) into configuration errors.
	for _, si := range spec.Impls {
		if _, _, err := gitopsFiles(&spec, si.Name); err != nil {
			return fail(a.Pos, err)
		}
	}
	t.Spec = spec
	return t, nil
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
