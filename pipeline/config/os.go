package config

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"

	"cuelang.org/go/cue"
)

// The raw types of os mirror cue/schema/os.cue, which documents them.
type rawOS struct {
	Distro       string                    `json:"distro"`
	Codename     string                    `json:"codename"`
	Arch         []string                  `json:"arch"`
	Dir          *string                   `json:"dir"`
	ControlPlane bool                      `json:"controlPlane"`
	Releases     map[string]rawNodeRelease `json:"releases"`
}

type rawNodeRelease struct {
	Debs   map[string][]rawDeb `json:"debs"`
	Images []rawImage          `json:"images"`
}

type rawDeb struct {
	Build *rawDebSpec `json:"build"`
	File  *rawSource  `json:"file"`
}

type rawDebSpec struct {
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

type rawImage struct {
	Ref        string            `json:"ref"`
	Base       *rawBase          `json:"base"`
	Platforms  *[]string         `json:"platforms"`
	Layers     []rawLayer        `json:"layers"`
	Entrypoint []string          `json:"entrypoint"`
	Cmd        []string          `json:"cmd"`
	Env        map[string]string `json:"env"`
	Labels     map[string]string `json:"labels"`
	WorkingDir string            `json:"workingDir"`
	User       string            `json:"user"`
}

type rawBase struct {
	Layout  *string `json:"layout"`
	Tarball *string `json:"tarball"`
	Ref     *string `json:"ref"`
}

type rawLayer struct {
	Dir      *string `json:"dir"`
	File     *string `json:"file"`
	Dest     *string `json:"dest"`
	Mode     *uint32 `json:"mode"`
	Platform *string `json:"platform"`
}

// Content types of a .deb (DebContent.Type), as in the schema.
const (
	ContentFile   = "file"
	ContentConfig = "config"
	ContentDir    = "dir"
)

// SystemdUnitDir is where SystemdUnits are installed.
const SystemdUnitDir = "/lib/systemd/system"

// osNameRE is the alphabet of OS names, dirs and deb groups: they appear
// in target IDs and as folders in node packages, which must not differ
// only in case (Windows extracts them into one folder).
var osNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

const nameRule = `use lower-case letters, digits, ".", "_" and "-", starting with a letter or digit`

// platformRE is os/arch[/variant] as OCI image indexes write it.
var platformRE = regexp.MustCompile(`^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?$`)

// debianPlatforms maps Debian architectures to OCI platforms, for the
// default platforms of an image.
var debianPlatforms = map[string]string{
	"amd64":    "linux/amd64",
	"arm64":    "linux/arm64",
	"armhf":    "linux/arm/v7",
	"armel":    "linux/arm/v5",
	"i386":     "linux/386",
	"ppc64el":  "linux/ppc64le",
	"s390x":    "linux/s390x",
	"riscv64":  "linux/riscv64",
	"mips64el": "linux/mips64le",
	"loong64":  "linux/loong64",
}

// unitSuffixes are the unit types systemd loads from a unit file name.
var unitSuffixes = []string{".service", ".socket", ".timer", ".path", ".mount", ".automount",
	".swap", ".target", ".slice", ".scope", ".device"}

func (b *builder) osTargets(raw map[string]rawOS, rs map[string]*Release) (map[string]*OSTarget, []string) {
	if len(raw) == 0 {
		return nil, nil
	}
	names := sortedKeys(raw)
	out := make(map[string]*OSTarget, len(names))
	dirs := map[string]string{} // dir -> OS name
	controlPlane := ""
	for _, name := range names {
		r := raw[name]
		t := b.osTarget(name, &r, rs)
		out[name] = t
		if t.Dir != "" {
			if other, dup := dirs[t.Dir]; dup {
				b.ps.add(Problem{
					Pos:  b.ps.posOf(at("os", name, "dir")),
					Path: at("os", name, "dir").String(),
					Message: fmt.Sprintf("%q is also the dir of %s (%s); each OS needs its own packages/<dir>, so set another dir on one of them",
						t.Dir, at("os", other), b.ps.posOf(at("os", other, "dir"))),
					Related: []Pos{b.ps.posOf(at("os", other, "dir"))},
				})
			} else {
				dirs[t.Dir] = name
			}
		}
		if t.ControlPlane {
			if controlPlane != "" {
				b.ps.at(at("os", name, "controlPlane"), "%s (%s) is the control-plane OS already; set controlPlane on one OS only",
					at("os", controlPlane), b.ps.posOf(at("os", controlPlane, "controlPlane")))
			} else {
				controlPlane = name
			}
		}
	}
	return out, names
}

func (b *builder) osTarget(name string, raw *rawOS, rs map[string]*Release) *OSTarget {
	op := at("os", name)
	t := &OSTarget{
		Name:         name,
		Dir:          name,
		Distro:       raw.Distro,
		Codename:     raw.Codename,
		Arch:         raw.Arch,
		ControlPlane: raw.ControlPlane,
		Releases:     map[string]*NodeRelease{},
		Pos:          b.ps.posOf(op),
	}
	if !osNameRE.MatchString(name) {
		b.ps.at(op, "%q cannot name an OS, which appears in target IDs and package paths; %s (e.g. \"debian12\")", name, nameRule)
		t.Dir = ""
	}
	if raw.Dir != nil {
		t.Dir = *raw.Dir
		if !osNameRE.MatchString(t.Dir) {
			b.ps.at(join(op, "dir"), "%q cannot be a folder of packages/; %s, or leave dir out to use the OS name", t.Dir, nameRule)
			t.Dir = ""
		}
	}
	if raw.Distro == "" {
		b.ps.at(join(op, "distro"), `empty; name the distribution, e.g. "debian"`)
	}
	if raw.Codename == "" {
		b.ps.at(join(op, "codename"), `empty; name the distribution release, e.g. "bookworm"`)
	}
	b.checkArch(join(op, "arch"), raw.Arch)

	for _, v := range sortedKeys(raw.Releases) {
		rp := join(op, "releases", v)
		if _, declared := rs[v]; !declared {
			b.ps.at(rp, "release %s is not declared in releases; declare it there or remove it from %s", v, join(op, "releases"))
		} else {
			t.Versions = append(t.Versions, v)
		}
		nr := raw.Releases[v]
		t.Releases[v] = b.nodeRelease(rp, v, &nr, t)
	}
	slices.SortFunc(t.Versions, compareVersions)
	return t
}

func (b *builder) checkArch(ap cue.Path, arch []string) {
	if len(arch) == 0 {
		b.ps.at(ap, `empty; list the Debian architectures of the OS's nodes, e.g. ["amd64"]`)
	}
	for i, a := range arch {
		switch {
		case a == "":
			b.ps.at(join(ap, i), `empty; name a Debian architecture, e.g. "amd64"`)
		case a == "all":
			b.ps.at(join(ap, i), `"all" marks architecture-independent .debs; name the nodes' architecture, e.g. "amd64"`)
		case slices.Contains(arch[:i], a):
			b.ps.at(join(ap, i), "%q is listed twice; remove one", a)
		}
	}
}

func (b *builder) nodeRelease(rp cue.Path, v string, raw *rawNodeRelease, t *OSTarget) *NodeRelease {
	nr := &NodeRelease{Version: v, Pos: b.ps.posOf(rp)}
	if len(raw.Debs) == 0 && len(raw.Images) == 0 {
		b.ps.at(rp, "nothing for a node to install; list debs or images, or remove the release")
	}
	// A node has one version of a package per architecture, and a node
	// package one tar per image reference.
	built := map[[2]string]Pos{}
	for _, g := range sortedKeys(raw.Debs) {
		gp := join(rp, "debs", g)
		if !osNameRE.MatchString(g) {
			b.ps.at(gp, "%q cannot be a group folder of packages/%s/; %s (e.g. \"kubernetes\")", g, t.Dir, nameRule)
		}
		if len(raw.Debs[g]) == 0 {
			b.ps.at(gp, "no debs; list at least one, or remove the group")
		}
		for i := range raw.Debs[g] {
			d := b.deb(join(gp, i), g, &raw.Debs[g][i], t)
			nr.Debs = append(nr.Debs, d)
			if d.Build == nil || d.Build.Name == "" || d.Build.Arch == "" {
				continue
			}
			key := [2]string{d.Build.Name, d.Build.Arch}
			if p, dup := built[key]; dup {
				b.ps.add(Problem{Pos: d.Build.Pos, Path: join(gp, i, "build").String(),
					Message: fmt.Sprintf("%s for %s is also built at %s; a node installs one version of a package per architecture, so build it once", key[0], key[1], p),
					Related: []Pos{p}})
				continue
			}
			built[key] = d.Build.Pos
		}
	}
	refs := map[string]Pos{}
	for i := range raw.Images {
		ip := join(rp, "images", i)
		im := b.image(ip, &raw.Images[i], t)
		nr.Images = append(nr.Images, im)
		if im.Ref == "" {
			continue
		}
		if p, dup := refs[im.Ref]; dup {
			b.ps.add(Problem{Pos: im.Pos, Path: ip.String(),
				Message: fmt.Sprintf("image %s is also listed at %s; list each image once", im.Ref, p),
				Related: []Pos{p}})
			continue
		}
		refs[im.Ref] = im.Pos
	}
	return nr
}

func (b *builder) deb(dp cue.Path, group string, raw *rawDeb, t *OSTarget) DebRef {
	d := DebRef{Group: group, Pos: b.ps.posOf(dp)}
	switch {
	case raw.Build != nil && raw.File != nil:
		b.ps.at(dp, "set either build or file, not both")
	case raw.Build == nil && raw.File == nil:
		b.ps.at(dp, "set build (a .deb made from local files) or file (an existing .deb)")
	}
	if raw.Build != nil {
		d.Build = b.debSpec(join(dp, "build"), raw.Build, t)
	}
	if raw.File != nil {
		d.File = b.source(join(dp, "file"), raw.File)
	}
	return d
}

func (b *builder) debSpec(sp cue.Path, raw *rawDebSpec, t *OSTarget) *DebSpec {
	s := &DebSpec{
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
		Pos:         b.ps.posOf(sp),
	}
	for _, f := range []struct{ field, value, example string }{
		{"name", raw.Name, `"kubelet"`},
		{"version", raw.Version, `"1.32.2-1"`},
		{"arch", raw.Arch, `"amd64" or "all"`},
		{"maintainer", raw.Maintainer, `"Example Edge Systems <release@example.com>"`},
		{"description", raw.Description, `"Kubernetes node agent"`},
	} {
		if f.value == "" {
			b.ps.at(join(sp, f.field), "empty; the .deb needs it, e.g. %s", f.example)
		}
	}
	if raw.Arch != "" && raw.Arch != "all" && len(t.Arch) > 0 && !slices.Contains(t.Arch, raw.Arch) {
		b.ps.at(join(sp, "arch"), "%q is not an arch of %s (%s); use one of them or \"all\", or add it to %s",
			raw.Arch, at("os", t.Name), strings.Join(t.Arch, ", "), at("os", t.Name, "arch"))
	}
	for i := range raw.Contents {
		s.Contents = append(s.Contents, b.debContent(join(sp, "contents", i), &raw.Contents[i]))
	}
	for i, u := range raw.SystemdUnits {
		up := join(sp, "systemdUnits", i)
		c := DebContent{Type: ContentFile, Pos: b.ps.posOf(up)}
		if c.Src = b.local(join(up, "src"), u.Src); c.Src != "" {
			name := path.Base(u.Src)
			c.Dst = path.Join(SystemdUnitDir, name)
			if !slices.ContainsFunc(unitSuffixes, func(sfx string) bool { return strings.HasSuffix(name, sfx) && name != sfx }) {
				b.ps.at(join(up, "src"), "%q is not a unit file name, which systemd would ignore; name the file <unit>%s (or %s)",
					name, unitSuffixes[0], strings.Join(unitSuffixes[1:], ", "))
			}
		}
		s.SystemdUnits = append(s.SystemdUnits, c)
	}
	scp := join(sp, "scripts")
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
			*sc.dst = b.local(join(scp, sc.field), *sc.raw)
		}
	}
	return s
}

