package config

import (
	"fmt"
	"strings"
	"testing"
)

func pairs(ps [][2]string) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p[0] + ".." + p[1]
	}
	return strings.Join(s, " ")
}

// The versions include a pre-release (ordered before its release) and a
// major bump, whose previous minor is the last minor of the previous major.
func TestExpand(t *testing.T) {
	versions := []string{"1.2.0", "1.2.1", "1.3.0-rc.1", "1.3.0", "1.3.1", "2.0.0"}
	for _, tc := range []struct {
		from, to string
		want     string
	}{
		{FromPreviousMinor, ToNewest, "1.3.0-rc.1..2.0.0 1.3.0..2.0.0 1.3.1..2.0.0"},
		{FromPreviousMinorLatest, ToNewest, "1.3.1..2.0.0"},
		{FromSameMinor, ToNewest, ""},
		{FromAllEarlier, ToNewest, "1.2.0..2.0.0 1.2.1..2.0.0 1.3.0-rc.1..2.0.0 1.3.0..2.0.0 1.3.1..2.0.0"},

		{FromPreviousMinor, ToNewestPerMinor,
			"1.2.0..1.3.1 1.2.1..1.3.1 1.3.0-rc.1..2.0.0 1.3.0..2.0.0 1.3.1..2.0.0"},
		{FromPreviousMinorLatest, ToNewestPerMinor, "1.2.1..1.3.1 1.3.1..2.0.0"},
		{FromSameMinor, ToNewestPerMinor, "1.2.0..1.2.1 1.3.0-rc.1..1.3.1 1.3.0..1.3.1"},
		{FromAllEarlier, ToNewestPerMinor,
			"1.2.0..1.2.1 " +
				"1.2.0..1.3.1 1.2.1..1.3.1 1.3.0-rc.1..1.3.1 1.3.0..1.3.1 " +
				"1.2.0..2.0.0 1.2.1..2.0.0 1.3.0-rc.1..2.0.0 1.3.0..2.0.0 1.3.1..2.0.0"},
	} {
		t.Run(tc.from+"/"+tc.to, func(t *testing.T) {
			if got := pairs(expand(versions, tc.from, tc.to)); got != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestExpandEdges(t *testing.T) {
	for _, tc := range []struct {
		versions []string
		from, to string
		want     string
	}{
		{nil, FromAllEarlier, ToNewest, ""},
		{[]string{"1.0.0"}, FromAllEarlier, ToNewestPerMinor, ""},
		// A pre-release above every release is the newest release.
		{[]string{"1.4.0", "1.4.1", "1.5.0-rc.1"}, FromPreviousMinorLatest, ToNewest, "1.4.1..1.5.0-rc.1"},
		// Minors compare numerically, not as text.
		{[]string{"1.9.0", "1.10.0"}, FromPreviousMinor, ToNewest, "1.9.0..1.10.0"},
		// Build metadata does not start a new minor.
		{[]string{"1.0.0", "1.0.1+build.7"}, FromSameMinor, ToNewestPerMinor, "1.0.0..1.0.1+build.7"},
	} {
		t.Run(fmt.Sprint(tc.versions, tc.from, tc.to), func(t *testing.T) {
			if got := pairs(expand(tc.versions, tc.from, tc.to)); got != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

// Through Load: releases are sorted by semver (not by text), an explicit
// path wins over a policy with the same path, an earlier policy over a later
// one, and the result is sorted by (From, To) in version order.
func TestLoadExpandsPolicies(t *testing.T) {
	dir := writeConfig(t, `
product: name: "k2s"
build: sourceDateEpoch: 0
releases: {
	"1.10.0": zip: path: "d.zip"
	"1.9.0": zip: path: "c.zip"
	"1.9.1": zip: path: "e.zip"
	"1.8.0": zip: path: "b.zip"
}
deltas: {
	paths: [{from: "1.9.1", to: "1.10.0", skip: ["x/**"]}]
	policies: [
		{from: "previous-minor"},
		{from: "all-earlier", to: "newest-per-minor", wholeDirectories: []},
	]
}
`)
	m, err := Load(dir, LoadOptions{Env: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(m.Versions, " "), "1.8.0 1.9.0 1.9.1 1.10.0"; got != want {
		t.Errorf("versions %s, want %s", got, want)
	}
	var got []string
	for _, d := range m.Deltas {
		got = append(got, fmt.Sprintf("%s..%s %s wd=%v skip=%d line=%d", d.From, d.To, d.Origin, d.WholeDirectories, len(d.Skip), d.Pos.Line))
	}
	want := []string{
		"1.8.0..1.9.1 policy 1 wd=[] skip=6 line=15",
		"1.8.0..1.10.0 policy 1 wd=[] skip=6 line=15",
		"1.9.0..1.9.1 policy 1 wd=[] skip=6 line=15",
		"1.9.0..1.10.0 policy 0 wd=[bin/cni] skip=6 line=14",
		"1.9.1..1.10.0 explicit wd=[bin/cni] skip=1 line=12",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
