//go:build unix

// Command releasebench runs the benchmarks of docs/BENCHMARKS.md: each
// release operation side by side with its baseline, in the same run, on
// the same generated data, and writes the figures as Markdown.
//
//	go run ./bench/cmd/releasebench -release bin/release -out docs/BENCHMARKS.md
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/relcue/release/bench/gen"
)

type result struct {
	Name    string
	Wall    time.Duration
	MaxRSS  int64 // bytes
	Scratch int64 // bytes of temporary disk at the end of the run
	Output  int64 // bytes of the produced artifact
	Note    string
	stdout  string // not reported
}

type section struct {
	Title, Intro string
	Rows         []result
	Notes        []string
}

func main() {
	releaseBin := flag.String("release", "bin/release", "release binary to measure")
	out := flag.String("out", "docs/BENCHMARKS.md", "Markdown file to write")
	work := flag.String("work", ".bench", "scratch directory (deleted and recreated)")
	scale := flag.Float64("scale", 1.0, "size of the large package pair relative to ~1 GiB")
	only := flag.String("only", "", `"addons", "binary", "incremental", "k2s", "readcheck", "signing" or "wine" runs only that section (for development; the report then holds only it)`)
	baseline := flag.String("baseline", "", "release binary of the landed tree, the baseline of the incremental and read-check sections (\"\": none)")
	flag.Parse()
	log.SetFlags(0)

	bin, err := filepath.Abs(*releaseBin)
	check(err)
	check(os.RemoveAll(*work))
	check(os.MkdirAll(*work, 0o755))
	w, err := filepath.Abs(*work)
	check(err)
	for _, tool := range []string{"zip", "unzip", "sha256sum"} {
		if _, err := exec.LookPath(tool); err != nil {
			log.Fatalf("baseline needs %s on PATH", tool)
		}
	}

	if *only == "binary" {
		check(writeReport(*out, []section{binaryPatches(bin, w)}, 0, 0, 0))
		return
	}
	if *only == "addons" {
		check(writeReport(*out, []section{addonPush(bin, w, *scale)}, 0, 0, 0))
		return
	}
	if *only == "wine" {
		check(writeReport(*out, []section{wineApply(bin, w)}, 0, 0, 0))
		return
	}
	if *only == "k2s" {
		check(writeReport(*out, []section{k2sDeltas(bin, w)}, 0, 0, 0))
		return
	}
	if *only == "readcheck" {
		base := ""
		if *baseline != "" {
			base, err = filepath.Abs(*baseline)
			check(err)
		}
		check(writeReport(*out, []section{readChecks(bin, base, w, *scale)}, 0, 0, 0))
		return
	}

	shape := gen.GiB
	shape.Small = int(float64(shape.Small) * *scale)
	shape.Medium = max(1, int(float64(shape.Medium)**scale))
	shape.Large = max(1, int(float64(shape.Large)**scale))

	log.Printf("generating package trees in %s", w)
	a := gen.Layout(1, shape)
	b := gen.Next(a, 2, 0.10)
	treeA, treeB := filepath.Join(w, "tree-1.0.0"), filepath.Join(w, "tree-1.1.0")
	check(gen.Write(treeA, "1.0.0", a))
	check(gen.Write(treeB, "1.1.0", b))
	sizeA, countA := dirSize(treeA)
	sizeB, _ := dirSize(treeB)
	changed := changedBytes(a, b)

	base := ""
	if *baseline != "" {
		base, err = filepath.Abs(*baseline)
		check(err)
	}
	if *only == "incremental" {
		check(writeReport(*out, []section{incremental(bin, base, w, treeA, treeB)}, sizeA, countA, changed))
		return
	}
	if *only == "signing" {
		check(writeReport(*out, []section{signing(bin, w, treeA)}, sizeA, countA, changed))
		return
	}

	var sections []section
	sections = append(sections, assembly(bin, w, treeA, sizeA, countA))
	sections = append(sections, deltas(bin, w, treeA, treeB, sizeA, sizeB, changed))
	sections[0].Rows = append(sections[0].Rows, reuseRows...)
	sections[0].Notes = append(sections[0].Notes, "The last two rows build the next version's package (10% of its bytes changed) with the previous package cached, copying the compressed entries of unchanged files from it (build.reuse, the default), against the same build with reuse off from an empty cache. Both include planning (hashing the input tree).")
	sections = append(sections, signing(bin, w, treeA))
	sections = append(sections, binaryPatches(bin, w))
	sections = append(sections, manyReleases(bin, w))
	sections = append(sections, incremental(bin, base, w, treeA, treeB))
	sections = append(sections, nodePackages(bin, w, *scale))
	sections = append(sections, addonPush(bin, w, *scale))
	sections = append(sections, wineApply(bin, w))
	sections = append(sections, k2sDeltas(bin, w))
	sections = append(sections, readChecks(bin, base, w, *scale))
	check(writeReport(*out, sections, sizeA, countA, changed))
	log.Printf("wrote %s", *out)
}

