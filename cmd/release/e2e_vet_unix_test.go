//go:build unix

package main

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// RELIABILITY D4: a FIFO given as a file with sha256 passed vet and hung
// build forever. It is refused, unopened, by vet, plan and build.
func TestVetRefusesSpecialFiles(t *testing.T) {
	for _, pin := range []string{"", strings.Repeat("a", 64)} {
		dir := vetConfig(t, `{file: {path: "pipe", sha256: "`+pin+`"}, dest: "bin/p"}`)
		if pin == "" {
			dir = vetConfig(t, `{file: path: "pipe", dest: "bin/p"}`)
		}
		if err := syscall.Mkfifo(filepath.Join(dir, "pipe"), 0o644); err != nil {
			t.Skip("no named pipes here:", err)
		}
		refusedByAll(t, dir, "release.cue:7:", filepath.Join(dir, "pipe")+": is a named pipe (FIFO), not a regular file")
	}
}
