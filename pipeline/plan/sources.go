package plan

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/relcue/release/pipeline/digest"
	"github.com/relcue/release/pipeline/step"
)

// LocalDigester hashes local files and trees; URL sources (and local files
// with a declared checksum) use their declared SHA-256, which the build
// verifies before a step may read them. Results are memoized because many
// targets share inputs.
type LocalDigester struct {
	Workers int
	// Index, when set, serves digests of unchanged files from earlier
	// runs instead of reading them again.
	Index *digest.Index
	mu    sync.Mutex
	memo  map[string]*memoEntry
}

type memoEntry struct {
	once   sync.Once
	digest string
	err    error
}

func (d *LocalDigester) Digest(ctx context.Context, s step.Source) (string, error) {
	switch {
	case s.SHA256 != "":
		return "sha256:" + s.SHA256, nil
	case s.URL != "":
		return "", fmt.Errorf("source %s: %s has no sha256; declare it so the download can be verified", s.Name, s.URL)
	}
	memoKey := fmt.Sprintf("%t|%s", s.Dir, s.Path)
	d.mu.Lock()
	if d.memo == nil {
		d.memo = map[string]*memoEntry{}
	}
	e, ok := d.memo[memoKey]
	if !ok {
		e = &memoEntry{}
		d.memo[memoKey] = e
	}
	d.mu.Unlock()
	e.once.Do(func() {
		if s.Dir {
			var sum string
			if d.Index != nil {
				sum, _, e.err = d.Index.Tree(ctx, s.Path, d.Workers)
			} else {
				sum, _, e.err = digest.Tree(ctx, s.Path, d.Workers)
			}
			e.digest = "tree:" + sum
			return
		}
		var sum string
		if d.Index != nil {
			sum, _, e.err = d.Index.File(s.Path)
		} else {
			sum, _, e.err = digest.File(s.Path)
		}
		e.digest = "sha256:" + sum
	})
	return e.digest, e.err
}

func digestSources(ctx context.Context, targets []step.Target, g *Graph, dg Digester, workers int) error {
	eg, ctx := errgroup.WithContext(ctx)
	eg.SetLimit(max(workers, 1))
	for _, t := range targets {
		n := g.Nodes[t.ID]
		n.Sources = make([]SourceDigest, len(t.Sources))
		seen := map[string]bool{}
		for i, s := range t.Sources {
			if seen[s.Name] {
				return posErr(t.Pos, fmt.Errorf("target %s: source %q is declared twice", t.ID, s.Name))
			}
			seen[s.Name] = true
			eg.Go(func() error {
				dig, err := dg.Digest(ctx, s)
				if errors.Is(err, fs.ErrNotExist) {
					err = fmt.Errorf("%w; create it or correct the path", err)
				}
				if err != nil {
					pos := s.Pos
					if pos == "" {
						pos = t.Pos
					}
					return posErr(pos, fmt.Errorf("target %s: input %s: %w", t.ID, describe(s), err))
				}
				n.Sources[i] = SourceDigest{Source: s, Digest: dig}
				return nil
			})
		}
	}
	return eg.Wait()
}

func describe(s step.Source) string {
	if s.URL != "" {
		return s.URL
	}
	return s.Path
}
