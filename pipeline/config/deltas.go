package config

import (
	"slices"
	"strconv"

	"cuelang.org/go/cue"
	"golang.org/x/mod/semver"
)

// Policy names, as in the schema (cue/schema/deltas.cue), which documents
// their meaning.
const (
	FromPreviousMinor       = "previous-minor"
	FromPreviousMinorLatest = "previous-minor-latest"
	FromSameMinor           = "same-minor"
	FromAllEarlier          = "all-earlier"
	ToNewest                = "newest"
	ToNewestPerMinor        = "newest-per-minor"
)

// OriginExplicit is the Origin of a delta listed in deltas.paths; a delta
// from a policy has Origin "policy <n>", n being the policy's index in
// deltas.policies.
const OriginExplicit = "explicit"

type deltaOptions struct {
	mode             string
	wholeDirectories []string
	skip             []string
}

func (b *builder) deltas(raw *rawDeltas, rs map[string]*Release, versions []string) []DeltaPath {
	defaults := deltaOptions{raw.Defaults.Mode, raw.Defaults.WholeDirectories, raw.Defaults.Skip}
	b.checkOptions(at("deltas", "defaults"), defaults)

	var out []DeltaPath
	index := map[[2]string]int{} // from..to -> index in out
	for i, rp := range raw.Paths {
		pp := at("deltas", "paths", i)
		opts := b.override(pp, defaults, rp.rawOverrides)
		if !b.checkPath(pp, rp.From, rp.To, rs) {
			continue
		}
		key := [2]string{rp.From, rp.To}
		if j, dup := index[key]; dup {
			b.ps.at(pp, "delta %s..%s is listed twice (also at %s); remove one", rp.From, rp.To, out[j].Pos)
			continue
		}
		index[key] = len(out)
		out = append(out, newDelta(rp.From, rp.To, opts, OriginExplicit, b.ps.posOf(pp)))
	}

	type policy struct {
		from, to string
		opts     deltaOptions
		pos      Pos
	}
	policies := make([]policy, len(raw.Policies))
	for i, rp := range raw.Policies {
		pp := at("deltas", "policies", i)
		policies[i] = policy{rp.From, rp.To, b.override(pp, defaults, rp.rawOverrides), b.ps.posOf(pp)}
	}
	// Expanding over versions that failed their checks would only add
	// confusing paths to a configuration that does not load anyway.
	if len(b.ps.list) > 0 {
		return nil
	}
	for i, p := range policies {
		for _, d := range expand(versions, p.from, p.to) {
			if _, dup := index[d]; dup {
				continue // an explicit path or an earlier policy wins
			}
			index[d] = len(out)
			out = append(out, newDelta(d[0], d[1], p.opts, "policy "+strconv.Itoa(i), p.pos))
		}
	}
	slices.SortFunc(out, func(a, b DeltaPath) int {
		if c := compareVersions(a.From, b.From); c != 0 {
			return c
		}
		return compareVersions(a.To, b.To)
	})
	return out
}

// newDelta copies the option lists so that no two deltas share a backing
// array a later stage could modify.
func newDelta(from, to string, o deltaOptions, origin string, pos Pos) DeltaPath {
	return DeltaPath{
		From:             from,
		To:               to,
		Mode:             o.mode,
		WholeDirectories: slices.Clone(o.wholeDirectories),
		Skip:             slices.Clone(o.skip),
		Origin:           origin,
		Pos:              pos,
	}
}

// override applies the options set on a path or policy to the defaults;
// each one set replaces the default as a whole.
func (b *builder) override(p cue.Path, o deltaOptions, raw rawOverrides) deltaOptions {
	if raw.Mode != nil {
		o.mode = *raw.Mode
	}
	if raw.WholeDirectories != nil {
		o.wholeDirectories = *raw.WholeDirectories
	}
	if raw.Skip != nil {
		o.skip = *raw.Skip
	}
	// Only what this path or policy sets is its own to report; the
	// defaults are checked once.
	var own deltaOptions
	if raw.WholeDirectories != nil {
		own.wholeDirectories = o.wholeDirectories
	}
	if raw.Skip != nil {
		own.skip = o.skip
	}
	b.checkOptions(p, own)
	return o
}

func (b *builder) checkOptions(p cue.Path, o deltaOptions) {
	for i, d := range o.wholeDirectories {
		if msg := treePathProblem(d, false); msg != "" {
			b.ps.at(join(p, "wholeDirectories", i), "%s", msg)
		}
	}
	for i, s := range o.skip {
		if msg := patternProblem(s); msg != "" {
			b.ps.at(join(p, "skip", i), "%s", msg)
		}
	}
}

// checkPath reports an explicit delta that names an undeclared release or
// does not go forward, and says whether it is usable.
func (b *builder) checkPath(pp cue.Path, from, to string, rs map[string]*Release) bool {
	ok := true
	for _, f := range []struct{ field, version string }{{"from", from}, {"to", to}} {
		if _, declared := rs[f.version]; !declared {
			b.ps.at(join(pp, f.field), "delta %s..%s: release %s is not declared in releases; declare it or remove the path",
				from, to, f.version)
			ok = false
		}
	}
	if !ok || !validVersion(from) || !validVersion(to) {
		return false // the release key itself is reported
	}
	switch c := semver.Compare("v"+from, "v"+to); {
	case from == to:
		b.ps.at(pp, "delta %s..%s: from and to are the same release; remove the path", from, to)
		return false
	case c >= 0:
		b.ps.at(pp, "delta %s..%s: %s is not older than %s; deltas go forward; cyclic or downgrade paths are not supported",
			from, to, from, to)
		return false
	}
	return true
}

// expand returns the (from, to) pairs of one policy over versions, which
// are valid and in ascending order.
func expand(versions []string, from, to string) [][2]string {
	var targets []int
	switch to {
	case ToNewest:
		if len(versions) > 0 {
			targets = []int{len(versions) - 1}
		}
	case ToNewestPerMinor:
		for i, v := range versions {
			if i == len(versions)-1 || minor(versions[i+1]) != minor(v) {
				targets = append(targets, i)
			}
		}
	}
	var out [][2]string
	for _, t := range targets {
		for _, base := range bases(versions[:t], versions[t], from) {
			out = append(out, [2]string{base, versions[t]})
		}
	}
	return out
}

// bases picks the bases for target among earlier, the versions below it in
// ascending order. Versions sort by major.minor first, so the releases of
// one minor are contiguous, and the last earlier release of another minor
// belongs to the previous minor.
func bases(earlier []string, target, from string) []string {
	tm := minor(target)
	prev := ""
	for i := len(earlier) - 1; i >= 0; i-- {
		if m := minor(earlier[i]); m != tm {
			prev = m
			break
		}
	}
	var out []string
	switch from {
	case FromAllEarlier:
		out = earlier
	case FromSameMinor:
		out = filterMinor(earlier, tm)
	case FromPreviousMinor:
		if prev != "" {
			out = filterMinor(earlier, prev)
		}
	case FromPreviousMinorLatest:
		if prev != "" {
			all := filterMinor(earlier, prev)
			out = all[len(all)-1:]
		}
	}
	return out
}

func filterMinor(vs []string, m string) []string {
	var out []string
	for _, v := range vs {
		if minor(v) == m {
			out = append(out, v)
		}
	}
	return out
}
