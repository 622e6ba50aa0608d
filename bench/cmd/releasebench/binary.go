//go:build unix

package main

import (
	"archive/zip"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"
)

// binaryPair is two releases of a real Go program, built at bench time
// from the Go module proxy.
type binaryPair struct {
	name, pkg, from, to string
	bsdiff              bool // bsdiff is O(n log n) and slow: only on the small pair
}

var binaryPairs = []binaryPair{
	{"crane", "github.com/google/go-containerregistry/cmd/crane", "v0.21.0", "v0.22.1", true},
	{"registry", "github.com/distribution/distribution/v3/cmd/registry", "v3.1.1", "v3.1.2", false},
}

// goInstall builds pkg@version into dir (cached there between runs).
func goInstall(w, pkg, version string) string {
	dir := filepath.Join(filepath.Dir(w), ".bench-bins", filepath.Base(pkg)+"-"+version)
	out := filepath.Join(dir, filepath.Base(pkg))
	if fileSize(out) > 0 {
		return out
	}
	check(os.MkdirAll(dir, 0o755))
	cmd := exec.Command("go", "install", "-trimpath", pkg+"@"+version)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "CGO_ENABLED=0", "GOFLAGS=-mod=mod", "GOTOOLCHAIN=local")
	if b, err := cmd.CombinedOutput(); err != nil {
		log.Fatalf("go install %s@%s: %v\n%s", pkg, version, err, b)
	}
	return out
}

// packageOf zips a one-binary installation tree, as another tool would.
func packageOf(w, name, version, binPath string) string {
	tree := filepath.Join(w, "tree-"+name+"-"+version)
	check(os.MkdirAll(filepath.Join(tree, "bin"), 0o755))
	check(os.WriteFile(filepath.Join(tree, "VERSION"), []byte(version), 0o644))
	data, err := os.ReadFile(binPath)
	check(err)
	check(os.WriteFile(filepath.Join(tree, "bin", name), data, 0o755))
	out := filepath.Join(w, name+"-"+version+".zip")
	measure("(setup) zip "+name+" "+version, tree, nil, "zip", "-r", "-q", "-6", out, ".")
	return out
}

