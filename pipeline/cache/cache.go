// Package cache is the content-addressed store of step results. An entry is
// a directory of output files plus meta.json recording each file's SHA-256;
// entries are built in a private temp directory and renamed into place, so
// a reader never sees a partial entry, and every entry is verified before
// it is served. Per-key lock files make concurrent builds (threads or
// processes) of the same key build it once.
package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relcue/release/internal/atomicfile"
	"github.com/relcue/release/internal/parallel"
	"github.com/relcue/release/pipeline/digest"
	"github.com/relcue/release/pipeline/fingerprint"
	"github.com/relcue/release/pipeline/step"
)

const (
	layout   = "v1"
	metaName = "meta.json"
	outName  = "out"
	// fpName records the fingerprints of an entry's files: a read whose
	// files still have them is served without hashing.
	fpName = "fingerprints.json"
)

// ErrNotFound means the key has no entry.
var ErrNotFound = errors.New("not in cache")

// CorruptError means an entry exists but does not verify.
type CorruptError struct {
	Key    string
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("cache entry %s is corrupt (%s)", short(e.Key), e.Reason)
}

// Store is a cache directory.
type Store struct {
	root string

	mu       sync.Mutex
	verified map[string]bool

	rehashed      atomic.Int64
	rehashedBytes atomic.Int64

	// held counts the entry locks open in this process, at most budget:
	// a build holds every entry it uses until dist/ is published, and a
	// build of tens of thousands of targets would otherwise run out of
	// file descriptors. Past the budget an entry is returned unlocked: a
	// concurrent gc may then remove it, which publishing notices (it
	// verifies what it copies) and reports.
	held   atomic.Int64
	budget int64

	// lease covers every temp this Store makes (lease.go).
	lease lease
}

// Stats counts the entry files a Store has read in full to verify them
// (not those trusted by fingerprint).
type Stats struct {
	Rehashed      int64
	RehashedBytes int64
}

// Stats reports the files re-hashed so far.
func (s *Store) Stats() Stats {
	return Stats{Rehashed: s.rehashed.Load(), RehashedBytes: s.rehashedBytes.Load()}
}

// DefaultDir is the cache used when --cache is not given.
func DefaultDir() (string, error) {
	if d := os.Getenv("RELEASE_CACHE"); d != "" {
		return d, nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no user cache directory (%w); pass --cache DIR", err)
	}
	return filepath.Join(base, "release"), nil
}

// Open creates the cache layout below dir if needed.
func Open(dir string) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	root := filepath.Join(abs, layout)
	for _, d := range []string{"entries", "tmp", "locks", "blobs/sha256"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return nil, fmt.Errorf("cache %s: %w", dir, err)
		}
	}
	return &Store{root: root, verified: map[string]bool{}, budget: heldLockBudget()}, nil
}

// StateDir is a directory for records that other packages keep beside
// the entries (input digests, published files); they are advisory and
// removed with the cache.
func (s *Store) StateDir(name string) string { return filepath.Join(s.root, "state", name) }

// Root is the versioned cache directory.
func (s *Store) Root() string { return s.root }

// BlobDir is where downloads are kept, named by their SHA-256.
func (s *Store) BlobDir() string { return filepath.Join(s.root, "blobs", "sha256") }

// TempDir is a scratch directory on the cache's filesystem, so renames out
// of it are atomic.
func (s *Store) TempDir() string { return filepath.Join(s.root, "tmp") }

func (s *Store) entryDir(key string) string {
	return filepath.Join(s.root, "entries", key[:2], key)
}

func validKey(key string) error {
	if len(key) != 64 || strings.Trim(key, "0123456789abcdef") != "" {
		return fmt.Errorf("invalid cache key %q", key)
	}
	return nil
}

// Info describes what an entry was built for.
type Info struct {
	Target      string `json:"target"`
	Kind        string `json:"kind"`
	StepVersion string `json:"stepVersion"`
}

