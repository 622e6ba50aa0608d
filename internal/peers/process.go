package peers

import (
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// Process is a peer program started for a test: its combined output is
// kept for failure messages, and it is killed when the test ends.
type Process struct {
	Name string
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{}
	stop sync.Once
}

// StartProcess starts bin with args in dir and env (added to the test's
// environment), and kills it when the test ends.
func StartProcess(t testing.TB, name, dir string, env []string, bin string, args ...string) *Process {
	t.Helper()
	p := &Process{Name: name, out: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Dir = dir
	p.cmd.Env = append(p.cmd.Environ(), env...)
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	p.cmd.SysProcAttr = childAttr()
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("peers: starting %s (%s): %v", name, bin, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(p.Stop)
	return p
}

// Exited reports whether the process has ended, and how.
func (p *Process) Exited() (bool, string) {
	select {
	case <-p.done:
		return true, p.cmd.ProcessState.String()
	default:
		return false, ""
	}
}

// Logs returns what the process has written so far.
func (p *Process) Logs() string { return p.out.String() }

// Tail returns the last n lines of the process's output, for messages.
func (p *Process) Tail(n int) string {
	lines := strings.Split(strings.TrimRight(p.Logs(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return fmt.Sprintf("--- last %d lines of %s ---\n%s", len(lines), p.Name, strings.Join(lines, "\n"))
}

// Stop kills the process and waits for it; safe to call more than once.
func (p *Process) Stop() {
	p.stop.Do(func() {
		if p.cmd.Process == nil {
			return
		}
		select {
		case <-p.done:
			return
		default:
		}
		_ = p.cmd.Process.Kill()
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
		}
	})
}
