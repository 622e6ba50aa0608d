// Package pipeline ties the stages together: load the CUE configuration,
// ask the modules for targets, plan the graph, run it on an engine with the
// cache, and publish into dist/. It is what the CLI calls; it knows targets
// and keys, never what a zip or a deb is.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"runtime"

	"github.com/relcue/release/internal/netx"
	"github.com/relcue/release/pipeline/cache"
	"github.com/relcue/release/pipeline/config"
	"github.com/relcue/release/pipeline/digest"
	"github.com/relcue/release/pipeline/dist"
	"github.com/relcue/release/pipeline/engine"
	_ "github.com/relcue/release/pipeline/engine/daggerengine" // registers --engine dagger
	"github.com/relcue/release/pipeline/fetch"
	"github.com/relcue/release/pipeline/plan"
	"github.com/relcue/release/pipeline/progress"
	"github.com/relcue/release/pipeline/sched"
	"github.com/relcue/release/pipeline/step"
)

// ConfigError marks errors in the user's configuration or arguments (exit
// code 2), as opposed to failures while building (exit code 1).
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// IsConfigError reports whether err is the user's to fix in config or flags.
func IsConfigError(err error) bool {
	var ce *ConfigError
	return errors.As(err, &ce)
}

// Options configures loading.
type Options struct {
	// Dir holds the configuration.
	Dir string
	// CacheDir overrides the default cache location.
	CacheDir string
	// Workers bounds parallelism; 0 means the number of CPUs.
	Workers int
	Env     func(string) string
	// Limits bound loading the configuration (zero fields: defaults).
	Limits config.Limits
	// Adjust, when set, changes the loaded model before targets are
	// planned (command-line overrides such as --registry); its errors are
	// configuration errors.
	Adjust func(*config.Model) error
}

// Session is a loaded and planned configuration.
type Session struct {
	Model   *config.Model
	Graph   *plan.Graph
	Cache   *cache.Store
	Steps   map[string]step.Step
	Workers int
}

// Open loads the configuration and plans it.
func Open(ctx context.Context, mods []step.Module, opts Options) (*Session, error) {
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	m, err := config.Load(opts.Dir, config.LoadOptions{Env: opts.Env, Sections: step.Sections(mods), Limits: opts.Limits})
	if err != nil {
		return nil, &ConfigError{err}
	}
	if opts.Adjust != nil {
		if err := opts.Adjust(m); err != nil {
			return nil, &ConfigError{err}
		}
	}
	steps, err := engine.Registry(step.Steps(mods)...)
	if err != nil {
		return nil, err
	}
	var targets []step.Target
	for _, mod := range mods {
		if mod.Targets == nil {
			continue
		}
		ts, err := mod.Targets(m)
		if err != nil {
			return nil, &ConfigError{err}
		}
		targets = append(targets, ts...)
	}
	cacheDir := opts.CacheDir
	if cacheDir == "" {
		if cacheDir, err = cache.DefaultDir(); err != nil {
			return nil, &ConfigError{err}
		}
	}
	absCache, err := filepath.Abs(cacheDir)
	if err != nil {
		return nil, err
	}
	if err := checkOutputsOutsideInputs(targetSources(targets), map[string]string{"the output directory (build.dist, --dist)": m.Build.Dist, "the cache (--cache, RELEASE_CACHE)": absCache}); err != nil {
		return nil, &ConfigError{err}
	}
	store, err := cache.Open(cacheDir)
	if err != nil {
		return nil, err
	}
	digests := &plan.LocalDigester{Workers: workers, Index: digest.OpenIndex(store.StateDir("digests"))}
	g, err := plan.Build(ctx, targets, plan.Options{Steps: steps, Workers: workers, Digests: digests})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &ConfigError{err}
	}
	return &Session{Model: m, Graph: g, Cache: store, Steps: steps, Workers: workers}, nil
}

// Status reports whether a node is cached (an entry exists; it is verified
// when the build uses it).
func (s *Session) Status(n *plan.Node) plan.Status {
	if n.Effect {
		return plan.Status{}
	}
	return plan.Status{Cached: s.Cache.Has(n.Key)}
}

// Plan returns the views of the targets selected by patterns (all when
// empty) and what they need.
func (s *Session) Plan(patterns []string) ([]plan.TargetView, error) {
	ids, _, err := s.Graph.Select(patterns, true)
	if err != nil {
		return nil, &ConfigError{err}
	}
	return s.Graph.View(ids, s.Status), nil
}

// BuildOptions configures a build.
type BuildOptions struct {
	Targets   []string
	KeepGoing bool
	Engine    string
	// Dist overrides the configured output directory.
	Dist string
	// Clean lets publishing remove files of dist/ that release did not
	// publish, instead of refusing the directory.
	Clean    bool
	Progress progress.Reporter
	// Effects runs the targets with effects outside the build (registry
	// pushes) among those selected; without it they are left out.
	Effects bool
	// StepBinary is the static Linux release binary container engines
	// run steps with ("" = this executable, when it is one).
	StepBinary string
	// EngineLog receives the engine's own messages (nil: discarded).
	EngineLog io.Writer
	// Remote is a cache shared through a registry (nil: none).
	Remote sched.RemoteCache
	// BeforeStep, when set, is called with a target's ID once its inputs
	// are resolved (downloads fetched, pins checked) and just before its
	// step reads them: the tests change inputs at that exact moment.
	BeforeStep func(target string)
	// Net bounds the downloads of URL inputs in time (zero: defaults).
	Net netx.Config
}

