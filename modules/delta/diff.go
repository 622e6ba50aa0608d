package delta

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/relcue/release/internal/glob"
	"github.com/relcue/release/modules/pkgzip"
)

// fileInfo is what the diff knows about one file of a package.
type fileInfo struct {
	pkgzip.Digest
	Exec bool
}

// fileDiff is the result of comparing two packages' file maps.
type fileDiff struct {
	Added, Changed, Removed []string
	// Skipped are paths of either package that the skip rules exclude.
	Skipped []string
	// WholeBase and WholeTarget are the (not skipped) files under the
	// wholesale directories, which apply replaces as a unit.
	WholeBase, WholeTarget []string
}

// skipper says which paths a delta leaves out entirely.
type skipper struct {
	// patterns are glob patterns (internal/glob).
	patterns []string
	// names are lower-case file names matched in any directory.
	names map[string]bool
	// paths are exact paths (nested archives).
	paths map[string]bool
}

func newSkipper(patterns, names, paths []string) skipper {
	s := skipper{patterns: patterns, names: map[string]bool{}, paths: map[string]bool{}}
	for _, n := range names {
		s.names[strings.ToLower(n)] = true
	}
	for _, p := range paths {
		s.paths[p] = true
	}
	return s
}

func (s skipper) skipped(p string) bool {
	if s.paths[p] || s.names[strings.ToLower(path.Base(p))] {
		return true
	}
	for _, pat := range s.patterns {
		if glob.MatchPrefix(pat, p) {
			return true
		}
	}
	return false
}

// diffFiles compares base and target. package-manifest.json is never part of
// the diff (the caller handles it); skipped paths are removed entirely, even
// inside wholesale directories; files under wholesale directories are not
// compared at all.
func diffFiles(base, target map[string]fileInfo, whole []string, skip skipper) fileDiff {
	var d fileDiff
	skipped := skip.skipped
	for _, p := range sortedKeys(target) {
		switch {
		case p == PackageManifestName:
		case skipped(p):
			d.Skipped = append(d.Skipped, p)
		case wholeDirOf(p, whole) != "":
			d.WholeTarget = append(d.WholeTarget, p)
		default:
			b, ok := base[p]
			t := target[p]
			if !ok {
				d.Added = append(d.Added, p)
			} else if b.SHA256 != t.SHA256 || b.Size != t.Size || b.Exec != t.Exec {
				d.Changed = append(d.Changed, p)
			}
		}
	}
	for _, p := range sortedKeys(base) {
		switch {
		case p == PackageManifestName:
		case skipped(p):
			if _, ok := target[p]; !ok {
				d.Skipped = append(d.Skipped, p)
			}
		case wholeDirOf(p, whole) != "":
			d.WholeBase = append(d.WholeBase, p)
		default:
			if _, ok := target[p]; !ok {
				d.Removed = append(d.Removed, p)
			}
		}
	}
	slices.Sort(d.Skipped)
	return d
}

// normalizeWholeDirs cleans the configured wholesale directories the way
// K2s does (backslashes to slashes, no leading or trailing separators,
// sorted and unique) and refuses ones that are not plain relative paths.
func normalizeWholeDirs(dirs []string) ([]string, error) {
	out := make([]string, 0, len(dirs))
	for _, d := range dirs {
		n := strings.ReplaceAll(d, `\`, "/")
		n = strings.Trim(n, "/")
		if n == "" {
			return nil, fmt.Errorf("wholesale directory %q is empty or the root; name a directory such as bin/cni", d)
		}
		n = path.Clean(n)
		if err := CheckPath(n); err != nil {
			return nil, fmt.Errorf("wholesale directory %q: %w", d, err)
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// normalizeSkip validates skip patterns and returns them sorted and unique,
// so that the same rules in another order give the same delta bytes.
func normalizeSkip(patterns []string) ([]string, error) {
	out := make([]string, 0, len(patterns))
	for _, p := range patterns {
		if err := validatePattern(p); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// normalizeSkipNames validates file names skipped in every directory and
// returns them sorted and unique.
func normalizeSkipNames(names []string) ([]string, error) {
	out := make([]string, 0, len(names))
	for _, n := range names {
		if n == "" || n == "." || n == ".." || strings.ContainsAny(n, "/\\\x00") {
			return nil, fmt.Errorf("skip name %q: name one file (it is skipped in every directory)", n)
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

func validatePattern(p string) error {
	if err := glob.Validate(p); err != nil {
		return fmt.Errorf("skip rule: %w", err)
	}
	if strings.Contains(p, `\`) {
		return fmt.Errorf("skip rule %q: use forward slashes", p)
	}
	return nil
}