// FileMeta is one output file of an entry.
type FileMeta struct {
	Path   string `json:"path"`
	Kind   string `json:"kind"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// Meta is an entry's meta.json.
type Meta struct {
	Format  int        `json:"format"`
	Key     string     `json:"key"`
	Info               // target, kind, step version
	Created time.Time  `json:"created"`
	Files   []FileMeta `json:"files"`
}

// Entry is a verified cache entry, shared-locked until Release so that a
// concurrent gc cannot delete it while it is being read.
type Entry struct {
	Key  string
	Dir  string
	Meta Meta
	lock *os.File
	held *atomic.Int64 // the store's count, while lock is held
	// scratch is the temp dir of an ephemeral entry, removed on Release.
	scratch string
	// fps are the fingerprints the files had when they were last known
	// to match Meta (nil when unknown).
	fps map[string]fingerprint.FP
}

// Fingerprint is the fingerprint the artifact at path (as in Meta.Files)
// had when its content was last known to match its recorded SHA-256; a
// file that still has it may be used without reading it.
func (e *Entry) Fingerprint(path string) (fingerprint.FP, bool) {
	fp, ok := e.fps[path]
	return fp, ok
}

// Result is the entry as a step dependency.
func (e *Entry) Result() step.Result {
	r := step.Result{Dir: e.Dir}
	for _, f := range e.Meta.Files {
		r.Artifacts = append(r.Artifacts, step.Artifact{Path: f.Path, Kind: f.Kind})
	}
	return r
}

// Release drops the entry's lock.
func (e *Entry) Release() {
	if e == nil {
		return
	}
	if e.scratch != "" {
		os.RemoveAll(e.scratch)
		e.scratch = ""
	}
	if e.lock != nil {
		unlockFile(e.lock)
		e.lock.Close()
		e.lock = nil
		e.held.Add(-1)
	}
}

// hold gives e the shared lock lk, or drops lk when the process holds its
// budget of locks already (see Store.held). must keeps it regardless: an
// ephemeral entry's lock also guards its scratch dir against gc.
func (s *Store) hold(e *Entry, lk *os.File, must bool) {
	if n := s.held.Add(1); n > s.budget && !must {
		s.held.Add(-1)
		unlockFile(lk)
		lk.Close()
		return
	}
	e.lock, e.held = lk, &s.held
}

// Ephemeral runs fn like Build but never stores or serves its result: the
// outputs live in a temp dir until Release. It is for steps with effects
// outside the cache (a registry push), whose record must be made afresh on
// every run. Holding the key's lock serialises two processes doing the same
// effect; the Store's lease keeps gc away from the temp dir.
func (s *Store) Ephemeral(ctx context.Context, key string, info Info, workers int, fn BuildFunc) (*Entry, error) {
	if err := validKey(key); err != nil {
		return nil, err
	}
	lk, err := s.lock(ctx, key, true, nil)
	if err != nil {
		return nil, err
	}
	tmp, err := s.MkdirTemp(key[:16] + "-")
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmp)
			unlockFile(lk)
			lk.Close()
		}
	}()
	if err != nil {
		return nil, err
	}
	out := filepath.Join(tmp, outName)
	if err := os.Mkdir(out, 0o755); err != nil {
		return nil, err
	}
	arts, err := fn(ctx, out)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	files, _, err := checkOutputs(ctx, out, arts, workers)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", info.Target, err)
	}
	ok = true
	meta := Meta{Format: 1, Key: key, Info: info, Created: time.Now().UTC().Truncate(time.Second), Files: files}
	e := &Entry{Key: key, Dir: out, Meta: meta, scratch: tmp}
	s.hold(e, lk, true)
	return e, nil
}

// Has reports whether an entry exists, without verifying it.
func (s *Store) Has(key string) bool {
	if validKey(key) != nil {
		return false
	}
	_, err := os.Stat(filepath.Join(s.entryDir(key), metaName))
	return err == nil
}

// Get returns the verified entry for key, ErrNotFound, or a *CorruptError.
func (s *Store) Get(ctx context.Context, key string, workers int) (*Entry, error) {
	if err := validKey(key); err != nil {
		return nil, err
	}
	lk, err := s.lock(ctx, key, false, nil)
	if err != nil {
		return nil, err
	}
	e, err := s.open(ctx, key, workers)
	if err != nil {
		unlockFile(lk)
		lk.Close()
		return nil, err
	}
	s.hold(e, lk, false)
	return e, nil
}

// open reads and verifies an entry; the caller holds its lock.
func (s *Store) open(ctx context.Context, key string, workers int) (*Entry, error) {
	return s.openVerified(ctx, key, workers, false)
}

// openVerified is open; full hashes every file even when its fingerprints
// match or it was verified before in this process.
func (s *Store) openVerified(ctx context.Context, key string, workers int, full bool) (*Entry, error) {
	dir := s.entryDir(key)
	raw, err := os.ReadFile(filepath.Join(dir, metaName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, &CorruptError{Key: key, Reason: err.Error()}
	}
	var m Meta
	if err := json.Unmarshal(raw, &m); err != nil || m.Key != key || m.Format != 1 {
		return nil, &CorruptError{Key: key, Reason: "unreadable meta.json"}
	}
	e := &Entry{Key: key, Dir: filepath.Join(dir, outName), Meta: m}
	s.mu.Lock()
	done := s.verified[key] && !full
	s.mu.Unlock()
	fps, match := fingerprintsMatch(dir, m.Files)
	if match && !full {
		e.fps = fps
	} else if !done {
		// Stat'ed before reading, so a change during the hash shows.
		fps, statErr := statFiles(e.Dir, m.Files)
		if err := s.verifyFiles(ctx, e.Dir, m.Files, workers); err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, &CorruptError{Key: key, Reason: err.Error()}
		}
		// Verified in full: trust the files as they are now until they
		// change. Readers share the lock, so two may write this at once;
		// both write the same thing through a rename.
		if after, err := statFiles(e.Dir, m.Files); statErr == nil && err == nil && maps.Equal(fps, after) {
			e.fps = fps
			_ = writeFingerprints(dir, fps)
		}
	}
	if !done {
		s.mu.Lock()
		s.verified[key] = true
		s.mu.Unlock()
	}
	now := time.Now()
	_ = os.Chtimes(filepath.Join(dir, metaName), now, now) // last use, for gc
	return e, nil
}

// fingerprintsMatch reports whether every file of an entry still has the
// fingerprint recorded when it was written or last verified. Any doubt (no
// record, an unreadable one, a changed size, time, inode or device) means
// no: the caller then hashes the files.
func fingerprintsMatch(entryDir string, files []FileMeta) (map[string]fingerprint.FP, bool) {
	raw, err := os.ReadFile(filepath.Join(entryDir, fpName))
	if err != nil {
		return nil, false
	}
	var rec map[string]fingerprint.FP
	if json.Unmarshal(raw, &rec) != nil || len(rec) != len(files) {
		return nil, false
	}
	out := filepath.Join(entryDir, outName)
	for _, f := range files {
		want, ok := rec[f.Path]
		if !ok || want.Size != f.Size {
			return nil, false
		}
		got, err := fingerprint.Stat(filepath.Join(out, filepath.FromSlash(f.Path)))
		if err != nil || got != want {
			return nil, false
		}
	}
	return rec, true
}

func statFiles(outDir string, files []FileMeta) (map[string]fingerprint.FP, error) {
	fps := make(map[string]fingerprint.FP, len(files))
	for _, f := range files {
		fp, err := fingerprint.Stat(filepath.Join(outDir, filepath.FromSlash(f.Path)))
		if err != nil {
			return nil, err
		}
		fps[f.Path] = fp
	}
	return fps, nil
}

func writeFingerprints(entryDir string, fps map[string]fingerprint.FP) error {
	raw, err := json.Marshal(fps)
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(entryDir, fpName), raw, 0o644)
}

// Verify re-hashes every file of key's entry whatever its fingerprints
// say, records them afresh when it verifies, and evicts it when it does
// not (returning the *CorruptError). ErrNotFound when there is no entry.
func (s *Store) Verify(ctx context.Context, key string, workers int) error {
	if err := validKey(key); err != nil {
		return err
	}
	// Readers (a running build) may hold the entry: verify beside them.
	lk, err := s.lock(ctx, key, false, nil)
	if err != nil {
		return err
	}
	_, err = s.openVerified(ctx, key, workers, true)
	unlockFile(lk)
	lk.Close()
	var corrupt *CorruptError
	if !errors.As(err, &corrupt) {
		return err
	}
	// Evicting needs the builders' lock; whoever holds it may have
	// replaced the entry meanwhile, so check again under it.
	lk, lerr := s.lock(ctx, key, true, nil)
	if lerr != nil {
		return lerr
	}
	defer func() {
		unlockFile(lk)
		lk.Close()
	}()
	if _, err = s.openVerified(ctx, key, workers, true); errors.As(err, &corrupt) {
		if rmErr := os.RemoveAll(s.entryDir(key)); rmErr != nil {
			return fmt.Errorf("evict %w: %v", err, rmErr)
		}
	}
	return err
}

// Keys lists the keys of every entry in the store.
func (s *Store) Keys() ([]string, error) {
	var keys []string
	prefixes, err := os.ReadDir(filepath.Join(s.root, "entries"))
	if err != nil {
		return nil, err
	}
	for _, p := range prefixes {
		ents, err := os.ReadDir(filepath.Join(s.root, "entries", p.Name()))
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			if validKey(e.Name()) == nil {
				keys = append(keys, e.Name())
			}
		}
	}
	sort.Strings(keys)
	return keys, nil
}

func (s *Store) verifyFiles(ctx context.Context, dir string, files []FileMeta, workers int) error {
	return parallel.For(ctx, workers, files, func(_ context.Context, _ int, f FileMeta) error {
		sum, n, err := digest.File(filepath.Join(dir, filepath.FromSlash(f.Path)))
		if err != nil {
			return fmt.Errorf("%s: %w", f.Path, err)
		}
		s.rehashed.Add(1)
		s.rehashedBytes.Add(n)
		if n != f.Size || sum != f.SHA256 {
			return fmt.Errorf("%s: content does not match its recorded sha256", f.Path)
		}
		return nil
	})
}

// BuildFunc writes a step's outputs into outDir and names its artifacts.
type BuildFunc func(ctx context.Context, outDir string) ([]step.Artifact, error)

// Build returns the verified entry for key, running fn to create it when it
// is missing or corrupt. Only one builder per key runs at a time, across
// processes; a builder that finds the entry made by another returns it
// (built=false). A failing or cancelled fn leaves nothing behind.
func (s *Store) Build(ctx context.Context, key string, info Info, workers int, fn BuildFunc) (e *Entry, built bool, err error) {
	if err := validKey(key); err != nil {
		return nil, false, err
	}
	lk, e, err := s.lockToBuild(ctx, key, workers)
	if err != nil || e != nil {
		return e, false, err
	}
	defer func() {
		if err != nil {
			unlockFile(lk)
			lk.Close()
		}
	}()
	e, err = s.open(ctx, key, workers)
	switch {
	case err == nil:
		return s.downgrade(e, lk)
	case errors.Is(err, ErrNotFound):
	case errors.As(err, new(*CorruptError)):
		if rmErr := os.RemoveAll(s.entryDir(key)); rmErr != nil {
			return nil, false, fmt.Errorf("evict %w: %v", err, rmErr)
		}
	default:
		return nil, false, err
	}
	meta, fps, err := s.buildEntry(ctx, key, info, workers, fn)
	if err != nil {
		return nil, false, err
	}
	s.mu.Lock()
	s.verified[key] = true
	s.mu.Unlock()
	e = &Entry{Key: key, Dir: filepath.Join(s.entryDir(key), outName), Meta: meta, fps: fps}
	e, _, err = s.downgrade(e, lk)
	return e, true, err
}

// lockToBuild takes key's exclusive lock, or returns the entry (read
// under a shared lock) when another builder made it meanwhile.
func (s *Store) lockToBuild(ctx context.Context, key string, workers int) (*os.File, *Entry, error) {
	appeared := func() bool { return s.Has(key) }
	for {
		// Another build that made this entry keeps a shared lock on it
		// until that whole build ends, so waiting for the exclusive lock
		// could wait on a process that in turn waits on us. Once the entry
		// exists, read it like any reader instead.
		lk, err := s.lock(ctx, key, true, appeared)
		if !errors.Is(err, errAppeared) {
			return lk, nil, err
		}
		e, err := s.Get(ctx, key, workers)
		switch {
		case err == nil:
			return nil, e, nil
		case errors.As(err, new(*CorruptError)):
			// Evicting needs the exclusive lock: wait for it even
			// though the (broken) entry exists.
			appeared = nil
		case errors.Is(err, ErrNotFound):
			// Removed meanwhile: compete to build it.
		default:
			return nil, nil, err
		}
	}
}

// buildEntry runs fn in a temporary directory, checks and records what it
// wrote, and moves the directory into place as key's entry. The caller
// holds key's exclusive lock.
func (s *Store) buildEntry(ctx context.Context, key string, info Info, workers int, fn BuildFunc) (Meta, map[string]fingerprint.FP, error) {
	tmp, err := s.MkdirTemp(key[:16] + "-")
	if err != nil {
		return Meta{}, nil, err
	}
	defer os.RemoveAll(tmp) // after a successful rename this is a no-op
	out := filepath.Join(tmp, outName)
	if err := os.Mkdir(out, 0o755); err != nil {
		return Meta{}, nil, err
	}
	arts, err := fn(ctx, out)
	if err != nil {
		return Meta{}, nil, err
	}
	if err := ctx.Err(); err != nil {
		return Meta{}, nil, err
	}
	files, fps, err := checkOutputs(ctx, out, arts, workers)
	if err != nil {
		return Meta{}, nil, fmt.Errorf("%s: %w", info.Target, err)
	}
	meta := Meta{Format: 1, Key: key, Info: info, Created: time.Now().UTC().Truncate(time.Second), Files: files}
	raw, _ := json.MarshalIndent(meta, "", "  ")
	if err := atomicfile.WriteSync(filepath.Join(tmp, metaName), raw, 0o644); err != nil {
		return Meta{}, nil, err
	}
	// Renaming the directory changes neither the files' inodes nor their
	// change times, so what checkOutputs saw is what a reader will see.
	if err := writeFingerprints(tmp, fps); err != nil {
		return Meta{}, nil, err
	}
	if err := ctx.Err(); err != nil {
		return Meta{}, nil, err
	}
	dst := s.entryDir(key)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return Meta{}, nil, err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return Meta{}, nil, fmt.Errorf("commit cache entry %s: %w", short(key), err)
	}
	return meta, fps, nil
}

// downgrade turns the builder's exclusive lock into the reader's shared one.
func (s *Store) downgrade(e *Entry, lk *os.File) (*Entry, bool, error) {
	if _, err := lockFile(lk, false, true); err != nil {
		return nil, false, err
	}
	s.hold(e, lk, false)
	return e, false, nil
}

// checkOutputs makes sure the step wrote exactly the artifacts it declared,
// as regular files inside outDir, hashes them, and fingerprints them as
// they were hashed.
func checkOutputs(ctx context.Context, outDir string, arts []step.Artifact, workers int) ([]FileMeta, map[string]fingerprint.FP, error) {
	declared := map[string]string{}
	for _, a := range arts {
		if a.Path == "" || path.IsAbs(a.Path) || path.Clean(a.Path) != a.Path || strings.HasPrefix(a.Path, "../") || a.Path == ".." || strings.Contains(a.Path, "\\") {
			return nil, nil, fmt.Errorf("step declared an invalid artifact path %q", a.Path)
		}
		if a.Kind == "" {
			return nil, nil, fmt.Errorf("step declared artifact %s without a kind", a.Path)
		}
		if _, dup := declared[a.Path]; dup {
			return nil, nil, fmt.Errorf("step declared artifact %s twice", a.Path)
		}
		declared[a.Path] = a.Kind
	}
	var files []FileMeta
	err := filepath.WalkDir(outDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(outDir, p)
		rel = filepath.ToSlash(rel)
		kind, ok := declared[rel]
		if !ok {
			return fmt.Errorf("step wrote %s but did not declare it as an artifact", rel)
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("artifact %s is not a regular file", rel)
		}
		files = append(files, FileMeta{Path: rel, Kind: kind})
		delete(declared, rel)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	for p := range declared {
		return nil, nil, fmt.Errorf("step declared artifact %s but did not write it", p)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	fps := make([]fingerprint.FP, len(files))
	err = parallel.For(ctx, workers, files, func(_ context.Context, i int, f FileMeta) error {
		p := filepath.Join(outDir, filepath.FromSlash(f.Path))
		before, err := fingerprint.Stat(p)
		if err != nil {
			return err
		}
		sum, n, err := digest.File(p)
		if err != nil {
			return err
		}
		if after, err := fingerprint.Stat(p); err != nil || after != before || n != before.Size {
			return fmt.Errorf("artifact %s changed while it was hashed; a step must close its outputs before it returns", f.Path)
		}
		files[i].SHA256, files[i].Size, fps[i] = sum, n, before
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	byPath := make(map[string]fingerprint.FP, len(files))
	for i, f := range files {
		byPath[f.Path] = fps[i]
	}
	return files, byPath, nil
}

// errAppeared means a builder stopped waiting because the entry exists.
var errAppeared = errors.New("entry appeared while waiting")

// lock takes the per-key lock, polling so that ctx cancellation is honoured
// while another process holds it. While waiting, appeared (if not nil) is
// asked whether to give up with errAppeared.
func (s *Store) lock(ctx context.Context, key string, exclusive bool, appeared func() bool) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(s.root, "locks", key+".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cache lock: %w", err)
	}
	wait := 10 * time.Millisecond
	for {
		ok, err := lockFile(f, exclusive, false)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("cache lock %s: %w", short(key), err)
		}
		if ok {
			return f, nil
		}
		if appeared != nil && appeared() {
			f.Close()
			return nil, errAppeared
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(wait*2, 500*time.Millisecond)
	}
}

func short(key string) string {
	if len(key) > 12 {
		return key[:12]
	}
	return key
}
