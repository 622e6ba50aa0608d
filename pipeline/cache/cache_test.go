package cache

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relcue/release/pipeline/step"
)

func key(c byte) string { return strings.Repeat(string(c), 64) }

func write(files map[string]string) BuildFunc {
	return func(_ context.Context, out string) ([]step.Artifact, error) {
		var arts []step.Artifact
		for p, c := range files {
			full := filepath.Join(out, p)
			os.MkdirAll(filepath.Dir(full), 0o755)
			if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
				return nil, err
			}
			arts = append(arts, step.Artifact{Path: p, Kind: "k"})
		}
		return arts, nil
	}
}

func TestBuildGetVerify(t *testing.T) {
	s, _ := Open(t.TempDir())
	ctx := context.Background()
	if _, err := s.Get(ctx, key('a'), 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of missing key: %v", err)
	}
	e, built, err := s.Build(ctx, key('a'), Info{Target: "t"}, 2, write(map[string]string{"x/a.zip": "hello"}))
	if err != nil || !built {
		t.Fatalf("Build: %v built=%v", err, built)
	}
	if e.Meta.Files[0].SHA256 != "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824" {
		t.Fatalf("meta %+v", e.Meta)
	}
	e.Release()
	// A second Build finds it and does not run fn.
	e, built, err = s.Build(ctx, key('a'), Info{Target: "t"}, 2, func(context.Context, string) ([]step.Artifact, error) {
		t.Fatal("fn ran for a cached key")
		return nil, nil
	})
	if err != nil || built {
		t.Fatalf("rebuild: %v built=%v", err, built)
	}
	e.Release()

	// Tamper, then a fresh Store (another process) must notice.
	os.WriteFile(filepath.Join(e.Dir, "x/a.zip"), []byte("hellO"), 0o644)
	s2, _ := Open(filepath.Dir(s.Root()))
	_, err = s2.Get(ctx, key('a'), 1)
	var ce *CorruptError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "x/a.zip: content does not match") {
		t.Fatalf("Get of tampered entry: %v", err)
	}
	e, built, err = s2.Build(ctx, key('a'), Info{Target: "t"}, 2, write(map[string]string{"x/a.zip": "hello"}))
	if err != nil || !built {
		t.Fatalf("rebuild of corrupt entry: %v built=%v", err, built)
	}
	e.Release()
}

func TestBuildRejectsBadOutputs(t *testing.T) {
	s, _ := Open(t.TempDir())
	ctx := context.Background()
	cases := map[string]BuildFunc{
		"did not declare it": func(_ context.Context, out string) ([]step.Artifact, error) {
			os.WriteFile(filepath.Join(out, "stray"), nil, 0o644)
			return nil, nil
		},
		"did not write it": func(context.Context, string) ([]step.Artifact, error) {
			return []step.Artifact{{Path: "ghost", Kind: "k"}}, nil
		},
		"invalid artifact path": func(context.Context, string) ([]step.Artifact, error) {
			return []step.Artifact{{Path: "../x", Kind: "k"}}, nil
		},
		"boom": func(_ context.Context, out string) ([]step.Artifact, error) {
			os.WriteFile(filepath.Join(out, "half"), []byte("x"), 0o644)
			return nil, errors.New("boom")
		},
	}
	for want, fn := range cases {
		_, _, err := s.Build(ctx, key('b'), Info{Target: "t"}, 1, fn)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want %q", err, want)
		}
		if s.Has(key('b')) {
			t.Fatalf("%s: a failed build left an entry", want)
		}
	}
	if ents, _ := os.ReadDir(s.TempDir()); len(ents) != 0 {
		t.Fatalf("temp not cleaned: %v", ents)
	}
}

