// Package deb builds Debian binary packages (.deb) reproducibly with
// nfpm's deb packager, reads the control data of existing ones, and plans
// one build target per package an OS target declares.
package deb

import (
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/relcue/release/pipeline/config"
)

const (
	// Kind is the step kind; ArtifactKind the kind of the .deb artifact.
	Kind         = "deb"
	ArtifactKind = "deb"
	// StepVersion changes whenever Build's bytes could change for the same
	// spec and sources (nfpm upgrades, compression, generated files), so
	// that cached packages stop matching.
	StepVersion = "1"

	// DefaultSection and DefaultPriority fill empty fields, as
	// dh_gencontrol would for most packages.
	DefaultSection  = "misc"
	DefaultPriority = "optional"

	// TypeFile, TypeConfig and TypeDir are the content types.
	TypeFile   = "file"
	TypeConfig = "config"
	TypeDir    = "dir"

	// UnitDir is where systemd units go; on Debian 12 lintian expects
	// /lib rather than /usr/lib (systemd-service-file-outside-lib).
	UnitDir = "/lib/systemd/system"
)

// TargetID is the stable ID of a package built for an OS target.
func TargetID(os, name, version, arch string) string {
	return "deb/" + os + "/" + name + "_" + version + "_" + arch
}

// OutputPath is where a package built for an OS target goes, relative to
// dist/.
func OutputPath(osDir, name, version, arch string) string {
	return "debs/" + osDir + "/" + FileName(name, version, arch)
}

// Spec is the canonical JSON spec of a package. Local files are named by
// source (keys of step.Input.Sources), never by path, so that the cache
// key does not depend on where the checkout lives.
type Spec struct {
	Name        string `json:"name"`
	Version     string `json:"version"`
	Arch        string `json:"arch"`
	Maintainer  string `json:"maintainer"`
	Description string `json:"description"`
	Section     string `json:"section"`
	Priority    string `json:"priority"`
	Homepage    string `json:"homepage,omitempty"`
	// License names the license in the generated copyright file; it may be
	// empty when a content entry provides /usr/share/doc/<name>/copyright.
	License string `json:"license,omitempty"`

	Depends    []string `json:"depends,omitempty"`
	PreDepends []string `json:"preDepends,omitempty"`
	Recommends []string `json:"recommends,omitempty"`
	Suggests   []string `json:"suggests,omitempty"`
	Conflicts  []string `json:"conflicts,omitempty"`
	Breaks     []string `json:"breaks,omitempty"`
	Replaces   []string `json:"replaces,omitempty"`
	Provides   []string `json:"provides,omitempty"`

	// Contents are placed in order; systemd units are contents with a
	// destination in UnitDir.
	Contents []Content `json:"contents"`
	Scripts  Scripts   `json:"scripts"`
	// Date is RFC 3339 in UTC: the mtime of every entry, of the archive
	// members and of the changelog.
	Date string `json:"date"`
	// Output is the package's path relative to the step's output
	// directory (and dist/).
	Output string `json:"output"`
}

// Content places a source (a file or a directory tree) at Dst, or creates
// an empty directory (Type "dir"). Every file below /etc is a conffile,
// as debhelper makes it: lintian reports file-in-etc-not-marked-as-conffile
// otherwise, and dpkg would overwrite local changes on upgrade.
type Content struct {
	Source string `json:"source,omitempty"`
	Dst    string `json:"dst"`
	// Mode replaces the permission bits when non-zero; otherwise a file is
	// 0755 when its source is executable by anyone and 0644 if not, and a
	// directory 0755.
	Mode uint32 `json:"mode,omitempty"`
	Type string `json:"type"`

	// field and pos say where the entry was declared, for plan-time
	// messages; they are not part of the spec.
	field string
	pos   config.Pos
}

// Scripts name the sources of the maintainer scripts ("" = none).
type Scripts struct {
	PreInst  string `json:"preinst,omitempty"`
	PostInst string `json:"postinst,omitempty"`
	PreRm    string `json:"prerm,omitempty"`
	PostRm   string `json:"postrm,omitempty"`
}

