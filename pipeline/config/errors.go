package config

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	cueerrors "cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/token"

	cueschema "github.com/relcue/release/cue"
)

// Error lists every problem found in a configuration. Load returns it for
// anything the user can fix by editing the configuration or its directory;
// it prints like cue vet, one line per problem:
//
//	release.cue:12:5: releases."1.5.0".zip.sha256: invalid value "abc" (...)
type Error struct {
	Problems []Problem
}

// Problem is one thing wrong with a configuration.
type Problem struct {
	// Pos is the place in the user's files to fix. It is zero only when no
	// file is to blame (e.g. a missing directory: then File alone is set).
	Pos Pos
	// Path is the CUE path of the offending field, e.g.
	// releases."1.5.0".inputs[0].dest, or "" for the configuration as a whole.
	Path string
	// Message says what is wrong and, where it can, what to do about it.
	Message string
	// Related are further places that contributed, such as the schema
	// constraint that failed (their File starts with cueschema.FilePrefix)
	// or a conflicting value in another file.
	Related []Pos
}

func (p Problem) String() string {
	var b strings.Builder
	if s := p.Pos.String(); s != "" {
		b.WriteString(s)
		b.WriteString(": ")
	}
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Positions returns the primary position of every problem, in order, for
// tools that annotate files (such as GitHub ::error lines).
func (e *Error) Positions() []Pos {
	ps := make([]Pos, len(e.Problems))
	for i, p := range e.Problems {
		ps[i] = p.Pos
	}
	return ps
}

// problems collects Problems for one Load and turns CUE positions and
// errors into them.
type problems struct {
	cwd  string    // for relative file names; "" leaves them absolute
	user cue.Value // the user's configuration alone, for positions
	list []Problem
}

func (ps *problems) add(p Problem) { ps.list = append(ps.list, p) }

// at adds a problem about the field at path in the user's configuration.
func (ps *problems) at(path cue.Path, format string, args ...any) {
	ps.add(Problem{Pos: ps.posOf(path), Path: path.String(), Message: fmt.Sprintf(format, args...)})
}

// err returns the collected problems as an *Error, sorted by position, or
// nil when there are none.
func (ps *problems) err() error {
	if len(ps.list) == 0 {
		return nil
	}
	list := slices.Clone(ps.list)
	slices.SortStableFunc(list, func(a, b Problem) int {
		if c := strings.Compare(a.Pos.File, b.Pos.File); c != 0 {
			return c
		}
		if c := a.Pos.Line - b.Pos.Line; c != 0 {
			return c
		}
		if c := a.Pos.Col - b.Pos.Col; c != 0 {
			return c
		}
		if c := strings.Compare(a.Path, b.Path); c != 0 {
			return c
		}
		return strings.Compare(a.Message, b.Message)
	})
	list = slices.CompactFunc(list, func(a, b Problem) bool {
		return a.Pos == b.Pos && a.Path == b.Path && a.Message == b.Message
	})
	return &Error{Problems: list}
}

// pos converts a CUE position, naming the file relative to the working
// directory when it is below it.
func (ps *problems) pos(p token.Pos) Pos {
	if p.Filename() == "" {
		return Pos{}
	}
	return Pos{File: ps.file(p.Filename()), Line: p.Line(), Col: p.Column()}
}

func (ps *problems) file(name string) string {
	if ps.cwd == "" || !filepath.IsAbs(name) {
		return name
	}
	rel, err := filepath.Rel(ps.cwd, name)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return name
	}
	return rel
}

// posOf is the position of the value at path in the user's files, or of its
// nearest ancestor the user wrote: a field the user left out (and got from
// a schema default, or is missing) has no position of its own.
func (ps *problems) posOf(path cue.Path) Pos {
	if !ps.user.Exists() {
		return Pos{}
	}
	sels := path.Selectors()
	for n := len(sels); n >= 0; n-- {
		v := ps.user.LookupPath(cue.MakePath(sels[:n]...))
		if !v.Exists() {
			continue
		}
		p := v.Pos()
		if !p.IsValid() {
			continue
		}
		// A scalar is pointed at itself, not at its label, as CUE's own
		// errors do; a struct or list at its label, which names it.
		if n == len(sels) && v.IncompleteKind()&(cue.StructKind|cue.ListKind) == 0 {
			if f, ok := v.Source().(*ast.Field); ok && f.Value != nil && f.Value.Pos().IsValid() {
				p = f.Value.Pos()
			}
		}
		return ps.pos(p)
	}
	return Pos{}
}

