package applydelta_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relcue/release/internal/peers"
	"github.com/relcue/release/modules/applydelta"
)

// k2s is the profile's default (cue/schema/deltas.cue, #K2sApplyScript).
var k2s = applydelta.Settings{
	Module:   "lib/modules/k2s/k2s.cluster.module/update/update.module.psm1",
	Function: "PerformClusterUpdate",
	Preload: []string{"lib/modules/k2s/k2s.infra.module/k2s.infra.module.psm1",
		"lib/modules/k2s/k2s.cluster.module/k2s.cluster.module.psm1", "addons/addons.module.psm1"},
}

// TestScriptParses: every Apply-Delta.ps1 release writes is PowerShell the
// tree-sitter grammar parses without an ERROR or MISSING node, with paths
// that need quoting too; and the grammar does find them in a script that
// is cut short, so the check can fail.
func TestScriptParses(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]applydelta.Settings{
		"k2s":    k2s,
		"quotes": {Module: "lib/it's/ü‘pdate’.psm1", Function: "Update-Product_2", Preload: []string{"a b/$(x)/`n.psm1", "c'd.psm1"}},
		"bare":   {Module: "update.psm1", Function: "Go"},
	}
	var files []string
	for name, s := range cases {
		b, err := applydelta.Script(s)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		p := filepath.Join(dir, name+".ps1")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, p)
	}
	good, _ := applydelta.Script(k2s)
	cut := filepath.Join(dir, "cut.ps1")
	if err := os.WriteFile(cut, good[:bytes.Index(good, []byte("} catch {"))], 0o644); err != nil {
		t.Fatal(err)
	}
	problems := peers.PowerShellProblems(t, append(files, cut)...)
	for _, f := range files {
		if p := problems[f]; len(p) > 0 {
			t.Errorf("%s does not parse: %v", filepath.Base(f), p)
		}
	}
	if len(problems[cut]) == 0 {
		t.Error("the grammar found nothing wrong with a script cut short")
	}
}

// TestScriptForm: Windows PowerShell 5.1 reads a script without a byte
// order mark as ANSI, so the script has one, and CRLF line ends; a quote in
// a path is doubled, as PowerShell's single-quoted strings need.
func TestScriptForm(t *testing.T) {
	b, err := applydelta.Script(applydelta.Settings{Module: "lib/it's.psm1", Function: "Go", Preload: []string{"x/’y.psm1"}})
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if !strings.HasPrefix(s, "\uFEFF<#\r\n") {
		t.Errorf("starts with %q", s[:10])
	}
	if strings.Contains(strings.ReplaceAll(s, "\r\n", ""), "\n") || strings.Contains(strings.ReplaceAll(s, "\r\n", ""), "\r") {
		t.Error("a line ends with something else than CRLF")
	}
	for _, want := range []string{`'lib\it''s.psm1'`, `'x\’’y.psm1'`, `& 'Go' -ShowLogs:$ShowLogs`} {
		if !strings.Contains(s, want) {
			t.Errorf("lacks %s", want)
		}
	}
	for _, bad := range []applydelta.Settings{
		{Module: "a.psm1", Function: "Go; Remove-Item C:\\"},
		{Module: "a.psm1", Function: ""},
		{Module: "a\n.psm1", Function: "Go"},
		{Module: "", Function: "Go"},
		{Module: "a.psm1", Function: "Go", Preload: []string{"b\r.psm1"}},
	} {
		if _, err := applydelta.Script(bad); err == nil {
			t.Errorf("%+v was accepted", bad)
		}
	}
}
