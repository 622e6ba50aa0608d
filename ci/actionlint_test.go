package ci

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/relcue/release/internal/peers"
)

func TestWorkflowsLintClean(t *testing.T) {
	bin := peers.Tool(t, "actionlint")
	files, err := filepath.Glob("*.yml")
	if err != nil || len(files) < 2 {
		t.Fatalf("workflows: %v %v", files, err)
	}
	out, err := exec.Command(bin, append([]string{"-color=false"}, files...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("actionlint %v: %v\n%s", files, err, out)
	}
	// The linter is live: a broken workflow fails.
	bad := filepath.Join(t.TempDir(), "bad.yml")
	if err := writeFile(bad, "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo ${{ matrix.nope }}\n"); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-color=false", bad).CombinedOutput(); err == nil {
		t.Fatalf("actionlint accepted a broken workflow:\n%s", out)
	}
}
