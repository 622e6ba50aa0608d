package deb

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/relcue/release/internal/filekind"
	"github.com/relcue/release/pipeline/config"
	"github.com/relcue/release/pipeline/step"
)

// unitSuffixes are the systemd unit types a package installs in UnitDir.
var unitSuffixes = []string{".service", ".socket", ".timer", ".target", ".path", ".mount", ".automount", ".swap", ".slice"}

// Targets plans one target per package built for each OS target. A
// package declared identically in several releases of an OS is built once;
// declared differently under the same name, version and architecture it
// is an error, since a Debian version must always mean the same bytes.
func Targets(m *config.Model) ([]step.Target, error) {
	var out []step.Target
	for _, osName := range sortedKeys(m.OS, m.OSNames) {
		o := m.OS[osName]
		if o == nil {
			return nil, fmt.Errorf("os %s is listed but not defined (configuration loader bug)", osName)
		}
		first := map[string]*planned{}
		for _, v := range sortedKeys(o.Releases, o.Versions) {
			if o.Releases[v] == nil {
				return nil, fmt.Errorf("os %s: release %s is listed but not defined (configuration loader bug)", osName, v)
			}
			for _, ref := range NodeDebs(m, osName, v) {
				if ref.Build == nil {
					continue
				}
				p, err := planDeb(m, o, ref)
				if err != nil {
					return nil, err
				}
				prev, ok := first[p.target.ID]
				if !ok {
					first[p.target.ID] = p
					out = append(out, p.target)
					continue
				}
				if diff := prev.differences(p); len(diff) > 0 {
					b := ref.Build
					return nil, fmt.Errorf("deb %s %s (%s) is declared twice with different contents at %s and %s (they differ in %s); a Debian version must always mean the same bytes — bump the version",
						b.Name, b.Version, b.Arch, orUnknown(prev.target.Pos), orUnknown(p.target.Pos), strings.Join(diff, ", "))
				}
			}
		}
	}
	return out, nil
}

// planned is a target with its spec kept typed for comparisons.
type planned struct {
	spec   Spec
	target step.Target
}

// differences names the spec fields and sources in which two declarations
// of one package differ; none means they build the same bytes.
func (p *planned) differences(q *planned) []string {
	var diff []string
	a, b := fieldsJSON(p.spec), fieldsJSON(q.spec)
	for _, k := range sortedKeys(a, nil) {
		if !bytes.Equal(a[k], b[k]) {
			diff = append(diff, k)
		}
	}
	src := func(t step.Target) map[string]step.Source {
		m := map[string]step.Source{}
		for _, s := range t.Sources {
			s.Pos = ""
			m[s.Name] = s
		}
		return m
	}
	sa, sb := src(p.target), src(q.target)
	names := sortedKeys(sa, nil)
	for name := range sb {
		if _, ok := sa[name]; !ok {
			names = append(names, name)
		}
	}
	for _, name := range names {
		a, inA := sa[name]
		b, inB := sb[name]
		switch {
		case !inA || !inB:
			// The spec differs too, and says how.
		case a != b:
			diff = append(diff, "the local file of source "+name+" ("+a.Path+" vs "+b.Path+")")
		}
	}
	return diff
}

// fieldsJSON splits a spec into its JSON fields.
func fieldsJSON(s Spec) map[string]json.RawMessage {
	raw, _ := json.Marshal(s)
	var m map[string]json.RawMessage
	_ = json.Unmarshal(raw, &m)
	return m
}

// planDeb turns one declaration into a target, checking it with the
// configuration's field names and positions.
func planDeb(m *config.Model, o *config.OSTarget, ref Entry) (*planned, error) {
	d := ref.Build
	pos := d.Pos
	if pos.File == "" {
		pos = ref.Pos
	}
	fail := func(at config.Pos, err error) (*planned, error) {
		if at.File == "" {
			at = pos
		}
		return nil, posErr(at, fmt.Errorf("deb %s %s: %w", d.Name, d.Version, err))
	}
	osDir := o.Dir
	if osDir == "" {
		osDir = o.Name
	}
	if osDir == "" || strings.ContainsAny(osDir, `/\:*?"<>| `) || strings.Trim(osDir, ".") == "" {
		return fail(o.Pos, fmt.Errorf("os dir %q cannot name a folder; use letters, digits, '.', '-' and '_'", osDir))
	}
	s := Spec{
		Name: d.Name, Version: d.Version, Arch: d.Arch,
		Maintainer: d.Maintainer, Description: d.Description,
		Section: d.Section, Priority: d.Priority, Homepage: d.Homepage, License: d.License,
		Depends: d.Depends, PreDepends: d.PreDepends, Recommends: d.Recommends, Suggests: d.Suggests,
		Conflicts: d.Conflicts, Breaks: d.Breaks, Replaces: d.Replaces, Provides: d.Provides,
		Contents: []Content{},
		Date:     m.Build.Date.UTC().Format(time.RFC3339),
		Output:   OutputPath(osDir, d.Name, d.Version, d.Arch),
	}
	if s.Section == "" {
		s.Section = DefaultSection
	}
	if s.Priority == "" {
		s.Priority = DefaultPriority
	}
	if m.Build.Date.IsZero() {
		return fail(config.Pos{}, fmt.Errorf("the build date is not set; set build.date (or SOURCE_DATE_EPOCH) so that packages are reproducible"))
	}
	p := &debPlan{spec: &s, target: step.Target{Kind: Kind, Pos: pos.String()}, pos: pos}
	for _, phase := range []func(*BuildConfig) (config.Pos, error){p.contents, p.units, p.scripts} {
		if at, err := phase(d); err != nil {
			return fail(at, err)
		}
	}
	if err := s.check(); err != nil {
		at := config.Pos{}
		if err.Content >= 0 {
			at = s.Contents[err.Content].pos
		}
		return fail(at, err)
	}
	if d.Arch != "all" && len(o.Arch) > 0 && !slices.Contains(o.Arch, d.Arch) {
		return fail(config.Pos{}, fmt.Errorf("arch %s is not an architecture of os %s (%s); use one of them or \"all\"", d.Arch, o.Name, strings.Join(o.Arch, ", ")))
	}
	t := p.target
	t.ID = TargetID(o.Name, s.Name, s.Version, s.Arch)
	t.Outputs = []string{s.Output}
	t.Spec = s
	return &planned{spec: s, target: t}, nil
}

