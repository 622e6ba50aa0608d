package config

import (
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// writeFiles writes files (name -> content after the package clause) to a
// new directory and returns it.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("package "+Package+"\n"+src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const limitsBase = `product: name: "edge"
build: sourceDateEpoch: 0
releases: "0.1.0": zip: path: "edge-0.1.0.zip"
`

// problemsOf requires err to be an *Error and returns its lines.
func problemsOf(t *testing.T, err error) string {
	t.Helper()
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("want a configuration error, got %v", err)
	}
	return ce.Error()
}

// A hidden list evaluates in time that grows with the square of its
// length (RELIABILITY D9: 100,000 numbers took 52 s); loading gives up at
// the deadline with a message that says what to set.
func TestLoadTimeout(t *testing.T) {
	var b strings.Builder
	b.WriteString("_junk: [")
	for i := range 20000 {
		fmt.Fprintf(&b, "%d,\n", 1000000+i)
	}
	b.WriteString("]\n")
	dir := writeFiles(t, map[string]string{"release.cue": limitsBase, "big.cue": b.String()})
	start := time.Now()
	_, err := Load(dir, LoadOptions{Env: noEnv, Limits: Limits{Timeout: 50 * time.Millisecond}})
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("returned after %s; the limit was 50ms", took)
	}
	msg := problemsOf(t, err)
	for _, want := range []string{"took longer than 50ms", "--cue-timeout", "RELEASE_CUE_TIMEOUT", filepath.Base(dir)} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
}

// The files are measured before CUE parses them.
func TestLoadMaxBytes(t *testing.T) {
	dir := writeFiles(t, map[string]string{"release.cue": limitsBase, "notes.cue": "// " + strings.Repeat("x", 4096) + "\n"})
	_, err := Load(dir, LoadOptions{Env: noEnv, Limits: Limits{MaxBytes: 4096}})
	msg := problemsOf(t, err)
	for _, want := range []string{"more than the limit of 4KiB", "--max-config-bytes", "RELEASE_MAX_CONFIG_BYTES"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
	if _, err := Load(dir, LoadOptions{Env: noEnv, Limits: Limits{MaxBytes: 8192}}); err != nil {
		t.Fatalf("under the limit: %v", err)
	}
}

// A chain of a million labels crashed the Go runtime inside CUE with a
// stack overflow (RELIABILITY D10); it is refused before CUE parses it,
// naming the file, line and the limit.
func TestLoadDeepLabelChain(t *testing.T) {
	chain := "_a: " + strings.Repeat("a: ", 1000000) + "1\n"
	dir := writeFiles(t, map[string]string{"release.cue": limitsBase, "chain.cue": chain})
	start := time.Now()
	_, err := Load(dir, LoadOptions{Env: noEnv})
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %s", took)
	}
	msg := problemsOf(t, err)
	if !strings.Contains(msg, "chain.cue:2:") || !strings.Contains(msg, fmt.Sprintf("more than %d levels deep", DefaultMaxDepth)) {
		t.Fatalf("message:\n%s", msg)
	}
}

// A sum of a million terms crashed the runtime as the label chain did.
func TestLoadLongOperatorChain(t *testing.T) {
	dir := writeFiles(t, map[string]string{"release.cue": limitsBase, "sum.cue": "_x: 1" + strings.Repeat(" + 1", 1000000) + "\n"})
	_, err := Load(dir, LoadOptions{Env: noEnv})
	msg := problemsOf(t, err)
	if !strings.Contains(msg, "sum.cue:2:") || !strings.Contains(msg, fmt.Sprintf("chains more than %d operators", DefaultMaxDepth*chainFactor)) {
		t.Fatalf("message:\n%s", msg)
	}
}

func TestCheckDepth(t *testing.T) {
	for _, tc := range []struct {
		src  string
		max  int
		line int // 0: within the limit
	}{
		{"a: b: c: 1\n", 3, 0},
		{"a: b: c: 1\n", 2, 1},
		// A comma, written or implied, ends the field's chain.
		{"a: b: 1\nc: d: 1\ne: f: 1, g: h: 1\n", 2, 0},
		{"x: 1\na: b: c: 1\n", 2, 2},
		// A bracket counts, and restores its depth when it closes.
		{"a: {b: {c: 1}}\nd: e: 1\n", 5, 0},
		{"a: {b: {c: 1}}\n", 4, 1},
		{"a: [{b: 1}, {c: 2}]\n", 4, 0},
		{"a: b: {\n\tc: 1\n\td: e: f: 1\n}\n", 5, 3},
		// Interpolations: the parentheses inside the string nest, and the
		// string's rest is not scanned as tokens.
		{"a: \"x\\(b) y: z: w: \\(c)\"\nd: 1\n", 2, 0},
		{"a: \"\\((((1))))\"\n", 5, 0},
		{"a: \"\\((((1))))\"\n", 4, 1},
		{"a: #\"\\#(b): c: d:\"#\n", 2, 0},
		// Comments are not code.
		{"// a: b: c: d: e:\nx: 1\n", 1, 0},
		// Operators and selectors chain within one expression, at ten times
		// the depth.
		{"a: 1" + strings.Repeat(" + 1", 30) + "\nb: x" + strings.Repeat(".y", 30) + "\n", 3, 0},
		{"a: 1" + strings.Repeat(" | 1", 30) + "\nb: [1" + strings.Repeat(" & 1", 31) + "]\n", 3, 2},
		{"a: (1" + strings.Repeat(" + 1", 30) + ")" + strings.Repeat(" + 1", 30) + "\n", 3, 0},
		// Brackets are bounded as bytes too, loosely, before CUE's scanner
		// recurses into an attribute's.
		{"a: 1 @x(" + strings.Repeat("(", 300) + strings.Repeat(")", 301) + "\n", 4, 0},
		{"a: 1\nb: 1 @x(" + strings.Repeat("(", 300) + strings.Repeat(")", 301) + "\n", 3, 2},
	} {
		err := checkDepth("t.cue", []byte(tc.src), tc.max)
		var de *depthError
		switch {
		case tc.line == 0 && err != nil:
			t.Errorf("%q (max %d): %v", tc.src, tc.max, err)
		case tc.line != 0 && !errors.As(err, &de):
			t.Errorf("%q (max %d): want a depth error, got %v", tc.src, tc.max, err)
		case tc.line != 0 && de.Line != tc.line:
			t.Errorf("%q (max %d): error at line %d, want %d", tc.src, tc.max, de.Line, tc.line)
		}
	}
}

// releases writes n releases spread over minors of 10 patches each.
func releases(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "releases: \"1.%d.%d\": zip: path: \"p.zip\"\n", i/10, i%10)
	}
	return b.String()
}

// all-earlier to newest-per-minor over 45 minors of 10 releases makes
// 10,305 pairs: every policy's count is known before it expands (RELIABILITY D11: 20,000 releases expanded to 2 million
// paths in 113 s and 7.8 GB).
func TestLoadDeltaPolicyLimit(t *testing.T) {
	src := "product: name: \"edge\"\nbuild: sourceDateEpoch: 0\n" + releases(450) +
		"deltas: policies: [{from: \"previous-minor-latest\", to: \"newest-per-minor\"},\n\t{from: \"all-earlier\", to: \"newest\"},\n\t{from: \"all-earlier\", to: \"newest-per-minor\"}]\n"
	dir := writeFiles(t, map[string]string{"release.cue": src})
	_, err := Load(dir, LoadOptions{Env: noEnv})
	msg := problemsOf(t, err)
	want := "release.cue:456:2: deltas.policies[2]: from \"all-earlier\" to \"newest-per-minor\" over 450 releases makes 10305 delta paths, more than the limit of 10000 (--max-delta-paths"
	if !strings.Contains(msg, want) || strings.Count(msg, "\n") != 0 {
		t.Fatalf("got:\n%s\nwant:\n%s", msg, want)
	}
	m, err := Load(dir, LoadOptions{Env: noEnv, Limits: Limits{MaxDeltaPaths: 20000}})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Deltas) != 10305 {
		t.Fatalf("%d deltas", len(m.Deltas))
	}
}

// Policies under the limit one by one can still exceed it together; the
// one that crosses it is named.
func TestLoadDeltaPoliciesTogether(t *testing.T) {
	src := "product: name: \"edge\"\nbuild: sourceDateEpoch: 0\n" + releases(100) +
		"deltas: paths: [{from: \"1.0.0\", to: \"1.0.1\"}]\n" +
		"deltas: policies: [{from: \"same-minor\", to: \"newest-per-minor\"},\n\t{from: \"previous-minor\", to: \"newest-per-minor\"}]\n"
	dir := writeFiles(t, map[string]string{"release.cue": src})
	_, err := Load(dir, LoadOptions{Env: noEnv, Limits: Limits{MaxDeltaPaths: 150}})
	msg := problemsOf(t, err)
	want := "deltas.policies[1]: from \"previous-minor\" to \"newest-per-minor\" brings the delta paths to 181 with the paths and policies before it, more than the limit of 150"
	if !strings.Contains(msg, want) {
		t.Fatalf("got:\n%s\nwant:\n%s", msg, want)
	}
}

// countPolicy agrees with the expansion it stands in for.
func TestCountPolicy(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for range 200 {
		seen := map[string]bool{}
		for range rng.Intn(40) {
			v := fmt.Sprintf("%d.%d.%d", rng.Intn(3), rng.Intn(4), rng.Intn(5))
			if rng.Intn(6) == 0 {
				v += "-rc.1"
			}
			seen[v] = true
		}
		var versions []string
		for v := range seen {
			versions = append(versions, v)
		}
		slices.SortFunc(versions, compareVersions)
		for _, from := range []string{FromAllEarlier, FromSameMinor, FromPreviousMinor, FromPreviousMinorLatest} {
			for _, to := range []string{ToNewest, ToNewestPerMinor} {
				for _, k2s := range []bool{false, true} {
					rules := deltaRules{ProfileGeneric}
					if k2s {
						rules = deltaRules{ProfileK2s}
					}
					pvs := rules.policyVersions(versions)
					want := 0
					for _, d := range expand(pvs, from, to) {
						if rules.pathProblem(d[0], d[1]) == "" {
							want++
						}
					}
					if got := countPolicy(pvs, from, to, rules.sameMajor()); got != want {
						t.Fatalf("%v %s %s k2s=%t: count %d, expansion %d", versions, from, to, k2s, got, want)
					}
				}
			}
		}
	}
}

// FuzzCheckDepth scans arbitrary text: it must never panic, whatever the
// brackets, strings and interpolations.
func FuzzCheckDepth(f *testing.F) {
	for _, s := range []string{
		"a: b: c: 1\n", `a: "\(b) \(c)"`, `a: #"\#(b)"#`, `a: "\(`, `a: "\(b]`, `a: "\(b)) "\(c)"`,
		"a: \"\"\"\n\t\\(x)\n\t\"\"\"\n", `@attr("\(x)") a: 1`, `a: [ (( {`, `) ] } a: 1`, `a: '\(b)'`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		err := checkDepth("f.cue", []byte(src), 3)
		var de *depthError
		if err != nil && !errors.As(err, &de) {
			t.Fatalf("error %T %v", err, err)
		}
	})
}
