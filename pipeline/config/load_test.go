package config

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	cueschema "github.com/relcue/release/cue"
)

// noEnv keeps tests independent of the SOURCE_DATE_EPOCH of whoever runs them.
func noEnv(string) string { return "" }

func envEpoch(v string) func(string) string {
	return func(k string) string {
		if k == "SOURCE_DATE_EPOCH" {
			return v
		}
		return ""
	}
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// equal compares models as indented JSON, which shows where they differ.
func equal(t *testing.T, got, want any) {
	t.Helper()
	if reflect.DeepEqual(got, want) {
		return
	}
	g, _ := json.MarshalIndent(got, "", "  ")
	w, _ := json.MarshalIndent(want, "", "  ")
	t.Fatalf("got:\n%s\nwant:\n%s", g, w)
}

func TestLoadValid(t *testing.T) {
	m, err := Load("testdata/valid", LoadOptions{Env: envEpoch("1")})
	if err != nil {
		t.Fatal(err)
	}
	dir := mustAbs(t, "testdata/valid")
	rel := func(line, col int) Pos { return Pos{File: "testdata/valid/release.cue", Line: line, Col: col} }
	del := func(line, col int) Pos { return Pos{File: "testdata/valid/deltas.cue", Line: line, Col: col} }
	skip := []string{"etc/kubernetes/pki/**", "var/lib/kubelet/**"}
	want := &Model{
		Dir:     dir,
		Product: Product{Name: "k2s", Vendor: "Example", Profile: ProfileGeneric},
		Build: Build{
			Dist: filepath.Join(dir, "out", "dist"),
			// build.date wins over SOURCE_DATE_EPOCH.
			Date:             time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
			CompressionLevel: 9,
			Reuse:            true,
			Paths:            "windows",
		},
		Releases: map[string]*Release{
			"1.3.0": {
				Version: "1.3.0",
				Zip: &Source{
					Path:   filepath.Join(dir, "packages", "k2s-1.3.0.zip"),
					SHA256: strings.Repeat("1", 64),
					Pos:    rel(15, 11),
				},
				Pos: rel(15, 2),
			},
			"1.4.0": {
				Version: "1.4.0",
				Zip: &Source{
					URL:    "https://downloads.example.com/k2s-1.4.0.zip",
					SHA256: strings.Repeat("2", 64),
					Pos:    rel(19, 11),
				},
				Pos: rel(19, 2),
			},
			"1.4.1": {
				Version: "1.4.1",
				Inputs: []Input{
					{Dir: filepath.Join(dir, "trees", "1.4.1"), Pos: rel(24, 3)},
					{Dir: filepath.Join(dir, "trees", "addons"), Dest: "addons", Pos: rel(25, 3)},
					{
						File: &Source{
							URL:    "https://downloads.example.com/kubectl-1.31.2.exe",
							SHA256: strings.Repeat("3", 64),
							Pos:    rel(27, 4),
						},
						Dest: "bin/kube/kubectl.exe",
						Mode: 0o755,
						Pos:  rel(26, 3),
					},
				},
				Pos: rel(23, 2),
			},
			"1.5.0": {
				Version: "1.5.0",
				Inputs: []Input{
					{Dir: filepath.Join(dir, "trees", "1.5.0"), Pos: rel(36, 3)},
					{
						File: &Source{Path: filepath.Join(dir, "VERSION-1.5.0"), Pos: rel(37, 4)},
						Dest: "VERSION",
						Pos:  rel(37, 3),
					},
				},
				Pos: rel(35, 2),
			},
		},
		Versions: []string{"1.3.0", "1.4.0", "1.4.1", "1.5.0"},
		Deltas: []DeltaPath{
			// Explicit, with its own wholeDirectories; the policy also
			// yields nothing else for 1.4.0 because only the latest of the
			// previous minor is a base.
			{From: "1.4.0", To: "1.5.0", Mode: "file", WholeDirectories: []string{"bin/cni", "bin/kube"},
				Skip: skip, SkipNames: []string{}, Origin: OriginExplicit, Pos: del(7, 3)},
			{From: "1.4.1", To: "1.5.0", Mode: "file", WholeDirectories: []string{"bin/cni"},
				Skip: skip, SkipNames: []string{}, Origin: "policy 0", Pos: del(10, 3)},
		},
		DeltaLayout: DeltaLayout{Always: []string{}},
	}
	equal(t, m, want)
}

func TestLoadMinimalAppliesDefaults(t *testing.T) {
	m, err := Load("testdata/minimal", LoadOptions{Env: envEpoch("1700000000")})
	if err != nil {
		t.Fatal(err)
	}
	dir := mustAbs(t, "testdata/minimal")
	want := &Model{
		Dir:     dir,
		Product: Product{Name: "edge", Profile: ProfileGeneric},
		Build: Build{
			Dist:             filepath.Join(dir, "dist"),
			Date:             time.Unix(1700000000, 0).UTC(),
			CompressionLevel: 6,
			Reuse:            true,
			Paths:            "windows",
		},
		Releases: map[string]*Release{
			"0.1.0": {
				Version: "0.1.0",
				Zip: &Source{
					Path: filepath.Join(dir, "edge-0.1.0.zip"),
					Pos:  Pos{File: "testdata/minimal/release.cue", Line: 4, Col: 20},
				},
				Pos: Pos{File: "testdata/minimal/release.cue", Line: 4, Col: 11},
			},
		},
		Versions:    []string{"0.1.0"},
		DeltaLayout: DeltaLayout{Always: []string{}},
	}
	equal(t, m, want)
}

// Delta defaults and per-path overrides, where the defaults come from the
// schema (K2s's skip list) rather than the user.
func TestDeltaOptionDefaultsAndOverrides(t *testing.T) {
	dir := writeConfig(t, `
product: name: "k2s"
releases: {
	"1.0.0": zip: path: "a.zip"
	"1.1.0": zip: path: "b.zip"
	"1.2.0": zip: path: "c.zip"
}
deltas: paths: [
	{from: "1.0.0", to: "1.2.0"},
	{from: "1.1.0", to: "1.2.0", skip: [], wholeDirectories: ["bin/cni", "bin/kube"]},
]
`)
	m, err := Load(dir, LoadOptions{Env: envEpoch("0")})
	if err != nil {
		t.Fatal(err)
	}
	k2sSkip := []string{
		"config",
		"etc/kubernetes/bootstrap-kubelet.conf",
		"etc/kubernetes/pki/**",
		"var/lib/kubelet/config.yaml",
		"var/lib/kubelet/pki/**",
		"addons/*/*.tar",
	}
	if len(m.Deltas) != 2 {
		t.Fatalf("deltas %+v, want 2", m.Deltas)
	}
	d0, d1 := m.Deltas[0], m.Deltas[1]
	equal(t, []any{d0.Mode, d0.WholeDirectories, d0.Skip}, []any{"file", []string{"bin/cni"}, k2sSkip})
	// An empty list set on a path replaces the default: nothing is skipped.
	equal(t, []any{d1.Mode, d1.WholeDirectories, d1.Skip}, []any{"file", []string{"bin/cni", "bin/kube"}, []string{}})
	if !m.Build.Date.Equal(time.Unix(0, 0)) {
		t.Errorf("date %v, want the epoch", m.Build.Date)
	}
}

func TestDeltaListsAreNotShared(t *testing.T) {
	dir := writeConfig(t, `
product: name: "k2s"
build: sourceDateEpoch: 0
releases: {
	"1.0.0": zip: path: "a.zip"
	"1.1.0": zip: path: "b.zip"
	"1.2.0": zip: path: "c.zip"
}
deltas: policies: [{from: "all-earlier"}]
`)
	m, err := Load(dir, LoadOptions{Env: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	m.Deltas[0].Skip[0] = "changed"
	m.Deltas[0].WholeDirectories[0] = "changed"
	if m.Deltas[1].Skip[0] == "changed" || m.Deltas[1].WholeDirectories[0] == "changed" {
		t.Fatal("deltas share their option lists")
	}
}

func TestBuildDate(t *testing.T) {
	for _, tc := range []struct {
		name, build, env string
		want             time.Time
	}{
		{"date", `build: date: "2024-02-29T12:30:45+01:00"`, "5", time.Date(2024, 2, 29, 11, 30, 45, 0, time.UTC)},
		{"fractions dropped", `build: date: "2024-02-29T12:30:45.999Z"`, "", time.Date(2024, 2, 29, 12, 30, 45, 0, time.UTC)},
		{"sourceDateEpoch over env", `build: sourceDateEpoch: 86400`, "5", time.Date(1970, 1, 2, 0, 0, 0, 0, time.UTC)},
		{"env", ``, "1735689600", time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeConfig(t, "product: name: \"k2s\"\nreleases: \"1.0.0\": zip: path: \"a.zip\"\n"+tc.build+"\n")
			m, err := Load(dir, LoadOptions{Env: envEpoch(tc.env)})
			if err != nil {
				t.Fatal(err)
			}
			if !m.Build.Date.Equal(tc.want) || m.Build.Date.Location() != time.UTC {
				t.Fatalf("date %v, want %v in UTC", m.Build.Date, tc.want)
			}
		})
	}
}

// writeConfig writes src, after a package clause, as release.cue in a new
// directory and returns the directory.
func writeConfig(t *testing.T, src string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "release.cue"), []byte("package release\n"+src), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

const valid = `
product: name: "k2s"
build: sourceDateEpoch: 0
releases: {
	"1.4.0": zip: path: "a.zip"
	"1.5.0": zip: path: "b.zip"
}
`

// Each case's src follows "package release" on line 1, so its first line
// is line 2. want holds the exact lines of the error, with file names
// relative to the config directory.
var errorCases = []struct {
	name string
	src  string
	env  string
	want []string
}{
	{
		name: "type error",
		src: `product: name: 3
releases: "1.0.0": zip: path: "a.zip"
build: sourceDateEpoch: 0
`,
		want: []string{`release.cue:2:16: product.name: conflicting values 3 and =~"^[a-z0-9][a-z0-9._-]*$" (mismatched types int and string)`},
	},
	{
		name: "schema constraint",
		src: `product: name: "K2s"
releases: "1.0.0": zip: path: "a.zip"
build: sourceDateEpoch: 0
`,
		want: []string{`release.cue:2:16: product.name: invalid value "K2s" (out of bound =~"^[a-z0-9][a-z0-9._-]*$")`},
	},
	{
		name: "unknown field top level",
		src:  valid + "relases: {}\n",
		want: []string{`release.cue:9:1: relases: field not allowed (allowed: product, build, releases, deltas, os, addons, registry, gitops, rollout, signing)`},
	},
	{
		name: "unknown fields nested, reported with other errors",
		src: `product: {name: "k2s", colour: "red"}
build: sourceDateEpoch: 0
releases: "1.0.0": zip: {path: "a.zip", sha256: "abc"}
releases: "1.1.0": inputs: [{dir: "x", dst: "y"}]
deltas: policies: [{from: "same-minor", to: "newest", skip: ["a"], extra: 1}]
`,
		want: []string{
			`release.cue:2:24: product.colour: field not allowed (allowed: name, vendor, profile)`,
			`release.cue:4:49: releases."1.0.0".zip.sha256: invalid value "abc" (out of bound =~"^[0-9a-f]{64}$")`,
			`release.cue:5:40: releases."1.1.0".inputs[0].dst: field not allowed (allowed: dir, file, dest, mode)`,
			`release.cue:6:68: deltas.policies[0].extra: field not allowed (allowed: from, mode, to, wholeDirectories, skip, skipNames)`,
		},
	},
	{
		name: "missing required fields",
		src: `product: vendor: "x"
build: sourceDateEpoch: 0
deltas: paths: [{from: "1.0.0"}]
`,
		want: []string{
			`release.cue:1:1: releases: field is required but not present`,
			`release.cue:2:1: product.name: field is required but not present`,
			`release.cue:4:17: deltas.paths[0].to: field is required but not present`,
		},
	},
	{
		name: "default that does not fit",
		src: valid + `build: compression: level: 12
deltas: policies: [{from: "previous"}]
deltas: defaults: skip: "addons"
`,
		want: []string{
			`release.cue:9:28: build.compression.level: invalid value 12 (want *6 | uint & >=1 & <=9)`,
			`release.cue:10:27: deltas.policies[0].from: invalid value "previous" (want "previous-minor" | "previous-minor-latest" | "same-minor" | "all-earlier")`,
			`release.cue:11:25: deltas.defaults.skip: conflicting values "addons" and [...string] (mismatched types string and list)`,
		},
	},
	{
		name: "unknown path policy",
		src:  valid + `build: paths: "dos"` + "\n",
		want: []string{
			`release.cue:9:15: build.paths: invalid value "dos" (want *"windows" | "posix")`,
		},
	},
	{
		name: "undeclared version",
		src:  valid + `deltas: paths: [{from: "1.3.0", to: "1.5.0"}, {from: "1.4.0", to: "1.6.0"}]` + "\n",
		want: []string{
			`release.cue:9:24: deltas.paths[0].from: delta 1.3.0..1.5.0: release 1.3.0 is not declared in releases; declare it or remove the path`,
			`release.cue:9:67: deltas.paths[1].to: delta 1.4.0..1.6.0: release 1.6.0 is not declared in releases; declare it or remove the path`,
		},
	},
	{
		name: "self delta",
		src:  valid + `deltas: paths: [{from: "1.5.0", to: "1.5.0"}]` + "\n",
		want: []string{`release.cue:9:17: deltas.paths[0]: delta 1.5.0..1.5.0: from and to are the same release; remove the path`},
	},
	{
		name: "downgrade delta",
		src:  valid + `deltas: paths: [{from: "1.4.0", to: "1.5.0"}, {from: "1.5.0", to: "1.4.0"}]` + "\n",
		want: []string{`release.cue:9:47: deltas.paths[1]: delta 1.5.0..1.4.0: 1.5.0 is not older than 1.4.0; deltas go forward; cyclic or downgrade paths are not supported`},
	},
	{
		name: "duplicate delta",
		src:  valid + "deltas: paths: [{from: \"1.4.0\", to: \"1.5.0\"},\n\t{from: \"1.4.0\", to: \"1.5.0\"}]\n",
		want: []string{`release.cue:10:2: deltas.paths[1]: delta 1.4.0..1.5.0 is listed twice (also at RELDIR/release.cue:9:17); remove one`},
	},
	{
		name: "bad semver keys",
		src: valid + `releases: "v1.6.0": zip: path: "c.zip"
releases: "1.7": zip: path: "d.zip"
releases: "1.8.0+a": zip: path: "e.zip"
releases: "1.8.0+b": zip: path: "f.zip"
`,
		want: []string{
			`release.cue:9:11: releases."v1.6.0": use "1.6.0": versions are X.Y.Z without a leading v`,
			`release.cue:10:11: releases."1.7": "1.7" is not a semver version X.Y.Z[-pre][+build]; use X.Y.Z without a leading v`,
			`release.cue:12:11: releases."1.8.0+b": 1.8.0+a and 1.8.0+b differ only in build metadata, which semver ignores when ordering, so deltas between them have no direction; keep one`,
		},
	},
	{
		name: "bad sha256",
		src:  valid + `releases: "1.6.0": zip: {url: "https://example.com/k2s.zip", sha256: "ABCDEF"}` + "\n",
		want: []string{`release.cue:9:70: releases."1.6.0".zip.sha256: invalid value "ABCDEF" (out of bound =~"^[0-9a-f]{64}$")`},
	},
	{
		name: "both zip and inputs",
		src:  valid + `releases: "1.6.0": {zip: path: "c.zip", inputs: [{dir: "tree"}]}` + "\n",
		want: []string{`release.cue:9:11: releases."1.6.0": set either zip or inputs, not both`},
	},
	{
		name: "neither zip nor inputs, and no inputs",
		src:  valid + "releases: \"1.6.0\": {}\nreleases: \"1.7.0\": inputs: []\n",
		want: []string{
			`release.cue:9:11: releases."1.6.0": set zip (an existing full package) or inputs (to assemble one)`,
			`release.cue:10:20: releases."1.7.0".inputs: no inputs; list at least one, or use zip`,
		},
	},
	{
		name: "sources",
		src: valid + `releases: "1.6.0": inputs: [
	{file: {url: "https://example.com/kubectl"}, dest: "bin/kubectl"},
	{file: {}, dest: "a"},
	{file: {path: "x", url: "https://example.com/x"}, dest: "b"},
	{file: {url: "ftp://example.com/x", sha256: "` + strings.Repeat("0", 64) + `"}, dest: "c"},
]
`,
		want: []string{
			`release.cue:10:3: releases."1.6.0".inputs[0].file: url without sha256: a download must be pinned to be reproducible; add sha256 (the file's sha256sum), or use path for a local file`,
			`release.cue:11:3: releases."1.6.0".inputs[1].file: set path (a local file) or url (a download, with sha256)`,
			`release.cue:12:3: releases."1.6.0".inputs[2].file: set either path or url, not both`,
			`release.cue:12:3: releases."1.6.0".inputs[2].file: url without sha256: a download must be pinned to be reproducible; add sha256 (the file's sha256sum), or use path for a local file`,
			`release.cue:13:15: releases."1.6.0".inputs[3].file.url: "ftp://example.com/x" is not an http or https URL`,
		},
	},
	{
		name: "inputs",
		src: valid + `releases: "1.6.0": inputs: [
	{},
	{dir: "a", file: {path: "b"}, dest: "x"},
	{file: {path: "b"}},
	{dir: "a", mode: 0o755},
]
`,
		want: []string{
			`release.cue:10:2: releases."1.6.0".inputs[0]: set dir (a directory tree) or file (a single file)`,
			`release.cue:11:2: releases."1.6.0".inputs[1]: set either dir or file, not both`,
			`release.cue:12:2: releases."1.6.0".inputs[2].dest: a file input needs dest, the file's path in the tree (e.g. "bin/tool.exe")`,
			`release.cue:13:19: releases."1.6.0".inputs[3].mode: mode applies to file inputs only; a directory's files keep their own modes`,
		},
	},
	{
		name: "unsafe dest",
		src: valid + `releases: "1.6.0": inputs: [
	{dir: "a", dest: "../etc"},
	{dir: "a", dest: "/etc"},
	{dir: "a", dest: "C:/Windows"},
	{dir: "a", dest: "bin\\kube"},
	{dir: "a", dest: "bin/"},
	{dir: "a", dest: "."},
	{file: path: "a", dest: "."},
]
`,
		want: []string{
			`release.cue:10:19: releases."1.6.0".inputs[0].dest: "../etc" contains ".."; paths must stay inside the tree`,
			`release.cue:11:19: releases."1.6.0".inputs[1].dest: "/etc" is absolute; write it relative to the tree root`,
			`release.cue:12:19: releases."1.6.0".inputs[2].dest: "C:/Windows" is absolute; write it relative to the tree root`,
			`release.cue:13:19: releases."1.6.0".inputs[3].dest: "bin\\kube" contains a backslash; use forward slashes`,
			`release.cue:14:19: releases."1.6.0".inputs[4].dest: "bin/" is not in clean form; write "bin"`,
			`release.cue:15:19: releases."1.6.0".inputs[5].dest: ".": write "" for the tree root`,
			`release.cue:16:26: releases."1.6.0".inputs[6].dest: "." names the tree root; name a path inside it`,
		},
	},
	{
		name: "unsafe delta options",
		src: valid + `deltas: defaults: skip: ["etc/**", "a/**b", "[x", "../x"]
deltas: paths: [{from: "1.4.0", to: "1.5.0", wholeDirectories: ["bin/cni", "/bin/kube", ""]}]
`,
		want: []string{
			`release.cue:9:36: deltas.defaults.skip[1]: invalid pattern: pattern "a/**b": ** must be a whole path segment`,
			`release.cue:9:45: deltas.defaults.skip[2]: invalid pattern: pattern "[x": syntax error in pattern`,
			`release.cue:9:51: deltas.defaults.skip[3]: "../x" contains ".."; paths must stay inside the tree`,
			`release.cue:10:76: deltas.paths[0].wholeDirectories[1]: "/bin/kube" is absolute; write it relative to the tree root`,
			`release.cue:10:89: deltas.paths[0].wholeDirectories[2]: empty path; name a path relative to the tree root`,
		},
	},
	{
		name: "no date",
		src:  "product: name: \"k2s\"\nreleases: \"1.0.0\": zip: path: \"a.zip\"\n",
		want: []string{`release.cue:1:1: build: no build date: reproducible artifacts need a fixed one; set build.date (e.g. "2025-01-01T00:00:00Z") or build.sourceDateEpoch, or the SOURCE_DATE_EPOCH environment variable`},
	},
	{
		name: "bad SOURCE_DATE_EPOCH",
		src:  "product: name: \"k2s\"\nreleases: \"1.0.0\": zip: path: \"a.zip\"\nbuild: dist: \"out\"\n",
		env:  "yesterday",
		want: []string{`release.cue:4:1: build: SOURCE_DATE_EPOCH="yesterday" is not a number of seconds since 1970 (0..253402300799); fix the environment variable or set build.date`},
	},
	{
		name: "bad date, and both dates",
		src: "product: name: \"k2s\"\nreleases: \"1.0.0\": zip: path: \"a.zip\"\n" +
			"build: date: \"2025-01-01\"\n" +
			"build: sourceDateEpoch: 0\n",
		want: []string{`release.cue:4:14: build.date: set build.date or build.sourceDateEpoch, not both`},
	},
	{
		name: "date not RFC 3339",
		src:  "product: name: \"k2s\"\nreleases: \"1.0.0\": zip: path: \"a.zip\"\nbuild: date: \"2025-01-01\"\n",
		want: []string{`release.cue:4:14: build.date: "2025-01-01" is not an RFC 3339 date-time; write it like "2025-01-01T00:00:00Z"`},
	},
	{
		name: "empty dist",
		src:  valid + `build: dist: ""` + "\n",
		want: []string{`release.cue:9:14: build.dist: empty; name the output directory, e.g. "dist"`},
	},
	{
		name: "conflict between the user's own values",
		src:  valid + `product: name: "k3s"` + "\n",
		want: []string{`release.cue:3:16: product.name: conflicting values "k3s" and "k2s"`},
	},
	{
		name: "signing with no extensions",
		src:  valid + "signing: authenticode: extensions: []\n",
		want: []string{`release.cue:9:24: signing.authenticode.extensions: is empty; list the extensions to sign, e.g. [".exe", ".ps1"], or remove authenticode`},
	},
	{
		name: "signing with a timestamp URL that is not http(s)",
		src:  valid + "signing: authenticode: timestampURL: \"ftp://tsa.example\"\n",
		want: []string{`release.cue:9:38: signing.authenticode.timestampURL: "ftp://tsa.example" is not an http(s) URL of an RFC 3161 time-stamping service`},
	},
	{
		name: "signing with a password in the configuration",
		src:  valid + "signing: authenticode: password: \"hunter2\"\n",
		want: []string{`release.cue:9:24: signing.authenticode.password: field not allowed (allowed: extensions, timestampURL, description, url)`},
	},
	{
		name: "syntax error",
		src:  valid + "deltas: {\n",
		want: []string{`release.cue:9:11: expected '}', found 'EOF'`},
	},
}

func TestErrors(t *testing.T) {
	for _, tc := range errorCases {
		t.Run(tc.name, func(t *testing.T) {
			checkErrorCase(t, tc.src, tc.env, tc.want)
		})
	}
}

// checkErrorCase loads src (after a package clause) and requires exactly
// the error lines want, file names relative to the config directory.
func checkErrorCase(t *testing.T, src, env string, want []string) {
	t.Helper()
	dir := writeConfig(t, src)
	_, err := Load(dir, LoadOptions{Env: envEpoch(env)})
	if err == nil {
		t.Fatal("loaded without error")
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %T %v, want *Error", err, err)
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

// Files below the working directory are named relative to it, as cue vet
// does, so that the lines are short and work as GitHub annotations.
func TestErrorNamesFilesRelativeToWorkingDirectory(t *testing.T) {
	_, err := Load("testdata/bad-deltas", LoadOptions{Env: noEnv})
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v, want *Error", err)
	}
	want := []string{
		"testdata/bad-deltas/release.cue:10:9: deltas.paths[0].from: delta 1.3.0..1.5.0: release 1.3.0 is not declared in releases; declare it or remove the path",
		"testdata/bad-deltas/release.cue:11:2: deltas.paths[1]: delta 1.5.0..1.4.0: 1.5.0 is not older than 1.4.0; deltas go forward; cyclic or downgrade paths are not supported",
	}
	if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, want) {
		t.Fatalf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	wantPos := []Pos{
		{File: "testdata/bad-deltas/release.cue", Line: 10, Col: 9},
		{File: "testdata/bad-deltas/release.cue", Line: 11, Col: 2},
	}
	equal(t, e.Positions(), wantPos)
}

// A schema violation keeps the schema's position as related, apart from the
// user's position that the line starts with.
func TestProblemRelatedNamesSchema(t *testing.T) {
	dir := writeConfig(t, valid+`releases: "1.6.0": zip: {path: "a", sha256: "x"}`+"\n")
	_, err := Load(dir, LoadOptions{})
	var e *Error
	if !errors.As(err, &e) || len(e.Problems) != 1 {
		t.Fatalf("error %v, want one problem", err)
	}
	p := e.Problems[0]
	if p.Path != `releases."1.6.0".zip.sha256` {
		t.Errorf("path %q", p.Path)
	}
	found := false
	for _, r := range p.Related {
		found = found || r.File == cueschema.FilePrefix+"schema/release.cue"
	}
	if !found {
		t.Errorf("related %v, want a position in %sschema/release.cue", p.Related, cueschema.FilePrefix)
	}
}

func TestDirectoryProblems(t *testing.T) {
	empty := t.TempDir()
	wrong := t.TempDir()
	for name, src := range map[string]string{"a.cue": "package other\n\nx: 1\n", "b.cue": "x: 1\n"} {
		if err := os.WriteFile(filepath.Join(wrong, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	missing := filepath.Join(empty, "nope")
	for _, tc := range []struct {
		dir  string
		want []string
	}{
		{missing, []string{missing + ": configuration directory does not exist"}},
		{empty, []string{empty + ": no .cue files; a release configuration is a directory of .cue files in package release"}},
		{"load.go", []string{"load.go: not a directory; pass the directory that holds the .cue files of package release"}},
		{wrong, []string{
			filepath.Join(wrong, "a.cue") + ":1:1: package other; configuration files are package release",
			filepath.Join(wrong, "b.cue") + `:1:1: no package clause; start the file with "package release"`,
		}},
	} {
		_, err := Load(tc.dir, LoadOptions{Env: noEnv})
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("%s: error %v, want *Error", tc.dir, err)
			continue
		}
		if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got:\n%s\nwant:\n%s", tc.dir, strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
		}
	}
}

// Helpers defined by the user (definitions, hidden fields) are not
// configuration fields, so closedness must not reject them.
func TestUserHelpersAllowed(t *testing.T) {
	dir := writeConfig(t, `
#Zip: {path: string}
_base: "pkgs"
product: name: "k2s"
build: sourceDateEpoch: 0
releases: "1.0.0": zip: #Zip & {path: _base + "/k2s-1.0.0.zip"}
`)
	m, err := Load(dir, LoadOptions{Env: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := m.Releases["1.0.0"].Zip.Path, filepath.Join(dir, "pkgs", "k2s-1.0.0.zip"); got != want {
		t.Fatalf("zip path %q, want %q", got, want)
	}
}
