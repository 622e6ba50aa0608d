//go:build unix

package main

import (
	"fmt"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"strings"
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
		Intro: "Cold build (empty cache and dist/), then `release plan` and a no-op `release build` (everything cached), median of 5 runs (3 for the 30-release product). " +
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

	k2s := filepath.Join(w, "cfg-k2s")
	productK2s(k2s)
	perRelease, _ := dirSize(filepath.Join(k2s, "payload/common"))
	type product struct {
		name, cfg string
		runs      int
	}
	products := []product{
		{"2 × 1 GiB releases + delta", cfg, 5},
		{fmt.Sprintf("30 releases × 3 OS × 20 addons, %s per release", human(perRelease)), k2s, 3},
		// release adds an SBOM and a provenance target per package: 19999
		// targets to the baseline's 9999.
		{fmt.Sprintf("%d releases and %d deltas (tiny payloads)", n.releases, n.deltas), many, 5},
	}
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
			plan := median(tag+": plan", p.runs, w, args("plan"))
			s.Rows = append(s.Rows, plan)
			before := snapshot(dist)
			noop := median(tag+": no-op build", p.runs, w, args("build"))
			written := changedBytes2(before, snapshot(dist))
			noop.Note = fmt.Sprintf("%.1f%% of its cold build; dist bytes written in %d runs: %s", 100*float64(noop.Wall)/float64(cold.Wall), p.runs, human(written))
			s.Rows = append(s.Rows, noop)
			check(os.RemoveAll(cache))
			check(os.RemoveAll(dist))
		}
	}
	return s
}

type manyShape struct{ releases, deltas int }

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
	return manyShape{releases: 5000, deltas: 4999}
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

// productK2s writes a K2s-sized product: 30 releases (3 minors × 10
// patches) of a ~300 MiB shared tree plus files of their own, 3 OS targets
// with a .deb and an image per release, 20 addons, and deltas from every
// patch of the previous minor (policy previous-minor).
func productK2s(dir string) {
	shape := gen.Shape{Small: 400, Medium: 10, Large: 4, CNI: 4, SmallMax: 64 << 10, MediumMax: 8 << 20, LargeMax: 128 << 20, CNIMax: 1 << 20}
	check(gen.Write(filepath.Join(dir, "payload/common"), "", gen.Layout(11, shape)))
	var b strings.Builder
	b.WriteString("package release\n\nproduct: name: \"k2s\"\nbuild: date: \"2025-01-01T00:00:00Z\"\n")
	b.WriteString("deltas: policies: [{from: \"previous-minor\"}]\n")
	oses := []string{"debian12", "debian13", "ubuntu24"}
	n := 0
	for minor := 0; minor < 3; minor++ {
		for patch := 0; patch < 10; patch++ {
			v := fmt.Sprintf("1.%d.%d", minor, patch)
			own := gen.Layout(uint64(200+n), gen.Shape{Small: 20, SmallMax: 16 << 10})
			for i := range own {
				own[i].Path = "release-files/" + own[i].Path
			}
			check(gen.Write(filepath.Join(dir, "payload", v), v, own))
			fmt.Fprintf(&b, "releases: %q: inputs: [{dir: \"payload/common\"}, {dir: \"payload/%s\"}]\n", v, v)
			node := filepath.Join(dir, "node", v)
			check(gen.Write(node, "", gen.Layout(uint64(900+n), gen.Shape{Small: 4, SmallMax: 256 << 10})))
			for i, o := range oses {
				fmt.Fprintf(&b, "os: %s: releases: %q: {\n\tdebs: tools: [{build: {name: \"k2s-tools\", version: \"%s-1\", arch: \"amd64\", maintainer: \"Bench <bench@example.com>\", description: \"bench tools\\n Generated.\", license: \"MIT\", contents: [{src: \"node/%s\", dst: \"/usr/lib/k2s/%s\"}]}}]\n", o, v, v, v, o)
				fmt.Fprintf(&b, "\timages: [{ref: \"example.com/k2s/agent-%d:%s\", layers: [{dir: \"node/%s\", dest: \"/opt/agent\"}]}]\n}\n", i, v, v)
			}
			n++
		}
	}
	for i, o := range oses {
		codename := []string{"bookworm", "trixie", "noble"}[i]
		fmt.Fprintf(&b, "os: %s: {distro: \"debian\", codename: %q}\n", o, codename)
	}
	b.WriteString("os: debian12: controlPlane: true\n")
	manifest, err := os.ReadFile("fixtures/sample/addons/metrics/addon.manifest.yaml")
	check(err)
	for i := range 20 {
		name := fmt.Sprintf("addon%02d", i)
		ad := filepath.Join(dir, "addons", name)
		check(os.CopyFS(ad, os.DirFS("fixtures/sample/addons/metrics")))
		m := strings.ReplaceAll(string(manifest), "metrics", name)
		check(os.WriteFile(filepath.Join(ad, "addon.manifest.yaml"), []byte(m), 0o644))
		fmt.Fprintf(&b, "addons: %s: {dir: \"addons/%s\", version: \"1.%d.0\"}\n", name, name, i)
	}
	check(os.WriteFile(filepath.Join(dir, "release.cue"), []byte(b.String()), 0o644))
}
