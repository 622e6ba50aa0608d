package config

import (
	"fmt"
	"net/url"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"cuelang.org/go/cue"
	"golang.org/x/mod/semver"

	"github.com/relcue/release/internal/glob"
)

// builder turns the decoded configuration into the Model, reporting what
// the schema cannot check to ps.
type builder struct {
	ps  *problems
	dir string
	env func(string) string
	// limits bound what the configuration may expand to.
	limits Limits
	// model is the core model once built, for the sections.
	model *Model
}

// at builds a CUE path from field names (string), list indices (int) and
// selectors, so that problems name fields as CUE's own errors do (quoting
// "1.5.0", writing [0]).
func at(parts ...any) cue.Path {
	sels := make([]cue.Selector, len(parts))
	for i, p := range parts {
		switch p := p.(type) {
		case string:
			sels[i] = cue.Str(p)
		case int:
			sels[i] = cue.Index(p)
		case cue.Selector:
			sels[i] = p
		default:
			panic(fmt.Sprintf("config: path part %T", p))
		}
	}
	return cue.MakePath(sels...)
}

func join(p cue.Path, parts ...any) cue.Path {
	return at(append(toAny(p.Selectors()), parts...)...)
}

func toAny(sels []cue.Selector) []any {
	a := make([]any, len(sels))
	for i, s := range sels {
		a[i] = s
	}
	return a
}

// At builds a CUE path from field names (string), list indices (int) and
// selectors, for a section's problems (see at).
func At(parts ...any) cue.Path { return at(parts...) }

// Join extends p with more parts, as At.
func Join(p cue.Path, parts ...any) cue.Path { return join(p, parts...) }

func (b *builder) buildModel(raw *rawConfig) *Model {
	m := &Model{
		Dir:      b.dir,
		Product:  Product{Name: raw.Product.Name, Vendor: raw.Product.Vendor, Profile: raw.Product.Profile},
		Build:    b.build(&raw.Build),
		Releases: map[string]*Release{},
	}
	for _, v := range sortedKeys(raw.Releases) {
		r := raw.Releases[v]
		m.Releases[v] = b.release(v, &r)
	}
	m.Versions = b.versions(m.Releases)
	m.Deltas, m.DeltaLayout = b.deltas(&raw.Deltas, m.Product.Profile, m.Releases, m.Versions)
	m.OS, m.OSNames = b.osTargets(raw.OS, m.Releases)
	m.Signing = b.signing(raw.Signing)
	b.model = m
	return m
}

func (b *builder) signing(raw *rawSigning) Signing {
	var s Signing
	if raw == nil {
		return s
	}
	sp := at("signing")
	if a := raw.Authenticode; a != nil {
		ap := join(sp, "authenticode")
		exts := slices.Clone(a.Extensions)
		slices.Sort(exts)
		exts = slices.Compact(exts)
		if len(exts) == 0 {
			b.ps.at(join(ap, "extensions"), "is empty; list the extensions to sign, e.g. [\".exe\", \".ps1\"], or remove authenticode")
		}
		if a.TimestampURL != "" {
			if u, err := url.Parse(a.TimestampURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				b.ps.at(join(ap, "timestampURL"), "%q is not an http(s) URL of an RFC 3161 time-stamping service", a.TimestampURL)
			}
		}
		s.Authenticode = &Authenticode{Extensions: exts, TimestampURL: a.TimestampURL, Description: a.Description, URL: a.URL, Pos: b.ps.posOf(ap)}
	}
	if raw.Cosign != nil {
		s.Cosign, s.CosignPos = true, b.ps.posOf(join(sp, "cosign"))
	}
	return s
}

func (b *builder) build(raw *rawBuild) Build {
	out := Build{CompressionLevel: raw.Compression.Level, Reuse: raw.Reuse, Paths: raw.Paths}
	if raw.Dist == "" {
		b.ps.at(at("build", "dist"), `empty; name the output directory, e.g. "dist"`)
	} else {
		out.Dist = b.abs(raw.Dist)
	}
	out.Date = b.date(raw)
	return out
}

// maxEpoch is 9999-12-31T23:59:59Z, the last instant RFC 3339 can write.
const maxEpoch = 253402300799

