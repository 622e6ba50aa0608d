// Package readcheck makes sure that what a step reads of its sources is
// what the plan keyed it by. The planner digests every input and derives
// the cache key from those digests; if a file changed between planning and
// the step reading it, the step would store the new bytes under the key of
// the old ones, and every later build of the old content would be served
// the wrong bytes from the cache. So every read is checked against the
// planned digest, and a mismatch fails the target before anything is
// stored (Bazel's "file changed during the build" rule).
//
// Steps that hash what they read anyway (a full package's manifest needs
// every file's SHA-256) compare those hashes themselves and say so by
// implementing step.SourceChecker. Every other step is wrapped: it is given
// a private copy of each source, hashed while it is copied, so the bytes it
// reads are exactly the bytes that were checked.
package readcheck

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/relcue/release/pipeline/digest"
	"github.com/relcue/release/pipeline/step"
)

// ChangedError says a source's content is not what the plan keyed.
type ChangedError struct {
	Path      string // the local file or directory
	Got, Want string // digests with their "sha256:" or "tree:" prefix
}

func (e *ChangedError) Error() string {
	return fmt.Sprintf("changed during the build: %s (the step read %s, but the plan keyed %s); nothing was stored; leave inputs alone while a build runs, or fix a declared sha256, then build again",
		e.Path, short(e.Got), short(e.Want))
}

func short(d string) string {
	kind, hex, ok := strings.Cut(d, ":")
	if !ok || len(hex) <= 16 {
		return d
	}
	return kind + ":" + hex[:16] + "…"
}

// Compare returns a *ChangedError unless got equals want.
func Compare(path, want, got string) error {
	if got == want {
		return nil
	}
	return &ChangedError{Path: path, Got: got, Want: want}
}

// FileDigest is the digest string the planner gives a file.
func FileDigest(sum string) string { return "sha256:" + sum }

// TreeDigest is the digest string the planner gives a directory tree.
func TreeDigest(files []digest.TreeFile) string { return "tree:" + digest.TreeDigest(files) }

func notRegular(path string, m fs.FileMode) error {
	return fmt.Errorf("%s: not a regular file (%s); inputs are regular files or directories of them", path, m.Type())
}

// Snapshot copies the source at src into a new path below dir, hashing
// every byte as it is copied, and returns the copy's path once its digest
// equals want ("sha256:<hex>" for a file, "tree:<hex>" for a directory).
// The copy keeps the source's base name, permission bits and (for trees)
// empty directories, so a step sees the same tree it would have seen.
func Snapshot(ctx context.Context, src, want, dir string) (string, error) {
	kind, _, _ := strings.Cut(want, ":")
	base, err := os.MkdirTemp(dir, "src-")
	if err != nil {
		return "", err
	}
	dst := filepath.Join(base, filepath.Base(src))
	var got string
	switch kind {
	case "sha256":
		var sum string
		sum, _, err = CopyFile(ctx, src, dst)
		got = FileDigest(sum)
	case "tree":
		got, err = copyTree(ctx, src, dst)
	default:
		err = fmt.Errorf("source %s: unknown digest %q (planner bug)", src, want)
	}
	if err == nil {
		err = Compare(src, want, got)
	}
	if err != nil {
		os.RemoveAll(base)
		return "", err
	}
	return dst, nil
}

func copyTree(ctx context.Context, src, dst string) (string, error) {
	st, err := os.Stat(src)
	if err != nil {
		return "", err
	}
	if !st.IsDir() {
		return "", fmt.Errorf("%s: not a directory any more", src)
	}
	var files []digest.TreeFile
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			// Writable for the copy itself; the mode is set once its
			// content is in place (see below).
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return notRegular(p, d.Type())
		}
		sum, n, err := CopyFile(ctx, p, target)
		if err != nil {
			return err
		}
		files = append(files, digest.TreeFile{
			Path:   filepath.ToSlash(rel),
			Exec:   info.Mode().Perm()&0o111 != 0,
			Size:   n,
			SHA256: sum,
		})
		return nil
	})
	if err != nil {
		return "", err
	}
	if err := copyDirModes(src, dst); err != nil {
		return "", err
	}
	// WalkDir visits in lexical order of names; the planner sorts by
	// slash path, which can differ ("a-b" < "a/b"), so sort the same way.
	digest.SortFiles(files)
	return TreeDigest(files), nil
}

