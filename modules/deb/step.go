package deb

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/relcue/release/internal/strictjson"
	"github.com/relcue/release/pipeline/step"
)

// Step builds .debs. It registers nothing; modules/all lists it.
type Step struct{}

var _ step.Step = Step{}

func (Step) Kind() string    { return Kind }
func (Step) Version() string { return StepVersion }

// Run writes the package to OutDir/<output>. nfpm takes no context, so a
// cancellation is noticed before packaging starts, not during it.
func (Step) Run(ctx context.Context, in *step.Input) ([]step.Artifact, error) {
	spec, err := ParseSpec(in.Spec)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", in.Target, err)
	}
	out := filepath.Join(in.OutDir, filepath.FromSlash(spec.Output))
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return nil, err
	}
	info, err := Build(ctx, *spec, in.Sources, out)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", in.Target, err)
	}
	// nfpm reports no progress while packaging; the step completes at once.
	var total int64
	for _, f := range info.Files {
		total += f.Size
	}
	in.Progress.SetTotal(total)
	in.Progress.Add(total)
	fmt.Fprintf(in.Log, "%s: %d entries, %d conffiles\n", info.FileName, len(info.Files), len(info.Conffiles))
	return []step.Artifact{{Path: spec.Output, Kind: ArtifactKind}}, nil
}

// ParseSpec decodes a spec strictly and checks it, so that a hand-edited
// or stale spec fails before anything is packaged.
func ParseSpec(raw json.RawMessage) (*Spec, error) {
	var s Spec
	if err := strictjson.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("bad deb spec: %w", err)
	}
	if err := s.check(); err != nil {
		return nil, fmt.Errorf("bad deb spec: %w", err)
	}
	return &s, nil
}
