package sched

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relcue/release/pipeline/cache"
	"github.com/relcue/release/pipeline/engine"
	"github.com/relcue/release/pipeline/plan"
	"github.com/relcue/release/pipeline/progress"
	"github.com/relcue/release/pipeline/step"
)

// concat writes spec.text followed by every dependency's output into
// <id>.txt; spec.fail makes it fail, spec.block makes it wait for ctx.
type concat struct {
	runs  atomic.Int64
	block chan struct{}
}

func (*concat) Kind() string    { return "concat" }
func (*concat) Version() string { return "1" }
func (c *concat) Run(ctx context.Context, in *step.Input) ([]step.Artifact, error) {
	c.runs.Add(1)
	var spec struct {
		Text  string
		Fail  bool
		Block bool
		Out   string
	}
	if err := json.Unmarshal(in.Spec, &spec); err != nil {
		return nil, err
	}
	if spec.Block {
		if c.block != nil {
			close(c.block)
		}
		<-ctx.Done()
		// a half-written output must never reach the cache
		os.WriteFile(filepath.Join(in.OutDir, spec.Out), []byte("partial"), 0o644)
		return nil, ctx.Err()
	}
	if spec.Fail {
		return nil, fmt.Errorf("boom in %s", in.Target)
	}
	var b strings.Builder
	b.WriteString(spec.Text)
	for _, id := range sortedKeys(in.Deps) {
		r := in.Deps[id]
		a, _ := r.Find("text")
		data, err := os.ReadFile(filepath.Join(r.Dir, a.Path))
		if err != nil {
			return nil, err
		}
		b.Write(data)
	}
	if err := os.WriteFile(filepath.Join(in.OutDir, spec.Out), []byte(b.String()), 0o644); err != nil {
		return nil, err
	}
	return []step.Artifact{{Path: spec.Out, Kind: "text"}}, nil
}

func sortedKeys(m map[string]step.Result) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	for i := range ks {
		for j := i + 1; j < len(ks); j++ {
			if ks[j] < ks[i] {
				ks[i], ks[j] = ks[j], ks[i]
			}
		}
	}
	return ks
}

type tspec struct {
	Text  string
	Fail  bool
	Block bool
	Out   string
}

func target(id, text string, deps ...string) step.Target {
	return step.Target{ID: id, Kind: "concat", Spec: tspec{Text: text, Out: strings.ReplaceAll(id, "/", "_") + ".txt"}, Deps: deps}
}

