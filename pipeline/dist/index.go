package dist

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/relcue/release/internal/filelock"
	"github.com/relcue/release/internal/parallel"
)

// Names in dist/ that are not artifacts: the index files, and the lock
// publishers take where a directory cannot be locked itself (Windows).
const (
	IndexFile = "artifacts.json"
	SumsFile  = "SHA256SUMS"
	LockFile  = ".release-publish.lock"
)

// inventory is what a dist directory holds before a publish, sorted out.
type inventory struct {
	// carry are artifacts an earlier build listed for targets not built
	// now: kept if still current and unchanged (see carry).
	carry []Artifact
	// stale are listed files of targets built now that no longer
	// produce them.
	stale []string
	// foreign are files no artifacts.json lists (removed only with
	// Clean); leftovers are a killed publish's temporary files.
	foreign, leftovers []string
}

// survey sorts out dir's files against the previous artifacts.json and
// this build's artifacts. Without opts.Clean, a file release did not
// publish is an error: artifacts.json and SHA256SUMS could not describe it.
func survey(dir string, arts []Artifact, items []Item, opts Options) (*inventory, error) {
	old, err := readIndex(dir)
	if err != nil {
		return nil, err
	}
	built := map[string]bool{}
	for _, it := range items {
		built[it.Target] = true
	}
	now := map[string]bool{}
	for _, a := range arts {
		now[a.Path] = true
	}
	listed := map[string]Artifact{}
	for _, a := range old {
		listed[a.Path] = a
	}
	inv := &inventory{}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		switch {
		case rel == IndexFile, rel == SumsFile, rel == LockFile, now[rel]:
		case isLeftover(d.Name()):
			inv.leftovers = append(inv.leftovers, rel)
		default:
			a, ok := listed[rel]
			switch {
			case !ok:
				inv.foreign = append(inv.foreign, rel)
			case built[a.Target]:
				inv.stale = append(inv.stale, rel)
			default:
				inv.carry = append(inv.carry, a)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(inv.foreign) > 0 && !opts.Clean {
		return nil, &ForeignError{Dir: dir, Files: inv.foreign}
	}
	if !opts.Clean {
		inv.foreign = nil
	}
	return inv, nil
}

// CheckOwned returns a *ForeignError when dir holds a file that no
// artifacts.json of dir lists (a killed publish's leftovers aside, which
// the next publish removes). A missing dir is fine.
func CheckOwned(dir string) error {
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	old, err := readIndex(dir)
	if err != nil {
		return err
	}
	listed := map[string]bool{}
	for _, a := range old {
		listed[a.Path] = true
	}
	var foreign []string
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if !listed[rel] && rel != IndexFile && rel != SumsFile && rel != LockFile && !isLeftover(d.Name()) {
			foreign = append(foreign, rel)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(foreign) > 0 {
		return &ForeignError{Dir: dir, Files: foreign}
	}
	return nil
}

// isLeftover matches the temporary names publishing (and atomicfile)
// give files before renaming them into place: ".<name>.tmp-<n>".
func isLeftover(name string) bool {
	return strings.HasPrefix(name, ".") && strings.Contains(name, ".tmp-")
}

// readIndex reads dir's artifacts.json; a missing one lists nothing.
func readIndex(dir string) ([]Artifact, error) {
	raw, err := os.ReadFile(filepath.Join(dir, IndexFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var arts []Artifact
	if err := json.Unmarshal(raw, &arts); err != nil {
		return nil, fmt.Errorf("%s: not an index release wrote (%v); remove the directory's content, or pass --clean", filepath.Join(dir, IndexFile), err)
	}
	for _, a := range arts {
		if a.Path == "" || a.Target == "" || !filepath.IsLocal(filepath.FromSlash(a.Path)) {
			return nil, fmt.Errorf("%s: entry %+v is not one release wrote; remove the directory's content, or pass --clean", filepath.Join(dir, IndexFile), a)
		}
	}
	return arts, nil
}

// carry keeps the listed artifacts that are still what the configuration
// would publish (their target is declared and they were published for its
// current key) and whose dist files still hold what the index says (by
// fingerprint, else by hash). It returns them, and the paths to remove:
// the stale ones and every other listed one.
func carry(ctx context.Context, dir string, inv *inventory, state stateFile, opts Options) ([]Artifact, []string, error) {
	keep := make([]bool, len(inv.carry))
	err := parallel.For(ctx, opts.Workers, inv.carry, func(_ context.Context, i int, a Artifact) error {
		rec := state.Files[a.Path]
		if opts.CurrentKey != nil {
			if k, ok := opts.CurrentKey(a.Target); !ok || rec.Key != k {
				return nil
			}
		}
		ok, _, _, err := isCurrent(filepath.Join(dir, filepath.FromSlash(a.Path)), a, rec)
		keep[i] = ok
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	var kept []Artifact
	drop := append([]string(nil), inv.stale...)
	for i, a := range inv.carry {
		if keep[i] {
			kept = append(kept, a)
		} else {
			drop = append(drop, a.Path)
		}
	}
	return kept, drop, nil
}

// removeFiles removes the files (slash paths below dir) and the
// directories they leave empty, and returns the paths, sorted. A file
// that cannot be removed stays listed nowhere: the next publish finds it
// again.
func removeFiles(dir string, paths []string) []string {
	sort.Strings(paths)
	var removed []string
	for _, p := range paths {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.Remove(full); err != nil && !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		removed = append(removed, p)
		for d := filepath.Dir(full); d != dir && strings.HasPrefix(d, dir); d = filepath.Dir(d) {
			if os.Remove(d) != nil {
				break // not empty
			}
		}
	}
	return removed
}

// lockDir takes dir's publish lock, waiting (while ctx allows) for
// another publisher to finish.
func lockDir(ctx context.Context, dir string) (func(), error) {
	f, err := openLock(dir)
	if err != nil {
		return nil, err
	}
	for {
		ok, err := filelock.Lock(f, true, false)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", dir, err)
		}
		if ok {
			return sync.OnceFunc(func() { f.Close() }), nil
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
