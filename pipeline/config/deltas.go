package config

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

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
	skipNames        []string
}

// deltaRules are what a profile demands of every delta path beyond the
// schema (K2s's apply refuses what they refuse).
type deltaRules struct {
	profile string
}

func (b *builder) deltas(raw *rawDeltas, profile string, rs map[string]*Release, versions []string) ([]DeltaPath, DeltaLayout) {
	pd, err := DefaultsOf(profile)
	if err != nil {
		b.ps.at(at("product", "profile"), "%v", err)
		return nil, DeltaLayout{}
	}
	rules := deltaRules{profile}
	defaults := deltaOptions{raw.Defaults.Mode, raw.Defaults.WholeDirectories, pd.Skip, pd.SkipNames}
	if raw.Defaults.Skip != nil {
		defaults.skip = *raw.Defaults.Skip
	}
	if raw.Defaults.SkipNames != nil {
		defaults.skipNames = *raw.Defaults.SkipNames
	}
	b.checkOptions(at("deltas", "defaults"), defaults)
	b.checkMode(at("deltas", "defaults", "mode"), raw.Defaults.Mode, rules)
	layout := b.deltaLayout(raw, profile, pd)

	var out []DeltaPath
	index := map[[2]string]int{} // from..to -> index in out
	for i, rp := range raw.Paths {
		pp := at("deltas", "paths", i)
		opts := b.override(pp, defaults, rp.rawOverrides, rules)
		if !b.checkPath(pp, rp.From, rp.To, rs, rules) {
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
		policies[i] = policy{rp.From, rp.To, b.override(pp, defaults, rp.rawOverrides, rules), b.ps.posOf(pp)}
	}
	// Expanding over versions that failed their checks would only add
	// confusing paths to a configuration that does not load anyway.
	if len(b.ps.list) > 0 {
		return nil, DeltaLayout{}
	}
	// Every delta path becomes targets to plan and build, so a policy that
	// would make too many is refused from its count, before it expands.
	limit := b.limits.MaxDeltaPaths
	if len(out) > limit {
		b.ps.at(at("deltas", "paths"), "lists %d delta paths, more than the limit of %d (%s); list fewer", len(out), limit, deltaLimitHint)
		return nil, DeltaLayout{}
	}
	pvs := rules.policyVersions(versions)
	for i, p := range policies {
		if n := countPolicy(pvs, p.from, p.to, rules.sameMajor()); n > limit {
			b.ps.at(at("deltas", "policies", i), "from %q to %q over %d releases makes %d delta paths, more than the limit of %d (%s); "+
				"choose a narrower policy (such as from \"previous-minor-latest\"), or raise the limit", p.from, p.to, len(pvs), n, limit, deltaLimitHint)
		}
	}
	if len(b.ps.list) > 0 {
		return nil, DeltaLayout{}
	}
	for i, p := range policies {
		for _, d := range expand(pvs, p.from, p.to) {
			if _, dup := index[d]; dup {
				continue // an explicit path or an earlier policy wins
			}
			if rules.pathProblem(d[0], d[1]) != "" {
				continue // the profile's rules: policies never make such a path
			}
			index[d] = len(out)
			out = append(out, newDelta(d[0], d[1], p.opts, "policy "+strconv.Itoa(i), p.pos))
		}
		// Each policy is under the limit alone; together they may not be.
		if len(out) > limit {
			b.ps.at(at("deltas", "policies", i), "from %q to %q brings the delta paths to %d with the paths and policies before it, more than the limit of %d (%s); "+
				"choose narrower policies, or raise the limit", p.from, p.to, len(out), limit, deltaLimitHint)
			return nil, DeltaLayout{}
		}
	}
	slices.SortFunc(out, func(a, b DeltaPath) int {
		if c := compareVersions(a.From, b.From); c != 0 {
			return c
		}
		return compareVersions(a.To, b.To)
	})
	return out, layout
}

// policyVersions are the releases policies expand over: every release,
// but with profile k2s only X.Y.Z ones, since K2s's apply refuses a delta
// from or to any other (a pre-release is never "newest" there).
func (r deltaRules) policyVersions(versions []string) []string {
	if r.profile != ProfileK2s {
		return versions
	}
	var out []string
	for _, v := range versions {
		if k2sVersionRE.MatchString(v) {
			out = append(out, v)
		}
	}
	return out
}

// sameMajor reports whether the profile refuses deltas across majors, so
// that policies never make them.
func (r deltaRules) sameMajor() bool { return r.profile == ProfileK2s }

// deltaLimitHint says how to raise Limits.MaxDeltaPaths.
const deltaLimitHint = "--max-delta-paths, or RELEASE_MAX_DELTA_PATHS"

// k2sVersionRE is the pattern K2s's apply requires of both versions
// (update.module.psm1, Test-DeltaUpgradeVersionIsValid).
var k2sVersionRE = regexp.MustCompile(`^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$`)

// pathProblem says why the profile refuses a delta from..to that goes
// forward, or "".
func (r deltaRules) pathProblem(from, to string) string {
	if r.profile != ProfileK2s {
		return ""
	}
	const why = "K2s's apply accepts only X.Y.Z to a greater X.Y.Z of the same major (update.module.psm1, Test-DeltaUpgradeVersionIsValid)"
	for _, v := range []string{from, to} {
		if !k2sVersionRE.MatchString(v) {
			return fmt.Sprintf("profile k2s: %s is not a plain X.Y.Z version; %s, so ship %s as a full package, or remove the path", v, why, to)
		}
	}
	if semver.Major("v"+from) != semver.Major("v"+to) {
		return fmt.Sprintf("profile k2s: %s and %s are of different majors; %s, so upgrade across majors with the full package of %s, or remove the path", from, to, why, to)
	}
	return ""
}

// checkMode refuses binary mode where the profile cannot apply it.
func (b *builder) checkMode(p cue.Path, mode string, r deltaRules) {
	if mode == "binary" && r.profile == ProfileK2s {
		b.ps.at(p, "mode \"binary\" cannot be used with profile k2s: K2s's apply copies every file listed in Changed from the delta and only warns \"Source missing in delta\" for one shipped as a patch (update.module.psm1, PerformClusterUpdate), so it would keep the old binary and still report success; use mode \"file\", or profile \"generic\" and release apply")
	}
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
		SkipNames:        slices.Clone(o.skipNames),
		Origin:           origin,
		Pos:              pos,
	}
}

