// Package sched executes a planned graph: dependencies first, at most Jobs
// steps at a time, each result taken from the cache when it verifies and
// built through the engine otherwise.
package sched

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/relcue/release/pipeline/cache"
	"github.com/relcue/release/pipeline/engine"
	"github.com/relcue/release/pipeline/plan"
	"github.com/relcue/release/pipeline/progress"
	"github.com/relcue/release/pipeline/step"
)

// Options configures a run.
type Options struct {
	Jobs      int
	KeepGoing bool
	Engine    engine.Engine
	Cache     *cache.Store
	// Resolve turns a source into a verified local path.
	Resolve  func(ctx context.Context, s step.Source) (string, error)
	Progress progress.Reporter
	// Remote, when set, is asked for a target missing from the local
	// cache before it is built, and given what is built.
	Remote RemoteCache
	// BeforeStep, when set, is called once a target's sources are
	// resolved, just before its step runs (a test hook).
	BeforeStep func(id string)
}

// RemoteCache is a cache shared between machines (pipeline/remotecache).
type RemoteCache interface {
	// Fetch writes the entry of key into the empty outDir; any error
	// means "build it" (the remote reports refusals itself).
	Fetch(ctx context.Context, key string, info cache.Info, outDir string) ([]step.Artifact, error)
	// Push uploads a verified local entry; failures are reported by the
	// remote and never fail the build.
	Push(ctx context.Context, e *cache.Entry)
}

// Status of a target after a run.
const (
	Cached   = "cached"
	Built    = "built"
	Failed   = "failed"
	Skipped  = "skipped"  // a dependency failed
	Canceled = "canceled" // the run stopped first
)

// Outcome is what happened to one target.
type Outcome struct {
	ID       string
	Status   string
	Err      error
	Entry    *cache.Entry
	Duration time.Duration
}

// Result holds every outcome of a run.
type Result struct {
	Order    []string
	Outcomes map[string]*Outcome
}

// Release unlocks every cache entry the run holds.
func (r *Result) Release() {
	for _, o := range r.Outcomes {
		o.Entry.Release()
	}
}

// BuildError lists the targets that failed.
type BuildError struct {
	Failed []*Outcome
}

func (e *BuildError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d target(s) failed:", len(e.Failed))
	for _, o := range e.Failed {
		fmt.Fprintf(&b, "\n  %s: %v", o.ID, o.Err)
	}
	return b.String()
}

