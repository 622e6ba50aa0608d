package plan

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relcue/release/pipeline/digest"
	"github.com/relcue/release/pipeline/step"
)

// digesters are the planner's two ways to hash: directly, and through the
// index pipeline.Open uses.
func digesters(t *testing.T) map[string]func() Digester {
	idx := t.TempDir()
	return map[string]func() Digester{
		"direct": func() Digester { return &LocalDigester{Workers: 2} },
		"index":  func() Digester { return &LocalDigester{Workers: 2, Index: digest.OpenIndex(idx)} },
	}
}

// planWithin plans targets and fails the test if that takes longer than
// a few seconds (a FIFO opened for reading blocks forever).
func planWithin(t *testing.T, ts []step.Target, dg Digester) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := Build(context.Background(), ts, Options{Steps: steps, Workers: 2, Digests: dg})
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("planning still running after 10s")
		return nil
	}
}

// A local file's declared sha256 is checked when planning (FIRST-USE 4:
// vet and plan passed a wrong pin that build then refused).
func TestDeclaredSHA256OfLocalFileIsChecked(t *testing.T) {
	dir := writeTree(t, map[string]string{"tool.sh": "echo hi\n"})
	p := filepath.Join(dir, "tool.sh")
	sum := sha256.Sum256([]byte("echo hi\n"))
	right := hex.EncodeToString(sum[:])
	wrong := strings.Repeat("b", 64)
	for name, mk := range digesters(t) {
		t.Run(name, func(t *testing.T) {
			target := func(pin string) []step.Target {
				return []step.Target{{ID: "p", Kind: "k", Pos: "release.cue:3:1",
					Sources: []step.Source{{Name: "layer1", Path: p, SHA256: pin, Pos: "release.cue:4:42"}}}}
			}
			err := planWithin(t, target(wrong), mk())
			if err == nil {
				t.Fatal("a wrong sha256 planned")
			}
			for _, want := range []string{"release.cue:4:42: target p: input " + p, "content is " + right, "declares " + wrong, "update its sha256"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q lacks %q", err, want)
				}
			}
			g, err := Build(context.Background(), target(right), Options{Steps: steps, Workers: 2, Digests: mk()})
			if err != nil {
				t.Fatal(err)
			}
			if d := g.Nodes["p"].Sources[0].Digest; d != "sha256:"+right {
				t.Fatalf("digest %s", d)
			}
		})
	}
}

// A download is not fetched by the planner: its declared sha256 is the
// digest, checked when the build downloads it.
func TestURLSourceUsesDeclaredSHA256(t *testing.T) {
	pin := strings.Repeat("c", 64)
	ts := []step.Target{{ID: "p", Kind: "k", Sources: []step.Source{{Name: "z", URL: "http://127.0.0.1:1/never.zip", SHA256: pin}}}}
	g, err := Build(context.Background(), ts, Options{Steps: steps, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if d := g.Nodes["p"].Sources[0].Digest; d != "sha256:"+pin {
		t.Fatalf("digest %s", d)
	}
}

// A FIFO, a device or a directory given as a file is refused, with or
// without sha256, and never opened (RELIABILITY D4: a FIFO with sha256
// hung build forever, /dev/zero was read at full speed).
func TestSpecialFilesAreRefusedUnopened(t *testing.T) {
	dir := t.TempDir()
	paths := map[string]string{"device": os.DevNull, "directory": dir}
	if fifo := filepath.Join(dir, "pipe"); mkfifo(fifo) == nil {
		paths["named pipe"] = fifo
	}
	if _, err := os.Stat("/dev/zero"); err == nil {
		paths["endless device"] = "/dev/zero"
	}
	empty := sha256.Sum256(nil)
	for what, p := range paths {
		for _, pin := range []string{"", hex.EncodeToString(empty[:])} {
			for name, mk := range digesters(t) {
				ts := []step.Target{{ID: "p", Kind: "k", Sources: []step.Source{{Name: "f", Path: p, SHA256: pin, Pos: "release.cue:4:2"}}}}
				err := planWithin(t, ts, mk())
				if err == nil || !strings.Contains(err.Error(), "release.cue:4:2: target p: input "+p+": is a ") || !strings.Contains(err.Error(), "not a regular file") {
					t.Errorf("%s %s (sha256 %q, %s): %v", what, p, pin, name, err)
				}
			}
		}
	}
}

// checkStep records what the planner lists of its sources.
type checkStep struct {
	nopStep
	got map[string]step.Listing
	err error
}

func (s *checkStep) CheckPlan(_ json.RawMessage, l map[string]step.Listing) error {
	s.got = l
	return s.err
}

func TestPlanCheckerSeesListings(t *testing.T) {
	dir := writeTree(t, map[string]string{"b/c": "c", "a": "a"})
	file := filepath.Join(dir, "a")
	cs := &checkStep{nopStep: nopStep{"c", "1"}}
	ts := []step.Target{{ID: "p", Kind: "c", Pos: "release.cue:3:1", Sources: []step.Source{{Name: "d", Path: dir, Dir: true}, {Name: "f", Path: file}}}}
	opts := Options{Steps: map[string]step.Step{"c": cs}, Workers: 2}
	if _, err := Build(context.Background(), ts, opts); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cs.got["d"].Files, " "); got != "a b/c" {
		t.Errorf("directory listing %q", got)
	}
	if f := cs.got["f"]; f.Files != nil || f.Source.Path != file {
		t.Errorf("file listing %+v", f)
	}
	cs.err = errors.New("two inputs write x")
	_, err := Build(context.Background(), ts, opts)
	if err == nil || err.Error() != "release.cue:3:1: target p: two inputs write x" {
		t.Fatalf("err = %v", err)
	}
}
