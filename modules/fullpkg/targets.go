// Package fullpkg builds full packages: the zip of a release's whole
// installation tree with VERSION and package-manifest.json at its root,
// either assembled from input layers or taken from an existing zip.
package fullpkg

import (
	"fmt"
	"strings"
	"time"

	"github.com/relcue/release/modules/codesign"
	"github.com/relcue/release/modules/pkgzip"
	"github.com/relcue/release/pipeline/config"
	"github.com/relcue/release/pipeline/step"
)

const (
	// Kind is the step kind; ArtifactKind the kind of the package artifact.
	Kind         = "fullpkg"
	ArtifactKind = "package"
	// StepVersion changes whenever Run's bytes could change for the same
	// spec and inputs, so that cached packages stop matching.
	StepVersion = "1"
	// zipSource is the source name of an existing package zip.
	zipSource = "zip"
)

// TargetID is the stable ID of a release's full package.
func TargetID(version string) string { return "package/" + version }

// OutputPath is where the package goes, relative to dist/.
func OutputPath(product, version string) string {
	return "packages/" + product + "-" + version + ".zip"
}

// Spec is the canonical JSON spec of a full-package target. Exactly one of
// Zip and Layers is set.
type Spec struct {
	Product string `json:"product"`
	Version string `json:"version"`
	Output  string `json:"output"`
	// Date is RFC 3339 in UTC.
	Date  string `json:"date"`
	Level int    `json:"level"`
	// Zip names the source holding an existing package.
	Zip string `json:"zip,omitempty"`
	// Layers are overlaid in order; a path provided twice is an error.
	Layers []Layer `json:"layers,omitempty"`
	// Reuse is the target of the previous assembled release's package:
	// entries whose content it already holds (same SHA-256, size and
	// mode) are copied from it raw instead of compressed again. The bytes
	// are the same either way, since both come from this step's writer at
	// the same level; only the time differs.
	Reuse string `json:"reuse,omitempty"`
	// Sign, when set, signs Windows content with Authenticode before it is
	// written, so the manifest holds the hashes of the files as shipped.
	Sign *SignSpec `json:"sign,omitempty"`
	// Paths is the path policy (pkgzip.PathPolicy); "" is "windows", and
	// stays unwritten so that the default leaves cache keys as they were.
	Paths pkgzip.PathPolicy `json:"paths,omitempty"`
}

// Layer places one source, a directory tree or a single file, in the
// package.
type Layer struct {
	Source string `json:"source"`
	// Dest is where a directory's tree goes ("" is the root), or the path
	// of a single file.
	Dest string `json:"dest"`
	// Mode, if non-zero, replaces the permission bits of every file of the
	// layer; only the executable bit is kept.
	Mode uint32 `json:"mode"`
}

// SignedTargets plans one full-package target per release, in version
// order, signing with key where the configuration asks for it
// (signing.authenticode); a configuration that asks without a key is an
// error that says how to give one.
func SignedTargets(key *codesign.Key) func(*config.Model) ([]step.Target, error) {
	return func(m *config.Model) ([]step.Target, error) {
		sign, err := SignSpecOf(m, key)
		if err != nil {
			return nil, err
		}
		return targets(m, sign)
	}
}

// SignSpecOf is the signing the configuration asks for (nil for none), for
// key; asking without a key is an error that says how to give one.
func SignSpecOf(m *config.Model, key *codesign.Key) (*SignSpec, error) {
	a := m.Signing.Authenticode
	if a == nil {
		return nil, nil
	}
	if err := codesign.CheckExtensions(a.Extensions); err != nil {
		return nil, posErr(a.Pos, fmt.Errorf("signing.authenticode.extensions: %w", err))
	}
	if key == nil {
		return nil, posErr(a.Pos, fmt.Errorf("signing.authenticode asks for signed packages, but no signing credential is set: set %s to the PKCS#12 file and %s (or %s) to its password, or build with --unsigned",
			codesign.EnvPKCS12, codesign.EnvPassword, codesign.EnvPasswordFile))
	}
	var nested []string
	for _, n := range m.DeltaLayout.Nested {
		nested = append(nested, n.Archive)
	}
	return &SignSpec{
		Extensions:  a.Extensions,
		Nested:      nested,
		Certificate: key.Fingerprint,
		Settings:    codesign.Settings{TimestampURL: a.TimestampURL, Description: a.Description, URL: a.URL},
	}, nil
}

func targets(m *config.Model, sign *SignSpec) ([]step.Target, error) {
	out := make([]step.Target, 0, len(m.Versions))
	prev := ""
	for _, v := range m.Versions {
		rel, ok := m.Releases[v]
		if !ok || rel == nil {
			return nil, fmt.Errorf("release %s is listed in Versions but not defined (configuration loader bug)", v)
		}
		t, err := target(m, rel)
		if err != nil {
			return nil, err
		}
		if sign != nil && len(rel.Inputs) > 0 {
			spec := t.Spec.(Spec)
			spec.Sign = sign
			t.Spec = spec
			t.InProcess = true
		}
		if len(rel.Inputs) > 0 {
			if prev != "" && m.Build.Reuse {
				spec := t.Spec.(Spec)
				spec.Reuse = prev
				t.Spec = spec
				t.Deps = append(t.Deps, prev)
			}
			prev = t.ID
		}
		out = append(out, t)
	}
	return out, nil
}

