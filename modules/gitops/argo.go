package gitops

import (
	"errors"
	"regexp"
	"strings"
)

// plainTag is a release tag as release pushes it: "v" and MAJOR.MINOR.PATCH
// without leading zeros, pre-release or build suffix.
var plainTag = regexp.MustCompile(`^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$`)

// ErrNoTag is returned by ArgoTag when no tag qualifies.
var ErrNoTag = errors.New(`gitops: no "latest" or vMAJOR.MINOR.PATCH tag`)

// ArgoTag returns the tag the K2s ArgoCD poller deploys from a repository's
// tags: "latest" (any case, as the poller compares) if present, otherwise
// the highest vMAJOR.MINOR.PATCH tag in numeric order.
//
// The poller's Select-AddonTag is looser: it also takes a "V" or no prefix
// and falls back to the lexically greatest tag. The two agree on any
// repository that only release pushes to, which holds nothing but v-tags and
// perhaps latest; elsewhere ArgoTag reports no tag rather than a guess.
func ArgoTag(tags []string) (string, error) {
	best, bestParts := "", []string(nil)
	for _, t := range tags {
		if strings.EqualFold(t, "latest") {
			return t, nil
		}
		m := plainTag.FindStringSubmatch(t)
		if m == nil {
			continue
		}
		if bestParts == nil || versionLess(bestParts, m[1:]) {
			best, bestParts = t, m[1:]
		}
	}
	if bestParts == nil {
		return "", ErrNoTag
	}
	return best, nil
}

// versionLess compares numeric parts without leading zeros as numbers of
// any size: a longer part is larger, equal lengths compare as text.
func versionLess(a, b []string) bool {
	for i := range a {
		if len(a[i]) != len(b[i]) {
			return len(a[i]) < len(b[i])
		}
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}
