package deb

import (
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"

	"cuelang.org/go/cue"

	"github.com/relcue/release/pipeline/config"
)

// SectionName is the deb module's configuration section: the .debs under
// os.<name>.releases.<version>.debs.
const SectionName = "deb"

// Section decodes and checks the .debs of every node release.
var Section = config.Section{Name: SectionName, Decode: decodeSection}

// Config is the deb section.
type Config struct {
	// Nodes holds the .debs of a node release by OS name, then version
	// (every version listed under the OS, declared or not).
	Nodes map[string]map[string][]Entry
}

// NodeDebs is what a node of OS os installs from .debs for release
// version, in configuration order (groups sorted by name).
func NodeDebs(m *config.Model, os, version string) []Entry {
	c := config.SectionOf[*Config](m, SectionName)
	if c == nil {
		return nil
	}
	return c.Nodes[os][version]
}

// Entry is one .deb of a node package: built by the pipeline (Build) or an
// existing file (File). Group is the folder under packages/<os>/.
type Entry struct {
	Group string
	Build *BuildConfig
	File  *config.Source
	Pos   config.Pos
}

// BuildConfig describes a .deb built with nfpm's deb packager.
type BuildConfig struct {
	Name        string
	Version     string // Debian version: [epoch:]upstream[-revision]
	Arch        string // Debian architecture, or "all"
	Maintainer  string
	Description string
	Section     string
	Priority    string
	Homepage    string
	License     string // written to /usr/share/doc/<name>/copyright

	Depends, PreDepends, Recommends, Suggests []string
	Conflicts, Breaks, Replaces, Provides     []string

	Contents []ContentConfig
	// SystemdUnits are unit files installed in /lib/systemd/system.
	SystemdUnits []ContentConfig
	Scripts      ScriptsConfig
	Pos          config.Pos
}

// ContentConfig is a file or directory tree placed in a .deb.
type ContentConfig struct {
	// Src is an absolute local file or directory ("" with Type "dir").
	Src string
	// Dst is the absolute path on the node, e.g. /usr/bin/kubelet.
	Dst string
	// Mode overrides the permission bits when non-zero.
	Mode uint32
	// Type is "file" (default), "config" (a conffile) or "dir" (an empty
	// directory).
	Type string
	Pos  config.Pos
}

// ScriptsConfig are absolute paths of maintainer scripts ("" = none).
type ScriptsConfig struct {
	PreInst, PostInst, PreRm, PostRm string
}

// The raw types mirror cue/schema/os.cue, which documents them.
type rawNodeRelease struct {
	Debs map[string][]rawDeb `json:"debs"`
}

type rawDeb struct {
	Build *rawBuildConfig   `json:"build"`
	File  *config.RawSource `json:"file"`
}

type rawBuildConfig struct {
	Name        string `json:"name"`
	Version     string `json:"version"`
	Arch        string `json:"arch"`
	Maintainer  string `json:"maintainer"`
	Description string `json:"description"`
	Section     string `json:"section"`
	Priority    string `json:"priority"`
	Homepage    string `json:"homepage"`
	License     string `json:"license"`

	Depends    []string `json:"depends"`
	PreDepends []string `json:"preDepends"`
	Recommends []string `json:"recommends"`
	Suggests   []string `json:"suggests"`
	Conflicts  []string `json:"conflicts"`
	Breaks     []string `json:"breaks"`
	Replaces   []string `json:"replaces"`
	Provides   []string `json:"provides"`

	Contents     []rawContent `json:"contents"`
	SystemdUnits []rawUnit    `json:"systemdUnits"`
	Scripts      rawScripts   `json:"scripts"`
}

type rawContent struct {
	Src  *string `json:"src"`
	Dst  string  `json:"dst"`
	Type string  `json:"type"`
	Mode *uint32 `json:"mode"`
}

type rawUnit struct {
	Src string `json:"src"`
}

type rawScripts struct {
	PreInst  *string `json:"preinst"`
	PostInst *string `json:"postinst"`
	PreRm    *string `json:"prerm"`
	PostRm   *string `json:"postrm"`
}