func binaryPatches(bin, w string) section {
	log.Printf("binary patches")
	s := section{Title: "Binary patches of real Go binaries", Intro: "Two releases of each program are built at bench time (`go install -trimpath`, CGO_ENABLED=0). `release delta --mode binary` runs on two zips holding the binary (whole command: hashing, patching, writing the delta); its output is the patch entry. The baselines patch the bare files with the same base: `zstd --patch-from` at -19 and -3, `xdelta3 -9`, and `bsdiff` on the smaller pair. Apply rows rebuild the target: `release apply` onto the extracted base (verifying the base before and every file after, fsync included) against `zstd -d --patch-from`."}
	for _, tool := range []string{"zstd", "xdelta3", "bsdiff"} {
		if _, err := exec.LookPath(tool); err != nil {
			log.Fatalf("binary patch baselines need %s on PATH (apt-get install zstd xdelta3 bsdiff; `make bench-tools`)", tool)
		}
	}
	var notes []string
	for _, p := range binaryPairs {
		a, b := goInstall(w, p.pkg, p.from), goInstall(w, p.pkg, p.to)
		size := fileSize(b)
		label := fmt.Sprintf("%s %s→%s (%s)", p.name, p.from, p.to, human(size))
		za, zb := packageOf(w, p.name, p.from, a), packageOf(w, p.name, p.to, b)

		var rows []result
		base := func(name string, out string, argv ...string) result {
			r := measure(label+": "+name, w, nil, argv...)
			r.Output = fileSize(out)
			rows = append(rows, r)
			return r
		}
		z19 := base("zstd -19 --patch-from (baseline)", filepath.Join(w, "p19.zst"), "zstd", "-q", "-f", "-19", "--patch-from="+a, b, "-o", filepath.Join(w, "p19.zst"))
		base("zstd -3 --patch-from", filepath.Join(w, "p3.zst"), "zstd", "-q", "-f", "-3", "--patch-from="+a, b, "-o", filepath.Join(w, "p3.zst"))
		base("xdelta3 -9", filepath.Join(w, "p.xd3"), "xdelta3", "-9", "-f", "-e", "-s", a, b, filepath.Join(w, "p.xd3"))
		if p.bsdiff {
			base("bsdiff", filepath.Join(w, "p.bsdiff"), "bsdiff", a, b, filepath.Join(w, "p.bsdiff"))
		}
		out := filepath.Join(w, "delta-"+p.name+".zip")
		r := measure(label+": release delta --mode binary", w, nil, bin, "delta", "-q", "--from", za, "--to", zb, "-o", out, "--mode", "binary", "--date", "2025-01-01T00:00:00Z", "-j", fmt.Sprint(runtime.NumCPU()))
		r.Output = patchSize(out, "bin/"+p.name)
		r.Note = fmt.Sprintf("%.0f%% of zstd -19's size in %.0f%% of its time; delta zip %s", 100*float64(r.Output)/float64(z19.Output), 100*float64(r.Wall)/float64(z19.Wall), human(fileSize(out)))
		rows = append(rows, r)

		zd := measure(label+": zstd -d --patch-from (apply baseline)", w, nil, "zstd", "-q", "-f", "-d", "--patch-from="+a, filepath.Join(w, "p19.zst"), "-o", filepath.Join(w, "rebuilt"))
		zd.Note = fmt.Sprintf("%s/s", human(int64(float64(size)/zd.Wall.Seconds())))
		rows = append(rows, zd)
		install := filepath.Join(w, "install-"+p.name)
		check(os.RemoveAll(install))
		measure("(setup) unzip base", w, nil, "unzip", "-q", za, "-d", install)
		ap := measure(label+": release apply", w, nil, bin, "apply", "-q", out, "--install-dir", install)
		ap.Note = fmt.Sprintf("%s/s of rebuilt binary", human(int64(float64(size)/ap.Wall.Seconds())))
		rows = append(rows, ap)
		s.Rows = append(s.Rows, rows...)
		notes = append(notes, fmt.Sprintf("%s: release's patch is %s against zstd -19's %s; it took %s against %s.", label, human(r.Output), human(z19.Output), r.Wall.Round(10*time.Millisecond), z19.Wall.Round(10*time.Millisecond)))
	}
	s.Notes = append(notes,
		"release makes one zstd frame per file with the whole base as raw dictionary, at klauspost/compress's best level with a window covering base and target (single-threaded per file; files in parallel). klauspost's best level searches less than zstd's -19 optimal parser, so its patches are a few percent larger, at a fraction of the time. bsdiff's patches are smaller still on Go binaries, but it suffix-sorts the base (tens of seconds and ~9 bytes of memory per byte of base); at the sizes K2s ships (50–150 MB binaries) that is minutes per file, so release does not offer it.",
		"Memory: patching holds base, target and the encoder's window, about 4 bytes per byte of base plus target (4 GB per GB of input), bounded across files by --patch-memory (default 2 GiB); apply holds base, patch and result, about 2 bytes per byte.")
	return s
}

// patchSize reads the size of the patch of path from a delta's manifest.
func patchSize(deltaZip, path string) int64 {
	zr, err := zip.OpenReader(deltaZip)
	check(err)
	defer zr.Close()
	for _, f := range zr.File {
		if f.Name != "delta-manifest.json" {
			continue
		}
		rc, err := f.Open()
		check(err)
		data, err := io.ReadAll(rc)
		rc.Close()
		check(err)
		var m struct {
			Patches map[string]struct{ Patch struct{ Size int64 } }
		}
		check(json.Unmarshal(data, &m))
		p, ok := m.Patches[path]
		if !ok {
			log.Fatalf("%s: %s was not shipped as a patch", deltaZip, path)
		}
		return p.Patch.Size
	}
	log.Fatalf("%s has no delta-manifest.json", deltaZip)
	return 0
}
