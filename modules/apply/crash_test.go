package apply

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/relcue/release/modules/delta/deltatest"
)

func TestParseCrashEnv(t *testing.T) {
	for _, c := range []struct {
		in   string
		want crashSpec
		ok   bool
	}{
		{"commit:2", crashSpec{"commit", 2, crashExit}, true},
		{"staged:0:exit", crashSpec{"staged", 0, crashExit}, true},
		{"staged:1:hang", crashSpec{"staged", 1, crashHang}, true},
		{"committing:0:pause", crashSpec{"committing", 0, crashPause}, true},
		{"commit", crashSpec{}, false},
		{"commit:", crashSpec{}, false},
		{"commit:x", crashSpec{}, false},
		{"commit:-1", crashSpec{}, false},
		{":1", crashSpec{}, false},
		{"commit:1:sleep", crashSpec{}, false},
		{"commit:1:hang:extra", crashSpec{}, false},
		{"", crashSpec{}, false},
	} {
		got, ok := parseCrashEnv(c.in)
		if got != c.want || ok != c.ok {
			t.Errorf("parseCrashEnv(%q) = %+v, %v; want %+v, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

// TestCrashEnvironmentHangAndPause runs Apply in a child process that
// stops at a crash point: "hang" until it is killed for real, "pause"
// until its stdin is closed, after which it finishes the apply.
func TestCrashEnvironmentHangAndPause(t *testing.T) {
	f := newFixture(t, 83, true)
	for _, c := range []struct {
		crash string
		kill  bool
		want  deltatest.Tree
	}{
		{"staged:1:hang", true, f.before},
		{"commit:2:hang", true, f.want},
		{"committing:0:pause", false, f.want},
	} {
		t.Run(c.crash, func(t *testing.T) {
			f.reset(t)
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "APPLY_TEST_CHILD=1", "APPLY_TEST_DELTA="+f.deltaZip, "APPLY_TEST_INSTALL="+f.install, crashEnv+"="+c.crash)
			stdin, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = cmd.Process.Kill() })
			point, _, _ := strings.Cut(strings.TrimSuffix(strings.TrimSuffix(c.crash, ":hang"), ":pause"), ":")
			marker := crashMarker + strings.TrimSuffix(strings.TrimSuffix(c.crash, ":hang"), ":pause")
			sc := bufio.NewScanner(stderr)
			var seen []string
			for sc.Scan() && !strings.HasPrefix(sc.Text(), marker) {
				seen = append(seen, sc.Text())
			}
			if sc.Err() != nil || !strings.HasPrefix(sc.Text(), marker) {
				t.Fatalf("child never reached %s: %v\n%s", point, sc.Err(), strings.Join(seen, "\n"))
			}
			go io.Copy(io.Discard, stderr)
			if c.kill {
				if err := cmd.Process.Kill(); err != nil {
					t.Fatal(err)
				}
				_ = cmd.Wait()
				if rep, err := Recover(context.Background(), f.install); err != nil || rep.Recovery == nil {
					t.Fatalf("recover after the kill: %+v %v", rep, err)
				}
			} else {
				// Paused at its commit point: the journal says
				// committing, and no file has moved yet.
				j, err := loadJournal(f.install)
				if err != nil || j == nil || j.State != stateCommitting {
					t.Fatalf("journal of the paused child: %+v %v", j, err)
				}
				if d := deltatest.Diff(f.before, stateFree(deltatest.ReadTree(t, f.install))); d != "" {
					t.Fatalf("the paused child changed the installation:\n%s", d)
				}
				stdin.Close()
				if err := cmd.Wait(); err != nil {
					t.Fatalf("the child after the pause: %v", err)
				}
			}
			assertTree(t, f.install, c.want)
		})
	}
}