// BuildReport is the result of a build.
type BuildReport struct {
	Dist      string          `json:"dist"`
	Engine    string          `json:"engine"`
	Targets   []TargetOutcome `json:"targets"`
	Artifacts []dist.Artifact `json:"artifacts"`
	Summary   string          `json:"summary"`
	// Listed counts what artifacts.json now lists: this build's artifacts
	// and those of earlier builds still current (Publish.Carried).
	Listed int `json:"listed"`
	// Publish says what publishing into dist/ wrote and what it left
	// alone because it was already in place.
	Publish dist.Stats `json:"publish"`
}

// TargetOutcome is one target's line in a BuildReport.
type TargetOutcome struct {
	ID         string  `json:"id"`
	Status     string  `json:"status"`
	Seconds    float64 `json:"seconds"`
	Error      string  `json:"error,omitempty"`
	Key        string  `json:"key"`
	Published  bool    `json:"published"`
	Dependency bool    `json:"dependency"`
}

// Build runs the selected targets and, when all succeed, publishes the
// artifacts of the selected ones (not of dependencies pulled in only to
// build them) into dist/. On failure dist/ is not touched.
func (s *Session) Build(ctx context.Context, opts BuildOptions) (*BuildReport, error) {
	ids, roots, err := s.Graph.Select(opts.Targets, opts.Effects)
	if err != nil {
		return nil, &ConfigError{err}
	}
	distDir := s.Model.Build.Dist
	if opts.Dist != "" {
		if distDir, err = filepath.Abs(opts.Dist); err != nil {
			return nil, err
		}
		if err := checkOutputsOutsideInputs(s.graphSources(), map[string]string{"the output directory (--dist)": distDir}); err != nil {
			return nil, &ConfigError{err}
		}
	}
	// Refuse a dist/ that is not release's before building, not after.
	if !opts.Clean {
		if err := dist.CheckOwned(distDir); err != nil {
			return nil, &ConfigError{err}
		}
	}
	// Effects talk to this host's registries with its credentials, and
	// signing steps use its keys: they run here whichever engine runs the
	// other steps, so no credential leaves the process.
	inProcess := map[string]bool{}
	for _, n := range s.Graph.Nodes {
		if n.Effect || n.InProcess {
			inProcess[n.Kind] = true
		}
	}
	eng, err := engine.New(ctx, opts.Engine, s.Steps, engine.Config{StepBinary: opts.StepBinary, InProcess: inProcess, Log: opts.EngineLog})
	if err != nil {
		return nil, &ConfigError{err}
	}
	defer eng.Close()
	rep := opts.Progress
	if rep == nil {
		rep = &progress.Plain{Quiet: true}
	}
	resolver := &fetch.Resolver{BlobDir: s.Cache.BlobDir(), TempDir: s.Cache.TempDir(), CreateTemp: s.Cache.CreateTemp, Net: opts.Net}
	res, runErr := sched.Run(ctx, s.Graph, ids, sched.Options{
		Jobs: s.Workers, KeepGoing: opts.KeepGoing, Engine: eng, Cache: s.Cache,
		Resolve: resolver.Resolve, Progress: rep, Remote: opts.Remote, BeforeStep: opts.BeforeStep,
	})
	if res == nil {
		return nil, runErr
	}
	defer res.Release()

	report := &BuildReport{Dist: distDir, Engine: eng.Name(), Summary: res.Summary(), Artifacts: []dist.Artifact{}}
	isRoot := map[string]bool{}
	for _, r := range roots {
		isRoot[r] = true
	}
	for _, id := range ids {
		o := res.Outcomes[id]
		t := TargetOutcome{ID: id, Status: o.Status, Seconds: o.Duration.Seconds(), Key: s.Graph.Nodes[id].Key, Dependency: !isRoot[id], Published: isRoot[id] && runErr == nil}
		if o.Err != nil {
			t.Error = o.Err.Error()
		}
		report.Targets = append(report.Targets, t)
	}
	if runErr != nil {
		return report, runErr
	}
	var items []dist.Item
	for _, id := range roots {
		items = append(items, dist.Item{Target: id, Entry: res.Outcomes[id].Entry})
	}
	state, err := dist.StatePath(s.Cache.StateDir("dist"), distDir)
	if err != nil {
		return report, err
	}
	currentKey := func(id string) (string, bool) {
		if n := s.Graph.Nodes[id]; n != nil {
			return n.Key, true
		}
		return "", false
	}
	pub, err := dist.Publish(ctx, distDir, items, dist.Options{State: state, Workers: s.Workers, CurrentKey: currentKey, Clean: opts.Clean})
	if err != nil {
		return report, fmt.Errorf("publish to %s: %w", distDir, err)
	}
	report.Artifacts = pub.Artifacts
	report.Listed = len(pub.Index)
	report.Publish = pub.Stats
	return report, nil
}