// unitFileSuffixes are the unit types systemd loads from a unit file
// name, for the configuration's check of a file name; unitSuffixes, the
// types a package may install, is checked when the .deb is planned.
var unitFileSuffixes = []string{".service", ".socket", ".timer", ".path", ".mount", ".automount",
	".swap", ".target", ".slice", ".scope", ".device"}

// decoder reads the deb section through the loader's Decoder.
type decoder struct{ *config.Decoder }

func decodeSection(d *config.Decoder) any {
	b := decoder{d}
	m := d.Model()
	c := &Config{Nodes: map[string]map[string][]Entry{}}
	for _, name := range m.OSNames {
		t := m.OS[name]
		nodes := map[string][]Entry{}
		for _, v := range slices.Sorted(maps.Keys(t.Releases)) {
			rp := config.At("os", name, "releases", v)
			var raw rawNodeRelease
			if !d.Decode(rp, &raw) {
				continue
			}
			nodes[v] = b.nodeDebs(rp, &raw, t)
		}
		c.Nodes[name] = nodes
	}
	return c
}

// nodeDebs checks and resolves the .debs of one node release.
func (b decoder) nodeDebs(rp cue.Path, raw *rawNodeRelease, t *config.OSTarget) []Entry {
	var out []Entry
	// A node has one version of a package per architecture, and a node
	// package one tar per image reference.
	built := map[[2]string]config.Pos{}
	for _, g := range slices.Sorted(maps.Keys(raw.Debs)) {
		gp := config.Join(rp, "debs", g)
		if !config.ValidName(g) {
			b.Problem(gp, "%q cannot be a group folder of packages/%s/; %s (e.g. \"kubernetes\")", g, t.Dir, config.NameRule)
		}
		if len(raw.Debs[g]) == 0 {
			b.Problem(gp, "no debs; list at least one, or remove the group")
		}
		for i := range raw.Debs[g] {
			d := b.deb(config.Join(gp, i), g, &raw.Debs[g][i], t)
			out = append(out, d)
			if d.Build == nil || d.Build.Name == "" || d.Build.Arch == "" {
				continue
			}
			key := [2]string{d.Build.Name, d.Build.Arch}
			if p, dup := built[key]; dup {
				b.Add(config.Problem{Pos: d.Build.Pos, Path: config.Join(gp, i, "build").String(),
					Message: fmt.Sprintf("%s for %s is also built at %s; a node installs one version of a package per architecture, so build it once", key[0], key[1], p),
					Related: []config.Pos{p}})
				continue
			}
			built[key] = d.Build.Pos
		}
	}
	return out
}

func (b decoder) deb(dp cue.Path, group string, raw *rawDeb, t *config.OSTarget) Entry {
	d := Entry{Group: group, Pos: b.Pos(dp)}
	switch {
	case raw.Build != nil && raw.File != nil:
		b.Problem(dp, "set either build or file, not both")
	case raw.Build == nil && raw.File == nil:
		b.Problem(dp, "set build (a .deb made from local files) or file (an existing .deb)")
	}
	if raw.Build != nil {
		d.Build = b.debSpec(config.Join(dp, "build"), raw.Build, t)
	}
	if raw.File != nil {
		d.File = b.Source(config.Join(dp, "file"), raw.File)
	}
	return d
}

