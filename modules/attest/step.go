package attest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/relcue/release/internal/strictjson"
	"github.com/relcue/release/pipeline/digest"
	"github.com/relcue/release/pipeline/step"
)

// SBOMStep writes the SBOM of one artifact.
type SBOMStep struct{}

// ProvenanceStep writes the provenance statement of one artifact.
type ProvenanceStep struct{}

var (
	_ step.Step = SBOMStep{}
	_ step.Step = ProvenanceStep{}
)

func (SBOMStep) Kind() string          { return SBOMKind }
func (SBOMStep) Version() string       { return StepVersion }
func (ProvenanceStep) Kind() string    { return ProvenanceKind }
func (ProvenanceStep) Version() string { return StepVersion }

func decodeSpec(in *step.Input, v any) error {
	if err := strictjson.Unmarshal(in.Spec, v); err != nil {
		return fmt.Errorf("%s: bad spec: %w", in.Target, err)
	}
	return nil
}

// depFile finds the artifact of kind at p among dependency dep's results.
func depFile(in *step.Input, dep, kind, p string) (string, error) {
	d, ok := in.Deps[dep]
	if !ok {
		return "", fmt.Errorf("%s: dependency %s was not provided; the plan is inconsistent", in.Target, dep)
	}
	a, ok := d.Find(kind)
	if !ok || a.Path != p {
		return "", fmt.Errorf("%s: %s has no %s artifact at %s", in.Target, dep, kind, p)
	}
	return filepath.Join(d.Dir, filepath.FromSlash(a.Path)), nil
}

func writeOutput(in *step.Input, a step.Artifact, data []byte) ([]step.Artifact, error) {
	p := filepath.Join(in.OutDir, filepath.FromSlash(a.Path))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		return nil, err
	}
	return []step.Artifact{a}, nil
}

func (SBOMStep) Run(ctx context.Context, in *step.Input) ([]step.Artifact, error) {
	var s SBOMSpec
	if err := decodeSpec(in, &s); err != nil {
		return nil, err
	}
	file, err := depFile(in, s.Subject, s.ArtifactKind, s.Path)
	if err != nil {
		return nil, err
	}
	sum, size, err := digest.File(file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", in.Target, err)
	}
	in.Progress.SetTotal(size)
	inv, err := inventory(ctx, s.Format, file)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", in.Target, s.Path, err)
	}
	in.Progress.Add(size)
	sbom, err := makeSBOM(&s, sum, size, inv)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", in.Target, err)
	}
	return writeOutput(in, step.Artifact{Path: s.Path + SBOMSuffix, Kind: SBOMKind}, sbom)
}

func (ProvenanceStep) Run(ctx context.Context, in *step.Input) ([]step.Artifact, error) {
	var s ProvenanceSpec
	if err := decodeSpec(in, &s); err != nil {
		return nil, err
	}
	sbomFile, err := depFile(in, s.SBOM, SBOMKind, s.Path+SBOMSuffix)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(sbomFile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", in.Target, err)
	}
	sb, err := ReadSBOM(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: the SBOM of %s: %w", in.Target, s.Subject, err)
	}
	if sb.Artifact != path.Base(s.Path) {
		return nil, fmt.Errorf("%s: the SBOM describes %s, not %s", in.Target, sb.Artifact, path.Base(s.Path))
	}
	prov, err := makeProvenance(&s, in, sb.ArtifactSHA256, sha256Hex(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", in.Target, err)
	}
	return writeOutput(in, step.Artifact{Path: s.Path + ProvenanceSuffix, Kind: ProvenanceKind}, prov)
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// provenance is an in-toto Statement v1 with a SLSA provenance v1
// predicate; field names follow the specifications.
type statement struct {
	Type          string       `json:"_type"`
	Subject       []descriptor `json:"subject"`
	PredicateType string       `json:"predicateType"`
	Predicate     slsa         `json:"predicate"`
}

type descriptor struct {
	Name      string            `json:"name,omitempty"`
	URI       string            `json:"uri,omitempty"`
	Digest    map[string]string `json:"digest"`
	MediaType string            `json:"mediaType,omitempty"`
}

type slsa struct {
	BuildDefinition struct {
		BuildType            string         `json:"buildType"`
		ExternalParameters   map[string]any `json:"externalParameters"`
		InternalParameters   map[string]any `json:"internalParameters,omitempty"`
		ResolvedDependencies []descriptor   `json:"resolvedDependencies"`
	} `json:"buildDefinition"`
	RunDetails struct {
		Builder struct {
			ID      string            `json:"id"`
			Version map[string]string `json:"version,omitempty"`
		} `json:"builder"`
		Metadata struct {
			InvocationID string `json:"invocationId"`
		} `json:"metadata"`
		Byproducts []descriptor `json:"byproducts,omitempty"`
	} `json:"runDetails"`
}

const (
	// BuilderID names release as the builder; BuildType the meaning of
	// the parameters (docs/signing.md).
	BuilderID = "https://github.com/relcue/release"
	BuildType = "https://github.com/relcue/release/blob/main/docs/signing.md#provenance"
	// treeDigest is the digest-set key of a directory input: release's
	// tree digest (docs/architecture.md, "Targets and cache keys").
	treeDigest = "release-tree-sha256"
)

func makeProvenance(s *ProvenanceSpec, in *step.Input, sum, sbomSum string) ([]byte, error) {
	var st statement
	st.Type = "https://in-toto.io/Statement/v1"
	st.PredicateType = "https://slsa.dev/provenance/v1"
	st.Subject = []descriptor{{Name: path.Base(s.Path), Digest: map[string]string{"sha256": sum}}}
	p := &st.Predicate
	p.BuildDefinition.BuildType = BuildType
	var config []string
	for _, i := range s.Inputs {
		if i.Name == "config" {
			config = append(config, i.URI)
		}
	}
	p.BuildDefinition.ExternalParameters = map[string]any{
		"target": s.Subject, "product": s.Product, "config": config, "buildDate": s.Date,
	}
	p.BuildDefinition.InternalParameters = map[string]any{"stepKind": s.SubjectKind, "spec": s.SubjectSpec}
	p.BuildDefinition.ResolvedDependencies = []descriptor{}
	for _, i := range s.Inputs {
		d := in.SourceDigests[i.Source]
		alg, hexd, ok := strings.Cut(d, ":")
		if !ok {
			return nil, fmt.Errorf("input %s (%s) has no digest from the plan", i.Name, i.URI)
		}
		key := "sha256"
		if alg == "tree" {
			key = treeDigest
		}
		name := i.Name
		p.BuildDefinition.ResolvedDependencies = append(p.BuildDefinition.ResolvedDependencies, descriptor{Name: name, URI: i.URI, Digest: map[string]string{key: hexd}})
	}
	sort.SliceStable(p.BuildDefinition.ResolvedDependencies, func(a, b int) bool {
		return p.BuildDefinition.ResolvedDependencies[a].URI < p.BuildDefinition.ResolvedDependencies[b].URI
	})
	p.RunDetails.Builder.ID = BuilderID
	p.RunDetails.Builder.Version = map[string]string{"attest": StepVersion}
	// The invocation is the target: a content-addressed build has no
	// other identity, and a random ID would break reproducibility.
	p.RunDetails.Metadata.InvocationID = s.Subject
	p.RunDetails.Byproducts = []descriptor{{Name: path.Base(s.Path) + SBOMSuffix, MediaType: "application/vnd.cyclonedx+json", Digest: map[string]string{"sha256": sbomSum}}}
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}
