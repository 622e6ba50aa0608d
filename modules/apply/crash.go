package apply

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
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

// crashEnv is the test-only environment variable RELEASE_TEST_CRASH=<point>:<i>.
// It makes the process exit with status 137 (like SIGKILL) at that point, for
// end-to-end tests through the release binary. It must never be set in
// production; nothing but a test has a reason to.
const crashEnv = "RELEASE_TEST_CRASH"

// crashPoint is called at every crash point.
func crashPoint(point string, i int) error {
	if v := os.Getenv(crashEnv); v != "" {
		p, n, ok := strings.Cut(v, ":")
		if k, err := strconv.Atoi(n); ok && err == nil && p == point && k == i {
			fmt.Fprintf(os.Stderr, "%s=%s: exiting at %s:%d\n", crashEnv, v, point, i)
			os.Exit(137)
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
