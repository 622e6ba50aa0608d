package plan

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"sync"

	"github.com/relcue/release/internal/parallel"
	"github.com/relcue/release/pipeline/digest"
	"github.com/relcue/release/pipeline/fetch"
	"github.com/relcue/release/pipeline/step"
)

// LocalDigester hashes local files and trees. URL sources use their
// declared SHA-256, which the build verifies when it downloads them: a plan
// fetches nothing. A local file with a declared SHA-256 is hashed like any
// other and must match, so that vet and plan refuse a wrong pin that build
// would. Results are memoized because many targets share inputs.
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
	files  []string // of a directory, for Files
	err    error
}

func memoKey(s step.Source) string { return fmt.Sprintf("%t|%s", s.Dir, s.Path) }

func (d *LocalDigester) Digest(ctx context.Context, s step.Source) (string, error) {
	if s.URL != "" {
		if s.SHA256 == "" {
			return "", fmt.Errorf("source %s: %s has no sha256; declare it so the download can be verified", s.Name, s.URL)
		}
		return "sha256:" + s.SHA256, nil
	}
	d.mu.Lock()
	if d.memo == nil {
		d.memo = map[string]*memoEntry{}
	}
	e, ok := d.memo[memoKey(s)]
	if !ok {
		e = &memoEntry{}
		d.memo[memoKey(s)] = e
	}
	d.mu.Unlock()
	e.once.Do(func() { e.digest, e.files, e.err = d.local(ctx, s) })
	if e.err != nil {
		return "", e.err
	}
	if s.SHA256 != "" && !s.Dir && e.digest != "sha256:"+s.SHA256 {
		return "", &fetch.ChecksumError{What: s.Path, Got: strings.TrimPrefix(e.digest, "sha256:"), Want: s.SHA256}
	}
	return e.digest, nil
}

// local digests a local file or tree.
func (d *LocalDigester) local(ctx context.Context, s step.Source) (string, []string, error) {
	if s.Dir {
		var sum string
		var files []digest.TreeFile
		var err error
		if d.Index != nil {
			sum, files, err = d.Index.Tree(ctx, s.Path, d.Workers)
		} else {
			sum, files, err = digest.Tree(ctx, s.Path, d.Workers)
		}
		if err != nil {
			return "", nil, err
		}
		names := make([]string, len(files))
		for i, f := range files {
			names[i] = f.Path
		}
		return "tree:" + sum, names, nil
	}
	// Checked before anything opens the path: opening a FIFO for reading
	// blocks until a writer comes, and a device never ends.
	if err := checkRegular(s.Path); err != nil {
		return "", nil, err
	}
	var sum string
	var err error
	if d.Index != nil {
		sum, _, err = d.Index.File(s.Path)
	} else {
		sum, _, err = digest.File(s.Path)
	}
	if err != nil {
		return "", nil, err
	}
	return "sha256:" + sum, nil, nil
}

// Files returns the files of a directory source digested earlier, or nil.
func (d *LocalDigester) Files(s step.Source) []string {
	if !s.Dir || s.URL != "" {
		return nil
	}
	d.mu.Lock()
	e := d.memo[memoKey(s)]
	d.mu.Unlock()
	if e == nil {
		return nil
	}
	return e.files
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