func isSchemaFile(name string) bool { return strings.HasPrefix(name, cueschema.FilePrefix) }

// fromCUE adds the problems of a CUE error. schema, if it exists, is the
// #Config definition the user's value was unified with, for describing what
// a disjunction accepts; reported names the paths whose unknown fields were
// already reported, whose CUE "field not allowed" errors are redundant.
func (ps *problems) fromCUE(err error, schema cue.Value, reported map[string]bool) {
	errs := cueerrors.Errors(err)
	// A failed disjunction (every default such as *6 | int) comes as a
	// header plus one error per disjunct, some at sub-paths. The user needs
	// one line: what they wrote and what is accepted.
	var disj []string
	for _, e := range errs {
		if f, _ := e.Msg(); strings.Contains(f, "errors in empty disjunction") {
			disj = append(disj, cuePath(e.Path()))
		}
	}
	inDisj := func(p string) (string, bool) {
		for _, d := range disj {
			if p == d || strings.HasPrefix(p, d+".") || strings.HasPrefix(p, d+"[") {
				return d, true
			}
		}
		return "", false
	}
	done := map[string]bool{}
	for _, e := range errs {
		path := cuePath(e.Path())
		if d, ok := inDisj(path); ok {
			if !done[d] {
				done[d] = true
				ps.disjunction(d, e, schema)
			}
			continue
		}
		msg := cueerrors.StringWithConfig(e, &cueerrors.Config{OmitPath: true, Cwd: ps.cwd})
		if reported[path] && strings.HasPrefix(msg, "field not allowed") {
			continue
		}
		p := Problem{Path: path, Message: msg}
		for _, tp := range cueerrors.Positions(e) {
			q := ps.pos(tp)
			if p.Pos == (Pos{}) && !isSchemaFile(tp.Filename()) {
				p.Pos = q
				continue
			}
			p.Related = append(p.Related, q)
		}
		if p.Pos == (Pos{}) {
			p.Pos = ps.posAtString(path)
		}
		ps.add(p)
	}
}

// disjunction reports a value that matches no disjunct of the schema at path.
func (ps *problems) disjunction(path string, e cueerrors.Error, schema cue.Value) {
	cp := cue.ParsePath(path)
	msg := cueerrors.StringWithConfig(e, &cueerrors.Config{OmitPath: true, Cwd: ps.cwd})
	if got, want := ps.lookupUser(cp), schemaAt(schema, cp.Selectors()); got.Exists() && want.Exists() {
		msg = fmt.Sprintf("invalid value %s (want %s)", short(got), describe(want))
	}
	p := Problem{Pos: ps.posOf(cp), Path: path, Message: msg}
	for _, tp := range cueerrors.Positions(e) {
		if isSchemaFile(tp.Filename()) {
			p.Related = append(p.Related, ps.pos(tp))
		}
	}
	ps.add(p)
}

func (ps *problems) lookupUser(p cue.Path) cue.Value {
	if !ps.user.Exists() {
		return cue.Value{}
	}
	return ps.user.LookupPath(p)
}

func (ps *problems) posAtString(path string) Pos {
	if path == "" {
		return ps.posOf(cue.Path{})
	}
	cp := cue.ParsePath(path)
	if cp.Err() != nil {
		return ps.posOf(cue.Path{})
	}
	return ps.posOf(cp)
}

// describe prints what a schema disjunction accepts. A list or struct
// default is left out: it can be long, and a user who got here is replacing
// it anyway.
func describe(want cue.Value) string {
	if op, args := want.Expr(); op == cue.OrOp {
		def, hasDef := want.Default()
		var parts []string
		for _, a := range args {
			if hasDef && a.IncompleteKind()&(cue.ListKind|cue.StructKind) != 0 && a.Equals(def) {
				continue
			}
			parts = append(parts, short(a))
		}
		if len(parts) > 0 && len(parts) < len(args) {
			return strings.Join(parts, " | ")
		}
	}
	return short(want)
}