func (b *builder) date(raw *rawBuild) time.Time {
	switch {
	case raw.Date != nil && raw.SourceDateEpoch != nil:
		b.ps.at(at("build", "date"), "set build.date or build.sourceDateEpoch, not both")
	case raw.Date != nil:
		t, err := time.Parse(time.RFC3339, *raw.Date)
		if err != nil {
			b.ps.at(at("build", "date"), "%q is not an RFC 3339 date-time; write it like \"2025-01-01T00:00:00Z\"", *raw.Date)
			return time.Time{}
		}
		return t.UTC().Truncate(time.Second)
	case raw.SourceDateEpoch != nil:
		return time.Unix(*raw.SourceDateEpoch, 0).UTC()
	default:
		s := b.env("SOURCE_DATE_EPOCH")
		if s == "" {
			b.ps.at(at("build"), "no build date: reproducible artifacts need a fixed one; "+
				"set build.date (e.g. \"2025-01-01T00:00:00Z\") or build.sourceDateEpoch, "+
				"or the SOURCE_DATE_EPOCH environment variable")
			return time.Time{}
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 || n > maxEpoch {
			b.ps.at(at("build"), "SOURCE_DATE_EPOCH=%q is not a number of seconds since 1970 "+
				"(0..%d); fix the environment variable or set build.date", s, int64(maxEpoch))
			return time.Time{}
		}
		return time.Unix(n, 0).UTC()
	}
	return time.Time{}
}

// abs resolves a path written in the configuration (forward slashes,
// relative to the configuration directory unless absolute).
func (b *builder) abs(p string) string {
	p = filepath.FromSlash(p)
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(b.dir, p)
}

func (b *builder) release(v string, raw *rawRelease) *Release {
	rp := at("releases", v)
	r := &Release{Version: v, Pos: b.ps.posOf(rp)}
	if !validVersion(v) {
		msg := fmt.Sprintf("%q is not a semver version X.Y.Z[-pre][+build]; use X.Y.Z without a leading v", v)
		if w, ok := strings.CutPrefix(v, "v"); ok && validVersion(w) {
			msg = fmt.Sprintf("use %q: versions are X.Y.Z without a leading v", w)
		}
		b.ps.at(rp, "%s", msg)
	}
	switch {
	case raw.Zip != nil && raw.Inputs != nil:
		b.ps.at(rp, "set either zip or inputs, not both")
	case raw.Zip == nil && raw.Inputs == nil:
		b.ps.at(rp, "set zip (an existing full package) or inputs (to assemble one)")
	}
	if raw.Zip != nil {
		r.Zip = b.source(join(rp, "zip"), raw.Zip)
	}
	if raw.Inputs != nil {
		if len(*raw.Inputs) == 0 {
			b.ps.at(join(rp, "inputs"), "no inputs; list at least one, or use zip")
		}
		for i := range *raw.Inputs {
			r.Inputs = append(r.Inputs, b.input(join(rp, "inputs", i), &(*raw.Inputs)[i]))
		}
	}
	return r
}

func (b *builder) source(sp cue.Path, raw *RawSource) *Source {
	s := &Source{SHA256: raw.SHA256, Pos: b.ps.posOf(sp)}
	switch {
	case raw.Path != nil && raw.URL != nil:
		b.ps.at(sp, "set either path or url, not both")
	case raw.Path == nil && raw.URL == nil:
		b.ps.at(sp, "set path (a local file) or url (a download, with sha256)")
	}
	if raw.Path != nil {
		if *raw.Path == "" {
			b.ps.at(join(sp, "path"), "empty; name a file, relative to the configuration directory")
		} else {
			s.Path = b.abs(*raw.Path)
		}
	}
	if raw.URL != nil {
		s.URL = *raw.URL
		if u, err := url.Parse(s.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			b.ps.at(join(sp, "url"), "%q is not an http or https URL", s.URL)
		}
		if s.SHA256 == "" {
			b.ps.at(sp, "url without sha256: a download must be pinned to be reproducible; "+
				"add sha256 (the file's sha256sum), or use path for a local file")
		}
	}
	return s
}

func (b *builder) input(ip cue.Path, raw *rawInput) Input {
	in := Input{Dest: raw.Dest, Pos: b.ps.posOf(ip)}
	switch {
	case raw.Dir != nil && raw.File != nil:
		b.ps.at(ip, "set either dir or file, not both")
	case raw.Dir == nil && raw.File == nil:
		b.ps.at(ip, "set dir (a directory tree) or file (a single file)")
	}
	if raw.Dir != nil {
		if *raw.Dir == "" {
			b.ps.at(join(ip, "dir"), "empty; name a directory, relative to the configuration directory")
		} else {
			in.Dir = b.abs(*raw.Dir)
		}
		if raw.Mode != nil {
			b.ps.at(join(ip, "mode"), "mode applies to file inputs only; a directory's files keep their own modes")
		}
	}
	if raw.File != nil {
		in.File = b.source(join(ip, "file"), raw.File)
		if raw.Mode != nil {
			in.Mode = *raw.Mode
		}
	}
	if raw.File != nil && raw.Dest == "" {
		b.ps.at(join(ip, "dest"), "a file input needs dest, the file's path in the tree (e.g. \"bin/tool.exe\")")
	} else if msg := treePathProblem(raw.Dest, raw.File == nil); msg != "" {
		b.ps.at(join(ip, "dest"), "%s", msg)
	}
	return in
}

// versions returns the valid release versions in ascending semver order and
// reports versions that semver cannot order against each other.
func (b *builder) versions(rs map[string]*Release) []string {
	var vs []string
	for v := range rs {
		if validVersion(v) {
			vs = append(vs, v)
		}
	}
	slices.SortFunc(vs, compareVersions)
	for i := 1; i < len(vs); i++ {
		if semver.Compare("v"+vs[i-1], "v"+vs[i]) == 0 {
			b.ps.at(at("releases", vs[i]), "%s and %s differ only in build metadata, which semver ignores "+
				"when ordering, so deltas between them have no direction; keep one", vs[i-1], vs[i])
		}
	}
	return vs
}

// semverRE is the regular expression of semver.org, without the leading v
// that golang.org/x/mod/semver needs (and that also accepts "1.2").
var semverRE = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)` +
	`(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?` +
	`(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`)

func validVersion(v string) bool { return semverRE.MatchString(v) }

// ValidVersion reports whether v is a semver version X.Y.Z[-pre][+build]
// without a leading v, as releases are named.
func ValidVersion(v string) bool { return validVersion(v) }

// compareVersions orders by semver precedence, then by text so that the
// order is total even for versions differing only in build metadata.
func compareVersions(a, b string) int {
	if c := semver.Compare("v"+a, "v"+b); c != 0 {
		return c
	}
	return strings.Compare(a, b)
}

// minor is the major.minor of a valid version, comparable with
// semver.Compare.
func minor(v string) string { return semver.MajorMinor("v" + v) }

// treePathProblem says what is wrong with p as a forward-slash path inside
// an installation tree, or "" if nothing is. root allows "", the tree root.
func treePathProblem(p string, root bool) string {
	switch {
	case p == "":
		if root {
			return ""
		}
		return "empty path; name a path relative to the tree root"
	case strings.Contains(p, `\`):
		return fmt.Sprintf("%q contains a backslash; use forward slashes", p)
	case strings.HasPrefix(p, "/") || hasDrive(p):
		return fmt.Sprintf("%q is absolute; write it relative to the tree root", p)
	}
	if slices.Contains(strings.Split(p, "/"), "..") {
		return fmt.Sprintf("%q contains \"..\"; paths must stay inside the tree", p)
	}
	if c := path.Clean(p); c != p || c == "." {
		if c == "." {
			if root {
				return fmt.Sprintf("%q: write \"\" for the tree root", p)
			}
			return fmt.Sprintf("%q names the tree root; name a path inside it", p)
		}
		return fmt.Sprintf("%q is not in clean form; write %q", p, c)
	}
	return ""
}

func hasDrive(p string) bool {
	return len(p) >= 2 && p[1] == ':' && ('a' <= p[0] && p[0] <= 'z' || 'A' <= p[0] && p[0] <= 'Z')
}

// patternProblem is treePathProblem for skip patterns, plus glob syntax.
func patternProblem(p string) string {
	if msg := treePathProblem(strings.TrimPrefix(p, glob.IgnoreCase), false); msg != "" {
		return msg
	}
	if err := glob.Validate(p); err != nil {
		return "invalid pattern: " + err.Error()
	}
	return ""
}
