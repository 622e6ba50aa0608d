//go:build unix

package main

import (
	"fmt"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/relcue/release/bench/gen"
	"github.com/relcue/release/pipeline/fingerprint"
)

// incremental measures what a build that builds nothing costs, against
// the cold build and, when a baseline binary is given (the release before
// fingerprints were trusted), against that binary on the same data.
func incremental(bin, base, w, treeA, treeB string) section {
	log.Printf("incremental: no-op builds and plans")
	s := section{
		Title: "Incremental: no-op builds and plans",
		Intro: "Cold build (empty cache and dist/), then `release plan` and a no-op `release build` (everything cached), median of 5. " +
			"\"dist bytes written\" sums the sizes of dist/ files whose fingerprint (inode, size, mtime, ctime) changed during the run. " +
			"The baseline binary is the release before input digests, cache entries and dist files were trusted by fingerprint, built from git in the same run.",
	}
	cfg := filepath.Join(w, "cfg-incr")
	check(os.MkdirAll(cfg, 0o755))
	// Inputs may not be symlinks: lend the trees to the configuration.
	for v, tree := range map[string]string{"1.0.0": treeA, "1.1.0": treeB} {
		lent := filepath.Join(cfg, "tree-"+v)
		check(os.Rename(tree, lent))
		defer func() { check(os.Rename(lent, tree)) }()
	}
	check(os.WriteFile(filepath.Join(cfg, "release.cue"), []byte(`package release
product: name: "bench"
build: date: "2025-01-01T00:00:00Z"
releases: "1.0.0": inputs: [{dir: "tree-1.0.0"}]
releases: "1.1.0": inputs: [{dir: "tree-1.1.0"}]
deltas: paths: [{from: "1.0.0", to: "1.1.0"}]
`), 0o644))
	many := filepath.Join(w, "cfg-10k")
	n := manyTargets(many)

	type product struct {
		name, cfg string
	}
	products := []product{{"2 × 1 GiB releases + delta", cfg}, {fmt.Sprintf("%d releases, %d targets (tiny payloads)", n.releases, n.targets), many}}
	bins := []struct{ label, path string }{{"release", bin}}
	if base != "" {
		bins = append(bins, struct{ label, path string }{"baseline", base})
	}
	for _, p := range products {
		var coldNew time.Duration
		for _, b := range bins {
			tag := fmt.Sprintf("%s, %s", p.name, b.label)
			cache := filepath.Join(w, "cache-incr-"+b.label)
			dist := filepath.Join(w, "dist-incr-"+b.label)
			check(os.RemoveAll(cache))
			check(os.RemoveAll(dist))
			args := func(cmd string) []string {
				a := []string{b.path, cmd, "-C", p.cfg, "--cache", cache}
				if cmd == "build" {
					a = append(a, "-q", "--dist", dist)
				}
				return a
			}
			cold := measure(tag+": cold build", w, nil, args("build")...)
			cold.Output, _ = dirSize(dist)
			if b.label == "release" {
				coldNew = cold.Wall
			} else {
				cold.Note = fmt.Sprintf("release's cold build: %s", coldNew.Round(10*time.Millisecond))
			}
			s.Rows = append(s.Rows, cold)
			// Let the last outputs settle, as any later build would find them.
			time.Sleep(100 * time.Millisecond)
			plan := median(tag+": plan", 5, w, args("plan"))
			s.Rows = append(s.Rows, plan)
			before := snapshot(dist)
			noop := median(tag+": no-op build", 5, w, args("build"))
			written := changedBytes2(before, snapshot(dist))
			noop.Note = fmt.Sprintf("%.1f%% of its cold build; dist bytes written in 5 runs: %s", 100*float64(noop.Wall)/float64(cold.Wall), human(written))
			s.Rows = append(s.Rows, noop)
			check(os.RemoveAll(cache))
			check(os.RemoveAll(dist))
		}
	}
	return s
}

type manyShape struct{ releases, targets int }

// manyTargets writes a configuration of about 10,000 targets: 100 minors
// of 50 patches each sharing one tiny tree, a delta from every patch to
// the same patch of the next minor, and the previous-minor policy.
func manyTargets(dir string) manyShape {
	check(gen.Write(filepath.Join(dir, "payload"), "", gen.Layout(3, gen.Shape{Small: 5, SmallMax: 512})))
	src := `package release

import "list"

product: name: "bench"
build: date: "2025-01-01T00:00:00Z"
deltas: policies: [{from: "previous-minor"}]
deltas: paths: [for m in list.Range(1, 100, 1) for p in list.Range(0, 50, 1) {from: "1.\(m-1).\(p)", to: "1.\(m).\(p)"}]
_v: [for m in list.Range(0, 100, 1) for p in list.Range(0, 50, 1) {"1.\(m).\(p)"}]
releases: {for v in _v {(v): inputs: [{dir: "payload"}]}}
`
	check(os.WriteFile(filepath.Join(dir, "release.cue"), []byte(src), 0o644))
	return manyShape{releases: 5000, targets: 9999}
}

func snapshot(dir string) map[string]fingerprint.FP {
	out := map[string]fingerprint.FP{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if fp, err := fingerprint.Stat(p); err == nil {
			out[p] = fp
		}
		return nil
	})
	return out
}

// changedBytes2 sums the sizes of files that are new or whose fingerprint
// changed between two snapshots.
func changedBytes2(before, after map[string]fingerprint.FP) int64 {
	var n int64
	for p, fp := range after {
		if old, ok := before[p]; !ok || old != fp {
			n += fp.Size
		}
	}
	return n
}
