package fullpkg

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/relcue/release/internal/parallel"
	"github.com/relcue/release/modules/pkgmanifest"
	"github.com/relcue/release/modules/pkgzip"
	"github.com/relcue/release/pipeline/digest"
	"github.com/relcue/release/pipeline/step"
)

// reuse finds input files whose compressed entry the previous package
// already holds. Hashing a file (SHA-256 at disk speed) costs a fraction
// of compressing it again, so every input is hashed once more, in
// parallel.
type reuse struct {
	r      *pkgzip.Reader
	byHash map[string]*pkgzip.Entry // "sha256:size" of the previous package's files
	hashes []pkgzip.Digest          // of the inputs, by index
}

func openReuse(ctx context.Context, in *step.Input, spec *Spec, files []treeFile) (*reuse, error) {
	if spec.Reuse == "" {
		return nil, nil
	}
	dep, ok := in.Deps[spec.Reuse]
	if !ok {
		return nil, fmt.Errorf("%s: dependency %s was not provided; the plan is inconsistent", in.Target, spec.Reuse)
	}
	a, ok := dep.Find(ArtifactKind)
	if !ok {
		return nil, fmt.Errorf("%s: dependency %s has no package", in.Target, spec.Reuse)
	}
	r, err := pkgzip.Open(filepath.Join(dep.Dir, filepath.FromSlash(a.Path)))
	if err != nil {
		return nil, fmt.Errorf("previous package: %w", err)
	}
	pm, ok, err := pkgmanifest.Read(r)
	if err != nil || !ok {
		r.Close()
		return nil, fmt.Errorf("previous package %s: no readable %s (%v)", a.Path, pkgmanifest.Name, err)
	}
	ru := &reuse{r: r, byHash: map[string]*pkgzip.Entry{}, hashes: make([]pkgzip.Digest, len(files))}
	for _, f := range pm.Files {
		if e := r.Lookup(f.Path); e != nil && e.Size == f.Size {
			ru.byHash[key(f.SHA256, f.Size)] = e
		}
	}
	sizes := make(map[int64]bool, len(ru.byHash))
	for _, e := range ru.byHash {
		sizes[e.Size] = true
	}
	var candidates []int // indexes into files; no file of another size can match
	for i, f := range files {
		if sizes[f.size] {
			candidates = append(candidates, i)
		}
	}
	err = parallel.For(ctx, in.Workers, candidates, func(_ context.Context, _, i int) error {
		sum, n, err := digest.File(files[i].src)
		if err != nil {
			return fmt.Errorf("%s: %w", files[i].owner, err)
		}
		ru.hashes[i] = pkgzip.Digest{SHA256: sum, Size: n}
		return nil
	})
	if err != nil {
		r.Close()
		return nil, err
	}
	return ru, nil
}

func key(sha string, size int64) string { return sha + ":" + strconv.FormatInt(size, 10) }

// lookup returns the previous package's entry with the content and mode
// of input i, or nil.
func (ru *reuse) lookup(i int, f treeFile) (*pkgzip.Entry, pkgzip.Digest) {
	if ru == nil || ru.hashes[i].SHA256 == "" {
		return nil, pkgzip.Digest{}
	}
	d := ru.hashes[i]
	e := ru.byHash[key(d.SHA256, d.Size)]
	if e == nil || e.Mode != f.mode || d.Size != f.size {
		return nil, pkgzip.Digest{}
	}
	return e, d
}

func (ru *reuse) close() { ru.r.Close() }