func setup(t *testing.T, c *concat, targets []step.Target, dir string) (*plan.Graph, Options) {
	t.Helper()
	steps := map[string]step.Step{"concat": c}
	g, err := plan.Build(context.Background(), targets, plan.Options{Steps: steps, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	store, err := cache.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return g, Options{Jobs: 2, Engine: &engine.Local{Steps: steps}, Cache: store,
		Resolve:  func(_ context.Context, s step.Source) (string, error) { return s.Path, nil },
		Progress: &progress.Plain{W: &strings.Builder{}}}
}

func diamond() []step.Target {
	return []step.Target{
		target("a", "A"), target("b", "B", "a"), target("c", "C", "a"), target("d", "D", "b", "c"),
	}
}

func read(t *testing.T, o *Outcome) string {
	t.Helper()
	a, _ := o.Entry.Result().Find("text")
	data, err := os.ReadFile(filepath.Join(o.Entry.Dir, a.Path))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// count returns how many targets of res ended with status.
func count(res *Result, status string) int {
	n := 0
	for _, o := range res.Outcomes {
		if o.Status == status {
			n++
		}
	}
	return n
}

func TestRunBuildsThenCaches(t *testing.T) {
	c := &concat{}
	g, opts := setup(t, c, diamond(), t.TempDir())
	res, err := Run(context.Background(), g, g.Order, opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := read(t, res.Outcomes["d"]); got != "DBACA" {
		t.Fatalf("d = %q, want DBACA", got)
	}
	if count(res, Built) != 4 || c.runs.Load() != 4 {
		t.Fatalf("built %d, ran %d; want 4, 4", count(res, Built), c.runs.Load())
	}
	res.Release()
	res, err = Run(context.Background(), g, g.Order, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Release()
	if count(res, Cached) != 4 || c.runs.Load() != 4 {
		t.Fatalf("second run: cached %d, ran %d; want 4 cached and no new runs", count(res, Cached), c.runs.Load())
	}
}

func TestCorruptEntryIsRebuilt(t *testing.T) {
	c := &concat{}
	dir := t.TempDir()
	g, opts := setup(t, c, diamond(), dir)
	res, err := Run(context.Background(), g, g.Order, opts)
	if err != nil {
		t.Fatal(err)
	}
	a := res.Outcomes["a"].Entry
	p := filepath.Join(a.Dir, a.Meta.Files[0].Path)
	res.Release()
	if err := os.WriteFile(p, []byte("X"), 0o644); err != nil {
		t.Fatal(err)
	}
	// a fresh store, as a new process would open it
	g, opts = setup(t, c, diamond(), dir)
	var log strings.Builder
	opts.Progress = &progress.Plain{W: &log}
	res, err = Run(context.Background(), g, g.Order, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Release()
	if res.Outcomes["a"].Status != Built || read(t, res.Outcomes["a"]) != "A" {
		t.Fatalf("corrupt a: status %s content %q; want rebuilt A", res.Outcomes["a"].Status, read(t, res.Outcomes["a"]))
	}
	if !strings.Contains(log.String(), "is corrupt") {
		t.Fatalf("no corruption warning in log:\n%s", log.String())
	}
}

func TestFailFastSkipsDependentsAndLeavesNoEntry(t *testing.T) {
	c := &concat{}
	ts := diamond()
	ts[1].Spec = tspec{Fail: true, Out: "b.txt"}
	dir := t.TempDir()
	g, opts := setup(t, c, ts, dir)
	opts.Jobs = 1
	res, err := Run(context.Background(), g, g.Order, opts)
	var be *BuildError
	if !errors.As(err, &be) || len(be.Failed) != 1 || be.Failed[0].ID != "b" {
		t.Fatalf("err = %v, want BuildError for b", err)
	}
	if !strings.Contains(err.Error(), "boom in b") {
		t.Fatalf("error does not carry the step's message: %v", err)
	}
	if s := res.Outcomes["d"].Status; s != Skipped {
		t.Fatalf("d status %s, want skipped", s)
	}
	if opts.Cache.Has(g.Nodes["b"].Key) {
		t.Fatal("failed target left a cache entry")
	}
	assertNoTemp(t, opts.Cache)
	res.Release()
}

func TestKeepGoingBuildsIndependentTargets(t *testing.T) {
	c := &concat{}
	ts := diamond()
	ts[1].Spec = tspec{Fail: true, Out: "b.txt"}
	g, opts := setup(t, c, ts, t.TempDir())
	opts.KeepGoing = true
	res, err := Run(context.Background(), g, g.Order, opts)
	if err == nil {
		t.Fatal("want error")
	}
	defer res.Release()
	if res.Outcomes["c"].Status != Built || res.Outcomes["d"].Status != Skipped || res.Outcomes["b"].Status != Failed {
		t.Fatalf("statuses b=%s c=%s d=%s; want failed built skipped", res.Outcomes["b"].Status, res.Outcomes["c"].Status, res.Outcomes["d"].Status)
	}
}

func TestCancelLeavesNothingHalfWritten(t *testing.T) {
	c := &concat{block: make(chan struct{})}
	ts := []step.Target{{ID: "slow", Kind: "concat", Spec: tspec{Block: true, Out: "slow.txt"}}}
	g, opts := setup(t, c, ts, t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-c.block; cancel() }()
	res, err := Run(ctx, g, g.Order, opts)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if s := res.Outcomes["slow"].Status; s != Canceled {
		t.Fatalf("status %s, want canceled", s)
	}
	if opts.Cache.Has(g.Nodes["slow"].Key) {
		t.Fatal("canceled step left a cache entry")
	}
	assertNoTemp(t, opts.Cache)
}

// Two concurrent runs on one cache directory (as two processes would use
// it, each with its own Store) build every key exactly once.
func TestConcurrentRunsShareCache(t *testing.T) {
	c := &concat{}
	dir := t.TempDir()
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for i := 0; i < 2; i++ {
		g, opts := setup(t, c, diamond(), dir)
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := Run(context.Background(), g, g.Order, opts)
			if err == nil {
				if got := read(t, res.Outcomes["d"]); got != "DBACA" {
					err = fmt.Errorf("d = %q", got)
				}
				res.Release()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := c.runs.Load(); n != 4 {
		t.Fatalf("steps ran %d times across two concurrent runs, want 4", n)
	}
}

func TestJobsBoundsConcurrency(t *testing.T) {
	var cur, peak atomic.Int64
	s := &slowStep{cur: &cur, peak: &peak}
	var ts []step.Target
	for i := 0; i < 8; i++ {
		ts = append(ts, step.Target{ID: fmt.Sprintf("t%d", i), Kind: "slow", Spec: i})
	}
	steps := map[string]step.Step{"slow": s}
	g, err := plan.Build(context.Background(), ts, plan.Options{Steps: steps})
	if err != nil {
		t.Fatal(err)
	}
	store, _ := cache.Open(t.TempDir())
	res, err := Run(context.Background(), g, g.Order, Options{Jobs: 3, Engine: &engine.Local{Steps: steps}, Cache: store,
		Resolve: func(context.Context, step.Source) (string, error) { return "", nil }, Progress: &progress.Plain{Quiet: true}})
	if err != nil {
		t.Fatal(err)
	}
	res.Release()
	if p := peak.Load(); p > 3 || p < 2 {
		t.Fatalf("peak concurrency %d, want 2..3 with -j 3", p)
	}
}

type slowStep struct{ cur, peak *atomic.Int64 }

func (*slowStep) Kind() string    { return "slow" }
func (*slowStep) Version() string { return "1" }
func (s *slowStep) Run(ctx context.Context, in *step.Input) ([]step.Artifact, error) {
	n := s.cur.Add(1)
	for {
		p := s.peak.Load()
		if n <= p || s.peak.CompareAndSwap(p, n) {
			break
		}
	}
	time.Sleep(30 * time.Millisecond)
	s.cur.Add(-1)
	return []step.Artifact{{Path: "x", Kind: "x"}}, os.WriteFile(filepath.Join(in.OutDir, "x"), in.Spec, 0o644)
}

func assertNoTemp(t *testing.T, s *cache.Store) {
	t.Helper()
	ents, err := os.ReadDir(s.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 0 {
		t.Fatalf("temp dir not cleaned: %v", ents)
	}
}

// An effect (a push) runs on every build, reads its dependencies from the
// cache, and leaves neither a cache entry nor a temp dir behind.
func TestEffectRunsEveryTimeAndIsNeverCached(t *testing.T) {
	c := &concat{}
	dir := t.TempDir()
	push := target("push/a", "P", "a")
	push.Effect = true
	g, opts := setup(t, c, []step.Target{target("a", "A"), push}, dir)
	for i := 1; i <= 2; i++ {
		res, err := Run(context.Background(), g, g.Order, opts)
		if err != nil {
			t.Fatal(err)
		}
		if got := read(t, res.Outcomes["push/a"]); got != "PA" {
			t.Fatalf("run %d: push/a = %q, want PA", i, got)
		}
		if st := res.Outcomes["push/a"].Status; st != Built {
			t.Fatalf("run %d: push/a %s, want built", i, st)
		}
		res.Release()
	}
	if got := c.runs.Load(); got != 3 {
		t.Fatalf("ran %d steps, want 3 (a once, the effect twice)", got)
	}
	if opts.Cache.Has(g.Nodes["push/a"].Key) {
		t.Fatal("the effect's record was stored in the cache")
	}
	if ents, _ := os.ReadDir(opts.Cache.TempDir()); len(ents) != 0 {
		t.Fatalf("temp dirs left behind: %v", ents)
	}
}

// A failing effect leaves nothing behind either.
func TestFailingEffectLeavesNothing(t *testing.T) {
	c := &concat{}
	push := step.Target{ID: "push/x", Kind: "concat", Spec: tspec{Fail: true, Out: "x.txt"}, Effect: true}
	g, opts := setup(t, c, []step.Target{push}, t.TempDir())
	res, err := Run(context.Background(), g, g.Order, opts)
	if err == nil || !strings.Contains(err.Error(), "boom in push/x") {
		t.Fatalf("err = %v, want the step's failure", err)
	}
	res.Release()
	if ents, _ := os.ReadDir(opts.Cache.TempDir()); len(ents) != 0 {
		t.Fatalf("temp dirs left behind: %v", ents)
	}
}