// copyDirModes gives the copy's directories the source's permission bits,
// deepest first so that a read-only parent is set after its children.
func copyDirModes(src, dst string) error {
	var dirs []string
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		st, err := os.Stat(dirs[i])
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, dirs[i])
		if err := os.Chmod(filepath.Join(dst, rel), st.Mode().Perm()|0o700); err != nil {
			return err
		}
	}
	return nil
}

// copyFile copies a regular file, returning the SHA-256 and length of the
// bytes it copied (not of what the path holds later).
func CopyFile(ctx context.Context, src, dst string) (string, int64, error) {
	in, st, err := digest.OpenRegular(src)
	if err != nil {
		return "", 0, err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, st.Mode().Perm()|0o600)
	if err != nil {
		return "", 0, err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(out, h), ctxReader{ctx, in})
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", 0, fmt.Errorf("copy %s: %w", src, err)
	}
	// The owner bits were widened to write the copy; give it the
	// source's exact permission bits back.
	if err := os.Chmod(dst, st.Mode().Perm()); err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// ctxReader stops a long copy when the build is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Wrap returns a step that reads verified private copies of its sources,
// unless s checks what it reads itself (step.SourceChecker).
func Wrap(s step.Step) step.Step {
	if _, ok := s.(step.SourceChecker); ok {
		return s
	}
	return snapshotting{s}
}

type snapshotting struct{ step.Step }

func (w snapshotting) Run(ctx context.Context, in *step.Input) ([]step.Artifact, error) {
	if len(in.Sources) == 0 {
		return w.Step.Run(ctx, in)
	}
	// The copies sit beside OutDir, in the run's own scratch directory,
	// never in OutDir, which holds outputs only.
	dir, err := os.MkdirTemp(filepath.Dir(in.OutDir), ".sources-")
	if err != nil {
		return nil, err
	}
	defer removeAll(dir)
	copied := make(map[string]string, len(in.Sources))
	for name, p := range in.Sources {
		want, ok := in.SourceDigests[name]
		if !ok {
			return nil, fmt.Errorf("%s: source %s has no planned digest (planner bug)", in.Target, name)
		}
		snap, err := Snapshot(ctx, p, want, dir)
		var ce *ChangedError
		if errors.As(err, &ce) {
			// Named as the configuration names it: a download's path is
			// a cache blob the user never wrote.
			ce.Path = in.SourceLabel(name)
		}
		if err != nil {
			return nil, err // names the path the user wrote
		}
		copied[name] = snap
	}
	cp := *in
	cp.Sources = copied
	arts, err := w.Step.Run(ctx, &cp)
	if err != nil {
		for name, snap := range copied {
			err = Renamed(err, snap, in.Sources[name])
		}
		return nil, err
	}
	return arts, nil
}

// Renamed puts the path the user wrote (to) back into err in place of the
// private copy (from) that was read; err's chain is kept.
func Renamed(err error, from, to string) error {
	if err == nil {
		return nil
	}
	msg := strings.ReplaceAll(err.Error(), from, to)
	if msg == err.Error() {
		return err
	}
	return &renamedError{msg: msg, err: err}
}

type renamedError struct {
	msg string
	err error
}

func (e *renamedError) Error() string { return e.msg }
func (e *renamedError) Unwrap() error { return e.err }

// removeAll removes a snapshot even where a source's read-only
// directories were copied with their modes.
func removeAll(dir string) {
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o700)
		}
		return nil
	})
	if err := os.RemoveAll(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		// Left for the cache's temp cleanup; the step's result stands.
		return
	}
}
