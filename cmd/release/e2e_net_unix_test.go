//go:build unix

package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// D4: a FIFO or /dev/zero declared as a file input with a sha256 is
// refused at once by its type: never waited on, never read, nothing left.
func TestBuildRefusesFIFOAndDeviceInputs(t *testing.T) {
	for _, name := range []string{"pipe", "/dev/zero"} {
		dir := inputConfig(t, fmt.Sprintf(`, {file: {path: %q, sha256: %q}, dest: "bin/p"}`, name, sum256("x")))
		p := name
		if !filepath.IsAbs(name) {
			p = filepath.Join(dir, name)
			if err := syscall.Mkfifo(p, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		cache := filepath.Join(t.TempDir(), "cache")
		r, took := runBounded(t, 30*time.Second, nil, "build", "-C", dir, "--cache", cache)
		// Refused when the plan is made, from the path's type, as a
		// configuration error (exit 2).
		if r.code != 2 || !strings.Contains(r.stderr, p+": is a ") || !strings.Contains(r.stderr, "not a regular file") {
			t.Fatalf("%s: exit %d\n%s", name, r.code, r.stderr)
		}
		t.Logf("%s refused after %s", name, took)
		assertNoDist(t, dir)
		assertNoTemps(t, cache)
	}
}
