package progress

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestPlainLines(t *testing.T) {
	var b strings.Builder
	p := &Plain{W: &b}
	task := p.Start("delta/1.4.0..1.5.0", "build")
	task.SetTotal(2048)
	task.Add(2048)
	fmt.Fprintf(task.Log(), "1 added\n2 changed\npartial")
	task.Done("built", nil)
	p.Start("package/1.5.0", "build").Done("", errors.New("boom"))
	p.Printf("warning: %s", "x")
	out := b.String()
	for _, want := range []string{
		"start  build    delta/1.4.0..1.5.0\n",
		"delta/1.4.0..1.5.0: 1 added\n",
		"delta/1.4.0..1.5.0: 2 changed\n",
		"done   build    delta/1.4.0..1.5.0: built in ",
		"(2.0 KiB)\n",
		"FAILED build    package/1.5.0 after ",
		": boom\n",
		"warning: x\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "partial") {
		t.Error("an unfinished log line was printed")
	}
}

func TestQuietKeepsFailuresAndWarnings(t *testing.T) {
	var b strings.Builder
	p := &Plain{W: &b, Quiet: true}
	p.Start("a", "build").Done("built", nil)
	p.Start("b", "build").Done("", errors.New("boom"))
	p.Printf("warning: w")
	if out := b.String(); strings.Contains(out, "start") || !strings.Contains(out, "boom") || !strings.Contains(out, "warning: w") {
		t.Fatalf("quiet output:\n%s", out)
	}
}
