package deb

import (
	"fmt"
	"regexp"
	"strings"
)

// Architectures are the Debian architectures a built package may name;
// "all" is an architecture-independent package.
var Architectures = []string{"all", "amd64", "arm64", "armhf", "i386", "ppc64el", "riscv64", "s390x"}

// priorities are those of Debian Policy 2.5; "extra" was folded into
// "optional" in Policy 4.0.1 and lintian flags it.
var priorities = []string{"required", "important", "standard", "optional"}

var (
	nameRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)
	sectionRE = regexp.MustCompile(`^([a-z0-9-]+/)?[a-z0-9][a-z0-9+.-]*$`)
	// maintainerRE is the "Name <address>" form of Debian Policy 5.6.2;
	// lintian rejects a bare address.
	// The host needs a dot: lintian checks it is a domain
	// (bogus-mail-host-in-debian-changelog).
	maintainerRE = regexp.MustCompile(`^[^<>,\s][^<>,]*\s<[^<>@\s]+@[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+>$`)
	// relationRE is one alternative of a binary package relationship:
	// name[:archqual] [(op version)]. Architecture restrictions ([amd64])
	// and build profiles belong to source packages only.
	relationRE = regexp.MustCompile(`^([a-z0-9][a-z0-9+.-]+)(:[a-z0-9-]+)?(\s*\(\s*(<<|<=|=|>=|>>)\s*([^\s()]+)\s*\))?$`)
)

// CheckName reports a package name that Debian does not accept.
func CheckName(name string) error {
	if name == "" {
		return fmt.Errorf("is empty")
	}
	if !nameRE.MatchString(name) {
		return fmt.Errorf("%q is not a Debian package name: use at least two characters, lower-case letters, digits, '+', '-' and '.', starting with a letter or digit", name)
	}
	return nil
}

// CheckVersion reports a version that is not [epoch:]upstream[-revision]
// as Debian Policy 5.6.12 defines it.
func CheckVersion(v string) error {
	if v == "" {
		return fmt.Errorf("is empty")
	}
	if strings.ContainsFunc(v, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
		return fmt.Errorf("%q contains white space or non-ASCII characters", v)
	}
	rest := v
	if i := strings.IndexByte(v, ':'); i >= 0 {
		epoch := v[:i]
		if epoch == "" || strings.Trim(epoch, "0123456789") != "" {
			return fmt.Errorf("%q: the epoch before ':' must be a number, e.g. 1:%s", v, v[i+1:])
		}
		rest = v[i+1:]
	}
	upstream, revision := rest, ""
	if i := strings.LastIndexByte(rest, '-'); i >= 0 {
		upstream, revision = rest[:i], rest[i+1:]
		if revision == "" {
			return fmt.Errorf("%q ends in '-': give a Debian revision after it (e.g. %s1) or drop the '-'", v, v)
		}
		if bad := strings.Trim(revision, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.~"); bad != "" {
			return fmt.Errorf("%q: the Debian revision %q may hold only letters, digits, '+', '.' and '~'", v, revision)
		}
		if revision == "0" {
			return fmt.Errorf("%q: the Debian revision 0 is not used (lintian: debian-revision-is-zero); start at 1", v)
		}
	}
	if upstream == "" {
		return fmt.Errorf("%q has no upstream version", v)
	}
	if upstream[0] < '0' || upstream[0] > '9' {
		return fmt.Errorf("%q: the upstream version %q must start with a digit (drop a leading 'v')", v, upstream)
	}
	if bad := strings.Trim(upstream, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.~-"); bad != "" {
		return fmt.Errorf("%q: the upstream version %q may hold only letters, digits, '.', '+', '~' and '-' (':' only after an epoch)", v, upstream)
	}
	return nil
}

// CheckArch reports an architecture outside Architectures.
func CheckArch(arch string) error {
	for _, a := range Architectures {
		if arch == a {
			return nil
		}
	}
	if arch == "" {
		return fmt.Errorf("is empty; use one of %s", strings.Join(Architectures, ", "))
	}
	return fmt.Errorf("%q is not a known Debian architecture; use one of %s", arch, strings.Join(Architectures, ", "))
}

func checkPriority(p string) error {
	for _, q := range priorities {
		if p == q {
			return nil
		}
	}
	if p == "extra" {
		return fmt.Errorf("\"extra\" is deprecated since Debian Policy 4.0.1; use \"optional\"")
	}
	return fmt.Errorf("%q is not a Debian priority; use one of %s", p, strings.Join(priorities, ", "))
}

func checkSection(s string) error {
	if !sectionRE.MatchString(s) {
		return fmt.Errorf("%q is not a Debian section such as \"misc\", \"admin\" or \"contrib/net\"", s)
	}
	return nil
}

func checkMaintainer(m string) error {
	if m == "" {
		return fmt.Errorf("is empty; give \"Full Name <address@example.com>\"")
	}
	if !maintainerRE.MatchString(m) {
		return fmt.Errorf("%q is not \"Full Name <address@example.com>\"", m)
	}
	return nil
}

