package peers

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// The PowerShell grammar: PowerShell has no runtime on the machines the
// tests run on, so generated scripts are judged by the tree-sitter
// PowerShell grammar (npm tree-sitter-powershell, run as WebAssembly by
// web-tree-sitter), which .ci/tools installs into ToolsDir()/npm at the
// versions .ci/npm/package-lock.json pins.

//go:embed pwshparse.cjs
var pwshParse []byte

// PowerShellProblems parses each file with the PowerShell grammar and
// returns, by file, the ERROR and MISSING nodes it found ("line:col ERROR",
// "line:col MISSING <node>"); a file that parses cleanly maps to nothing.
// A missing node or grammar skips or fails the test like any peer.
func PowerShellProblems(t testing.TB, files ...string) map[string][]string {
	t.Helper()
	node := Tool(t, "node")
	dir := filepath.Join(ToolsDir(), "npm")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "tree-sitter-powershell", "tree-sitter-powershell.wasm")); err != nil {
		missing(t, "the PowerShell grammar is not installed in %s (%v); install with: make tools (or .ci/tools npm)", dir, err)
		return nil
	}
	script := filepath.Join(t.TempDir(), "pwshparse.cjs")
	if err := os.WriteFile(script, pwshParse, 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	// V8's optimising tier takes six seconds over the grammar's
	// WebAssembly; its baseline compiler parses the same in a tenth.
	cmd := exec.Command(node, append([]string{"--liftoff-only", script, dir}, files...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("the PowerShell grammar failed: %v\n%s", err, stderr.String())
	}
	out := map[string][]string{}
	dec := json.NewDecoder(&stdout)
	for seen := 0; seen < len(files); seen++ {
		var r struct {
			File     string
			Problems []string
		}
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("reading the grammar's report: %v\n%s", err, stderr.String())
		}
		if len(r.Problems) > 0 {
			out[r.File] = r.Problems
		}
	}
	return out
}
