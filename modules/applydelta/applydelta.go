// Package applydelta writes Apply-Delta.ps1, the entry point at the root of
// a K2s cluster delta. K2s's own delta tool ships one
// (Siemens-Healthineers/K2s, lib/scripts/k2s/system/package/
// New-K2sDelta.Mandatory.ps1, from scripts/Apply-Delta.template.ps1): it
// finds delta-manifest.json and the update module beside itself, imports
// the module and calls PerformClusterUpdate from the delta's root, with
// the same exit codes 1 to 5. Release's does more before anything
// changes: it finds the installation, refuses one whose VERSION is not the
// delta's base, and checks the SHA-256 of every installed file the delta
// relies on (the manifest's Files.Base); it loads the installed modules
// the update module needs, as K2s's Start-ClusterUpdate.ps1 does, and
// judges the update by its last output only.
//
// The script runs on Windows PowerShell 5.1: it is written with a UTF-8
// byte order mark (without one, 5.1 reads a script as ANSI) and CRLF line
// ends.
package applydelta

import (
	"bytes"
	_ "embed"
	"fmt"
	"regexp"
	"strings"
	"text/template"
)

// Name is the script's name at the root of the delta.
const Name = "Apply-Delta.ps1"

// Settings say what the script hands over to.
type Settings struct {
	// Module is the delta's path (forward slashes) of the update module.
	Module string `json:"module"`
	// Function is the update function the module exports.
	Function string `json:"function"`
	// Preload are installation paths (forward slashes) of modules
	// imported first, when present.
	Preload []string `json:"preload"`
}

//go:embed Apply-Delta.ps1.tmpl
var text string

var script = template.Must(template.New(Name).Parse(text))

var functionRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]*$`)

// Script returns the bytes of Apply-Delta.ps1 for s.
func Script(s Settings) ([]byte, error) {
	if !functionRE.MatchString(s.Function) {
		return nil, fmt.Errorf("%s: function %q is not a PowerShell function name", Name, s.Function)
	}
	data := struct {
		Module, Function string
		Preload          []string
	}{Function: s.Function}
	var err error
	if data.Module, err = quoted(s.Module); err != nil {
		return nil, err
	}
	for _, p := range s.Preload {
		q, err := quoted(p)
		if err != nil {
			return nil, err
		}
		data.Preload = append(data.Preload, q)
	}
	var buf bytes.Buffer
	buf.WriteString("\uFEFF")
	if err := script.Execute(&buf, data); err != nil {
		return nil, fmt.Errorf("%s: %w", Name, err)
	}
	return []byte(strings.ReplaceAll(buf.String(), "\n", "\r\n")), nil
}

// quoted turns a forward-slash path into the inside of a PowerShell
// single-quoted string. PowerShell ends such a string at any of four
// quote characters; a doubled one stands for itself.
func quoted(p string) (string, error) {
	if p == "" || strings.ContainsAny(p, "\x00\r\n") {
		return "", fmt.Errorf("%s: path %q cannot be written into the script", Name, p)
	}
	var b strings.Builder
	for _, r := range strings.ReplaceAll(p, "/", `\`) {
		switch r {
		case '\'', '\u2018', '\u2019', '\u201A', '\u201B':
			b.WriteRune(r)
		}
		b.WriteRune(r)
	}
	return b.String(), nil
}