func (s Scripts) list() []struct{ name, source string } {
	return []struct{ name, source string }{
		{"preinst", s.PreInst}, {"postinst", s.PostInst}, {"prerm", s.PreRm}, {"postrm", s.PostRm},
	}
}

// label names a contents entry as the configuration does.
func (c *Content) label(i int) string {
	if c.field != "" {
		return c.field
	}
	return fmt.Sprintf("contents[%d]", i)
}

// fieldError is a problem with one field of a spec. Content is the index
// of the contents entry concerned, or -1.
type fieldError struct {
	Content int
	Msg     string
}

func (e *fieldError) Error() string { return e.Msg }

func fieldErr(content int, format string, args ...any) *fieldError {
	return &fieldError{Content: content, Msg: fmt.Sprintf(format, args...)}
}

// docDir is the package's documentation directory.
func (s *Spec) docDir() string { return "/usr/share/doc/" + s.Name }

// copyrightPath is required by Debian Policy 12.5 (lintian: no-copyright-file).
func (s *Spec) copyrightPath() string { return s.docDir() + "/copyright" }

// changelogPath is changelog.Debian.gz for a package with a Debian
// revision and changelog.gz for a native one (Policy 12.7).
func (s *Spec) changelogPath() string {
	if _, _, rev := splitVersion(s.Version); rev == "" {
		return s.docDir() + "/changelog.gz"
	}
	return s.docDir() + "/changelog.Debian.gz"
}

func (s *Spec) date() (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s.Date)
	if err != nil {
		return time.Time{}, fmt.Errorf("date %q is not RFC 3339: %w", s.Date, err)
	}
	if t.Unix() <= 0 {
		return time.Time{}, fmt.Errorf("date %s is not after 1970; set build.date (or SOURCE_DATE_EPOCH)", s.Date)
	}
	return t.UTC(), nil
}

// check validates everything that needs no file system: the planner runs
// it with the configuration's field names, the step again on the spec.
// The parts run in this order so that the first problem reported stays
// the same: control fields, date and output, contents, then what the
// contents and scripts must provide.
func (s *Spec) check() *fieldError {
	if err := s.checkControl(); err != nil {
		return err
	}
	if _, err := s.date(); err != nil {
		return fieldErr(-1, "%v", err)
	}
	if want := FileName(s.Name, s.Version, s.Arch); path.Base(s.Output) != want || path.Clean(s.Output) != s.Output || path.IsAbs(s.Output) || strings.HasPrefix(s.Output, "../") {
		return fieldErr(-1, "output %q is not a clean relative path to a file named %s", s.Output, want)
	}
	if err := s.checkContents(); err != nil {
		return err
	}
	if s.License == "" && !s.mayProvide(s.copyrightPath()) {
		return fieldErr(-1, "license is empty and no contents entry provides %s; set license (e.g. \"Apache-2.0\") or ship a copyright file there", s.copyrightPath())
	}
	for _, sc := range s.Scripts.list() {
		if strings.ContainsAny(sc.source, "/\\") {
			return fieldErr(-1, "scripts.%s names source %q, which is not a source name", sc.name, sc.source)
		}
	}
	return nil
}

// checkControl checks the fields that end up in the control file.
func (s *Spec) checkControl() *fieldError {
	id := []struct {
		field string
		check func(string) error
		value string
	}{
		{"name", CheckName, s.Name},
		{"version", CheckVersion, s.Version},
		{"arch", CheckArch, s.Arch},
		{"maintainer", checkMaintainer, s.Maintainer},
		{"description", func(d string) error { return checkDescription(d, s.Name) }, s.Description},
		{"section", checkSection, s.Section},
		{"priority", checkPriority, s.Priority},
	}
	for _, f := range id {
		if err := f.check(f.value); err != nil {
			return fieldErr(-1, "%s %v", f.field, err)
		}
	}
	for _, f := range []struct{ field, value string }{{"homepage", s.Homepage}, {"license", s.License}} {
		if err := checkLine(f.value); err != nil {
			return fieldErr(-1, "%s %v", f.field, err)
		}
	}
	if s.Homepage != "" && !strings.HasPrefix(s.Homepage, "https://") && !strings.HasPrefix(s.Homepage, "http://") {
		return fieldErr(-1, "homepage %q is not an http(s) URL", s.Homepage)
	}
	for _, rf := range s.relations() {
		for i, r := range rf.values {
			if err := checkRelation(rf.field, r); err != nil {
				return fieldErr(-1, "%s[%d] %v", rf.field, i, err)
			}
		}
	}
	return nil
}

