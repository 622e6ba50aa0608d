// Package engine runs one step somewhere: in this process (local) or, in
// later engines, in a container. The scheduler decides what runs when; an
// engine only decides where.
package engine

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/relcue/release/pipeline/step"
)

// Engine executes steps.
type Engine interface {
	Name() string
	// Run executes the step of the given kind. in.OutDir is empty and owned
	// by this call; the artifacts it returns must be files below it.
	Run(ctx context.Context, kind string, in *step.Input) ([]step.Artifact, error)
	Close() error
}

// Local runs steps in-process.
type Local struct {
	Steps map[string]step.Step
}

func (l *Local) Name() string { return "local" }
func (l *Local) Close() error { return nil }

func (l *Local) Run(ctx context.Context, kind string, in *step.Input) ([]step.Artifact, error) {
	s, ok := l.Steps[kind]
	if !ok {
		return nil, fmt.Errorf("local engine: no step of kind %q", kind)
	}
	return s.Run(ctx, in)
}

// Registry indexes steps by kind and rejects duplicates.
func Registry(steps ...step.Step) (map[string]step.Step, error) {
	m := make(map[string]step.Step, len(steps))
	for _, s := range steps {
		if _, dup := m[s.Kind()]; dup {
			return nil, fmt.Errorf("two steps of kind %q", s.Kind())
		}
		m[s.Kind()] = s
	}
	return m, nil
}

// Names lists the engines that New knows.
var Names = []string{"local"}

// New returns the named engine.
func New(name string, steps map[string]step.Step) (Engine, error) {
	switch name {
	case "", "local":
		return &Local{Steps: steps}, nil
	}
	known := append([]string(nil), Names...)
	sort.Strings(known)
	return nil, fmt.Errorf("unknown engine %q (known: %s)", name, strings.Join(known, ", "))
}