// Run builds ids (which must be closed under dependencies, in graph order).
// With KeepGoing, independent targets keep building after a failure and
// only dependents of failed targets are skipped; otherwise the first
// failure cancels the rest.
func Run(ctx context.Context, g *plan.Graph, ids []string, opts Options) (*Result, error) {
	res := &Result{Order: ids, Outcomes: make(map[string]*Outcome, len(ids))}
	for _, id := range ids {
		res.Outcomes[id] = &Outcome{ID: id, Status: Canceled}
	}
	r, err := newRun(ctx, g, ids, opts, res)
	if err != nil {
		return nil, err
	}
	defer r.cancel()
	r.execute(ids)

	var failed []*Outcome
	for _, id := range ids {
		if o := res.Outcomes[id]; o.Status == Failed {
			failed = append(failed, o)
		}
	}
	if len(failed) > 0 {
		return res, &BuildError{Failed: failed}
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	return res, nil
}

// run is the state of one Run: which targets wait on how many
// dependencies, and who uses each.
type run struct {
	g    *plan.Graph
	opts Options
	res  *Result
	// pending counts each target's dependencies not yet built; users
	// lists the targets that depend on each.
	pending map[string]int
	users   map[string][]string

	ctx    context.Context // cancelled on the first failure without KeepGoing
	cancel context.CancelFunc
	eg     *errgroup.Group
	done   chan string // each launched target's id, once it ended
	mu     sync.Mutex  // guards outcomes' Status/Err/Entry across goroutines
}

func newRun(ctx context.Context, g *plan.Graph, ids []string, opts Options, res *Result) (*run, error) {
	r := &run{g: g, opts: opts, res: res, pending: map[string]int{}, users: map[string][]string{}}
	for _, id := range ids {
		for _, d := range g.Nodes[id].Deps {
			if _, selected := res.Outcomes[d]; !selected {
				return nil, fmt.Errorf("target %s needs %s, which is not selected", id, d)
			}
			r.pending[id]++
			r.users[d] = append(r.users[d], id)
		}
	}
	r.ctx, r.cancel = context.WithCancel(ctx)
	r.eg = new(errgroup.Group)
	r.eg.SetLimit(max(opts.Jobs, 1))
	r.done = make(chan string, len(ids))
	return r, nil
}

// execute launches the targets without dependencies, then each target
// whose last dependency succeeded, until nothing runs.
func (r *run) execute(ids []string) {
	running := 0
	for _, id := range ids {
		if r.pending[id] == 0 {
			running++
			r.launch(id)
		}
	}
	for running > 0 {
		id := <-r.done
		running--
		running += r.finished(id)
	}
	r.eg.Wait()
}

// finished releases the users of target id, which has ended, and returns
// how many of them it launched. The users of a failed target are skipped;
// those of a cancelled one stay cancelled.
func (r *run) finished(id string) int {
	r.mu.Lock()
	status := r.res.Outcomes[id].Status
	r.mu.Unlock()
	failed := status != Cached && status != Built
	launched := 0
	for _, u := range r.users[id] {
		if failed {
			if status == Failed {
				r.skip(u)
			}
			continue
		}
		r.pending[u]--
		if r.pending[u] == 0 && r.res.Outcomes[u].Status == Canceled && r.ctx.Err() == nil {
			launched++
			r.launch(u)
		}
	}
	return launched
}

// launch runs target id once a worker is free.
func (r *run) launch(id string) {
	r.eg.Go(func() error {
		o := r.res.Outcomes[id]
		deps := map[string]step.Result{}
		r.mu.Lock()
		for _, d := range r.g.Nodes[id].Deps {
			deps[d] = r.res.Outcomes[d].Entry.Result()
		}
		r.mu.Unlock()
		start := time.Now()
		entry, status, err := runOne(r.ctx, r.g.Nodes[id], deps, r.opts)
		r.mu.Lock()
		o.Duration = time.Since(start)
		o.Entry, o.Status, o.Err = entry, status, err
		if err != nil && r.ctx.Err() != nil && errors.Is(err, context.Canceled) {
			o.Status = Canceled
		}
		r.mu.Unlock()
		if err != nil && !r.opts.KeepGoing {
			r.cancel()
		}
		r.done <- id
		return nil
	})
}

// skip marks id and everything that depends on it as skipped.
func (r *run) skip(id string) {
	o := r.res.Outcomes[id]
	if o.Status == Skipped {
		return
	}
	o.Status = Skipped
	for _, u := range r.users[id] {
		r.skip(u)
	}
}

func runOne(ctx context.Context, n *plan.Node, deps map[string]step.Result, opts Options) (*cache.Entry, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, Canceled, err
	}
	rep := opts.Progress
	workers := max(opts.Jobs, 1)
	if n.Effect {
		return runEffect(ctx, n, deps, opts)
	}
	if opts.Cache.Has(n.Key) {
		t := rep.Start(n.ID, "verify")
		e, err := opts.Cache.Get(ctx, n.Key, workers)
		if err == nil {
			t.Done(Cached, nil)
			return e, Cached, nil
		}
		var corrupt *cache.CorruptError
		if !errors.As(err, &corrupt) && !errors.Is(err, cache.ErrNotFound) {
			t.Done("", err)
			return nil, Failed, err
		}
		t.Done("rebuilding", nil)
		if corrupt != nil {
			rep.Printf("warning: %s: %v; rebuilding it", n.ID, corrupt)
		}
	}
	t := rep.Start(n.ID, "build")
	info := cache.Info{Target: n.ID, Kind: n.Kind, StepVersion: n.StepVersion}
	pulled := false
	e, built, err := opts.Cache.Build(ctx, n.Key, info, workers, func(ctx context.Context, outDir string) ([]step.Artifact, error) {
		if opts.Remote != nil {
			arts, err := opts.Remote.Fetch(ctx, n.Key, info, outDir)
			if err == nil {
				// The cache hashes the files again before it stores them.
				pulled = true
				return arts, nil
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if err := emptyDir(outDir); err != nil {
				return nil, err
			}
		}
		return runStep(ctx, n, deps, opts, t, outDir)
	})
	if err != nil {
		t.Done("", err)
		if ctx.Err() != nil {
			return nil, Canceled, err
		}
		return nil, Failed, err
	}
	if !built {
		t.Done(Cached, nil) // another build made it while we waited
		return e, Cached, nil
	}
	if pulled {
		t.Done("pulled from the remote cache", nil)
		return e, Cached, nil
	}
	if opts.Remote != nil {
		opts.Remote.Push(ctx, e)
	}
	t.Done(Built, nil)
	return e, Built, nil
}

// emptyDir removes what a refused remote entry left in dir.
func emptyDir(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// runEffect runs a step whose point is an effect outside the build: its
// record is never stored in or served from the cache.
func runEffect(ctx context.Context, n *plan.Node, deps map[string]step.Result, opts Options) (*cache.Entry, string, error) {
	t := opts.Progress.Start(n.ID, "run")
	info := cache.Info{Target: n.ID, Kind: n.Kind, StepVersion: n.StepVersion}
	e, err := opts.Cache.Ephemeral(ctx, n.Key, info, max(opts.Jobs, 1), func(ctx context.Context, outDir string) ([]step.Artifact, error) {
		return runStep(ctx, n, deps, opts, t, outDir)
	})
	if err != nil {
		t.Done("", err)
		if ctx.Err() != nil {
			return nil, Canceled, err
		}
		return nil, Failed, err
	}
	t.Done(Built, nil)
	return e, Built, nil
}

func runStep(ctx context.Context, n *plan.Node, deps map[string]step.Result, opts Options, t progress.Task, outDir string) ([]step.Artifact, error) {
	sources := make(map[string]string, len(n.Sources))
	for _, s := range n.Sources {
		p, err := opts.Resolve(ctx, s.Source)
		if err != nil {
			if s.Pos != "" {
				return nil, fmt.Errorf("%s: input %s: %w", s.Pos, s.Name, err)
			}
			return nil, fmt.Errorf("input %s: %w", s.Name, err)
		}
		sources[s.Name] = p
	}
	digests := make(map[string]string, len(n.Sources))
	labels := make(map[string]string, len(n.Sources))
	for _, s := range n.Sources {
		digests[s.Name] = s.Digest
		labels[s.Name] = s.Label()
	}
	if opts.BeforeStep != nil {
		opts.BeforeStep(n.ID)
	}
	in := &step.Input{
		Target: n.ID, Spec: n.Spec, Sources: sources, SourceDigests: digests, SourceLabels: labels, Deps: deps, OutDir: outDir,
		Workers: max(opts.Jobs, 1), Progress: t, Log: t.Log(),
	}
	return opts.Engine.Run(ctx, n.Kind, in)
}

// Summary is a one-line account of a run.
func (r *Result) Summary() string {
	counts := map[string]int{}
	for _, o := range r.Outcomes {
		counts[o.Status]++
	}
	var parts []string
	for _, s := range []string{Built, Cached, Failed, Skipped, Canceled} {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
		}
	}
	return fmt.Sprintf("%d targets: %s", len(r.Outcomes), strings.Join(parts, ", "))
}
