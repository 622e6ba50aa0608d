//go:build unix

package main

import (
	"fmt"
	"log"
	"os"
	"path/filepath"
	"sort"

	"github.com/relcue/release/bench/gen"
)

// readChecks measures what checking every read against the plan costs
// (pipeline/readcheck): cold builds by the baseline binary (the landed
// tree before the checks) and by this one, on the same inputs. The full
// package step compares hashes it computes anyway; node-package steps
// (debs, images) read private copies of their inputs, made while hashing.
func readChecks(bin, base, w string, scale float64) section {
	log.Printf("read checks: cold builds against the baseline binary")
	s := section{
		Title: "What is read is what was planned: the cost of the checks",
		Intro: "Cold builds (empty cache and dist/, median of 3) by the baseline binary, the landed tree before every step checked what it read against the plan, and by this one, on the same inputs. " +
			"The full-package step compares the SHA-256 it computes for package-manifest.json anyway; the node-package steps (debs and images, through nfpm and the image builder) are given private copies of their inputs, hashed as they are copied.",
	}
	if base == "" {
		s.Notes = append(s.Notes, "No baseline binary was given (BENCH_BASE), so only this binary's rows are shown.")
	}
	tree := filepath.Join(w, "tree-readcheck")
	files := gen.Layout(7, scaled(gen.GiB, scale/4))
	check(gen.Write(tree, "1.0.0", files))
	treeSize, treeCount := dirSize(tree)
	pkgCfg := filepath.Join(w, "cfg-readcheck-pkg")
	check(os.MkdirAll(pkgCfg, 0o755))
	check(os.Rename(tree, filepath.Join(pkgCfg, "tree")))
	check(os.WriteFile(filepath.Join(pkgCfg, "release.cue"), []byte(`package release
product: name: "bench"
build: date: "2025-01-01T00:00:00Z"
releases: "1.0.0": inputs: [{dir: "tree"}]
`), 0o644))
	nodeCfg := filepath.Join(w, "cfg-readcheck-node")
	debs, images, payload := nodeBenchConfig(nodeCfg, scale)

	type bench struct{ name, cfg, what string }
	for _, b := range []bench{
		{fmt.Sprintf("full package, %d files, %s", treeCount, human(treeSize)), pkgCfg, "package/1.0.0"},
		{fmt.Sprintf("%d debs and %d images of %s (two releases)", debs+2, images+1, human(payload)), nodeCfg, "deb/*"},
	} {
		var baseRow result
		for _, v := range []struct{ label, bin string }{{"baseline", base}, {"checked", bin}} {
			if v.bin == "" {
				continue
			}
			targets := []string{"--target", b.what}
			if b.what == "deb/*" {
				targets = append(targets, "--target", "image/*")
			}
			var runs []result
			for i := range 3 {
				cache, dist := filepath.Join(w, fmt.Sprintf("cache-rc-%d", i)), filepath.Join(w, fmt.Sprintf("dist-rc-%d", i))
				argv := append([]string{v.bin, "build", "-q", "-C", b.cfg, "--cache", cache, "--dist", dist}, targets...)
				runs = append(runs, measure(b.name, w, nil, argv...))
				check(os.RemoveAll(cache))
				check(os.RemoveAll(dist))
			}
			r := medianOf(runs)
			r.Name = b.name + ": " + v.label
			if v.label == "baseline" {
				baseRow = r
			} else if baseRow.Wall > 0 {
				r.Note = fmt.Sprintf("%.2fx the baseline's time", r.Wall.Seconds()/baseRow.Wall.Seconds())
			}
			s.Rows = append(s.Rows, r)
		}
	}
	return s
}

// medianOf is the run with the median wall time.
func medianOf(rs []result) result {
	sort.Slice(rs, func(i, j int) bool { return rs[i].Wall < rs[j].Wall })
	return rs[len(rs)/2]
}

func scaled(shape gen.Shape, f float64) gen.Shape {
	shape.Small = max(1, int(float64(shape.Small)*f))
	shape.Medium = max(1, int(float64(shape.Medium)*f))
	shape.Large = max(1, int(float64(shape.Large)*f))
	return shape
}
