package config

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/mod/semver"
)

// FuzzLoad loads arbitrary text as a configuration file. Load must not
// panic; it fails with an *Error or returns a model that keeps the
// invariants later stages rely on.
func FuzzLoad(f *testing.F) {
	seeds, err := filepath.Glob("testdata/*/*.cue")
	if err != nil || len(seeds) == 0 {
		f.Fatalf("no seeds in testdata: %v", err)
	}
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	for _, tc := range errorCases {
		f.Add("package release\n" + tc.src)
	}
	f.Fuzz(func(t *testing.T, src string) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "release.cue"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		m, err := Load(dir, LoadOptions{Env: envEpoch("0")})
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || len(e.Problems) == 0 {
				t.Fatalf("error %T %q, want an *Error with problems", err, err)
			}
			return
		}
		checkInvariants(t, m)
	})
}

func checkInvariants(t *testing.T, m *Model) {
	t.Helper()
	if len(m.Versions) != len(m.Releases) {
		t.Fatalf("versions %v for %d releases", m.Versions, len(m.Releases))
	}
	for i, v := range m.Versions {
		r := m.Releases[v]
		if r == nil || r.Version != v {
			t.Fatalf("version %s: release %+v", v, r)
		}
		if (r.Zip == nil) == (len(r.Inputs) == 0) {
			t.Fatalf("release %s: want exactly one of zip and inputs", v)
		}
		if i > 0 && semver.Compare("v"+m.Versions[i-1], "v"+v) >= 0 {
			t.Fatalf("versions not ascending: %v", m.Versions)
		}
	}
	for i, d := range m.Deltas {
		if m.Releases[d.From] == nil || m.Releases[d.To] == nil {
			t.Fatalf("delta %s..%s names an undeclared release", d.From, d.To)
		}
		if semver.Compare("v"+d.From, "v"+d.To) >= 0 {
			t.Fatalf("delta %s..%s does not go forward", d.From, d.To)
		}
		if i > 0 {
			p := m.Deltas[i-1]
			if c := compareVersions(p.From, d.From); c > 0 || c == 0 && compareVersions(p.To, d.To) >= 0 {
				t.Fatalf("deltas not sorted or duplicated: %s..%s before %s..%s", p.From, p.To, d.From, d.To)
			}
		}
		if d.Pos.File == "" || d.Pos.Line == 0 {
			t.Fatalf("delta %s..%s has no position", d.From, d.To)
		}
	}
	if m.Build.Dist == "" || !filepath.IsAbs(m.Build.Dist) {
		t.Fatalf("dist %q is not absolute", m.Build.Dist)
	}
	checkOSInvariants(t, m)
}

// checkOSInvariants holds what the node package modules rely on: every
// OS release is declared, dirs are distinct, one control plane at most
// (modules/all checks the .debs and images of the sections).
func checkOSInvariants(t *testing.T, m *Model) {
	t.Helper()
	if len(m.OSNames) != len(m.OS) || !slices.IsSorted(m.OSNames) {
		t.Fatalf("os names %v for %d OS targets", m.OSNames, len(m.OS))
	}
	dirs := map[string]bool{}
	controlPlanes := 0
	for _, name := range m.OSNames {
		o := m.OS[name]
		if o == nil || o.Name != name || o.Dir == "" || dirs[o.Dir] || len(o.Arch) == 0 || o.Pos.Line == 0 {
			t.Fatalf("os %s: %+v", name, o)
		}
		dirs[o.Dir] = true
		if o.ControlPlane {
			controlPlanes++
		}
		if len(o.Versions) != len(o.Releases) || !slices.IsSortedFunc(o.Versions, compareVersions) {
			t.Fatalf("os %s: versions %v for %d releases", name, o.Versions, len(o.Releases))
		}
		for _, v := range o.Versions {
			if nr := o.Releases[v]; m.Releases[v] == nil || nr == nil || nr.Version != v {
				t.Fatalf("os %s release %s: %+v", name, v, nr)
			}
		}
	}
	if controlPlanes > 1 {
		t.Fatalf("%d control-plane OS targets", controlPlanes)
	}
}
