//go:build unix

package main

import (
	"encoding/json"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"time"

	"github.com/relcue/release/internal/winetest"
)

// wineRuns is how many applies of each kind the Wine section times.
const wineRuns = 7

// wineApply times `release apply` of the sample's 1.4.0 -> 1.5.0 delta
// natively against release.exe (GOOS=windows) under Wine, each run onto a
// freshly installed 1.4.0 (release install --profile k2s, as K2s's
// installer lays it out).
func wineApply(bin, w string) section {
	log.Printf("apply under Wine")
	var tools winetest.Tools
	for _, t := range []struct {
		name string
		dst  *string
	}{{"wine", &tools.Wine}, {"wineserver", &tools.Wineserver}, {"x86_64-w64-mingw32-gcc", &tools.MingwGCC}} {
		p, err := exec.LookPath(t.name)
		if err != nil {
			log.Fatalf("the Wine section needs %s on PATH (apt-get install wine wine64 gcc-mingw-w64-x86-64-win32; `make bench-tools`)", t.name)
		}
		*t.dst = p
	}
	sample := filepath.Join(w, "wine-sample")
	measure("(setup) copy the sample", "", nil, "cp", "-r", filepath.Join("fixtures", "sample"), sample)
	check(os.RemoveAll(filepath.Join(sample, "dist")))
	measure("(setup) build the sample", "", nil, bin, "build", "-C", sample, "--cache", filepath.Join(w, "wine-cache"), "-q")
	dist := filepath.Join(sample, "dist")
	base := filepath.Join(dist, "packages", "k2s-1.4.0.zip")
	d := filepath.Join(dist, "deltas", "k2s-delta-1.4.0-to-1.5.0.zip")

	exe := filepath.Join(w, "release.exe")
	check(winetest.BuildWindows(exe, "./cmd/release"))
	start := time.Now()
	pfx, err := winetest.NewPrefix(filepath.Join(w, "wineprefix"), tools)
	check(err)
	defer pfx.Close()
	log.Printf("  %-44s %8s", "(setup) Wine prefix (wineboot, shim)", time.Since(start).Round(10*time.Millisecond))

	run := func(name string, argv func(install string) []string, env []string) result {
		var rs []result
		for i := range wineRuns {
			install := filepath.Join(w, fmt.Sprintf("wine-install-%d", i))
			check(os.RemoveAll(install))
			measure("(setup) install 1.4.0", "", nil, bin, "install", base, "--install-dir", install, "--profile", "k2s", "-q")
			rs = append(rs, measure(fmt.Sprintf("%s #%d", name, i+1), "", env, argv(install)...))
			check(os.RemoveAll(install))
		}
		sort.Slice(rs, func(i, j int) bool { return rs[i].Wall < rs[j].Wall })
		m := rs[len(rs)/2]
		m.Name = name
		return m
	}
	native := run("release apply (native linux/amd64)", func(install string) []string {
		return []string{bin, "apply", d, "--install-dir", install, "-q"}
	}, nil)
	wine := run("release.exe apply under Wine 8.0 (windows/amd64)", func(install string) []string {
		return []string{tools.Wine, exe, "apply", winetest.WinPath(d), "--install-dir", winetest.WinPath(install), "-q"}
	}, pfx.Env())
	wine.Note = fmt.Sprintf("%.1fx native", float64(wine.Wall)/float64(native.Wall))
	written, removed := applyCounts(bin, base, d, filepath.Join(w, "wine-install-counts"))
	version := median("release.exe --version under Wine (process start only)", wineRuns, "", append([]string{"env"}, append(pfx.Env(), tools.Wine, exe, "--version")...))
	version.Note = fmt.Sprintf("%.0f%% of the Wine apply", 100*float64(version.Wall)/float64(wine.Wall))
	return section{
		Title: "Apply under Wine",
		Intro: fmt.Sprintf("`release apply` of the sample's 1.4.0 -> 1.5.0 delta (%d files written, %d removed) onto a freshly installed 1.4.0 (`release install --profile k2s`), the median of %d runs: the native binary against release.exe (GOOS=windows, CGO_ENABLED=0) under Wine 8.0 with a running wineserver (the prefix is set up once, untimed). The last row starts release.exe under Wine and only prints its version: what a Windows process costs to start there (loading ntdll, kernel32 and the bcryptprimitives.dll stand-in).", written, removed, wineRuns),
		Rows:  []result{native, wine, version},
	}
}

// applyCounts applies d natively once more, onto a fresh base, to say how
// much the timed applies wrote and removed.
func applyCounts(bin, base, d, install string) (written, removed int) {
	check(os.RemoveAll(install))
	defer os.RemoveAll(install)
	check(exec.Command(bin, "install", base, "--install-dir", install, "--profile", "k2s", "-q").Run())
	out, err := exec.Command(bin, "apply", d, "--install-dir", install, "-q", "--format", "json").Output()
	check(err)
	var rep struct{ FilesWritten, FilesRemoved int }
	check(json.Unmarshal(out, &rep))
	return rep.FilesWritten, rep.FilesRemoved
}