// relations returns a relationship field of a .deb (nil when empty),
// reporting empty entries; their Debian syntax is checked by the deb
// builder.
func (b *builder) relations(sp cue.Path, field string, list []string) []string {
	for i, r := range list {
		if strings.TrimSpace(r) == "" {
			b.ps.at(join(sp, field, i), `empty; write a package relation such as "iptables (>= 1.8)", or remove the entry`)
		}
	}
	if len(list) == 0 {
		return nil
	}
	return list
}

func (b *builder) debContent(cp cue.Path, raw *rawContent) DebContent {
	c := DebContent{Type: raw.Type, Dst: raw.Dst, Pos: b.ps.posOf(cp)}
	if raw.Mode != nil {
		c.Mode = *raw.Mode
	}
	switch {
	case raw.Type == ContentDir && raw.Src != nil:
		b.ps.at(join(cp, "src"), `type "dir" creates an empty directory and takes no src; remove src, or remove type to place src at dst`)
	case raw.Type != ContentDir && raw.Src == nil:
		b.ps.at(cp, `no src; name the local file or directory to place at dst, or set type: "dir" for an empty directory`)
	}
	if raw.Src != nil {
		c.Src = b.local(join(cp, "src"), *raw.Src)
	}
	if msg := targetPathProblem(raw.Dst, "on the node", "/usr/bin/kubelet", false); msg != "" {
		b.ps.at(join(cp, "dst"), "%s", msg)
	}
	return c
}

