// Package nodepkg builds node packages: for one OS target and one product
// release, a zip of the .debs a node installs (packages/<osdir>/<group>/)
// and the container images it loads (images/<ref>.tar, OCI archives), with
// node-manifest.json describing every file from its own metadata so that
// node deltas and cluster deltas never re-read them.
package nodepkg

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/relcue/release/modules/deb"
	"github.com/relcue/release/modules/image"
	"github.com/relcue/release/modules/pkgzip"
	"github.com/relcue/release/pipeline/config"
	"github.com/relcue/release/pipeline/step"
)

const (
	// Kind is the step kind; ArtifactKind the kind of the zip it makes.
	Kind         = "nodepkg"
	ArtifactKind = "node-package"
	// StepVersion changes whenever Build's bytes could change for the same
	// inputs, so that cached node packages stop matching.
	StepVersion = "1"
)

// TargetID is the stable ID of the node package of one OS and release.
func TargetID(os, version string) string { return "node/" + os + "/" + version }

// OutputPath is where the node package goes, relative to dist/.
func OutputPath(product, osDir, version string) string {
	return "nodes/" + product + "-node-" + osDir + "-" + version + ".zip"
}

// Spec is the canonical JSON spec of a node package target.
type Spec struct {
	Product string `json:"product"`
	OS      string `json:"os"`
	OSDir   string `json:"osDir"`
	Version string `json:"version"`
	Output  string `json:"output"`
	// Date is RFC 3339 in UTC.
	Date   string      `json:"date"`
	Level  int         `json:"level"`
	Debs   []SpecDeb   `json:"debs"`
	Images []SpecImage `json:"images"`
}

// SpecDeb is one .deb: the output of a deb target, or an existing file
// given as a source. Exactly one of Target and Source is set.
type SpecDeb struct {
	Group  string `json:"group"`
	Target string `json:"target,omitempty"`
	Source string `json:"source,omitempty"`
}

// SpecImage is one image, the output of an image target.
type SpecImage struct {
	Ref    string `json:"ref"`
	Target string `json:"target"`
}

// Targets plans one node package per OS target and release, in OS name and
// version order.
func Targets(m *config.Model) ([]step.Target, error) {
	var out []step.Target
	for _, name := range slices.Sorted(maps.Keys(m.OS)) {
		o := m.OS[name]
		if o == nil {
			return nil, fmt.Errorf("os %s is not defined (configuration loader bug)", name)
		}
		for _, v := range o.Versions {
			rel, ok := o.Releases[v]
			if !ok || rel == nil {
				return nil, fmt.Errorf("os %s: release %s is listed in Versions but not defined (configuration loader bug)", name, v)
			}
			t, err := target(m, o, rel)
			if err != nil {
				return nil, err
			}
			out = append(out, t)
		}
	}
	return out, nil
}

// OSDir is the folder of an OS target under packages/ (its name unless
// set).
func OSDir(o *config.OSTarget) string {
	if o.Dir != "" {
		return o.Dir
	}
	return o.Name
}

func target(m *config.Model, o *config.OSTarget, rel *config.NodeRelease) (step.Target, error) {
	fail := func(pos config.Pos, err error) (step.Target, error) {
		return step.Target{}, posErr(pos, fmt.Errorf("os %s release %s: %w", o.Name, rel.Version, err))
	}
	if _, ok := m.Releases[rel.Version]; !ok {
		return fail(rel.Pos, fmt.Errorf("release %s is not defined under releases; add it there or remove it from the OS target", rel.Version))
	}
	level := m.Build.CompressionLevel
	if level == 0 {
		level = pkgzip.DefaultLevel
	}
	spec := Spec{
		Product: m.Product.Name,
		OS:      o.Name,
		OSDir:   OSDir(o),
		Version: rel.Version,
		Output:  OutputPath(m.Product.Name, OSDir(o), rel.Version),
		Date:    m.Build.Date.UTC().Format(time.RFC3339),
		Level:   level,
		Debs:    []SpecDeb{},
		Images:  []SpecImage{},
	}
	if err := checkIdentity(spec); err != nil {
		return fail(o.Pos, err)
	}
	t := step.Target{
		ID:      TargetID(o.Name, rel.Version),
		Kind:    Kind,
		Pos:     rel.Pos.String(),
		Outputs: []string{spec.Output},
	}
	w := &nodeTarget{o: o, spec: &spec, t: &t, deps: map[string]bool{}}
	if pos, err := w.addDebs(deb.NodeDebs(m, o.Name, rel.Version)); err != nil {
		return fail(pos, err)
	}
	if pos, err := w.addImages(image.NodeImages(m, o.Name, rel.Version)); err != nil {
		return fail(pos, err)
	}
	t.Spec = spec
	return t, nil
}