func (b decoder) debSpec(sp cue.Path, raw *rawBuildConfig, t *config.OSTarget) *BuildConfig {
	s := &BuildConfig{
		Name:        raw.Name,
		Version:     raw.Version,
		Arch:        raw.Arch,
		Maintainer:  raw.Maintainer,
		Description: raw.Description,
		Section:     raw.Section,
		Priority:    raw.Priority,
		Homepage:    raw.Homepage,
		License:     raw.License,
		Depends:     b.relations(sp, "depends", raw.Depends),
		PreDepends:  b.relations(sp, "preDepends", raw.PreDepends),
		Recommends:  b.relations(sp, "recommends", raw.Recommends),
		Suggests:    b.relations(sp, "suggests", raw.Suggests),
		Conflicts:   b.relations(sp, "conflicts", raw.Conflicts),
		Breaks:      b.relations(sp, "breaks", raw.Breaks),
		Replaces:    b.relations(sp, "replaces", raw.Replaces),
		Provides:    b.relations(sp, "provides", raw.Provides),
		Pos:         b.Pos(sp),
	}
	for _, f := range []struct{ field, value, example string }{
		{"name", raw.Name, `"kubelet"`},
		{"version", raw.Version, `"1.32.2-1"`},
		{"arch", raw.Arch, `"amd64" or "all"`},
		{"maintainer", raw.Maintainer, `"Example Edge Systems <release@example.com>"`},
		{"description", raw.Description, `"Kubernetes node agent"`},
	} {
		if f.value == "" {
			b.Problem(config.Join(sp, f.field), "empty; the .deb needs it, e.g. %s", f.example)
		}
	}
	if raw.Arch != "" && raw.Arch != "all" && len(t.Arch) > 0 && !slices.Contains(t.Arch, raw.Arch) {
		b.Problem(config.Join(sp, "arch"), "%q is not an arch of %s (%s); use one of them or \"all\", or add it to %s",
			raw.Arch, config.At("os", t.Name), strings.Join(t.Arch, ", "), config.At("os", t.Name, "arch"))
	}
	for i := range raw.Contents {
		s.Contents = append(s.Contents, b.debContent(config.Join(sp, "contents", i), &raw.Contents[i]))
	}
	for i, u := range raw.SystemdUnits {
		up := config.Join(sp, "systemdUnits", i)
		c := ContentConfig{Type: TypeFile, Pos: b.Pos(up)}
		if c.Src = b.Local(config.Join(up, "src"), u.Src); c.Src != "" {
			name := path.Base(u.Src)
			c.Dst = path.Join(UnitDir, name)
			if !slices.ContainsFunc(unitFileSuffixes, func(sfx string) bool { return strings.HasSuffix(name, sfx) && name != sfx }) {
				b.Problem(config.Join(up, "src"), "%q is not a unit file name, which systemd would ignore; name the file <unit>%s (or %s)",
					name, unitFileSuffixes[0], strings.Join(unitFileSuffixes[1:], ", "))
			}
		}
		s.SystemdUnits = append(s.SystemdUnits, c)
	}
	scp := config.Join(sp, "scripts")
	for _, sc := range []struct {
		field string
		raw   *string
		dst   *string
	}{
		{"preinst", raw.Scripts.PreInst, &s.Scripts.PreInst},
		{"postinst", raw.Scripts.PostInst, &s.Scripts.PostInst},
		{"prerm", raw.Scripts.PreRm, &s.Scripts.PreRm},
		{"postrm", raw.Scripts.PostRm, &s.Scripts.PostRm},
	} {
		if sc.raw != nil {
			*sc.dst = b.Local(config.Join(scp, sc.field), *sc.raw)
		}
	}
	return s
}

// relations returns a relationship field of a .deb (nil when empty),
// reporting empty entries; their Debian syntax is checked by the deb
// builder.
func (b decoder) relations(sp cue.Path, field string, list []string) []string {
	for i, r := range list {
		if strings.TrimSpace(r) == "" {
			b.Problem(config.Join(sp, field, i), `empty; write a package relation such as "iptables (>= 1.8)", or remove the entry`)
		}
	}
	if len(list) == 0 {
		return nil
	}
	return list
}

func (b decoder) debContent(cp cue.Path, raw *rawContent) ContentConfig {
	c := ContentConfig{Type: raw.Type, Dst: raw.Dst, Pos: b.Pos(cp)}
	if raw.Mode != nil {
		c.Mode = *raw.Mode
	}
	switch {
	case raw.Type == TypeDir && raw.Src != nil:
		b.Problem(config.Join(cp, "src"), `type "dir" creates an empty directory and takes no src; remove src, or remove type to place src at dst`)
	case raw.Type != TypeDir && raw.Src == nil:
		b.Problem(cp, `no src; name the local file or directory to place at dst, or set type: "dir" for an empty directory`)
	}
	if raw.Src != nil {
		c.Src = b.Local(config.Join(cp, "src"), *raw.Src)
	}
	if msg := config.TargetPathProblem(raw.Dst, "on the node", "/usr/bin/kubelet", false); msg != "" {
		b.Problem(config.Join(cp, "dst"), "%s", msg)
	}
	return c
}
