package config

import (
	"fmt"
	"slices"
	"strings"

	"cuelang.org/go/cue"
)

// Section is the part of the configuration one module owns: its typed
// form and the rules the schema cannot express. The loader validates the
// whole configuration against the schema and builds the core of the Model
// (product, build, releases, deltas, the OS targets' identities, signing)
// first; then it hands every section a Decoder on the validated value, and
// keeps what Decode returns in the Model under Name.
type Section struct {
	// Name finds the decoded value again (SectionOf, Decoder.Section); by
	// convention the owning module's name.
	Name string
	// Decode reads the module's fields with d.Decode, reports what is wrong
	// with d.Problem and returns the module's typed configuration. Problems
	// of every section are reported together, sorted by position, and Load
	// fails if there is any, so Decode need not stop at the first.
	Decode func(d *Decoder) any
}

// Decoder is what a Section sees of a configuration being loaded.
type Decoder struct {
	s *sections
	b *builder
	v cue.Value // the validated, defaulted configuration
}

// sections decodes the registered sections on demand, so that one may
// read another's result whatever the order they were registered in.
type sections struct {
	byName  map[string]Section
	done    map[string]any
	pending []string // the sections being decoded, innermost last
}

func (b *builder) decodeSections(v cue.Value, m *Model, list []Section) {
	s := &sections{byName: map[string]Section{}, done: map[string]any{}}
	for _, sec := range list {
		if _, dup := s.byName[sec.Name]; dup || sec.Name == "" || sec.Decode == nil {
			panic(fmt.Sprintf("config: section %q registered twice, unnamed or without Decode", sec.Name))
		}
		s.byName[sec.Name] = sec
	}
	d := &Decoder{s: s, b: b, v: v}
	// The model shares the map as it fills, so that a section's accessor
	// (SectionOf) sees the sections decoded before it.
	m.sections = s.done
	for _, sec := range list {
		d.Section(sec.Name)
	}
	if len(s.done) == 0 {
		m.sections = nil
	}
}

// Section returns the decoded value of another section, decoding it first
// if needed; nil when no module registered it.
func (d *Decoder) Section(name string) any {
	s := d.s
	if v, ok := s.done[name]; ok {
		return v
	}
	sec, ok := s.byName[name]
	if !ok {
		return nil
	}
	if slices.Contains(s.pending, name) {
		panic(fmt.Sprintf("config: sections read each other in a cycle: %s -> %s", strings.Join(s.pending, " -> "), name))
	}
	s.pending = append(s.pending, name)
	v := sec.Decode(d)
	s.pending = s.pending[:len(s.pending)-1]
	s.done[name] = v
	return v
}

// Model is the core model, complete when sections are decoded.
func (d *Decoder) Model() *Model { return d.b.model }

// Decode decodes the validated value at path into into (a pointer to the
// section's raw types, with JSON tags as the schema names fields). A path
// the configuration does not have leaves into alone and returns false.
func (d *Decoder) Decode(path cue.Path, into any) bool {
	v := d.v.LookupPath(path)
	if !v.Exists() {
		return false
	}
	if err := v.Decode(into); err != nil {
		// The schema was validated, so this is a mismatch between the
		// section's raw types and the schema: a bug, reported as a
		// problem rather than a crash.
		d.b.ps.at(path, "cannot decode: %v", err)
		return false
	}
	return true
}

// Problem reports what is wrong with the field at path.
func (d *Decoder) Problem(path cue.Path, format string, args ...any) {
	d.b.ps.at(path, format, args...)
}

// Add reports a problem built by hand, for ones with Related positions.
func (d *Decoder) Add(p Problem) { d.b.ps.add(p) }

// Pos is the position of the value at path in the user's files (or of its
// nearest ancestor the user wrote).
func (d *Decoder) Pos(path cue.Path) Pos { return d.b.ps.posOf(path) }

// Local resolves a path to a local input that must stay inside the
// configuration directory; it returns "" after reporting an unusable one.
func (d *Decoder) Local(path cue.Path, s string) string { return d.b.local(path, s) }

// Source checks and resolves a #Source (a local path or a pinned URL).
func (d *Decoder) Source(path cue.Path, raw *RawSource) *Source { return d.b.source(path, raw) }

// SectionOf returns the typed value of section name, or the zero T when no
// module registered it or the model was made by hand without it.
func SectionOf[T any](m *Model, name string) T {
	v, _ := m.sections[name].(T)
	return v
}

// SetSection stores a section's value, for models built by hand in tests
// and for command-line overrides of a section's settings.
func (m *Model) SetSection(name string, v any) {
	if m.sections == nil {
		m.sections = map[string]any{}
	}
	m.sections[name] = v
}
