// Package ghactions writes what GitHub Actions reads from a step: error
// annotations (workflow commands on stdout), the job summary
// ($GITHUB_STEP_SUMMARY) and step outputs ($GITHUB_OUTPUT). It knows the
// formats, not what release builds.
package ghactions

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
)

// Env looks up environment variables (os.Getenv in the CLI).
type Env func(string) string

// Enabled reports whether the process runs in a GitHub Actions step.
func Enabled(env Env) bool { return env("GITHUB_ACTIONS") == "true" }

// Annotation is one ::error (or ::warning) line.
type Annotation struct {
	Level     string // "error" or "warning"
	File      string
	Line, Col int
	Title     string
	Message   string
}

// Write prints the workflow command.
func (a Annotation) Write(w io.Writer) error {
	level := a.Level
	if level == "" {
		level = "error"
	}
	var props []string
	if a.File != "" {
		props = append(props, "file="+escapeProperty(a.File))
		if a.Line > 0 {
			props = append(props, fmt.Sprintf("line=%d", a.Line))
			if a.Col > 0 {
				props = append(props, fmt.Sprintf("col=%d", a.Col))
			}
		}
	}
	if a.Title != "" {
		props = append(props, "title="+escapeProperty(a.Title))
	}
	cmd := "::" + level
	if len(props) > 0 {
		cmd += " " + strings.Join(props, ",")
	}
	_, err := fmt.Fprintf(w, "%s::%s\n", cmd, escapeData(a.Message))
	return err
}

// escapeData and escapeProperty follow the runner's rules for workflow
// command values, so that a message with a newline or a colon stays one
// annotation.
func escapeData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

func escapeProperty(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}

// AppendSummary adds Markdown to the job summary; nothing when the
// variable is unset.
func AppendSummary(env Env, markdown string) error {
	return appendFile(env("GITHUB_STEP_SUMMARY"), markdown)
}

// SetOutputs writes step outputs in the order given (name, value, name,
// value, ...). Values may span lines: each is written with a delimiter
// that cannot occur in it.
func SetOutputs(env Env, kv ...string) error {
	if len(kv)%2 != 0 {
		return fmt.Errorf("ghactions: odd number of output arguments")
	}
	var b strings.Builder
	for i := 0; i < len(kv); i += 2 {
		name, value := kv[i], kv[i+1]
		if !strings.ContainsAny(value, "\r\n") {
			fmt.Fprintf(&b, "%s=%s\n", name, value)
			continue
		}
		delim := delimiter(value)
		fmt.Fprintf(&b, "%s<<%s\n%s\n%s\n", name, delim, value, delim)
	}
	return appendFile(env("GITHUB_OUTPUT"), b.String())
}

// delimiter is derived from the value, so outputs are reproducible.
func delimiter(value string) string {
	sum := sha256.Sum256([]byte(value))
	d := "ghadelimiter_" + hex.EncodeToString(sum[:8])
	for strings.Contains(value, d) {
		d += "_"
	}
	return d
}

func appendFile(path, data string) error {
	if path == "" {
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("github actions: %w", err)
	}
	if _, err := f.WriteString(data); err != nil {
		f.Close()
		return fmt.Errorf("github actions: %w", err)
	}
	return f.Close()
}
