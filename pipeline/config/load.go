package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"
	"cuelang.org/go/cue/load"
	"cuelang.org/go/cue/parser"

	cueschema "github.com/relcue/release/cue"
)

// Package is the CUE package name of configuration files.
const Package = "release"

// LoadOptions tune Load.
type LoadOptions struct {
	// Env looks up environment variables; only SOURCE_DATE_EPOCH is read,
	// and only when the configuration sets no build date. nil means
	// os.Getenv.
	Env func(string) string
	// Sections are the modules' parts of the configuration, decoded after
	// the core (see Section).
	Sections []Section
	// Limits bound the work of loading (zero fields: their defaults).
	Limits Limits
}

// Load reads the configuration in dir: every .cue file of package release
// in it (and, as CUE does, in its parent directories up to the enclosing CUE
// module root, if any). It validates them against the embedded schema,
// applies defaults, checks what the schema cannot express and returns the
// model.
//
// Mistakes come back as an *Error listing all found in one stage: first
// unreadable files (syntax, package clauses, conflicts between the user's
// own values), then schema violations, then the checks that need decoded
// values, since each stage is meaningless while the previous one fails.
//
// Loading that takes longer than opts.Limits.Timeout returns an *Error
// saying so. CUE's evaluation cannot be interrupted, so it goes on in an
// abandoned goroutine until it ends or the process exits, which every
// command does soon after such an error.
func Load(dir string, opts LoadOptions) (*Model, error) {
	opts.Limits = opts.Limits.withDefaults()
	type result struct {
		m   *Model
		err error
	}
	done := make(chan result, 1) // buffered: an abandoned load still ends
	go func() {
		m, err := loadModel(dir, opts)
		done <- result{m, err}
	}()
	timer := time.NewTimer(opts.Limits.Timeout)
	defer timer.Stop()
	select {
	case r := <-done:
		return r.m, r.err
	case <-timer.C:
		return nil, timeoutError(dir, opts.Limits.Timeout)
	}
}

