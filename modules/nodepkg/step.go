package nodepkg

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"time"

	"github.com/relcue/release/internal/strictjson"
	"github.com/relcue/release/modules/deb"
	"github.com/relcue/release/modules/image"
	"github.com/relcue/release/pipeline/step"
)

// Step builds node packages.
type Step struct{}

var _ step.Step = Step{}

func (Step) Kind() string    { return Kind }
func (Step) Version() string { return StepVersion }

// Run writes the node package named by the spec from its deb and image
// dependencies and its existing .deb sources.
func (Step) Run(ctx context.Context, in *step.Input) ([]step.Artifact, error) {
	s, err := ParseSpec(in.Spec)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", in.Target, err)
	}
	date, _ := time.Parse(time.RFC3339, s.Date)
	opts := Options{
		Product: s.Product, Version: s.Version, OS: s.OS, OSDir: s.OSDir,
		Output:   filepath.Join(in.OutDir, filepath.FromSlash(s.Output)),
		Date:     date,
		Level:    s.Level,
		Workers:  in.Workers,
		Progress: in.Progress.Add,
		Log:      in.Log,
	}
	for _, d := range s.Debs {
		var p, origin string
		if d.Target != "" {
			p, err = in.DepArtifact(d.Target, deb.ArtifactKind)
			origin = d.Target
		} else {
			p, err = sourcePath(in, d.Source)
			// Its configuration position and URL or path: p may be a
			// download's blob in the cache.
			origin = in.SourceLabel(d.Source)
		}
		if err != nil {
			return nil, err
		}
		opts.Debs = append(opts.Debs, Deb{Group: d.Group, Path: p, Origin: origin})
	}
	for _, img := range s.Images {
		p, err := in.DepArtifact(img.Target, image.ArtifactKind)
		if err != nil {
			return nil, err
		}
		opts.Images = append(opts.Images, ImageArchive{Path: p, Ref: img.Ref, Origin: img.Target})
	}
	in.Progress.SetTotal(0)
	if _, err := Build(ctx, opts); err != nil {
		return nil, err
	}
	return []step.Artifact{{Path: s.Output, Kind: ArtifactKind}}, nil
}

// ParseSpec decodes a node package spec strictly and checks what the
// planner promised.
func ParseSpec(raw json.RawMessage) (*Spec, error) {
	var s Spec
	if err := strictjson.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("bad nodepkg spec: %w", err)
	}
	if err := checkIdentity(s); err != nil {
		return nil, fmt.Errorf("bad nodepkg spec: %w", err)
	}
	if _, err := time.Parse(time.RFC3339, s.Date); err != nil {
		return nil, fmt.Errorf("bad nodepkg spec: date: %w", err)
	}
	if s.Level < 1 || s.Level > 9 {
		return nil, fmt.Errorf("bad nodepkg spec: level %d is out of range 1..9", s.Level)
	}
	for i, d := range s.Debs {
		if (d.Target == "") == (d.Source == "") {
			return nil, fmt.Errorf("bad nodepkg spec: deb %d needs exactly one of target and source", i+1)
		}
		if err := CheckGroup(d.Group); err != nil {
			return nil, fmt.Errorf("bad nodepkg spec: deb %d: %w", i+1, err)
		}
	}
	for i, img := range s.Images {
		if img.Ref == "" || img.Target == "" {
			return nil, fmt.Errorf("bad nodepkg spec: image %d needs ref and target", i+1)
		}
	}
	return &s, nil
}

func sourcePath(in *step.Input, name string) (string, error) {
	p, ok := in.Sources[name]
	if !ok || p == "" {
		return "", fmt.Errorf("%s: the spec uses source %q but the pipeline provided none (planner bug)", in.Target, name)
	}
	return p, nil
}