// checkContents checks each contents entry and that no two write the
// same path.
func (s *Spec) checkContents() *fieldError {
	seen := map[string]int{}
	for i := range s.Contents {
		c := &s.Contents[i]
		if err := c.check(i); err != nil {
			return err
		}
		if j, dup := seen[c.Dst]; dup {
			return fieldErr(i, "%s.dst %s is also written by %s; each path on the node comes from one entry", c.label(i), c.Dst, s.Contents[j].label(j))
		}
		seen[c.Dst] = i
	}
	return nil
}

func (c *Content) check(i int) *fieldError {
	l := c.label(i)
	switch c.Type {
	case TypeFile, TypeConfig:
		if c.Source == "" {
			return fieldErr(i, "%s.src is empty; type %q needs a local file or directory", l, c.Type)
		}
	case TypeDir:
		if c.Source != "" {
			return fieldErr(i, "%s.src is set, but type \"dir\" creates an empty directory; drop src or use type \"file\"", l)
		}
	default:
		return fieldErr(i, "%s.type %q is not \"file\", \"config\" or \"dir\"", l, c.Type)
	}
	if err := CheckDst(c.Dst); err != nil {
		return fieldErr(i, "%s.dst %v", l, err)
	}
	if c.Mode > 0o7777 {
		return fieldErr(i, "%s.mode %#o has bits beyond permissions; use e.g. 0o755 or 0o644", l, c.Mode)
	}
	if c.Type == TypeConfig && !strings.HasPrefix(c.Dst, "/etc/") {
		return fieldErr(i, "%s.dst %s: a conffile must be below /etc (Debian Policy 10.7.2; lintian: non-etc-file-marked-as-conffile); use type \"file\" or install it below /etc", l, c.Dst)
	}
	return nil
}

// CheckDst reports a destination that is not an absolute, clean path on
// the node.
func CheckDst(dst string) error {
	switch {
	case dst == "":
		return fmt.Errorf("is empty; give an absolute path on the node such as /usr/bin/tool")
	case !strings.HasPrefix(dst, "/"):
		return fmt.Errorf("%q is not absolute; give the path on the node, e.g. /%s", dst, strings.TrimLeft(dst, "./"))
	case dst == "/":
		return fmt.Errorf("is \"/\"; give the path of a file or directory below it")
	case strings.ContainsFunc(dst, func(r rune) bool { return r < ' ' || r == 0x7f || r == '\\' }):
		return fmt.Errorf("%q contains a control character or a backslash", dst)
	}
	for _, el := range strings.Split(dst, "/") {
		if el == ".." {
			return fmt.Errorf("%q contains \"..\"; give the resolved absolute path", dst)
		}
	}
	if c := path.Clean(dst); c != dst {
		return fmt.Errorf("%q is not clean; write %q", dst, c)
	}
	return nil
}

// mayProvide reports whether a file or tree entry could place a file at p.
func (s *Spec) mayProvide(p string) bool {
	for _, c := range s.Contents {
		if c.Type != TypeDir && (c.Dst == p || strings.HasPrefix(p, c.Dst+"/")) {
			return true
		}
	}
	return false
}

type relationField struct {
	field  string
	values []string
}

func (s *Spec) relations() []relationField {
	return []relationField{
		{"depends", s.Depends}, {"preDepends", s.PreDepends}, {"recommends", s.Recommends},
		{"suggests", s.Suggests}, {"conflicts", s.Conflicts}, {"breaks", s.Breaks},
		{"replaces", s.Replaces}, {"provides", s.Provides},
	}
}
