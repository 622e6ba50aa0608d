package apply

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// Crash points, in the order an apply passes them. i is the number of files
// staged (pointStaged) or of renames done in the commit (pointCommit); it is
// 0 for the others.
const (
	pointStaged     = "staged"     // after i files are staged
	pointJournal    = "journal"    // after the journal is written ("prepared")
	pointCommitting = "committing" // after the journal is marked "committing"
	pointCommit     = "commit"     // after i renames of the commit
	pointCommitted  = "committed"  // after the journal is marked "committed"
	pointCleanup    = "cleanup"    // after the final verification, before cleanup
	pointRollback   = "rollback"   // after i renames of a rollback
)

// crashHook is set by tests only. It is called at every crash point;
// returning errCrash makes the apply stop dead, running no cleanup and no
// rollback, as if the process had been killed; returning any other error
// simulates an ordinary failure at that point.
var crashHook func(point string, i int) error

// errCrash is what a test's crashHook returns to simulate kill -9.
var errCrash = errors.New("simulated crash")

// crashEnv is the test-only environment variable
// RELEASE_TEST_CRASH=<point>:<i>[:<mode>], for end-to-end tests through the
// release binary. At that point the process
//   - (no mode, or "exit") exits with status 137, like SIGKILL;
//   - ("hang") prints a marker line to stderr and blocks forever, so that a
//     test can kill it for real (SIGKILL on Linux, or the Linux process
//     that is the Windows program under Wine);
//   - ("pause") prints a marker line to stderr and waits until its standard
//     input reaches end of file, then goes on: a test can change the world
//     (hold a file open, say) at exactly that point.
//
// It must never be set in production; nothing but a test has a reason to.
const crashEnv = "RELEASE_TEST_CRASH"

// Crash modes of crashEnv.
const (
	crashExit  = "exit"
	crashHang  = "hang"
	crashPause = "pause"
)

// crashSpec is a parsed crashEnv value.
type crashSpec struct {
	point string
	i     int
	mode  string
}

// parseCrashEnv parses <point>:<i>[:<mode>]; ok is false for anything else.
func parseCrashEnv(v string) (spec crashSpec, ok bool) {
	parts := strings.Split(v, ":")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" {
		return crashSpec{}, false
	}
	i, err := strconv.Atoi(parts[1])
	if err != nil || i < 0 {
		return crashSpec{}, false
	}
	spec = crashSpec{point: parts[0], i: i, mode: crashExit}
	if len(parts) == 3 {
		switch parts[2] {
		case crashExit, crashHang, crashPause:
			spec.mode = parts[2]
		default:
			return crashSpec{}, false
		}
	}
	return spec, true
}

// crashMarker is the start of the line a "hang" or "pause" crash point
// prints to stderr when it is reached; the rest of the line is
// "<point>:<i>".
const crashMarker = "release: test crash point reached: "

// crashPoint is called at every crash point.
func crashPoint(point string, i int) error {
	if v := os.Getenv(crashEnv); v != "" {
		if spec, ok := parseCrashEnv(v); ok && spec.point == point && spec.i == i {
			switch spec.mode {
			case crashHang:
				fmt.Fprintf(os.Stderr, "%s%s:%d (hanging until killed)\n", crashMarker, point, i)
				// Sleeping, not select{}: with every goroutine blocked
				// the runtime would call it a deadlock and exit.
				for {
					time.Sleep(time.Hour)
				}
			case crashPause:
				fmt.Fprintf(os.Stderr, "%s%s:%d (paused until stdin is closed)\n", crashMarker, point, i)
				_, _ = io.Copy(io.Discard, os.Stdin)
			default:
				fmt.Fprintf(os.Stderr, "%s=%s: exiting at %s:%d\n", crashEnv, v, point, i)
				os.Exit(137)
			}
		}
	}
	if crashHook != nil {
		if err := crashHook(point, i); err != nil {
			return fmt.Errorf("at %s:%d: %w", point, i, err)
		}
	}
	return nil
}

// isCrash reports a simulated kill: nothing may be cleaned up after it.
func isCrash(err error) bool { return errors.Is(err, errCrash) }