func writeReport(path string, sections []section, size int64, count int, changed int64) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Benchmarks\n\nWritten by `make bench` (bench/cmd/releasebench) on %s: %d CPUs, %s/%s, %s.\n",
		time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version())
	fmt.Fprintf(&b, "Every figure is measured in the same run as its baseline, on the same generated data.\n")
	fmt.Fprintf(&b, "Generated package: %d files, %s; in the next version files of %s (%.0f%%) differ (the large binaries rebuilt: a few small regions overwritten), and about 1%% of the files are added and removed.\n",
		count, human(size), human(changed), 100*float64(changed)/float64(size))
	rssSource := "GNU time's %M"
	if gnuTime == "" {
		rssSource = "wait4 rusage, floored at the harness's own size since children start by vfork"
	}
	fmt.Fprintf(&b, "Peak RSS is the maximum resident set of the process and its children (%s); 0 where a row times one step inside a build; scratch is temporary disk in use at the end of the run, outputs excluded.\n", rssSource)
	for _, s := range sections {
		fmt.Fprintf(&b, "\n## %s\n\n%s\n\n", s.Title, s.Intro)
		b.WriteString("| run | wall | peak RSS | scratch disk | output | note |\n|---|---:|---:|---:|---:|---|\n")
		for _, r := range s.Rows {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", r.Name, r.Wall.Round(10*time.Millisecond), human(r.MaxRSS), human(r.Scratch), human(r.Output), r.Note)
		}
		for _, n := range s.Notes {
			fmt.Fprintf(&b, "\n%s\n", n)
		}
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// measure runs argv in dir and reports wall time and peak RSS.
//
// The peak comes from GNU time when it is installed: Go starts children
// with vfork, so a child's own ru_maxrss starts at this process's
// resident size (Linux records the shared mm's high-water mark at exec),
// which would floor every small baseline at the harness's footprint.
// time forks the command from its own small image and reports the
// command's peak, descendants included.
func measure(name, dir string, env []string, argv ...string) result {
	var rssFile string
	if gnuTime != "" {
		f, err := os.CreateTemp("", "releasebench-rss-*")
		check(err)
		f.Close()
		rssFile = f.Name()
		defer os.Remove(rssFile)
		argv = append([]string{gnuTime, "-f", "%M", "-o", rssFile}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stderr, stdout strings.Builder
	cmd.Stderr = &stderr
	cmd.Stdout = &stdout
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if err != nil {
		log.Fatalf("%s: %v\n%s%s", name, err, stdout.String(), stderr.String())
	}
	rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss * 1024
	if rssFile != "" {
		data, err := os.ReadFile(rssFile)
		check(err)
		fields := strings.Fields(string(data))
		if len(fields) == 0 {
			log.Fatalf("%s: GNU time wrote no peak RSS", name)
		}
		kib, err := strconv.ParseInt(fields[len(fields)-1], 10, 64)
		check(err)
		rss = kib * 1024
	}
	log.Printf("  %-44s %8s  %s RSS", name, wall.Round(10*time.Millisecond), human(rss))
	return result{Name: name, Wall: wall, MaxRSS: rss, stdout: stdout.String()}
}

// gnuTime is GNU time's path, or "" (then peaks come from wait4).
var gnuTime = func() string {
	p, err := exec.LookPath("time")
	if err != nil {
		if _, err := os.Stat("/usr/bin/time"); err == nil {
			return "/usr/bin/time"
		}
		return ""
	}
	if out, err := exec.Command(p, "--version").CombinedOutput(); err != nil || !strings.Contains(string(out), "GNU") {
		return ""
	}
	return p
}()

// reuseRows are measured with the delta section's packages and reported
// with the assembly section.
var reuseRows []result

func sameFile(a, b string) bool {
	x, err1 := os.ReadFile(a)
	y, err2 := os.ReadFile(b)
	return err1 == nil && err2 == nil && string(x) == string(y)
}

func assembly(bin, w, tree string, size int64, count int) section {
	log.Printf("full package assembly")
	cfg := filepath.Join(w, "cfg-assembly")
	check(os.MkdirAll(cfg, 0o755))
	check(os.WriteFile(filepath.Join(cfg, "release.cue"), []byte(fmt.Sprintf(`package release
product: name: "bench"
build: date: "2025-01-01T00:00:00Z"
releases: "1.0.0": inputs: [{dir: %q}]
`, tree)), 0o644))
	s := section{Title: "Full package assembly (1 GiB tree)", Intro: fmt.Sprintf(
		"`release build --target package/1.0.0` with an empty cache (includes hashing the input tree for the cache key and writing package-manifest.json) against `zip -r -q -6` of the same %d-file tree.", count)}
	zipOut := filepath.Join(w, "zip-r.zip")
	r := measure("zip -r -6 (baseline)", tree, nil, "zip", "-r", "-q", "-6", zipOut, ".")
	r.Output = fileSize(zipOut)
	s.Rows = append(s.Rows, r)
	for _, j := range []int{runtime.NumCPU(), 1} {
		cache := filepath.Join(w, fmt.Sprintf("cache-asm-%d", j))
		dist := filepath.Join(w, fmt.Sprintf("dist-asm-%d", j))
		r := measure(fmt.Sprintf("release build -j %d", j), w, nil, bin, "build", "-q", "-C", cfg, "--cache", cache, "--dist", dist, "-j", fmt.Sprint(j), "--target", "package/1.0.0")
		r.Output = fileSize(filepath.Join(dist, "packages/bench-1.0.0.zip"))
		r.Note = fmt.Sprintf("%.2fx zip -r", float64(s.Rows[0].Wall)/float64(r.Wall))
		s.Rows = append(s.Rows, r)
	}
	s.Notes = []string{
		fmt.Sprintf("release hashes every input file for the cache key (plan), then reads each file once more to compress it in 1 MiB chunks on all cores (klauspost flate, pigz-style dictionary chaining, so bytes do not depend on -j). Its zip is %s (%.2f%%) larger than zip -r's: package-manifest.json, per-chunk sync markers and klauspost's level 6 versus zlib's. Scratch is 0 because the zip is written straight into the cache entry; `dist/` then gets a verified copy.",
			human(s.Rows[1].Output-s.Rows[0].Output), 100*float64(s.Rows[1].Output-s.Rows[0].Output)/float64(s.Rows[0].Output)),
	}
	return s
}

func deltas(bin, w, treeA, treeB string, sizeA, sizeB, changed int64) section {
	log.Printf("delta packages")
	cfg := filepath.Join(w, "cfg-delta")
	check(os.MkdirAll(cfg, 0o755))
	check(os.WriteFile(filepath.Join(cfg, "release.cue"), []byte(fmt.Sprintf(`package release
product: name: "bench"
build: date: "2025-01-01T00:00:00Z"
releases: "1.0.0": inputs: [{dir: %q}]
releases: "1.1.0": inputs: [{dir: %q}]
`, treeA, treeB)), 0o644))
	dist := filepath.Join(w, "dist-delta")
	cacheDelta := filepath.Join(w, "cache-delta")
	measure("(setup) release build package 1.0.0", w, nil, bin, "build", "-q", "-C", cfg, "--cache", cacheDelta, "--dist", dist, "--target", "package/1.0.0")
	// The next package with the previous one cached copies its unchanged
	// entries raw; the same configuration with build.reuse false
	// compresses everything, from an empty cache.
	reuseRow := measure("release build package 1.1.0, 1.0.0 cached (reuse)", w, nil, bin, "build", "-q", "-C", cfg, "--cache", cacheDelta, "--dist", dist, "--target", "package/1.1.0")
	cfgNoReuse := filepath.Join(w, "cfg-delta-noreuse")
	check(os.MkdirAll(cfgNoReuse, 0o755))
	check(os.WriteFile(filepath.Join(cfgNoReuse, "release.cue"), []byte(fmt.Sprintf(`package release
product: name: "bench"
build: {date: "2025-01-01T00:00:00Z", reuse: false}
releases: "1.1.0": inputs: [{dir: %q}]
`, treeB)), 0o644))
	distNoReuse := filepath.Join(w, "dist-noreuse")
	noReuseRow := measure("release build package 1.1.0 (build.reuse false; baseline)", w, nil, bin, "build", "-q", "-C", cfgNoReuse, "--cache", filepath.Join(w, "cache-noreuse"), "--dist", distNoReuse)
	zipA, zipB := filepath.Join(dist, "packages/bench-1.0.0.zip"), filepath.Join(dist, "packages/bench-1.1.0.zip")
	noReuseRow.Output = fileSize(filepath.Join(distNoReuse, "packages/bench-1.1.0.zip"))
	reuseRow.Output = fileSize(zipB)
	same := "identical bytes"
	if !sameFile(zipB, filepath.Join(distNoReuse, "packages/bench-1.1.0.zip")) {
		same = "BYTES DIFFER"
	}
	reuseRow.Note = fmt.Sprintf("%.1fx faster than without reuse; %s", float64(noReuseRow.Wall)/float64(reuseRow.Wall), same)
	reuseRows = []result{noReuseRow, reuseRow}
	// Zips without package-manifest.json, as another tool would make them.
	plainA, plainB := filepath.Join(w, "plain-1.0.0.zip"), filepath.Join(w, "plain-1.1.0.zip")
	measure("(setup) zip -r tree 1.0.0", treeA, nil, "zip", "-r", "-q", "-6", plainA, ".")
	measure("(setup) zip -r tree 1.1.0", treeB, nil, "zip", "-r", "-q", "-6", plainB, ".")

	s := section{Title: "Delta package between two 1 GiB packages", Intro: fmt.Sprintf(
		"`release delta` against a K2s-style baseline script (unzip both packages, `sha256sum` every file, `zip -6` the changed and added files), on the same pair of packages. %s of %s changed.", human(changed), human(sizeB))}
	scratch := filepath.Join(w, "baseline-scratch")
	script := `set -euo pipefail
S="$1"; A="$2"; B="$3"; OUT="$4"
mkdir -p "$S/a" "$S/b"
unzip -q "$A" -d "$S/a"
unzip -q "$B" -d "$S/b"
(cd "$S/a" && find . -type f -print0 | sort -z | xargs -0 sha256sum) > "$S/a.sum"
(cd "$S/b" && find . -type f -print0 | sort -z | xargs -0 sha256sum) > "$S/b.sum"
comm -13 <(sort "$S/a.sum") <(sort "$S/b.sum") | cut -c67- > "$S/changed.txt"
(cd "$S/b" && zip -q -6 "$OUT" -@ < "$S/changed.txt")
`
	base := filepath.Join(w, "delta-baseline.zip")
	r := measure("K2s-style baseline (unzip, sha256sum, zip)", w, nil, "bash", "-c", script, "bash", scratch, zipA, zipB, base)
	r.Scratch, _ = dirSize(scratch)
	r.Output = fileSize(base)
	s.Rows = append(s.Rows, r)
	check(os.RemoveAll(scratch))

	for _, c := range []struct{ name, a, b, mode string }{
		{"release delta (packages with manifests)", zipA, zipB, "file"},
		{"release delta (plain zips: entries hashed streaming)", plainA, plainB, "file"},
		{"release delta --mode binary (packages with manifests)", zipA, zipB, "binary"},
	} {
		out := filepath.Join(w, "delta-"+fmt.Sprint(len(s.Rows))+".zip")
		tmpDir := filepath.Join(w, "tmp-delta")
		check(os.MkdirAll(tmpDir, 0o755))
		r := measure(c.name, w, []string{"TMPDIR=" + tmpDir}, bin, "delta", "-q", "--from", c.a, "--to", c.b, "-o", out, "--date", "2025-01-01T00:00:00Z", "--mode", c.mode)
		r.Scratch, _ = dirSize(tmpDir)
		r.Output = fileSize(out)
		r.Note = fmt.Sprintf("%.1fx faster than baseline", float64(s.Rows[0].Wall)/float64(r.Wall))
		s.Rows = append(s.Rows, r)
	}
	s.Notes = []string{
		fmt.Sprintf("The generated next version rebuilds its changed binaries (a few small regions of each overwritten, as a recompiled binary differs): binary mode ships them as zstd patches against the base, %s instead of file mode's %s (%.1f%%), at the cost of reading and patching every changed binary. Apply rebuilds each patched file from the installed base and checks its hash.",
			human(s.Rows[3].Output), human(s.Rows[1].Output), 100*float64(s.Rows[3].Output)/float64(s.Rows[1].Output)),
		"With package-manifest.json in both packages, release reads no file content at all in file mode: it diffs the two manifests and copies the changed entries' compressed bytes raw (no decompression, no recompression); the baseline extracts both packages (the scratch column) and hashes everything. Without manifests, release hashes every entry streaming from the zips in parallel, still without extracting. release's delta is " + human(s.Rows[1].Output-s.Rows[0].Output) + " larger because it ships the wholesale directory `bin/cni` complete (as K2s does) plus both manifests with per-file hashes, which the baseline script does not.",
	}
	return s
}

func manyReleases(bin, w string) section {
	log.Printf("30 releases: plan and no-op build")
	cfg := filepath.Join(w, "cfg-30")
	common := filepath.Join(cfg, "payload/common")
	check(gen.Write(common, "", gen.Layout(7, gen.Small)))
	var rel strings.Builder
	n := 0
	for minor := 0; minor < 3; minor++ {
		for patch := 0; patch < 10; patch++ {
			v := fmt.Sprintf("1.%d.%d", minor, patch)
			dir := filepath.Join(cfg, "payload", v)
			own := gen.Layout(uint64(100+n), gen.Shape{Small: 20, SmallMax: 4 << 10})
			for i := range own {
				own[i].Path = "release-files/" + own[i].Path // disjoint from the shared tree
			}
			check(gen.Write(dir, v, own))
			fmt.Fprintf(&rel, "releases: %q: inputs: [{dir: \"payload/common\"}, {dir: \"payload/%s\"}]\n", v, v)
			n++
		}
	}
	check(os.WriteFile(filepath.Join(cfg, "release.cue"), []byte(`package release
product: name: "bench"
build: date: "2025-01-01T00:00:00Z"
deltas: policies: [{from: "previous-minor"}, {from: "same-minor"}]
`+rel.String()), 0o644))
	cache := filepath.Join(w, "cache-30")
	dist := filepath.Join(w, "dist-30")
	args := func(cmd string) []string {
		return []string{bin, cmd, "-q", "-C", cfg, "--cache", cache, "--dist", dist}
	}
	s := section{Title: "Planning and no-op builds: 30 releases and their delta paths", Intro: "A generated configuration with 30 releases (3 minors x 10 patches, each assembled from a shared tree of ~70 files plus 20 files of its own) and two delta policies (previous minor and same minor to the newest release, 19 paths). The cold build is the reference; plan and the no-op build are the median of 5 runs."}
	cold := measure("release build (cold cache)", w, nil, args("build")...)
	cold.Output, _ = dirSize(dist)
	s.Rows = append(s.Rows, cold)
	planArgs := []string{bin, "plan", "-C", cfg, "--cache", cache}
	s.Rows = append(s.Rows, median("release plan", 5, w, planArgs))
	noop := median("release build (no-op, all cached)", 5, w, args("build"))
	noop.Note = fmt.Sprintf("%.1f%% of the cold build", 100*float64(noop.Wall)/float64(cold.Wall))
	s.Rows = append(s.Rows, noop)
	return s
}

// buildReport is the part of `release build --format json` the benchmarks read.
type buildReport struct {
	Targets []struct {
		ID      string  `json:"id"`
		Status  string  `json:"status"`
		Seconds float64 `json:"seconds"`
	} `json:"targets"`
	Artifacts []struct {
		Target string `json:"target"`
		Kind   string `json:"kind"`
		Path   string `json:"path"`
		Size   int64  `json:"size"`
	} `json:"artifacts"`
}

// sizeOf is the size of the target's artifact of the given kind.
func (r buildReport) sizeOf(id, kind string) int64 {
	for _, a := range r.Artifacts {
		if a.Target == id && a.Kind == kind {
			return a.Size
		}
	}
	log.Fatalf("no %s artifact of %s in the build report", kind, id)
	return 0
}

func buildJSON(bin, cfg, cache, dist string, targets ...string) buildReport {
	args := []string{"build", "-q", "-C", cfg, "--cache", cache, "--dist", dist, "--format", "json"}
	for _, t := range targets {
		args = append(args, "--target", t)
	}
	out, err := exec.Command(bin, args...).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		log.Fatalf("release %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	var r buildReport
	check(json.Unmarshal(out, &r))
	return r
}

func (r buildReport) seconds(id string) time.Duration {
	for _, t := range r.Targets {
		if t.ID == id {
			return time.Duration(t.Seconds * float64(time.Second))
		}
	}
	log.Fatalf("no target %s in the build report", id)
	return 0
}

func (r buildReport) size(id string) int64 {
	for _, a := range r.Artifacts {
		if a.Target == id {
			return a.Size
		}
	}
	log.Fatalf("no artifact of %s in the build report", id)
	return 0
}

// nodePackages measures node deltas against full node packages: on the
// bundled sample, and on a generated OS target with hundreds of MB of debs
// and images of which a few change.
func nodePackages(bin, w string, scale float64) section {
	log.Printf("node packages and node deltas")
	s := section{Title: "Node packages: delta against full package", Intro: "Creation time of each target as `release build --format json` reports it (dependencies already cached, so only that step runs), and artifact sizes. The baseline is the full node package of the newer release, which is what a node would download without deltas."}

	sample, err := filepath.Abs("fixtures/sample")
	check(err)
	cache, dist := filepath.Join(w, "cache-node-sample"), filepath.Join(w, "dist-node-sample")
	buildJSON(bin, sample, cache, dist, "deb/*", "image/*")
	full := buildJSON(bin, sample, cache, dist, "node/debian12/1.5.0")
	nd := buildJSON(bin, sample, cache, dist, "node-delta/debian12/1.4.1..1.5.0")
	s.Rows = append(s.Rows,
		result{Name: "sample: full node package debian12 1.5.0 (baseline)", Wall: full.seconds("node/debian12/1.5.0"), Output: full.size("node/debian12/1.5.0")},
		result{Name: "sample: node delta debian12 1.4.1..1.5.0", Wall: nd.seconds("node-delta/debian12/1.4.1..1.5.0"), Output: nd.size("node-delta/debian12/1.4.1..1.5.0"),
			Note: fmt.Sprintf("%.0f%% of the full package's size", 100*float64(nd.size("node-delta/debian12/1.4.1..1.5.0"))/float64(full.size("node/debian12/1.5.0")))})

	cfg := filepath.Join(w, "cfg-node")
	debs, images, payload := nodeBenchConfig(cfg, scale)
	cache, dist = filepath.Join(w, "cache-node"), filepath.Join(w, "dist-node")
	log.Printf("  building %d debs and %d images of %s each", debs+2, images+1, human(payload))
	buildJSON(bin, cfg, cache, dist, "deb/*", "image/*")
	full = buildJSON(bin, cfg, cache, dist, "node/debian12/1.1.0")
	nd = buildJSON(bin, cfg, cache, dist, "node-delta/debian12/1.0.0..1.1.0")
	fullSize, ndSize := full.size("node/debian12/1.1.0"), nd.size("node-delta/debian12/1.0.0..1.1.0")
	s.Rows = append(s.Rows,
		result{Name: fmt.Sprintf("generated: full node package (%d debs, %d images; baseline)", debs, images), Wall: full.seconds("node/debian12/1.1.0"), Output: fullSize},
		result{Name: "generated: node delta (2 debs and 1 image changed)", Wall: nd.seconds("node-delta/debian12/1.0.0..1.1.0"), Output: ndSize,
			Note: fmt.Sprintf("%.0f%% of the full package's size", 100*float64(ndSize)/float64(fullSize))})
	return s
}

func median(name string, n int, dir string, argv []string) result {
	var rs []result
	for i := 0; i < n; i++ {
		rs = append(rs, measure(fmt.Sprintf("%s #%d", name, i+1), dir, nil, argv...))
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].Wall < rs[j].Wall })
	m := rs[n/2]
	m.Name = name
	return m
}

// changedBytes is the size of the files of b that differ from a's: new,
// regenerated or rebuilt.
func changedBytes(a, b []gen.File) int64 {
	type id struct{ seed, edit uint64 }
	old := map[string]id{}
	for _, f := range a {
		old[f.Path] = id{f.Seed, f.Edit}
	}
	var n int64
	for _, f := range b {
		if s, ok := old[f.Path]; !ok || s != (id{f.Seed, f.Edit}) {
			n += f.Size
		}
	}
	return n
}

func dirSize(dir string) (int64, int) {
	var n int64
	count := 0
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
				count++
			}
		}
		return nil
	})
	return n, count
}