// target plans one release; its errors carry the most precise position.
func target(m *config.Model, rel *config.Release) (step.Target, error) {
	fail := func(pos config.Pos, err error) (step.Target, error) {
		return step.Target{}, posErr(pos, fmt.Errorf("release %s: %w", rel.Version, err))
	}
	level := m.Build.CompressionLevel
	if level == 0 {
		level = pkgzip.DefaultLevel
	}
	spec := Spec{
		Product: m.Product.Name,
		Version: rel.Version,
		Output:  OutputPath(m.Product.Name, rel.Version),
		Date:    m.Build.Date.UTC().Format(time.RFC3339),
		Level:   level,
	}
	if err := checkIdentity(spec.Product, spec.Version, spec.Output); err != nil {
		return fail(rel.Pos, err)
	}
	if m.Build.Paths == string(pkgzip.PathsPOSIX) {
		spec.Paths = pkgzip.PathsPOSIX
	}
	t := step.Target{ID: TargetID(rel.Version), Kind: Kind, Pos: rel.Pos.String(), Outputs: []string{spec.Output}}
	switch {
	case rel.Zip != nil && len(rel.Inputs) > 0:
		return fail(rel.Pos, fmt.Errorf("has both zip and inputs; a release either uses an existing package or is assembled"))
	case rel.Zip != nil:
		spec.Zip = zipSource
		t.Sources = []step.Source{fileSource(zipSource, rel.Zip, rel.Pos)}
	case len(rel.Inputs) > 0:
		for i, in := range rel.Inputs {
			l, s, err := layer(i, in)
			if err != nil {
				return fail(in.Pos, fmt.Errorf("input %d: %w", i+1, err))
			}
			spec.Layers = append(spec.Layers, l)
			t.Sources = append(t.Sources, s)
		}
	default:
		return fail(rel.Pos, fmt.Errorf("has neither zip nor inputs; give an existing package zip or the inputs to assemble"))
	}
	t.Spec = spec
	return t, nil
}

func layer(i int, in config.Input) (Layer, step.Source, error) {
	l := Layer{Source: fmt.Sprintf("layer%d", i), Dest: in.Dest, Mode: in.Mode}
	if err := checkLayer(l); err != nil {
		return Layer{}, step.Source{}, err
	}
	switch {
	case in.Dir != "" && in.File != nil:
		return Layer{}, step.Source{}, fmt.Errorf("has both dir and file; use one input per source")
	case in.Dir != "":
		return l, step.Source{Name: l.Source, Path: in.Dir, Dir: true, Pos: in.Pos.String()}, nil
	case in.File != nil:
		if in.Dest == "" {
			return Layer{}, step.Source{}, fmt.Errorf("a file input needs dest, the path of the file in the package")
		}
		return l, fileSource(l.Source, in.File, in.Pos), nil
	}
	return Layer{}, step.Source{}, fmt.Errorf("has neither dir nor file")
}

func fileSource(name string, s *config.Source, fallback config.Pos) step.Source {
	pos := s.Pos
	if pos.File == "" {
		pos = fallback
	}
	return step.Source{Name: name, Path: s.Path, URL: s.URL, SHA256: s.SHA256, Pos: pos.String()}
}

// checkIdentity rejects product names and versions that would not make a
// plain file name and target ID.
func checkIdentity(product, version, output string) error {
	for _, f := range []struct{ what, v string }{{"product name", product}, {"version", version}} {
		what, v := f.what, f.v
		if v == "" {
			return fmt.Errorf("%s is empty", what)
		}
		if strings.ContainsAny(v, `/\:*?"<>| `) || strings.Trim(v, ".") == "" {
			return fmt.Errorf("%s %q cannot be part of a file name; use letters, digits, '.', '-', '_' and '+'", what, v)
		}
	}
	if err := pkgzip.CheckName(output); err != nil {
		return fmt.Errorf("output: %w", err)
	}
	return nil
}

func checkLayer(l Layer) error {
	if l.Source == "" {
		return fmt.Errorf("layer has no source")
	}
	if l.Dest != "" {
		if err := pkgzip.CheckName(l.Dest); err != nil {
			return fmt.Errorf("dest: %w", err)
		}
	}
	if l.Mode > 0o777 {
		return fmt.Errorf("mode %#o has bits beyond permissions; use e.g. 0o755 or 0o644", l.Mode)
	}
	return nil
}

func posErr(pos config.Pos, err error) error {
	if p := pos.String(); p != "" {
		return fmt.Errorf("%s: %w", p, err)
	}
	return err
}
