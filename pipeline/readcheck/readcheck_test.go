//go:build unix

package readcheck

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/relcue/release/pipeline/digest"
	"github.com/relcue/release/pipeline/step"
)

func write(t *testing.T, p, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func plannedTree(t *testing.T, root string) string {
	t.Helper()
	sum, _, err := digest.Tree(context.Background(), root, 2)
	if err != nil {
		t.Fatal(err)
	}
	return "tree:" + sum
}

func plannedFile(t *testing.T, p string) string {
	t.Helper()
	sum, _, err := digest.File(p)
	if err != nil {
		t.Fatal(err)
	}
	return "sha256:" + sum
}

// A tree's copy has the planned digest, the same modes, names and empty
// directories: a step reading it sees what it would have seen.
func TestSnapshotTree(t *testing.T) {
	src := filepath.Join(t.TempDir(), "payload")
	write(t, filepath.Join(src, "bin", "tool"), "#!/bin/sh\n", 0o755)
	write(t, filepath.Join(src, "a-b"), "dash\n", 0o644)
	write(t, filepath.Join(src, "a", "b"), "slash\n", 0o600)
	if err := os.MkdirAll(filepath.Join(src, "empty"), 0o750); err != nil {
		t.Fatal(err)
	}
	want := plannedTree(t, src)
	snap, err := Snapshot(context.Background(), src, want, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(snap) != "payload" {
		t.Errorf("copy named %s, want the source's base name", snap)
	}
	if got := plannedTree(t, snap); got != want {
		t.Errorf("copy digests to %s, want %s", got, want)
	}
	for rel, mode := range map[string]os.FileMode{"bin/tool": 0o755, "a-b": 0o644, "a/b": 0o600, "empty": os.ModeDir | 0o750} {
		st, err := os.Stat(filepath.Join(snap, rel))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode() != mode {
			t.Errorf("%s: mode %v, want %v", rel, st.Mode(), mode)
		}
	}
}

// Each way a tree can differ from its plan is caught: content (same
// size), length, a file added, removed or made executable.
func TestSnapshotTreeChanged(t *testing.T) {
	for name, mutate := range map[string]func(root string){
		"rewritten": func(root string) { os.WriteFile(filepath.Join(root, "f"), []byte("CONTENT\n"), 0o644) },
		"appended": func(root string) {
			f, _ := os.OpenFile(filepath.Join(root, "f"), os.O_APPEND|os.O_WRONLY, 0)
			f.WriteString("more\n")
			f.Close()
		},
		"added":      func(root string) { os.WriteFile(filepath.Join(root, "g"), nil, 0o644) },
		"removed":    func(root string) { os.Remove(filepath.Join(root, "f")) },
		"executable": func(root string) { os.Chmod(filepath.Join(root, "f"), 0o755) },
	} {
		t.Run(name, func(t *testing.T) {
			src := filepath.Join(t.TempDir(), "payload")
			write(t, filepath.Join(src, "f"), "content\n", 0o644)
			write(t, filepath.Join(src, "keep"), "keep\n", 0o644)
			want := plannedTree(t, src)
			mutate(src)
			dir := t.TempDir()
			_, err := Snapshot(context.Background(), src, want, dir)
			var ce *ChangedError
			if !errors.As(err, &ce) || ce.Path != src || !strings.HasPrefix(err.Error(), "changed during the build: "+src) {
				t.Fatalf("error %v, want a ChangedError naming %s", err, src)
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				t.Errorf("a refused copy was left: %v", ents)
			}
		})
	}
}

func TestSnapshotFile(t *testing.T) {
	src := filepath.Join(t.TempDir(), "extra.txt")
	write(t, src, "original\n", 0o640)
	want := plannedFile(t, src)
	snap, err := Snapshot(context.Background(), src, want, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if got := plannedFile(t, snap); got != want || filepath.Base(snap) != "extra.txt" {
		t.Errorf("copy %s digests to %s, want %s", snap, got, want)
	}
	write(t, src, "ORIGINAL\n", 0o640) // same size, as a pinned file edited in place
	_, err = Snapshot(context.Background(), src, want, t.TempDir())
	if !strings.Contains(err.Error(), "changed during the build: "+src) {
		t.Errorf("error %v, want it to name %s as changed", err, src)
	}
}

// A FIFO, a device or a socket is refused without blocking on it.
func TestSnapshotSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "pipe")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{fifo, "/dev/zero", "/dev/null"} {
		_, err := Snapshot(context.Background(), p, "sha256:"+strings.Repeat("0", 64), t.TempDir())
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("%s: error %v, want it refused as not a regular file", p, err)
		}
	}
	tree := filepath.Join(dir, "tree")
	write(t, filepath.Join(tree, "f"), "x", 0o644)
	if err := syscall.Mkfifo(filepath.Join(tree, "p"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Snapshot(context.Background(), tree, "tree:"+strings.Repeat("0", 64), t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("tree with a FIFO: error %v, want it refused", err)
	}
}

func TestSnapshotCancelled(t *testing.T) {
	src := filepath.Join(t.TempDir(), "big")
	write(t, src, strings.Repeat("x", 1<<20), 0o644)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := t.TempDir()
	if _, err := Snapshot(ctx, src, plannedFile(t, src), dir); !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("a cancelled copy was left: %v", ents)
	}
}

// reader records what it read and can fail naming its source.
type reader struct {
	got  map[string]string
	fail bool
}

func (*reader) Kind() string    { return "reader" }
func (*reader) Version() string { return "1" }
func (r *reader) Run(_ context.Context, in *step.Input) ([]step.Artifact, error) {
	r.got = map[string]string{}
	for name, p := range in.Sources {
		if r.fail {
			return nil, errors.New("cannot use " + filepath.Join(p, "f"))
		}
		data, err := os.ReadFile(filepath.Join(p, "f"))
		if err != nil {
			return nil, err
		}
		r.got[name] = p + "=" + string(data)
	}
	return nil, nil
}

type checker struct{ reader }

func (checker) ChecksSources() {}

func TestWrap(t *testing.T) {
	if _, ok := Wrap(&checker{}).(*checker); !ok {
		t.Error("a SourceChecker was wrapped")
	}
	src := filepath.Join(t.TempDir(), "payload")
	write(t, filepath.Join(src, "f"), "planned", 0o644)
	scratch := t.TempDir()
	in := &step.Input{
		Target: "t", Sources: map[string]string{"s": src}, SourceDigests: map[string]string{"s": plannedTree(t, src)},
		OutDir: filepath.Join(scratch, "out"), Progress: step.Discard, Log: io.Discard,
	}
	r := &reader{}
	if _, err := Wrap(r).Run(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	if got := r.got["s"]; strings.HasPrefix(got, src+"=") || !strings.HasSuffix(got, "=planned") {
		t.Errorf("the step read %q, want a private copy holding the planned content", got)
	}
	if ents, _ := os.ReadDir(scratch); len(ents) != 0 {
		t.Errorf("copies left beside OutDir: %v", ents)
	}

	// The step's own errors name the input the user wrote, not the copy.
	r.fail = true
	_, err := Wrap(r).Run(context.Background(), in)
	if err == nil || err.Error() != "cannot use "+filepath.Join(src, "f") {
		t.Errorf("error %v, want it to name %s", err, src)
	}

	// Changed after planning: the step never runs.
	r.fail = false
	r.got = nil
	write(t, filepath.Join(src, "f"), "edited!", 0o644)
	_, err = Wrap(r).Run(context.Background(), in)
	if err == nil || !strings.Contains(err.Error(), "changed during the build: input s ("+src+")") || r.got != nil {
		t.Errorf("error %v (read %v), want the change refused before the step runs", err, r.got)
	}
}
