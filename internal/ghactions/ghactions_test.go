package ghactions

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAnnotationEscaping(t *testing.T) {
	var b strings.Builder
	Annotation{File: "cfg/a,b:c.cue", Line: 3, Col: 7, Title: "release: x", Message: "50% off\nsecond line"}.Write(&b)
	Annotation{Level: "warning", Message: "plain"}.Write(&b)
	want := "::error file=cfg/a%2Cb%3Ac.cue,line=3,col=7,title=release%3A x::50%25 off%0Asecond line\n::warning::plain\n"
	if b.String() != want {
		t.Fatalf("got %q\nwant %q", b.String(), want)
	}
}

func TestOutputsAndSummary(t *testing.T) {
	dir := t.TempDir()
	out, sum := filepath.Join(dir, "out"), filepath.Join(dir, "sum")
	env := func(k string) string {
		return map[string]string{"GITHUB_OUTPUT": out, "GITHUB_STEP_SUMMARY": sum, "GITHUB_ACTIONS": "true"}[k]
	}
	if !Enabled(env) || Enabled(func(string) string { return "" }) {
		t.Fatal("Enabled")
	}
	if err := SetOutputs(env, "one", "1", "multi", "a\nb"); err != nil {
		t.Fatal(err)
	}
	if err := SetOutputs(env, "odd"); err == nil {
		t.Error("odd arguments accepted")
	}
	AppendSummary(env, "# a\n")
	AppendSummary(env, "# b\n")
	got, _ := os.ReadFile(out)
	d := delimiter("a\nb")
	if want := "one=1\nmulti<<" + d + "\na\nb\n" + d + "\n"; string(got) != want {
		t.Errorf("outputs %q, want %q", got, want)
	}
	if s, _ := os.ReadFile(sum); string(s) != "# a\n# b\n" {
		t.Errorf("summary %q", s)
	}
	// Unset variables write nothing and fail nothing.
	none := func(string) string { return "" }
	if err := SetOutputs(none, "a", "b"); err != nil {
		t.Error(err)
	}
	if d := delimiter("x ghadelimiter_" + strings.Repeat("0", 16)); !strings.HasPrefix(d, "ghadelimiter_") {
		t.Error(d)
	}
}