// checkDescription enforces the description rules lintian on Debian 12
// reports as errors: a synopsis of several words that does not start with
// the package name, an extended description after it that does not repeat
// it, no tabs and no stray control lines ("." starts a paragraph break).
func checkDescription(d, pkg string) error {
	const form = "give a one-line synopsis, then at least one line describing the package"
	if strings.TrimSpace(d) == "" {
		return fmt.Errorf("is empty; %s", form)
	}
	if strings.Contains(d, "\t") {
		return fmt.Errorf("contains a tab (lintian: description-contains-tabs); use spaces")
	}
	if strings.ContainsFunc(d, func(r rune) bool { return r < ' ' && r != '\n' || r == 0x7f }) {
		return fmt.Errorf("contains control characters")
	}
	synopsis, extended, _ := strings.Cut(strings.TrimSpace(d), "\n")
	synopsis = strings.TrimSpace(synopsis)
	switch {
	case synopsis == "":
		return fmt.Errorf("has an empty first line; %s", form)
	case !strings.ContainsAny(synopsis, " "):
		return fmt.Errorf("synopsis %q is a single word (lintian: description-too-short); say in a few words what the package is", synopsis)
	case pkg != "" && regexp.MustCompile(`(?i)^`+regexp.QuoteMeta(pkg)+`\b`).MatchString(synopsis):
		return fmt.Errorf("synopsis %q starts with the package name (lintian: description-starts-with-package-name); say what it is, e.g. \"Kubernetes node agent\"", synopsis)
	case strings.TrimSpace(extended) == "":
		return fmt.Errorf("%q has only a synopsis (lintian: extended-description-is-empty); %s", synopsis, form)
	}
	lines := strings.Split(strings.TrimSpace(extended), "\n")
	alnum := func(s string) string {
		return strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
				return r
			}
			return -1
		}, strings.ToLower(s))
	}
	if first := strings.TrimSpace(lines[0]); strings.EqualFold(first, synopsis) || alnum(first) == alnum(synopsis) {
		return fmt.Errorf("repeats the synopsis %q as its second line (lintian: description-synopsis-is-duplicated); describe the package further instead", synopsis)
	}
	for i, l := range lines {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, ".") && strings.TrimSpace(l[1:]) != "" {
			return fmt.Errorf("line %d %q starts with '.', which marks an empty line in a description (lintian: description-contains-invalid-control-statement); reword it", i+2, l)
		}
	}
	return nil
}

// checkLine rejects values that would break the one-line control field
// they are written to.
func checkLine(v string) error {
	if strings.ContainsFunc(v, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return fmt.Errorf("%q contains a line break or control character", v)
	}
	if strings.TrimSpace(v) != v {
		return fmt.Errorf("%q has leading or trailing white space", v)
	}
	return nil
}

// essential are the packages of Debian 12 marked Essential (lintian's
// fields/essential): always installed, so an unversioned dependency on
// one is an error (depends-on-essential-package-without-using-version).
// lintian exempts dash and diffutils.
var essential = map[string]bool{
	"base-files": true, "base-passwd": true, "bash": true, "bsdutils": true, "coreutils": true,
	"debianutils": true, "dpkg": true, "findutils": true, "grep": true, "gzip": true, "hostname": true,
	"init-system-helpers": true, "libc-bin": true, "login": true, "ncurses-base": true, "ncurses-bin": true,
	"perl-base": true, "sed": true, "sysvinit-utils": true, "tar": true, "util-linux": true,
}

// dependencyFields may hold alternatives ("a | b"); lintian reports them
// elsewhere (alternates-not-allowed).
var dependencyFields = map[string]bool{"depends": true, "preDepends": true, "recommends": true, "suggests": true}

// checkRelation checks one entry of the relationship field named field,
// such as "iptables (>= 1.8.7) | nftables" in depends.
func checkRelation(field, rel string) error {
	if strings.TrimSpace(rel) == "" {
		return fmt.Errorf("is empty")
	}
	if strings.Contains(rel, ",") {
		return fmt.Errorf("%q contains ','; give each relation as its own list element", rel)
	}
	alts := strings.Split(rel, "|")
	if len(alts) > 1 && !dependencyFields[field] {
		return fmt.Errorf("%q has alternatives, which only depends, preDepends, recommends and suggests allow (lintian: alternates-not-allowed)", rel)
	}
	for _, alt := range alts {
		alt = strings.TrimSpace(alt)
		m := relationRE.FindStringSubmatch(alt)
		if m == nil {
			return fmt.Errorf("%q is not a Debian relation such as \"pkg\", \"pkg (>= 1.2-1)\" or \"a | b\"", rel)
		}
		if m[5] != "" {
			if err := CheckVersion(m[5]); err != nil {
				return fmt.Errorf("%q: version %w", rel, err)
			}
		}
		if field == "provides" && m[4] != "" && m[4] != "=" {
			return fmt.Errorf("%q: a provided version can only be exact, \"(= version)\" (lintian: invalid-versioned-provides)", rel)
		}
		if dependencyFields[field] && essential[m[1]] && m[5] == "" {
			return fmt.Errorf("%q: %s is essential and always installed (lintian: depends-on-essential-package-without-using-version); drop it or require a version", rel, m[1])
		}
	}
	return nil
}

// FileName is the conventional file name of a package, as dpkg-name makes
// it: name_version_arch.deb with the epoch left out (':' is not portable
// in file names, and the epoch is in the control data anyway).
func FileName(name, version, arch string) string {
	if i := strings.IndexByte(version, ':'); i >= 0 {
		version = version[i+1:]
	}
	return name + "_" + version + "_" + arch + ".deb"
}

// splitVersion cuts a valid version into epoch, upstream and revision.
func splitVersion(v string) (epoch, upstream, revision string) {
	if i := strings.IndexByte(v, ':'); i >= 0 {
		epoch, v = v[:i], v[i+1:]
	}
	if i := strings.LastIndexByte(v, '-'); i >= 0 {
		return epoch, v[:i], v[i+1:]
	}
	return epoch, v, ""
}