func (b *builder) image(ip cue.Path, raw *rawImage, t *OSTarget) ImageSpec {
	im := ImageSpec{
		Ref:        raw.Ref,
		Entrypoint: nilIfEmpty(raw.Entrypoint),
		Cmd:        nilIfEmpty(raw.Cmd),
		WorkingDir: raw.WorkingDir,
		User:       raw.User,
		Pos:        b.ps.posOf(ip),
	}
	if raw.Ref == "" {
		b.ps.at(join(ip, "ref"), `empty; name the image as nodes know it, e.g. "registry.k8s.io/pause:3.10"`)
	}
	if raw.Base != nil {
		im.Base = b.imageBase(join(ip, "base"), raw.Base)
	}
	im.Platforms = b.platforms(ip, raw.Platforms, t)
	if raw.Base == nil && len(raw.Layers) == 0 {
		b.ps.at(ip, "an image from scratch needs at least one layer; add layers, or a base")
	}
	for i := range raw.Layers {
		im.Layers = append(im.Layers, b.layer(join(ip, "layers", i), &raw.Layers[i], im.Platforms))
	}
	im.Env = b.keyed(join(ip, "env"), raw.Env, "variable")
	im.Labels = b.keyed(join(ip, "labels"), raw.Labels, "label")
	return im
}

