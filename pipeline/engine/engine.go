// Package engine runs one step somewhere: in this process (local) or, in
// later engines, in a container. The scheduler decides what runs when; an
// engine only decides where.
package engine

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/relcue/release/pipeline/readcheck"
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
	arts, err := s.Run(ctx, in)
	if err == nil {
		// A step that finished its work without looking at a cancelled
		// context has still been cancelled: its result must not count.
		err = ctx.Err()
	}
	if err != nil {
		return nil, err
	}
	return arts, nil
}

// Registry indexes steps by kind and rejects duplicates. Every step it
// returns reads only what the plan keyed (readcheck.Wrap), on whichever
// engine runs it: in this process, in a step process, in a container.
func Registry(steps ...step.Step) (map[string]step.Step, error) {
	m := make(map[string]step.Step, len(steps))
	for _, s := range steps {
		if _, dup := m[s.Kind()]; dup {
			return nil, fmt.Errorf("two steps of kind %q", s.Kind())
		}
		m[s.Kind()] = readcheck.Wrap(s)
	}
	return m, nil
}

// Config is what engines other than local need to know.
type Config struct {
	// StepBinary is a statically linked Linux release binary for engines
	// that run steps in containers ("" = this executable, when it is one).
	StepBinary string
	// InProcess lists step kinds that run in this process whatever the
	// engine: steps with effects outside the build (registry pushes),
	// which use this host's network and credentials.
	InProcess map[string]bool
	// Log receives the engine's own messages (connection, image loading).
	Log io.Writer
}

// Factory makes an engine. It fails at once when the engine cannot be
// reached, so that a build never falls back to another engine silently.
type Factory func(ctx context.Context, steps map[string]step.Step, cfg Config) (Engine, error)

var factories = map[string]Factory{
	"local": func(_ context.Context, steps map[string]step.Step, _ Config) (Engine, error) {
		return &Local{Steps: steps}, nil
	},
}

// Register adds an engine; engine packages call it from init.
func Register(name string, f Factory) {
	if _, dup := factories[name]; dup {
		panic("engine: two engines named " + name)
	}
	factories[name] = f
}

// Names lists the registered engines.
func Names() []string {
	names := make([]string, 0, len(factories))
	for n := range factories {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// New returns the named engine ("" is local).
func New(ctx context.Context, name string, steps map[string]step.Step, cfg Config) (Engine, error) {
	if name == "" {
		name = "local"
	}
	f, ok := factories[name]
	if !ok {
		return nil, fmt.Errorf("unknown engine %q (known: %s)", name, strings.Join(Names(), ", "))
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	return f(ctx, steps, cfg)
}
