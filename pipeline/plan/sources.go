package plan

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sync"

	"github.com/relcue/release/internal/parallel"
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

// sourceJob is one source of one target to digest into its node.
type sourceJob struct {
	target *step.Target
	node   *Node
	i      int // index into the target's sources and the node's
}

// digestSources fills every node's Sources, digesting all of them in one
// pool. A source declared twice is refused before anything is read.
func digestSources(ctx context.Context, targets []step.Target, g *Graph, dg Digester, workers int) error {
	var jobs []sourceJob
	for ti := range targets {
		t := &targets[ti]
		n := g.Nodes[t.ID]
		n.Sources = make([]SourceDigest, len(t.Sources))
		seen := map[string]bool{}
		for i, s := range t.Sources {
			if seen[s.Name] {
				return posErr(t.Pos, fmt.Errorf("target %s: source %q is declared twice", t.ID, s.Name))
			}
			seen[s.Name] = true
			jobs = append(jobs, sourceJob{t, n, i})
		}
	}
	return parallel.For(ctx, workers, jobs, func(ctx context.Context, _ int, j sourceJob) error {
		s := j.target.Sources[j.i]
		dig, err := dg.Digest(ctx, s)
		if errors.Is(err, fs.ErrNotExist) {
			err = fmt.Errorf("%w; create it or correct the path", err)
		}
		if err != nil {
			pos := s.Pos
			if pos == "" {
				pos = j.target.Pos
			}
			return posErr(pos, fmt.Errorf("target %s: input %s: %w", j.target.ID, describe(s), err))
		}
		j.node.Sources[j.i] = SourceDigest{Source: s, Digest: dig}
		return nil
	})
}

func describe(s step.Source) string {
	if s.URL != "" {
		return s.URL
	}
	return s.Path
}
