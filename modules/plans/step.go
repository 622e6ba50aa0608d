package plans

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/relcue/release/modules/image"
	"github.com/relcue/release/pipeline/digest"
	"github.com/relcue/release/pipeline/step"
)

// Step renders plans targets.
type Step struct{}

var _ step.Step = Step{}

func (Step) Kind() string    { return Kind }
func (Step) Version() string { return StepVersion }

// Run pins the plans to the dependencies' bytes (package and delta
// SHA-256, image digests) and writes one YAML file per policy and path.
func (Step) Run(ctx context.Context, in *step.Input) ([]step.Artifact, error) {
	var s Spec
	if err := in.DecodeSpec(&s); err != nil {
		return nil, err
	}
	pins := Pins{Deltas: map[string]Pinned{}, Images: map[string]string{}}
	var err error
	if pins.Package, err = pin(in, s.Package); err != nil {
		return nil, err
	}
	for _, d := range s.Deltas {
		if pins.Deltas[d.From], err = pin(in, d.Artifact); err != nil {
			return nil, err
		}
	}
	for _, p := range s.Policies {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if p.ImageTarget == "" {
			pins.Images[p.Name] = p.Upgrade.Image
			continue
		}
		ref, err := imageByDigest(in, p.ImageTarget, p.Upgrade.Image)
		if err != nil {
			return nil, fmt.Errorf("%s: policy %s: %w", in.Target, p.Name, err)
		}
		pins.Images[p.Name] = ref
	}
	files, err := Render(&s, pins)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", in.Target, err)
	}
	want, err := s.outputs()
	if err != nil {
		return nil, err
	}
	var arts []step.Artifact
	for _, p := range want {
		data, ok := files[p]
		if !ok {
			return nil, fmt.Errorf("%s: %s was not rendered", in.Target, p)
		}
		if p != path.Clean(p) || path.IsAbs(p) || strings.HasPrefix(p, "../") {
			return nil, fmt.Errorf("%s: output %q is not a clean relative path", in.Target, p)
		}
		dst := filepath.Join(in.OutDir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			return nil, fmt.Errorf("%s: %w", in.Target, err)
		}
		in.Progress.Add(int64(len(data)))
		arts = append(arts, step.Artifact{Path: p, Kind: ArtifactKind})
	}
	if len(files) != len(want) {
		return nil, fmt.Errorf("%s: rendered %d files, planned %d", in.Target, len(files), len(want))
	}
	slices.SortFunc(arts, func(a, b step.Artifact) int { return strings.Compare(a.Path, b.Path) })
	return arts, nil
}

// pin names a dependency's artifact by file name and SHA-256.
func pin(in *step.Input, a Artifact) (Pinned, error) {
	p, err := in.DepArtifact(a.Target, a.Kind)
	if err != nil {
		return Pinned{}, err
	}
	sum, _, err := digest.File(p)
	if err != nil {
		return Pinned{}, fmt.Errorf("%s: %w", in.Target, err)
	}
	return Pinned{File: filepath.Base(p), SHA256: sum}, nil
}

// imageByDigest is ref's repository with the digest of the archive the
// image target built: the index's for a multi-platform image, else the
// manifest's, which is what a registry serves for the tag.
func imageByDigest(in *step.Input, target, ref string) (string, error) {
	p, err := in.DepArtifact(target, image.ArtifactKind)
	if err != nil {
		return "", err
	}
	info, err := image.Inspect(p)
	if err != nil {
		return "", err
	}
	if info.RefName != ref {
		return "", fmt.Errorf("image target %s built %q, not %q", target, info.RefName, ref)
	}
	t, err := name.NewTag(ref, name.StrictValidation)
	if err != nil {
		return "", err
	}
	// The repository as written: ggcr's Context().Name() would spell
	// docker.io as index.docker.io, a name no runtime looks up.
	repo := strings.TrimSuffix(ref, ":"+t.TagStr())
	d, err := name.NewDigest(repo+"@"+info.Digest, name.StrictValidation)
	if err != nil {
		return "", fmt.Errorf("image %s: digest %q: %w", ref, info.Digest, err)
	}
	return d.String(), nil
}