func fileSize(p string) int64 {
	st, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return st.Size()
}

func human(n int64) string {
	switch {
	case n <= 0:
		return "0"
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}

// nodeBenchConfig writes, in cfg, a product whose two releases have debs
// node packages and images images of payload bytes each (two debs and one
// image change between them).
func nodeBenchConfig(cfg string, scale float64) (debs, images int, payload int64) {
	debs, images = max(2, int(10*scale)), max(2, int(4*scale))
	payload = 24 << 20
	var rel [2]strings.Builder
	for v := range 2 {
		for i := 0; i < debs; i++ {
			pv := "1.0.0"
			if v == 1 && i < 2 { // two packages change
				pv = "1.1.0"
			}
			dir := filepath.Join(cfg, "debs", fmt.Sprintf("pkg%02d", i), pv)
			if _, err := os.Stat(dir); err != nil {
				check(gen.Write(dir, "", []gen.File{{Path: "bin/tool", Size: payload, Seed: uint64(1000*i) + uint64(len(pv)*7+v)}}))
			}
			fmt.Fprintf(&rel[v], "\t\t{build: {name: \"pkg%02d\", version: \"%s-1\", arch: \"amd64\", maintainer: \"Bench <bench@example.com>\", description: \"generated bench package\\n Payload for the node delta benchmark.\", license: \"MIT\", contents: [{src: %q, dst: \"/usr/lib/bench/pkg%02d\"}]}},\n", i, pv, "debs/"+fmt.Sprintf("pkg%02d/%s", i, pv), i)
		}
		rel[v].WriteString("\t]\n\timages: [\n")
		for i := 0; i < images; i++ {
			iv := "1.0.0"
			if v == 1 && i == 0 { // one image changes
				iv = "1.1.0"
			}
			dir := filepath.Join(cfg, "images", fmt.Sprintf("img%02d", i), iv)
			if _, err := os.Stat(dir); err != nil {
				check(gen.Write(dir, "", []gen.File{{Path: "app/data.bin", Size: payload, Seed: uint64(5000+100*i) + uint64(v)}}))
			}
			fmt.Fprintf(&rel[v], "\t\t{ref: \"example.com/bench/img%02d:%s\", layers: [{dir: %q, dest: \"/\"}]},\n", i, iv, fmt.Sprintf("images/img%02d/%s", i, iv))
		}
	}
	check(os.WriteFile(filepath.Join(cfg, "release.cue"), []byte(fmt.Sprintf(`package release
product: name: "bench"
build: date: "2025-01-01T00:00:00Z"
releases: "1.0.0": inputs: [{dir: "tree"}]
releases: "1.1.0": inputs: [{dir: "tree"}]
deltas: paths: [{from: "1.0.0", to: "1.1.0"}]
os: debian12: distro: "debian"
os: debian12: codename: "bookworm"
os: debian12: releases: {
"1.0.0": {
	debs: bench: [
%s}
"1.1.0": {
	debs: bench: [
%s}
}
`, rel[0].String()+"\t]\n", rel[1].String()+"\t]\n")), 0o644))
	check(os.MkdirAll(filepath.Join(cfg, "tree"), 0o755))
	check(os.WriteFile(filepath.Join(cfg, "tree", "README"), []byte("bench\n"), 0o644))
	return debs, images, payload
}