// short prints v as CUE on one line, cut to a length that fits a message.
func short(v cue.Value) string {
	s := strings.Join(strings.Fields(fmt.Sprint(v)), " ")
	const max = 80
	if len(s) > max {
		s = s[:max-3] + "..."
	}
	return s
}

// cuePath turns the selectors of a CUE error path into the CUE path syntax
// that cue.ParsePath reads back: list indices, which errors print as bare
// numbers, become [n]. A leading #Config is dropped: the user never wrote it.
func cuePath(sels []string) string {
	if len(sels) > 0 && sels[0] == "#Config" {
		sels = sels[1:]
	}
	var b strings.Builder
	for _, s := range sels {
		if _, err := strconv.Atoi(s); err == nil {
			b.WriteString("[" + s + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(s)
	}
	return b.String()
}

// schemaAt finds the schema constraint for the user field at sels, following
// pattern constraints ([string]: #Release) and list element types.
func schemaAt(schema cue.Value, sels []cue.Selector) cue.Value {
	if !schema.Exists() {
		return schema
	}
	v := schema
	for _, s := range sels {
		v = schemaChild(v, s)
		if !v.Exists() {
			return v
		}
	}
	return v
}

func schemaChild(v cue.Value, s cue.Selector) cue.Value {
	switch s.Type() {
	case cue.IndexLabel:
		if c := v.LookupPath(cue.MakePath(s)); c.Exists() {
			return c
		}
		return v.LookupPath(cue.MakePath(cue.AnyIndex))
	case cue.StringLabel:
		for _, c := range []cue.Selector{s, s.Optional(), s.Required()} {
			if c := v.LookupPath(cue.MakePath(c)); c.Exists() {
				return c
			}
		}
		return v.LookupPath(cue.MakePath(cue.AnyString))
	}
	return v.LookupPath(cue.MakePath(s))
}

// unknownFields reports every field of user that schema does not allow.
// CUE reports these too, but drops a struct's "field not allowed" when one
// of its children has another error, so a user would fix one mistake only
// to be told about the next; this walk finds them all in one go.
func (ps *problems) unknownFields(schema, user cue.Value, path []cue.Selector, reported map[string]bool) {
	switch user.Kind() {
	case cue.StructKind:
		if schema.IncompleteKind()&cue.StructKind == 0 {
			return // a type error, which CUE reports
		}
		it, err := user.Fields()
		if err != nil {
			return
		}
		for it.Next() {
			sel := it.Selector()
			p := append(slices.Clone(path), sel)
			if !schema.Allows(sel) {
				cp := cue.MakePath(p...)
				reported[cp.String()] = true
				ps.add(Problem{
					Pos:     ps.pos(it.Value().Pos()),
					Path:    cp.String(),
					Message: "field not allowed" + allowedFields(schema),
				})
				continue
			}
			ps.unknownFields(schemaChild(schema, sel), it.Value(), p, reported)
		}
	case cue.ListKind:
		if schema.IncompleteKind()&cue.ListKind == 0 {
			return
		}
		it, err := user.List()
		if err != nil {
			return
		}
		for i := 0; it.Next(); i++ {
			sel := cue.Index(i)
			ps.unknownFields(schemaChild(schema, sel), it.Value(), append(slices.Clone(path), sel), reported)
		}
	}
}

// allowedFields lists the fields a closed schema struct accepts, so that a
// misspelling comes with its correction.
func allowedFields(schema cue.Value) string {
	it, err := schema.Fields(cue.Optional(true))
	if err != nil {
		return ""
	}
	var names []string
	for it.Next() {
		if s := it.Selector(); s.IsString() {
			names = append(names, s.Unquoted())
		}
	}
	if len(names) == 0 {
		return ""
	}
	return " (allowed: " + strings.Join(names, ", ") + ")"
}