// override applies the options set on a path or policy to the defaults;
// each one set replaces the default as a whole.
func (b *builder) override(p cue.Path, o deltaOptions, raw rawOverrides, rules deltaRules) deltaOptions {
	if raw.Mode != nil {
		o.mode = *raw.Mode
		b.checkMode(join(p, "mode"), o.mode, rules)
	}
	if raw.WholeDirectories != nil {
		o.wholeDirectories = *raw.WholeDirectories
	}
	if raw.Skip != nil {
		o.skip = *raw.Skip
	}
	if raw.SkipNames != nil {
		o.skipNames = *raw.SkipNames
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
	if raw.SkipNames != nil {
		own.skipNames = o.skipNames
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
	for i, n := range o.skipNames {
		if msg := fileNameProblem(n); msg != "" {
			b.ps.at(join(p, "skipNames", i), "%s (skipNames match in every directory)", msg)
		}
	}
}

// fileNameProblem says what is wrong with n as one file name, or "".
func fileNameProblem(n string) string {
	switch {
	case n == "":
		return "empty name; name a file, e.g. \"trivy.exe\""
	case strings.ContainsAny(n, `/\`):
		return fmt.Sprintf("%q is a path; name a file", n)
	case n == "." || n == "..":
		return fmt.Sprintf("%q is not a file name", n)
	}
	return ""
}

// checkPath reports an explicit delta that names an undeclared release or
// does not go forward, and says whether it is usable.
func (b *builder) checkPath(pp cue.Path, from, to string, rs map[string]*Release, rules deltaRules) bool {
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
	if msg := rules.pathProblem(from, to); msg != "" {
		b.ps.at(pp, "delta %s..%s: %s", from, to, msg)
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

// countPolicy is how many pairs expand(versions, from, to) gives, less
// those across majors when sameMajor is set, computed without making them:
// all-earlier to newest-per-minor over n releases makes about n²/2 pairs.
// Versions are sorted, so the releases of one minor, and of one major,
// are contiguous.
func countPolicy(versions []string, from, to string, sameMajor bool) int {
	n := len(versions)
	minorStart := make([]int, n) // index of the first release of i's minor
	majorStart := make([]int, n)
	for i, v := range versions {
		switch {
		case i > 0 && minor(v) == minor(versions[i-1]):
			minorStart[i], majorStart[i] = minorStart[i-1], majorStart[i-1]
		case i > 0 && semver.Major("v"+v) == semver.Major("v"+versions[i-1]):
			minorStart[i], majorStart[i] = i, majorStart[i-1]
		default:
			minorStart[i], majorStart[i] = i, i
		}
	}
	var targets []int
	switch to {
	case ToNewest:
		if n > 0 {
			targets = []int{n - 1}
		}
	case ToNewestPerMinor:
		for i := range versions {
			if i == n-1 || minorStart[i+1] != minorStart[i] {
				targets = append(targets, i)
			}
		}
	}
	count := 0
	for _, t := range targets {
		first := 0 // the first release a base may be
		if sameMajor {
			first = majorStart[t]
		}
		prevEnd := minorStart[t] // the previous minor's releases end here
		prevStart := -1
		if prevEnd > 0 {
			prevStart = minorStart[prevEnd-1]
		}
		switch from {
		case FromAllEarlier:
			count += t - first
		case FromSameMinor:
			count += t - minorStart[t]
		case FromPreviousMinor:
			if prevStart >= first {
				count += prevEnd - prevStart
			}
		case FromPreviousMinorLatest:
			if prevStart >= first {
				count++
			}
		}
	}
	return count
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

// deltaLayout applies the profile's defaults to deltas.always, .nested
// and .applyScript and checks what the configuration set.
func (b *builder) deltaLayout(raw *rawDeltas, profile string, pd ProfileDefaults) DeltaLayout {
	l := DeltaLayout{Always: pd.Always, Nested: pd.Nested, ApplyScript: pd.ApplyScript}
	if raw.Always != nil {
		l.Always = slices.Clone(*raw.Always)
		seen := map[string]int{}
		for i, p := range l.Always {
			ap := at("deltas", "always", i)
			if msg := treePathProblem(p, false); msg != "" {
				b.ps.at(ap, "%s", msg)
			} else if j, dup := seen[p]; dup {
				b.ps.at(ap, "%s is listed twice (also at index %d); remove one", p, j)
			}
			seen[p] = i
		}
	}
	slices.Sort(l.Always)
	if raw.Nested != nil {
		l.Nested = nil
		archives := map[string]bool{}
		for i, n := range *raw.Nested {
			np := at("deltas", "nested", i)
			b.checkNested(np, n, archives)
			l.Nested = append(l.Nested, n.model(b.ps.posOf(np)))
		}
	}
	if raw.ApplyScript != nil {
		ap := at("deltas", "applyScript")
		if profile != ProfileK2s {
			b.ps.at(ap, "Apply-Delta.ps1 is written with profile k2s only; set product: profile: %q, or remove applyScript", ProfileK2s)
		}
		l.ApplyScript = raw.ApplyScript.model()
		if msg := treePathProblem(l.ApplyScript.Module, false); msg != "" {
			b.ps.at(join(ap, "module"), "%s", msg)
		}
		for i, p := range l.ApplyScript.Preload {
			if msg := treePathProblem(p, false); msg != "" {
				b.ps.at(join(ap, "preload", i), "%s", msg)
			}
		}
	}
	return l
}

// checkNested reports what is wrong with one nested archive.
func (b *builder) checkNested(np cue.Path, n rawNested, archives map[string]bool) {
	if msg := treePathProblem(n.Archive, false); msg != "" {
		b.ps.at(join(np, "archive"), "%s", msg)
	} else if archives[n.Archive] {
		b.ps.at(join(np, "archive"), "%s is described twice under deltas.nested; merge the two", n.Archive)
	}
	archives[n.Archive] = true
	if len(n.Folders) == 0 {
		b.ps.at(join(np, "folders"), "is empty; map at least one folder of %s to an installation directory", n.Archive)
	}
	whole := map[string]bool{} // installation directory -> whole
	for i, f := range n.Folders {
		fp := join(np, "folders", i)
		if msg := treePathProblem(f.From, false); msg != "" {
			b.ps.at(join(fp, "from"), "%s", msg)
		}
		if msg := treePathProblem(f.To, false); msg != "" {
			b.ps.at(join(fp, "to"), "%s", msg)
		}
		if w, ok := whole[f.To]; ok && w != f.Whole {
			b.ps.at(join(fp, "whole"), "%s is whole for one folder and not for another; a directory is either replaced as a unit or not", f.To)
		}
		whole[f.To] = f.Whole
		for _, k := range sortedKeys(f.Rename) {
			if msg := fileNameProblem(k); msg != "" {
				b.ps.at(join(fp, "rename", k), "%s", msg)
			}
			if msg := fileNameProblem(f.Rename[k]); msg != "" {
				b.ps.at(join(fp, "rename", k), "%s", msg)
			}
		}
	}
	if n.WindowsImages != "" {
		if msg := treePathProblem(n.WindowsImages, false); msg != "" {
			b.ps.at(join(np, "windowsImages"), "%s", msg)
		}
	}
}
