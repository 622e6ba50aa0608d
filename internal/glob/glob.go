// Package glob matches forward-slash paths against patterns in which "*"
// and "?" and "[...]" work as in path.Match within one segment and "**" as a
// whole segment matches zero or more segments. Matching is case-sensitive,
// unless the pattern starts with "(?i)": then letters match in any case, as
// Windows and PowerShell's -like compare names (K2s's skip rules).
package glob

import (
	"fmt"
	"path"
	"strings"
)

// IgnoreCase is the prefix of a pattern whose letters match in any case.
const IgnoreCase = "(?i)"

// fold splits off the IgnoreCase prefix; with it, the pattern is returned
// in lower case, to be matched against a lower-case name.
func fold(pattern string) (string, bool) {
	if rest, ok := strings.CutPrefix(pattern, IgnoreCase); ok {
		return strings.ToLower(rest), true
	}
	return pattern, false
}

// Validate reports a malformed pattern.
func Validate(pattern string) error {
	full := pattern
	pattern, _ = fold(pattern)
	if pattern == "" {
		if full != "" {
			return fmt.Errorf("pattern %q has nothing after %s", full, IgnoreCase)
		}
		return fmt.Errorf("empty pattern")
	}
	if strings.HasPrefix(pattern, "/") {
		return fmt.Errorf("pattern %q must be relative (no leading /)", full)
	}
	for _, seg := range strings.Split(pattern, "/") {
		if seg == "**" {
			continue
		}
		if strings.Contains(seg, "**") {
			return fmt.Errorf("pattern %q: ** must be a whole path segment", full)
		}
		if _, err := path.Match(seg, ""); err != nil {
			return fmt.Errorf("pattern %q: %w", full, err)
		}
	}
	return nil
}

// MatchPrefix reports whether pattern matches name or one of its parent
// directories, so "addons" and "addons/**" both cover "addons/x/y". A
// malformed pattern matches nothing; call Validate when the pattern comes
// from a user.
func MatchPrefix(pattern, name string) bool {
	pattern, folded := fold(pattern)
	if folded {
		name = strings.ToLower(name)
	}
	segs := strings.Split(name, "/")
	ps := strings.Split(pattern, "/")
	for i := 1; i <= len(segs); i++ {
		if match(ps, segs[:i]) {
			return true
		}
	}
	return false
}

func match(ps, ns []string) bool {
	for len(ps) > 0 {
		if ps[0] == "**" {
			rest := ps[1:]
			for i := 0; i <= len(ns); i++ {
				if match(rest, ns[i:]) {
					return true
				}
			}
			return false
		}
		if len(ns) == 0 {
			return false
		}
		ok, err := path.Match(ps[0], ns[0])
		if err != nil || !ok {
			return false
		}
		ps, ns = ps[1:], ns[1:]
	}
	return len(ns) == 0
}