func TestGCAgeSizeAndInUse(t *testing.T) {
	s, _ := Open(t.TempDir())
	ctx := context.Background()
	now := time.Now()
	for i, c := range []byte{'1', '2', '3'} {
		e, _, err := s.Build(ctx, key(c), Info{Target: string(c)}, 1, write(map[string]string{"f": strings.Repeat("x", 1000)}))
		if err != nil {
			t.Fatal(err)
		}
		e.Release()
		used := now.Add(-time.Duration(3-i) * 24 * time.Hour) // 1 oldest
		os.Chtimes(filepath.Join(s.entryDir(key(c)), metaName), used, used)
	}
	held, err := s.Get(ctx, key('1'), 1) // in use by "another build"
	if err != nil {
		t.Fatal(err)
	}
	old := now.Add(-72 * time.Hour)
	os.Chtimes(filepath.Join(s.entryDir(key('1')), metaName), old, old)

	rep, err := s.GC(GCOptions{MaxAge: 36 * time.Hour, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Removed) != 1 || rep.Removed[0].Key != key('2') || len(rep.SkippedInUse) != 1 {
		t.Fatalf("age gc: %+v", rep)
	}
	held.Release()
	rep, err = s.GC(GCOptions{MaxSize: 1500, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Removed) != 1 || rep.Removed[0].Key != key('1') || !s.Has(key('3')) {
		t.Fatalf("size gc should drop the least recently used: %+v", rep)
	}
	list, _ := s.List()
	if len(list) != 1 {
		t.Fatalf("left %d entries", len(list))
	}
	dry, _ := s.GC(GCOptions{All: true, DryRun: true})
	if len(dry.Removed) != 1 || !s.Has(key('3')) {
		t.Fatalf("dry run removed something: %+v", dry)
	}
}

// Temps from a release without leases are removed once nobody has
// touched them for a day, never sooner.
func TestGCRemovesStaleLegacyTemp(t *testing.T) {
	s, _ := Open(t.TempDir())
	old := filepath.Join(s.TempDir(), key('c')[:16]+"-123")
	fresh := filepath.Join(s.TempDir(), "fetch-456")
	os.MkdirAll(filepath.Join(old, "out"), 0o755)
	os.WriteFile(fresh, []byte("x"), 0o644)
	long := time.Now().Add(-2 * legacyTempAge)
	os.Chtimes(old, long, long)
	rep, err := s.GC(GCOptions{})
	if err != nil || rep.TempRemoved != 1 {
		t.Fatalf("rep %+v err %v", rep, err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Fatalf("a fresh temp was removed: %v", err)
	}
}

// D3: gc never removes a temp a running build made, whatever its name or
// age, and removes it once that build is gone (with the lease file).
func TestGCKeepsTempsOfRunningBuilds(t *testing.T) {
	dir := t.TempDir()
	build, _ := Open(dir)
	gc, _ := Open(dir) // another process, as far as the locks go
	scratch, err := build.MkdirTemp(key('d')[:16] + "-")
	if err != nil {
		t.Fatal(err)
	}
	download, err := build.CreateTemp("fetch-*")
	if err != nil {
		t.Fatal(err)
	}
	download.Close()
	long := time.Now().Add(-10 * legacyTempAge)
	os.Chtimes(scratch, long, long)
	for _, now := range []time.Time{{}, time.Now().Add(10 * legacyTempAge)} {
		rep, err := gc.GC(GCOptions{All: true, Now: now})
		if err != nil || rep.TempRemoved != 0 {
			t.Fatalf("gc while the build runs: %+v %v", rep, err)
		}
		for _, p := range []string{scratch, download.Name()} {
			if _, err := os.Stat(p); err != nil {
				t.Fatalf("gc removed %s of a running build", filepath.Base(p))
			}
		}
	}
	build.releaseLease() // the build process ends without cleaning up
	rep, err := gc.GC(GCOptions{})
	if err != nil || rep.TempRemoved != 2 {
		t.Fatalf("gc after the build: %+v %v", rep, err)
	}
	if leases, _ := filepath.Glob(filepath.Join(gc.Root(), "locks", "lease-*")); len(leases) != 0 {
		t.Fatalf("lease files left: %v", leases)
	}
	// A process that ended cleanly leaves only its lease file; gc removes it.
	clean, _ := Open(dir)
	tmp, _ := clean.CreateTemp("x-*")
	tmp.Close()
	os.Remove(tmp.Name())
	clean.releaseLease()
	if _, err := gc.GC(GCOptions{}); err != nil {
		t.Fatal(err)
	}
	if leases, _ := filepath.Glob(filepath.Join(gc.Root(), "locks", "lease-*")); len(leases) != 0 {
		t.Fatalf("lease files left: %v", leases)
	}
}

// A gc that finds a lease file between its creation and its lock takes
// it for abandoned. Whether the gc still holds it or already removed it,
// the Store does not use that lease but takes another.
func TestLeaseFoundByGCIsNotUsed(t *testing.T) {
	for _, removed := range []bool{false, true} {
		dir := t.TempDir()
		var gc *reaper
		var first string
		leaseCreated = func(p string) {
			if gc != nil {
				return
			}
			s, _ := Open(dir)
			gc = s.newReaper()
			first = strings.TrimSuffix(strings.TrimPrefix(filepath.Base(p), "lease-"), ".lock")
			if !gc.abandoned(first) {
				t.Fatal("gc could not lock the fresh lease file")
			}
			if removed {
				gc.finish()
			}
		}
		s, _ := Open(dir)
		id, err := s.leaseID()
		leaseCreated = nil
		if err != nil || id == first || first == "" {
			t.Fatalf("removed=%v: took %q (%v), the gc had %q", removed, id, err, first)
		}
		if !removed {
			gc.finish()
		}
		if _, err := os.Stat(s.leasePath(first)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("removed=%v: the abandoned lease file is still there (%v)", removed, err)
		}
		// The lease taken is held: a gc leaves its temps alone.
		tmp, err := s.CreateTemp("fetch-*")
		if err != nil {
			t.Fatal(err)
		}
		tmp.Close()
		other, _ := Open(dir)
		if rep, _ := other.GC(GCOptions{}); rep.TempRemoved != 0 {
			t.Errorf("removed=%v: gc removed a temp under the new lease", removed)
		}
	}
}

// A builder must not wait for the exclusive lock on an entry that another
// build made and still reads (holds shared): that build may in turn wait on
// this one, as two `release build` processes on one cache do.
func TestBuildDoesNotWaitOnReaders(t *testing.T) {
	dir := t.TempDir()
	a, _ := Open(dir)
	b, _ := Open(dir)
	held, _, err := a.Build(context.Background(), key('d'), Info{Target: "t"}, 1, write(map[string]string{"f": "x"}))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release() // process A keeps reading it for the rest of its build
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e, built, err := b.Build(ctx, key('d'), Info{Target: "t"}, 1, func(context.Context, string) ([]step.Artifact, error) {
		t.Fatal("rebuilt an existing entry")
		return nil, nil
	})
	if err != nil || built {
		t.Fatalf("Build while another process reads the entry: %v (built=%v)", err, built)
	}
	e.Release()
}

func TestBuildWaitsToEvictCorruptEntryInUse(t *testing.T) {
	dir := t.TempDir()
	a, _ := Open(dir)
	b, _ := Open(dir)
	held, _, err := a.Build(context.Background(), key('e'), Info{Target: "t"}, 1, write(map[string]string{"f": "x"}))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(held.Dir, "f"), []byte("y"), 0o644)
	go func() { time.Sleep(300 * time.Millisecond); held.Release() }()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e, built, err := b.Build(ctx, key('e'), Info{Target: "t"}, 1, write(map[string]string{"f": "x"}))
	if err != nil || !built {
		t.Fatalf("rebuild of a corrupt entry once its reader let go: %v (built=%v)", err, built)
	}
	e.Release()
}

// TestEntryLocksStayWithinBudget: a process keeps at most its budget of
// entry locks open (a build holds every entry until dist/ is written, and
// a 20000-target build ran out of file descriptors); entries past it are
// returned unlocked, and their locks come back as entries are released.
func TestEntryLocksStayWithinBudget(t *testing.T) {
	s, _ := Open(t.TempDir())
	if s.budget < 64 {
		t.Fatalf("budget %d", s.budget)
	}
	s.budget = 2
	ctx := context.Background()
	var es []*Entry
	for _, c := range []byte{'1', '2', '3', '4'} {
		e, _, err := s.Build(ctx, key(c), Info{Target: string(c)}, 1, write(map[string]string{"f": "x"}))
		if err != nil {
			t.Fatal(err)
		}
		es = append(es, e)
	}
	if got := s.held.Load(); got != 2 {
		t.Fatalf("%d locks held, want the budget of 2", got)
	}
	if es[0].lock == nil || es[1].lock == nil || es[2].lock != nil || es[3].lock != nil {
		t.Fatal("the first entries should keep their locks")
	}
	// A gc sees the locked ones in use and may remove the others.
	rep, err := s.GC(GCOptions{All: true})
	if err != nil || len(rep.SkippedInUse) != 2 || len(rep.Removed) != 2 {
		t.Fatalf("gc: %+v %v", rep, err)
	}
	for _, e := range es {
		e.Release()
	}
	if got := s.held.Load(); got != 0 {
		t.Fatalf("%d locks held after release", got)
	}
	e, err := s.Get(ctx, key('1'), 1)
	if err != nil || e.lock == nil {
		t.Fatalf("after release a Get locks again: %v", err)
	}
	e.Release()
}

// releaseLease gives the lease up as if the process had ended (tests).
func (s *Store) releaseLease() {
	if s.lease.f != nil {
		unlockFile(s.lease.f)
		s.lease.f.Close()
	}
}
