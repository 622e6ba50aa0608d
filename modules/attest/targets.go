// Package attest describes what release builds: a CycloneDX 1.6 SBOM of
// every full package, node package and addon artifact (every file with its
// SHA-256; every .deb and image with its version and digest) and an in-toto
// Statement with a SLSA v1 provenance predicate naming the configuration,
// the inputs' digests and the builder. Both are reproducible: their only
// time is the build date.
package attest

import (
	"fmt"
	"path/filepath"
	"slices"

	"github.com/relcue/release/pipeline/config"
	"github.com/relcue/release/pipeline/step"
)

const (
	// Step (and artifact) kinds.
	SBOMKind       = "sbom"
	ProvenanceKind = "provenance"
	// StepVersion is also the builder version the statements name.
	StepVersion = "1"
	// Suffixes appended to the subject's path.
	SBOMSuffix       = ".cdx.json"
	ProvenanceSuffix = ".intoto.json"
)

// Formats of subjects: what the SBOM reads.
const (
	Package     = "package"      // a full package zip with package-manifest.json
	NodePackage = "node-package" // a node package zip with node-manifest.json
	Addon       = "addon"        // an addon's .oci.tar
)

// Subject says which targets of a module get statements.
type Subject struct {
	// Kind is the step kind of the targets to describe.
	Kind string
	// ArtifactKind is the kind of the artifact described.
	ArtifactKind string
	// Format is how to read it (Package, NodePackage, Addon).
	Format string
}

// SBOMTargetID and ProvenanceTargetID name a subject's statements.
func SBOMTargetID(subject string) string       { return "sbom/" + subject }
func ProvenanceTargetID(subject string) string { return "provenance/" + subject }

// SBOMSpec is an SBOM target's spec: the SBOM depends on the artifact
// alone, so it is rebuilt (and the artifact read again) only when the
// artifact changes.
type SBOMSpec struct {
	Subject      string `json:"subject"`
	ArtifactKind string `json:"artifactKind"`
	Format       string `json:"format"`
	Path         string `json:"path"` // the subject artifact, relative to dist/
	Vendor       string `json:"vendor,omitempty"`
	Date         string `json:"date"`
}

// ProvenanceSpec is a provenance target's spec. The statement names the
// configuration files with their digests, so it follows every edit of
// them; it takes the artifact's digest from the SBOM, so that costs no
// read of the artifact.
type ProvenanceSpec struct {
	Subject     string  `json:"subject"`
	Path        string  `json:"path"`
	SBOM        string  `json:"sbom"` // the SBOM target
	Product     string  `json:"product"`
	Date        string  `json:"date"`
	SubjectKind string  `json:"subjectKind"`
	SubjectSpec any     `json:"subjectSpec"`
	Inputs      []Input `json:"inputs"`
}

// Input is a source of the subject, described by name and where it came
// from; its digest comes from the plan.
type Input struct {
	Source string `json:"source"` // the provenance target's source name
	Name   string `json:"name"`   // the subject's source name, or "config"
	URI    string `json:"uri"`
}

// For adds an SBOM and a provenance target for every target of sub's kind
// among ts.
func For(m *config.Model, sub Subject, ts []step.Target) ([]step.Target, error) {
	cfg, err := configSources(m)
	if err != nil {
		return nil, err
	}
	date := m.Build.Date.UTC().Format("2006-01-02T15:04:05Z")
	var out []step.Target
	for _, t := range ts {
		if t.Kind != sub.Kind || t.Effect || len(t.Outputs) == 0 {
			continue
		}
		path := t.Outputs[0]
		sbom := step.Target{
			ID: SBOMTargetID(t.ID), Kind: SBOMKind, Pos: t.Pos, Deps: []string{t.ID},
			Outputs: []string{path + SBOMSuffix},
			Spec: SBOMSpec{Subject: t.ID, ArtifactKind: sub.ArtifactKind, Format: sub.Format, Path: path,
				Vendor: m.Product.Vendor, Date: date},
		}
		spec := ProvenanceSpec{
			Subject: t.ID, Path: path, SBOM: sbom.ID, Product: m.Product.Name, Date: date,
			SubjectKind: t.Kind, SubjectSpec: t.Spec,
		}
		prov := step.Target{
			ID: ProvenanceTargetID(t.ID), Kind: ProvenanceKind, Pos: t.Pos, Deps: []string{sbom.ID},
			Outputs: []string{path + ProvenanceSuffix},
		}
		for i, s := range t.Sources {
			name := fmt.Sprintf("in%d", i)
			src := s
			src.Name = name
			prov.Sources = append(prov.Sources, src)
			spec.Inputs = append(spec.Inputs, Input{Source: name, Name: s.Name, URI: uri(m.Dir, s)})
		}
		for i, c := range cfg {
			name := fmt.Sprintf("config%d", i)
			c.Name = name
			prov.Sources = append(prov.Sources, c)
			spec.Inputs = append(spec.Inputs, Input{Source: name, Name: "config", URI: uri(m.Dir, c)})
		}
		prov.Spec = spec
		out = append(out, sbom, prov)
	}
	return out, nil
}

// configSources are the configuration's .cue files.
func configSources(m *config.Model) ([]step.Source, error) {
	files, err := filepath.Glob(filepath.Join(m.Dir, "*.cue"))
	if err != nil {
		return nil, err
	}
	slices.Sort(files)
	var out []step.Source
	for _, f := range files {
		out = append(out, step.Source{Path: f})
	}
	return out, nil
}

// uri names a source portably: a URL as it is, a path relative to the
// configuration directory when it is inside it.
func uri(dir string, s step.Source) string {
	if s.URL != "" {
		return s.URL
	}
	if rel, err := filepath.Rel(dir, s.Path); err == nil {
		return "file:" + filepath.ToSlash(rel)
	}
	return "file://" + filepath.ToSlash(s.Path) // another volume
}