// debPlan collects a package's contents into its spec and their local
// files into its target's sources.
type debPlan struct {
	spec   *Spec
	target step.Target
	pos    config.Pos // the declaration, for sources without their own
}

func (p *debPlan) addSource(name, path string, dir bool, at config.Pos) {
	if at.File == "" {
		at = p.pos
	}
	p.target.Sources = append(p.target.Sources, step.Source{Name: name, Path: path, Dir: dir, Pos: at.String()})
}

func (p *debPlan) contents(d *BuildConfig) (config.Pos, error) {
	for i, c := range d.Contents {
		sc := Content{Dst: c.Dst, Mode: c.Mode, Type: c.Type, field: fmt.Sprintf("contents[%d]", i), pos: c.Pos}
		if sc.Type == "" {
			sc.Type = TypeFile
		}
		if c.Src != "" && sc.Type != TypeDir {
			dir, err := statSource(c.Src)
			if err != nil {
				return c.Pos, fmt.Errorf("%s.src %w", sc.field, err)
			}
			sc.Source = fmt.Sprintf("content%d", i)
			p.addSource(sc.Source, c.Src, dir, c.Pos)
		} else if c.Src != "" {
			sc.Source = c.Src // rejected by check with the field's name
		}
		p.spec.Contents = append(p.spec.Contents, sc)
	}
	return config.Pos{}, nil
}

func (p *debPlan) units(d *BuildConfig) (config.Pos, error) {
	for i, u := range d.SystemdUnits {
		field := fmt.Sprintf("systemdUnits[%d]", i)
		base := filepath.Base(u.Src)
		if u.Src == "" {
			return u.Pos, fmt.Errorf("%s.src is empty; give the unit file", field)
		}
		if !slices.ContainsFunc(unitSuffixes, func(suf string) bool { return strings.HasSuffix(base, suf) && len(base) > len(suf) }) {
			return u.Pos, fmt.Errorf("%s.src %s is not named like a systemd unit (%s)", field, u.Src, strings.Join(unitSuffixes, ", "))
		}
		dir, err := statSource(u.Src)
		if err != nil {
			return u.Pos, fmt.Errorf("%s.src %w", field, err)
		}
		if dir {
			return u.Pos, fmt.Errorf("%s.src %s is a directory; list each unit file", field, u.Src)
		}
		name := fmt.Sprintf("unit%d", i)
		p.addSource(name, u.Src, false, u.Pos)
		// Units are configuration read by systemd, never executed.
		p.spec.Contents = append(p.spec.Contents, Content{Source: name, Dst: UnitDir + "/" + base, Mode: 0o644, Type: TypeFile, field: field, pos: u.Pos})
	}
	return config.Pos{}, nil
}

func (p *debPlan) scripts(d *BuildConfig) (config.Pos, error) {
	for _, sc := range []struct {
		name string
		src  string
		dst  *string
	}{
		{"preinst", d.Scripts.PreInst, &p.spec.Scripts.PreInst}, {"postinst", d.Scripts.PostInst, &p.spec.Scripts.PostInst},
		{"prerm", d.Scripts.PreRm, &p.spec.Scripts.PreRm}, {"postrm", d.Scripts.PostRm, &p.spec.Scripts.PostRm},
	} {
		if sc.src == "" {
			continue
		}
		if err := checkScript(sc.src); err != nil {
			return config.Pos{}, fmt.Errorf("scripts.%s %w", sc.name, err)
		}
		*sc.dst = sc.name
		p.addSource(sc.name, sc.src, false, config.Pos{})
	}
	return config.Pos{}, nil
}

// statSource reports whether a local source is a directory, with the
// error worded for the field it completes.
func statSource(p string) (dir bool, err error) {
	st, err := os.Stat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, fmt.Errorf("%s does not exist; fix the path or create it", p)
	case err != nil:
		return false, err
	case st.IsDir():
		return true, nil
	case st.Mode().IsRegular():
		return false, nil
	}
	return false, fmt.Errorf("%s is a %s; use a regular file or a directory", p, filekind.Name(st.Mode()))
}

// sortedKeys returns listed when it names exactly the keys of m (the
// loader's order), and the sorted keys otherwise.
func sortedKeys[V any](m map[string]V, listed []string) []string {
	if len(listed) == len(m) {
		ok := true
		for _, k := range listed {
			if _, in := m[k]; !in {
				ok = false
				break
			}
		}
		if ok {
			return listed
		}
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func posErr(pos config.Pos, err error) error {
	if p := pos.String(); p != "" {
		return fmt.Errorf("%s: %w", p, err)
	}
	return err
}

func orUnknown(pos string) string {
	if pos == "" {
		return "an unknown position"
	}
	return pos
}
