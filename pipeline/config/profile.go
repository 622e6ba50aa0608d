package config

import (
	"fmt"
	"slices"
	"sync"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"

	cueschema "github.com/relcue/release/cue"
)

// Profiles, as in the schema (#Product.profile), which documents them.
const (
	ProfileGeneric = "generic"
	ProfileK2s     = "k2s"
)

// Profiles lists the profile names.
var Profiles = []string{ProfileGeneric, ProfileK2s}

// ProfileDefaults are the delta settings a profile implies where the
// configuration sets none. The values live in the embedded schema
// (#DeltaOptions, #DefaultSkip, #K2s...), which documents them; the loader
// applies them because they depend on product.profile.
type ProfileDefaults struct {
	WholeDirectories []string
	Skip             []string
	SkipNames        []string
	Always           []string
	Nested           []NestedArchive
	ApplyScript      *ApplyScript
}

// DefaultsOf returns the defaults of profile, which must be one of
// Profiles. The lists are fresh copies the caller may keep.
func DefaultsOf(profile string) (ProfileDefaults, error) {
	profileOnce.Do(loadProfiles)
	if profileErr != nil {
		return ProfileDefaults{}, profileErr
	}
	d, ok := profileDefaults[profile]
	if !ok {
		return ProfileDefaults{}, fmt.Errorf("profile %q: want one of %q", profile, Profiles)
	}
	return d.clone(), nil
}

var (
	profileOnce     sync.Once
	profileDefaults map[string]ProfileDefaults
	profileErr      error
)

func loadProfiles() {
	profileDefaults, profileErr = readProfiles()
}

// readProfiles decodes the profiles' defaults from the embedded schema.
func readProfiles() (map[string]ProfileDefaults, error) {
	ctx := cuecontext.New()
	def, err := cueschema.Config(ctx)
	if err != nil {
		return nil, err
	}
	var whole []string
	w, _ := def.LookupPath(cue.ParsePath("deltas.defaults.wholeDirectories")).Default()
	if err := w.Decode(&whole); err != nil {
		return nil, fmt.Errorf("embedded schema: deltas.defaults.wholeDirectories: %w", err)
	}
	decode := func(name string, dst any) error {
		v, err := cueschema.Definition(ctx, name)
		if err != nil {
			return err
		}
		if err := v.Decode(dst); err != nil {
			return fmt.Errorf("embedded schema: %s: %w", name, err)
		}
		return nil
	}
	generic := ProfileDefaults{WholeDirectories: whole, SkipNames: []string{}, Always: []string{}}
	if err := decode("#DefaultSkip", &generic.Skip); err != nil {
		return nil, err
	}
	k2s := ProfileDefaults{WholeDirectories: whole}
	var nested []rawNested
	var apply rawApplyScript
	for name, dst := range map[string]any{
		"#K2sSkip": &k2s.Skip, "#K2sSkipNames": &k2s.SkipNames, "#K2sAlways": &k2s.Always,
		"#K2sNested": &nested, "#K2sApplyScript": &apply,
	} {
		if err := decode(name, dst); err != nil {
			return nil, err
		}
	}
	slices.Sort(k2s.Always) // as the loader keeps deltas.always
	for _, n := range nested {
		k2s.Nested = append(k2s.Nested, n.model(Pos{}))
	}
	k2s.ApplyScript = apply.model()
	return map[string]ProfileDefaults{ProfileGeneric: generic, ProfileK2s: k2s}, nil
}

func (d ProfileDefaults) clone() ProfileDefaults {
	c := ProfileDefaults{
		WholeDirectories: append([]string{}, d.WholeDirectories...),
		Skip:             append([]string{}, d.Skip...),
		SkipNames:        append([]string{}, d.SkipNames...),
		Always:           append([]string{}, d.Always...),
	}
	for _, n := range d.Nested {
		c.Nested = append(c.Nested, n.clone())
	}
	if d.ApplyScript != nil {
		a := *d.ApplyScript
		a.Preload = append([]string{}, a.Preload...)
		c.ApplyScript = &a
	}
	return c
}

func (n NestedArchive) clone() NestedArchive {
	c := n
	c.Folders = nil
	for _, f := range n.Folders {
		g := f
		if f.Rename != nil {
			g.Rename = make(map[string]string, len(f.Rename))
			for k, v := range f.Rename {
				g.Rename[k] = v
			}
		}
		c.Folders = append(c.Folders, g)
	}
	return c
}
