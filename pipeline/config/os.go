package config

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"

	"cuelang.org/go/cue"
)

// The raw types of os mirror cue/schema/os.cue, which documents them. The
// .debs and images of a node release are decoded by the deb and image
// modules; the core needs only whether there are any.
type rawOS struct {
	Distro       string                    `json:"distro"`
	Codename     string                    `json:"codename"`
	Arch         []string                  `json:"arch"`
	Dir          *string                   `json:"dir"`
	ControlPlane bool                      `json:"controlPlane"`
	Releases     map[string]rawNodeRelease `json:"releases"`
}

type rawNodeRelease struct {
	Debs   map[string][]struct{} `json:"debs"`
	Images []struct{}            `json:"images"`
}

// nameRE is the alphabet of OS names, dirs and deb groups: they appear
// in target IDs and as folders in node packages, which must not differ
// only in case (Windows extracts them into one folder).
var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

// dnsLabelRE is RFC 1123's label: addon, implementation and rollout
// policy names become Kubernetes object and registry repository names.
var dnsLabelRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// ValidDNSLabel reports whether s is an RFC 1123 label (a Kubernetes
// namespace or object name part).
func ValidDNSLabel(s string) bool { return dnsLabelRE.MatchString(s) }

// NameRule says what ValidName accepts, for messages.
const NameRule = `use lower-case letters, digits, ".", "_" and "-", starting with a letter or digit`

// ValidName reports whether s may name an OS target, its dir or a folder
// of a package (target IDs and package paths hold them).
func ValidName(s string) bool { return nameRE.MatchString(s) }

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
	if !ValidName(name) {
		b.ps.at(op, "%q cannot name an OS, which appears in target IDs and package paths; %s (e.g. \"debian12\")", name, NameRule)
		t.Dir = ""
	}
	if raw.Dir != nil {
		t.Dir = *raw.Dir
		if !ValidName(t.Dir) {
			b.ps.at(join(op, "dir"), "%q cannot be a folder of packages/; %s, or leave dir out to use the OS name", t.Dir, NameRule)
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
		t.Releases[v] = b.nodeRelease(rp, v, &nr)
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

func (b *builder) nodeRelease(rp cue.Path, v string, raw *rawNodeRelease) *NodeRelease {
	if len(raw.Debs) == 0 && len(raw.Images) == 0 {
		b.ps.at(rp, "nothing for a node to install; list debs or images, or remove the release")
	}
	return &NodeRelease{Version: v, Pos: b.ps.posOf(rp)}
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

// TargetPathProblem says what is wrong with p as an absolute path on a
// node or in an image (where), or "" if nothing is. root allows "/".
func TargetPathProblem(p, where, example string, root bool) string {
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