func (b *builder) imageBase(bp cue.Path, raw *rawBase) *ImageBase {
	base := &ImageBase{Pos: b.ps.posOf(bp)}
	switch {
	case raw.Layout != nil && raw.Tarball != nil:
		b.ps.at(bp, "set either layout or tarball, not both")
	case raw.Layout == nil && raw.Tarball == nil:
		b.ps.at(bp, "set layout (an OCI image layout directory) or tarball (an OCI archive or docker save tarball)")
	}
	if raw.Layout != nil {
		base.Layout = b.local(join(bp, "layout"), *raw.Layout)
	}
	if raw.Tarball != nil {
		base.Tarball = b.local(join(bp, "tarball"), *raw.Tarball)
	}
	if raw.Ref != nil {
		base.Ref = *raw.Ref
		if base.Ref == "" {
			b.ps.at(join(bp, "ref"), "empty; name the image to use from the base, or leave ref out if it holds one")
		}
	}
	return base
}

// platforms returns an image's platforms: those given, or by default one
// per architecture of its OS.
func (b *builder) platforms(ip cue.Path, given *[]string, t *OSTarget) []string {
	pp := join(ip, "platforms")
	if given == nil {
		var out []string
		for _, a := range t.Arch {
			p, ok := debianPlatforms[a]
			if !ok {
				if a != "" && a != "all" {
					b.ps.at(ip, "no default platform for arch %q of %s; set platforms (e.g. [\"linux/amd64\"])", a, at("os", t.Name))
				}
				continue
			}
			if !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
		return out
	}
	if len(*given) == 0 {
		b.ps.at(pp, "empty; list at least one platform, or leave platforms out for those of the OS's arch")
	}
	for i, p := range *given {
		if msg := platformProblem(p); msg != "" {
			b.ps.at(join(pp, i), "%s", msg)
		} else if slices.Contains((*given)[:i], p) {
			b.ps.at(join(pp, i), "%q is listed twice; remove one", p)
		}
	}
	return *given
}

func platformProblem(p string) string {
	if !platformRE.MatchString(p) {
		return fmt.Sprintf(`%q is not a platform; write os/arch[/variant], e.g. "linux/amd64" or "linux/arm/v7"`, p)
	}
	return ""
}

func (b *builder) layer(lp cue.Path, raw *rawLayer, platforms []string) ImageLayer {
	l := ImageLayer{Pos: b.ps.posOf(lp)}
	switch {
	case raw.Dir != nil && raw.File != nil:
		b.ps.at(lp, "set either dir or file, not both")
	case raw.Dir == nil && raw.File == nil:
		b.ps.at(lp, "set dir (a directory tree) or file (a single file)")
	}
	if raw.Dir != nil {
		l.Dir = b.local(join(lp, "dir"), *raw.Dir)
		l.Dest = "/"
		if raw.Mode != nil {
			b.ps.at(join(lp, "mode"), "mode applies to file layers only; a directory's files keep their own modes")
		}
	}
	if raw.File != nil {
		l.File = b.local(join(lp, "file"), *raw.File)
		if raw.Mode != nil {
			l.Mode = *raw.Mode
		}
	}
	switch {
	case raw.Dest != nil:
		l.Dest = *raw.Dest
		if msg := targetPathProblem(l.Dest, "in the image", "/usr/local/bin/tool", raw.File == nil); msg != "" {
			b.ps.at(join(lp, "dest"), "%s", msg)
		}
	case raw.File != nil:
		b.ps.at(join(lp, "dest"), `a file layer needs dest, the file's absolute path in the image (e.g. "/usr/local/bin/tool")`)
	}
	if raw.Platform != nil {
		l.Platform = *raw.Platform
		if msg := platformProblem(l.Platform); msg != "" {
			b.ps.at(join(lp, "platform"), "%s", msg)
		} else if len(platforms) > 0 && !slices.Contains(platforms, l.Platform) {
			b.ps.at(join(lp, "platform"), "%q is not a platform of the image (%s); use one of them, or add it to platforms",
				l.Platform, strings.Join(platforms, ", "))
		}
	}
	return l
}

// keyed returns env or labels (nil when empty), reporting unusable names.
func (b *builder) keyed(kp cue.Path, m map[string]string, what string) map[string]string {
	for _, k := range sortedKeys(m) {
		switch {
		case strings.TrimSpace(k) == "":
			b.ps.at(join(kp, k), "empty %s name; name it, or remove the entry", what)
		case what == "variable" && strings.Contains(k, "="):
			b.ps.at(join(kp, k), "%q contains \"=\", which ends a variable name; rename it", k)
		}
	}
	if len(m) == 0 {
		return nil
	}
	return m
}

// local resolves a path to a local input of a node package, which must
// stay inside the configuration directory; it returns "" after reporting
// an unusable one.
func (b *builder) local(p cue.Path, s string) string {
	if msg := localPathProblem(s); msg != "" {
		b.ps.at(p, "%s", msg)
		return ""
	}
	return b.abs(s)
}

// localPathProblem says what is wrong with p as a forward-slash path
// relative to the configuration directory, or "" if nothing is.
func localPathProblem(p string) string {
	switch {
	case p == "":
		return "empty; name a path relative to the configuration directory"
	case strings.Contains(p, `\`):
		return fmt.Sprintf("%q contains a backslash; use forward slashes", p)
	case strings.HasPrefix(p, "/") || hasDrive(p):
		return fmt.Sprintf("%q is absolute; write it relative to the configuration directory, which holds the inputs of node packages", p)
	case slices.Contains(strings.Split(p, "/"), ".."):
		return fmt.Sprintf("%q contains \"..\"; inputs must stay inside the configuration directory", p)
	case path.Clean(p) == ".":
		return fmt.Sprintf("%q names the configuration directory itself; name a file or directory in it", p)
	case path.Clean(p) != p:
		return fmt.Sprintf("%q is not in clean form; write %q", p, path.Clean(p))
	}
	return ""
}

// targetPathProblem says what is wrong with p as an absolute path on a
// node or in an image (where), or "" if nothing is. root allows "/".
func targetPathProblem(p, where, example string, root bool) string {
	switch {
	case p == "":
		return fmt.Sprintf("empty; write the absolute path %s, e.g. %q", where, example)
	case strings.Contains(p, `\`):
		return fmt.Sprintf("%q contains a backslash; use forward slashes", p)
	case !strings.HasPrefix(p, "/"):
		return fmt.Sprintf("%q is relative; write the absolute path %s, e.g. %q", p, where, example)
	case slices.Contains(strings.Split(p, "/"), ".."):
		return fmt.Sprintf("%q contains \"..\"; write the path without it", p)
	case path.Clean(p) != p:
		return fmt.Sprintf("%q is not in clean form; write %q", p, path.Clean(p))
	case p == "/" && !root:
		return fmt.Sprintf(`"/" is the root directory; name a path below it, e.g. %q`, example)
	}
	return ""
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}
