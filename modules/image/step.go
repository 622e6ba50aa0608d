package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/relcue/release/internal/strictjson"
	"github.com/relcue/release/modules/pkgzip"
	"github.com/relcue/release/pipeline/step"
)

// Step builds image archives. It registers nothing; modules/all lists it.
type Step struct{}

var _ step.Step = Step{}

func (Step) Kind() string    { return Kind }
func (Step) Version() string { return StepVersion }

// Run writes the image's OCI archive to OutDir/<output>.
func (Step) Run(ctx context.Context, in *step.Input) ([]step.Artifact, error) {
	spec, err := parseSpec(in.Spec)
	if err != nil {
		return nil, err
	}
	for _, name := range spec.sourceNames() {
		if p, ok := in.Sources[name]; !ok || p == "" {
			return nil, fmt.Errorf("image %s: the spec uses source %q but the pipeline provided none (planner bug)", spec.Ref, name)
		}
	}
	out := filepath.Join(in.OutDir, filepath.FromSlash(spec.Output))
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return nil, err
	}
	// Layer tars are spooled below OutDir (a step writes nowhere else)
	// and removed before the outputs are checked.
	tmp, err := os.MkdirTemp(in.OutDir, ".image-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	date, _ := spec.date()
	b := &builder{spec: spec, sources: in.Sources, tmp: tmp, date: date, workers: max(in.Workers, 1)}
	defer b.close()
	if err := writeImageArchive(ctx, b, out, in); err != nil {
		os.Remove(out) // a partial archive must not look like a result
		return nil, fmt.Errorf("image %s: %w", spec.Ref, err)
	}
	return []step.Artifact{{Path: spec.Output, Kind: ArtifactKind}}, nil
}

// writeImageArchive builds the image and writes its OCI archive to out.
func writeImageArchive(ctx context.Context, b *builder, out string, in *step.Input) error {
	top, err := b.buildImage(ctx)
	if err != nil {
		return err
	}
	desc, err := writeArchive(ctx, out, b.spec.Ref, top, b.date, in.Progress)
	if err != nil {
		return err
	}
	if err := checkDigestRef(b.spec.Ref, desc.Digest); err != nil {
		return err
	}
	fmt.Fprintf(in.Log, "%s %s (%s)\n", b.spec.Ref, desc.Digest, strings.Join(b.spec.Platforms, ", "))
	return nil
}

// parseSpec decodes the spec strictly and checks what the planner
// promised, so that a hand-edited or stale spec fails clearly.
func parseSpec(raw json.RawMessage) (*Spec, error) {
	var s Spec
	if err := strictjson.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("image spec: %w", err)
	}
	if err := s.check(); err != nil {
		return nil, fmt.Errorf("image spec for %s: %w", s.Ref, err)
	}
	return &s, nil
}

func (s *Spec) check() error {
	if _, err := parseRef(s.Ref); err != nil {
		return err
	}
	if err := pkgzip.CheckName(s.Output); err != nil {
		return fmt.Errorf("output: %w", err)
	}
	if !strings.HasPrefix(s.Output, "images/") || !strings.HasSuffix(s.Output, "/"+FileName(s.Ref)) {
		return fmt.Errorf("output %q is not images/<os>/%s", s.Output, FileName(s.Ref))
	}
	if _, err := s.date(); err != nil {
		return err
	}
	if err := s.checkPlatforms(); err != nil {
		return err
	}
	if err := s.checkBaseOrScratch(); err != nil {
		return err
	}
	if err := s.checkLayers(); err != nil {
		return err
	}
	return s.checkConfig()
}

// checkPlatforms wants at least one platform, each spelled canonically,
// sorted and unique (the planner's order, which the archive follows).
func (s *Spec) checkPlatforms() error {
	if len(s.Platforms) == 0 {
		return errors.New("no platforms")
	}
	for i, p := range s.Platforms {
		_, canon, err := parsePlatform(p)
		if err != nil {
			return err
		}
		if canon != p {
			return fmt.Errorf("platform %q is not canonical (%q)", p, canon)
		}
		if i > 0 && s.Platforms[i-1] >= p {
			return errors.New("platforms are not sorted and unique")
		}
	}
	return nil
}

// checkBaseOrScratch checks the base, or that an image without one has
// layers of its own.
func (s *Spec) checkBaseOrScratch() error {
	if s.Base == nil {
		if len(s.Layers) == 0 {
			return errors.New("an image from scratch needs at least one layer")
		}
		return nil
	}
	if s.Base.Source == "" {
		return errors.New("base has no source")
	}
	if s.Base.Format != FormatLayout && s.Base.Format != FormatTarball {
		return fmt.Errorf("base format %q is neither %q nor %q", s.Base.Format, FormatLayout, FormatTarball)
	}
	return nil
}

func (s *Spec) checkLayers() error {
	seen := map[string]bool{}
	for i, l := range s.Layers {
		if err := l.check(); err != nil {
			return fmt.Errorf("layer %d: %w", i+1, err)
		}
		if l.Platform != "" && !slices.Contains(s.Platforms, l.Platform) {
			return fmt.Errorf("layer %d: platform %s is not one of the image's", i+1, l.Platform)
		}
		if seen[l.Source] || (s.Base != nil && l.Source == s.Base.Source) {
			return fmt.Errorf("layer %d: source %q is used twice", i+1, l.Source)
		}
		seen[l.Source] = true
	}
	return nil
}

func (s *Spec) date() (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s.Date)
	if err != nil {
		return time.Time{}, fmt.Errorf("date: %w", err)
	}
	return t.UTC(), nil
}

func (s *Spec) sourceNames() []string {
	var names []string
	if s.Base != nil {
		names = append(names, s.Base.Source)
	}
	for _, l := range s.Layers {
		names = append(names, l.Source)
	}
	return names
}
