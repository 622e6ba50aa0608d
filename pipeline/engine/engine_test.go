package engine

import (
	"context"
	"errors"
	"testing"

	"github.com/relcue/release/pipeline/step"
)

// careless finishes without ever looking at its context.
type careless struct{}

func (careless) Kind() string    { return "careless" }
func (careless) Version() string { return "1" }
func (careless) Run(context.Context, *step.Input) ([]step.Artifact, error) {
	return []step.Artifact{{Path: "x", Kind: "k"}}, nil
}

func TestLocalRunCancelledIsAnError(t *testing.T) {
	l := &Local{Steps: map[string]step.Step{"careless": careless{}}}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	arts, err := l.Run(ctx, "careless", &step.Input{})
	if !errors.Is(err, context.Canceled) || arts != nil {
		t.Fatalf("Run with a cancelled context: %v, %v", arts, err)
	}
	if _, err := l.Run(context.Background(), "careless", &step.Input{}); err != nil {
		t.Fatal(err)
	}
}
