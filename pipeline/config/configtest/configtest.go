// Package configtest loads configurations written inline in tests, with
// the sections of the modules under test, and compares what comes back.
package configtest

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/relcue/release/pipeline/config"
)

// Valid is the smallest valid configuration: two releases, fixed date.
const Valid = `
product: name: "k2s"
build: sourceDateEpoch: 0
releases: {
	"1.4.0": zip: path: "a.zip"
	"1.5.0": zip: path: "b.zip"
}
`

// NoEnv keeps tests independent of the SOURCE_DATE_EPOCH of whoever runs
// them.
func NoEnv(string) string { return "" }

// EnvEpoch is an environment with SOURCE_DATE_EPOCH=v and nothing else.
func EnvEpoch(v string) func(string) string {
	return func(k string) string {
		if k == "SOURCE_DATE_EPOCH" {
			return v
		}
		return ""
	}
}

// Write writes src, after a package clause, as release.cue in a new
// directory and returns the directory.
func Write(t testing.TB, src string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "release.cue"), []byte("package "+config.Package+"\n"+src), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// CheckErrors loads src (after a package clause) with sections and
// requires exactly the error lines want, whose file names are relative to
// the configuration directory (RELDIR/ stands for it inside a message).
func CheckErrors(t testing.TB, src, env string, want []string, sections []config.Section) {
	t.Helper()
	dir := Write(t, src)
	_, err := config.Load(dir, config.LoadOptions{Env: EnvEpoch(env), Sections: sections})
	if err == nil {
		t.Fatal("loaded without error")
	}
	var e *config.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %T %v, want *config.Error", err, err)
	}
	var full []string
	for _, w := range want {
		w = strings.ReplaceAll(w, "RELDIR/", dir+string(filepath.Separator))
		full = append(full, dir+string(filepath.Separator)+w)
	}
	if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, full) {
		t.Fatalf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(full, "\n"))
	}
	// Every line's position is the user's file, for annotations.
	for i, p := range e.Positions() {
		if p.File != filepath.Join(dir, "release.cue") || p.Line == 0 || p.Col == 0 {
			t.Errorf("problem %d: position %v", i, p)
		}
	}
}

// Equal fails unless got and want are deeply equal, showing both as
// indented JSON, which shows where they differ.
func Equal(t testing.TB, got, want any) {
	t.Helper()
	if reflect.DeepEqual(got, want) {
		return
	}
	g, _ := json.MarshalIndent(got, "", "  ")
	w, _ := json.MarshalIndent(want, "", "  ")
	t.Fatalf("got:\n%s\nwant:\n%s", g, w)
}
