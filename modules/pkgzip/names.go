package pkgzip

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// normalizeName turns a raw zip entry name, as any tool may have written it,
// into the package path it denotes. dir reports a directory entry (trailing
// separator); the root directory entry ("./") yields "" and dir. The error
// says why the name is unsafe and is meant to follow `entry "<raw>": `.
func normalizeName(raw string) (name string, dir bool, err error) {
	if raw == "" {
		return "", false, errors.New("has an empty name")
	}
	if strings.IndexByte(raw, 0) >= 0 {
		return "", false, errors.New("contains a NUL byte")
	}
	if !utf8.ValidString(raw) {
		// Such names cannot be written to the manifest (JSON is UTF-8) and
		// would extract under a code-page dependent name on Windows.
		return "", false, errors.New("is not valid UTF-8; re-create the zip with a tool that writes UTF-8 names")
	}
	s := strings.ReplaceAll(raw, `\`, "/")
	if strings.HasPrefix(s, "/") {
		return "", false, errors.New("is an absolute path; package paths must be relative to the installation directory")
	}
	dir = strings.HasSuffix(s, "/")
	s = strings.TrimRight(s, "/")
	for strings.HasPrefix(s, "./") {
		s = s[2:]
	}
	if dir && (s == "" || s == ".") {
		return "", true, nil
	}
	if hasDriveLetter(s) {
		return "", false, errors.New("starts with a drive letter; package paths must be relative to the installation directory")
	}
	for _, seg := range strings.Split(s, "/") {
		switch seg {
		case "..":
			return "", false, errors.New(`contains a ".." segment, which would write outside the installation directory`)
		case "", ".":
			return "", false, errors.New(`is not a clean path (empty or "." segment); re-create the zip with clean relative paths`)
		}
	}
	return s, dir, nil
}

func hasDriveLetter(s string) bool {
	if len(s) < 2 || s[1] != ':' {
		return false
	}
	c := s[0] | 0x20 // ASCII lower case
	return 'a' <= c && c <= 'z'
}

// CheckName reports whether name is a normalized, safe package path as the
// writer requires it: forward slashes only, relative, clean, no drive letter,
// not a directory.
func CheckName(name string) error {
	if strings.Contains(name, `\`) {
		return fmt.Errorf("package path %q contains a backslash, which is a separator on Windows; use forward slashes and rename files that contain a backslash", name)
	}
	norm, dir, err := normalizeName(name)
	if err != nil {
		return fmt.Errorf("package path %q %w", name, err)
	}
	if dir {
		return fmt.Errorf("package path %q ends with a slash; entries are files and directories are implied by their paths", name)
	}
	if norm != name {
		return fmt.Errorf("package path %q is not normalized (want %q)", name, norm)
	}
	return nil
}

// NameSet finds package paths that cannot coexist in one installation tree
// on Windows: the same path twice, paths that differ only in letter case,
// and a file whose path is also a directory of another file.
// The zero value is ready to use.
type NameSet struct {
	files map[string]owned // folded path -> file
	dirs  map[string]owned // folded directory -> first file below it
}

type owned struct{ name, owner string }

func (o owned) String() string {
	if o.owner == "" {
		return fmt.Sprintf("%q", o.name)
	}
	return fmt.Sprintf("%q (%s)", o.name, o.owner)
}

func fold(s string) string { return strings.ToLower(s) }

// Add records name, a normalized package path; owner says where it comes
// from (for messages, may be empty). The error names both colliding paths.
func (s *NameSet) Add(name, owner string) error {
	if s.files == nil {
		s.files = make(map[string]owned)
		s.dirs = make(map[string]owned)
	}
	cur := owned{name, owner}
	key := fold(name)
	if prev, ok := s.files[key]; ok {
		if prev.name == name {
			return fmt.Errorf("%s and %s: the same path twice; keep only one of them", prev, cur)
		}
		return fmt.Errorf("%s and %s differ only in letter case and would overwrite each other on Windows; rename one of them", prev, cur)
	}
	if below, ok := s.dirs[key]; ok {
		return fmt.Errorf("%s is a file, but %s needs it to be a directory; rename one of them", cur, below)
	}
	for i := len(key) - 1; i > 0; i-- {
		if key[i] != '/' {
			continue
		}
		if file, ok := s.files[key[:i]]; ok {
			return fmt.Errorf("%s is a file, but %s needs it to be a directory; rename one of them", file, cur)
		}
	}
	s.files[key] = cur
	for i := len(key) - 1; i > 0; i-- {
		if key[i] != '/' {
			continue
		}
		if _, ok := s.dirs[key[:i]]; ok {
			break // all shorter parents were recorded with it
		}
		s.dirs[key[:i]] = cur
	}
	return nil
}