// nodeTarget collects a node package's .debs and images into its spec and
// its target's dependencies (each once).
type nodeTarget struct {
	o    *config.OSTarget
	spec *Spec
	t    *step.Target
	deps map[string]bool
}

func (w *nodeTarget) dependOn(id string) {
	if !w.deps[id] {
		w.deps[id] = true
		w.t.Deps = append(w.t.Deps, id)
	}
}

// addDebs adds the .debs: a built one as a dependency on its deb target,
// an existing file as a source.
func (w *nodeTarget) addDebs(debs []deb.Entry) (config.Pos, error) {
	built := map[string]config.Pos{}
	for i, d := range debs {
		if err := CheckGroup(d.Group); err != nil {
			return d.Pos, fmt.Errorf("deb %d: %w", i+1, err)
		}
		sd := SpecDeb{Group: d.Group}
		switch {
		case d.Build != nil && d.File != nil:
			return d.Pos, fmt.Errorf("deb %d has both build and file; use one entry per .deb", i+1)
		case d.Build != nil:
			b := d.Build
			if b.Name == "" || b.Version == "" || b.Arch == "" {
				return d.Pos, fmt.Errorf("deb %d: build needs name, version and arch", i+1)
			}
			if prev, ok := built[b.Name]; ok {
				return d.Pos, fmt.Errorf("package %s is listed twice (also at %s); a node installs one version of a package, keep one", b.Name, prev)
			}
			built[b.Name] = d.Pos
			sd.Target = deb.TargetID(w.o.Name, b.Name, b.Version, b.Arch)
			w.dependOn(sd.Target)
		case d.File != nil:
			sd.Source = fmt.Sprintf("deb%d", i)
			pos := d.File.Pos
			if pos.File == "" {
				pos = d.Pos
			}
			w.t.Sources = append(w.t.Sources, step.Source{Name: sd.Source, Path: d.File.Path, URL: d.File.URL, SHA256: d.File.SHA256, Pos: pos.String()})
		default:
			return d.Pos, fmt.Errorf("deb %d has neither build nor file", i+1)
		}
		w.spec.Debs = append(w.spec.Debs, sd)
	}
	return config.Pos{}, nil
}

// addImages adds the images, each a dependency on its image target.
func (w *nodeTarget) addImages(images []image.Config) (config.Pos, error) {
	refs := map[string]config.Pos{}
	for _, img := range images {
		if img.Ref == "" {
			return img.Pos, fmt.Errorf("an image has no ref")
		}
		if prev, ok := refs[img.Ref]; ok {
			return img.Pos, fmt.Errorf("image %s is listed twice (also at %s); keep one", img.Ref, prev)
		}
		refs[img.Ref] = img.Pos
		si := SpecImage{Ref: img.Ref, Target: image.TargetID(w.o.Name, img.Ref)}
		w.dependOn(si.Target)
		w.spec.Images = append(w.spec.Images, si)
	}
	return config.Pos{}, nil
}

// checkIdentity rejects names that would not make a plain file name.
func checkIdentity(s Spec) error {
	for _, f := range []struct{ what, v string }{{"product name", s.Product}, {"OS name", s.OS}, {"version", s.Version}} {
		if f.v == "" {
			return fmt.Errorf("%s is empty", f.what)
		}
		if strings.ContainsAny(f.v, `/\:*?"<>| `) || strings.Trim(f.v, ".") == "" {
			return fmt.Errorf("%s %q cannot be part of a file name; use letters, digits, '.', '-', '_' and '+'", f.what, f.v)
		}
	}
	if err := CheckOSDir(s.OSDir); err != nil {
		return err
	}
	if err := pkgzip.CheckName(s.Output); err != nil {
		return fmt.Errorf("output: %w", err)
	}
	return nil
}

func posErr(pos config.Pos, err error) error {
	if p := pos.String(); p != "" {
		return fmt.Errorf("%s: %w", p, err)
	}
	return err
}