// timeoutError explains a load that ran out of time.
func timeoutError(dir string, d time.Duration) error {
	ps := &problems{}
	if cwd, err := os.Getwd(); err == nil {
		ps.cwd = cwd
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	ps.add(Problem{Pos: Pos{File: ps.file(dir)}, Message: fmt.Sprintf(
		"evaluating the configuration took longer than %s, the limit (--cue-timeout, or %s); "+
			"CUE's time grows with the square of a list's or comprehension's length, so look for a large one "+
			"(a list of 100,000 numbers takes about a minute), make it smaller, or raise the limit", d, "RELEASE_CUE_TIMEOUT")})
	return ps.err()
}

func loadModel(dir string, opts LoadOptions) (*Model, error) {
	env := opts.Env
	if env == nil {
		env = os.Getenv
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cwd, _ := os.Getwd() // without it, file names stay absolute
	ps := &problems{cwd: cwd}

	ctx := cuecontext.New()
	user, ok := ps.loadUser(ctx, abs, opts.Limits)
	if !ok {
		return nil, ps.err()
	}
	ps.user = user

	schema, err := cueschema.Config(ctx)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	reported := map[string]bool{}
	v := schema.Unify(user)
	if err := v.Validate(cue.Concrete(true)); err != nil {
		// CUE reports unknown fields too, so a configuration that
		// validates has none; the walk (a third of the load of a large
		// configuration) is only needed to list them all at once.
		ps.unknownFields(schema, user, nil, reported)
		ps.fromCUE(err, schema, reported)
	}
	if err := ps.err(); err != nil {
		return nil, err
	}

	var raw rawConfig
	if err := v.Decode(&raw); err != nil {
		ps.fromCUE(err, schema, reported)
		return nil, ps.err()
	}
	b := &builder{ps: ps, dir: abs, env: env, limits: opts.Limits}
	m := b.buildModel(&raw)
	b.decodeSections(v, m, opts.Sections)
	if err := ps.err(); err != nil {
		return nil, err
	}
	return m, nil
}

// loadUser loads and builds the user's package on its own, so that its
// positions are the user's and errors within it (a conflict between two of
// the user's files, a syntax error) are reported before schema errors.
func (ps *problems) loadUser(ctx *cue.Context, dir string, limits Limits) (cue.Value, bool) {
	dirPos := Pos{File: ps.file(dir)}
	fi, err := os.Stat(dir)
	if err != nil {
		msg := "cannot read the configuration directory: " + err.Error()
		if errors.Is(err, os.ErrNotExist) {
			msg = "configuration directory does not exist"
		}
		ps.add(Problem{Pos: dirPos, Message: msg})
		return cue.Value{}, false
	}
	if !fi.IsDir() {
		ps.add(Problem{Pos: dirPos, Message: "not a directory; pass the directory that holds the .cue files of package " + Package})
		return cue.Value{}, false
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		ps.add(Problem{Pos: dirPos, Message: "cannot read the configuration directory: " + err.Error()})
		return cue.Value{}, false
	}
	var files []string
	var size int64
	for _, e := range ents {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".cue") {
			files = append(files, filepath.Join(dir, e.Name()))
			if info, err := e.Info(); err == nil {
				size += info.Size()
			}
		}
	}
	if len(files) == 0 {
		ps.add(Problem{Pos: dirPos, Message: "no .cue files; a release configuration is a directory of .cue files in package " + Package})
		return cue.Value{}, false
	}
	// The files are sized before any is read; the budget also counts what
	// CUE reads from elsewhere (parent directories of a CUE module).
	if size > limits.MaxBytes {
		ps.add(Problem{Pos: dirPos, Message: tooLarge(size, limits.MaxBytes)})
		return cue.Value{}, false
	}
	b := &budget{limits: limits, ps: ps}
	insts := load.Instances([]string{"."}, &load.Config{Dir: dir, Package: Package, ParseFile: b.parseFile})
	if b.report() {
		return cue.Value{}, false
	}
	if len(insts) != 1 {
		ps.add(Problem{Pos: dirPos, Message: fmt.Sprintf("loading found %d CUE instances, want 1", len(insts))})
		return cue.Value{}, false
	}
	if err := insts[0].Err; err != nil {
		var nf *load.NoFilesError
		if errors.As(err, &nf) && ps.packageClauses(files) {
			return cue.Value{}, false
		}
		ps.fromCUE(err, cue.Value{}, nil)
		if len(ps.list) == 0 {
			ps.add(Problem{Pos: dirPos, Message: err.Error()})
		}
		return cue.Value{}, false
	}
	v := ctx.BuildInstance(insts[0])
	if err := v.Validate(); err != nil {
		ps.fromCUE(err, cue.Value{}, nil)
		return cue.Value{}, false
	}
	return v, true
}

// packageClauses explains why no file was loaded when the files are in the
// wrong package or in none; it reports whether it found such a file.
func (ps *problems) packageClauses(files []string) bool {
	found := false
	for _, name := range files {
		f, err := parser.ParseFile(name, nil, parser.PackageClauseOnly)
		if err != nil {
			ps.fromCUE(err, cue.Value{}, nil)
			found = true
			continue
		}
		switch pkg := f.PackageName(); pkg {
		case Package:
		case "":
			ps.add(Problem{
				Pos:     Pos{File: ps.file(name), Line: 1, Col: 1},
				Message: "no package clause; start the file with \"package " + Package + "\"",
			})
			found = true
		default:
			pos := Pos{File: ps.file(name), Line: 1, Col: 1}
			for _, d := range f.Decls {
				if p := d.Pos(); p.IsValid() {
					pos = ps.pos(p)
					break
				}
			}
			ps.add(Problem{
				Pos:     pos,
				Message: fmt.Sprintf("package %s; configuration files are package %s", pkg, Package),
			})
			found = true
		}
	}
	return found
}

// The raw types mirror the schema for one Decode of the validated value.
// Pointers tell a field left out from one set to its zero value where the
// difference matters to a check.
type rawConfig struct {
	Product  rawProduct            `json:"product"`
	Build    rawBuild              `json:"build"`
	Releases map[string]rawRelease `json:"releases"`
	Deltas   rawDeltas             `json:"deltas"`
	OS       map[string]rawOS      `json:"os"`
	Signing  *rawSigning           `json:"signing"`
}

type rawSigning struct {
	Authenticode *struct {
		Extensions   []string `json:"extensions"`
		TimestampURL string   `json:"timestampURL"`
		Description  string   `json:"description"`
		URL          string   `json:"url"`
	} `json:"authenticode"`
	Cosign *struct{} `json:"cosign"`
}

type rawProduct struct {
	Name    string `json:"name"`
	Vendor  string `json:"vendor"`
	Profile string `json:"profile"`
}

type rawBuild struct {
	Dist            string  `json:"dist"`
	Date            *string `json:"date"`
	SourceDateEpoch *int64  `json:"sourceDateEpoch"`
	Compression     struct {
		Level int `json:"level"`
	} `json:"compression"`
	Reuse bool   `json:"reuse"`
	Paths string `json:"paths"`
}

type rawRelease struct {
	Zip    *RawSource  `json:"zip"`
	Inputs *[]rawInput `json:"inputs"`
}

// RawSource is a #Source as decoded; sections with sources decode into it
// and resolve it with Decoder.Source.
type RawSource struct {
	Path   *string `json:"path"`
	URL    *string `json:"url"`
	SHA256 string  `json:"sha256"`
}

type rawInput struct {
	Dir  *string    `json:"dir"`
	File *RawSource `json:"file"`
	Dest string     `json:"dest"`
	Mode *uint32    `json:"mode"`
}

type rawDeltas struct {
	Defaults    rawOptions      `json:"defaults"`
	Paths       []rawPath       `json:"paths"`
	Policies    []rawPolicy     `json:"policies"`
	Always      *[]string       `json:"always"`
	Nested      *[]rawNested    `json:"nested"`
	ApplyScript *rawApplyScript `json:"applyScript"`
}

type rawOptions struct {
	Mode             string    `json:"mode"`
	WholeDirectories []string  `json:"wholeDirectories"`
	Skip             *[]string `json:"skip"`
	SkipNames        *[]string `json:"skipNames"`
}

type rawOverrides struct {
	Mode             *string   `json:"mode"`
	WholeDirectories *[]string `json:"wholeDirectories"`
	Skip             *[]string `json:"skip"`
	SkipNames        *[]string `json:"skipNames"`
}

type rawNested struct {
	Archive       string            `json:"archive"`
	Folders       []rawNestedFolder `json:"folders"`
	WindowsImages string            `json:"windowsImages"`
}

type rawNestedFolder struct {
	From   string            `json:"from"`
	To     string            `json:"to"`
	Whole  bool              `json:"whole"`
	Rename map[string]string `json:"rename"`
}

func (n rawNested) model(pos Pos) NestedArchive {
	m := NestedArchive{Archive: n.Archive, WindowsImages: n.WindowsImages, Pos: pos}
	for _, f := range n.Folders {
		m.Folders = append(m.Folders, NestedFolder(f))
	}
	return m
}

type rawApplyScript struct {
	Module   string   `json:"module"`
	Function string   `json:"function"`
	Preload  []string `json:"preload"`
}

func (a rawApplyScript) model() *ApplyScript {
	return &ApplyScript{Module: a.Module, Function: a.Function, Preload: append([]string{}, a.Preload...)}
}

type rawPath struct {
	From string `json:"from"`
	To   string `json:"to"`
	rawOverrides
}

type rawPolicy struct {
	From string `json:"from"`
	To   string `json:"to"`
	rawOverrides
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
