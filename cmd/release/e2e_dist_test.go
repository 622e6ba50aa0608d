package main

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

// distListed checks, with the real sha256sum, that SHA256SUMS verifies and
// lists exactly the files of dist (but the index files) and returns them.
func distListed(t *testing.T, dist string) []string {
	t.Helper()
	cmd := exec.Command("sha256sum", "--strict", "-c", "SHA256SUMS")
	cmd.Dir = dist
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sha256sum -c SHA256SUMS: %v\n%s", err, out)
	}
	var listed []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		listed = append(listed, strings.TrimSuffix(line, ": OK"))
	}
	sort.Strings(listed)
	var files []string
	filepath.WalkDir(dist, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dist, p)
			if rel != "SHA256SUMS" && rel != "artifacts.json" {
				files = append(files, filepath.ToSlash(rel))
			}
		}
		return nil
	})
	sort.Strings(files)
	if !slices.Equal(listed, files) {
		t.Fatalf("SHA256SUMS lists %v\ndist holds %v", listed, files)
	}
	return listed
}

// FIRST-USE findings 1-3 through the CLI: a build of some targets keeps
// the index whole, a withdrawn release leaves dist/, a file release did
// not write is refused (exit 2) unless --clean, a killed publish's temp
// files go, and an input holding dist/ is refused by vet already.
func TestDistTellsTheTruth(t *testing.T) {
	dir := t.TempDir()
	cache := filepath.Join(t.TempDir(), "cache")
	dist := filepath.Join(dir, "dist")
	write := func(rel, content string) {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	config := func(releases ...string) {
		cue := "package release\nproduct: {name: \"t\", vendor: \"x\"}\nbuild: date: \"2025-06-01T00:00:00Z\"\n"
		for _, v := range releases {
			cue += "releases: \"" + v + "\": inputs: [{dir: \"payload/" + v + "\"}]\n"
		}
		write("release.cue", cue)
	}
	write("payload/1.0.0/bin/a.exe", "a1")
	write("payload/1.1.0/bin/a.exe", "a2")
	write("payload/1.2.0/bin/a.exe", "a3")
	config("1.0.0", "1.1.0", "1.2.0")
	mustRun(t, "build", "-q", "-C", dir, "--cache", cache)
	all := distListed(t, dist)
	if !slices.Contains(all, "packages/t-1.1.0.zip") {
		t.Fatalf("first build listed %v", all)
	}

	// A targeted build adds to the index instead of shrinking it.
	write("payload/1.2.0/bin/b.exe", "b3")
	r := mustRun(t, "build", "-q", "-C", dir, "--cache", cache, "--target", "package/1.2.0")
	if got := distListed(t, dist); len(got) < len(all)-3 || !slices.Contains(got, "packages/t-1.0.0.zip") {
		t.Fatalf("after --target package/1.2.0 SHA256SUMS lists %v\n%s", got, r.stdout)
	}
	if !strings.Contains(r.stdout, "kept from earlier builds") {
		t.Errorf("stdout does not say what was kept:\n%s", r.stdout)
	}

	// A withdrawn release's artifacts leave dist/.
	config("1.0.0", "1.2.0")
	r = mustRun(t, "build", "-q", "-C", dir, "--cache", cache)
	got := distListed(t, dist)
	for _, f := range got {
		if strings.Contains(f, "1.1.0") {
			t.Errorf("%s is still in dist/ after 1.1.0 was removed from the configuration", f)
		}
	}
	if !strings.Contains(r.stdout, "removed packages/t-1.1.0.zip") {
		t.Errorf("stdout does not list what was removed:\n%s", r.stdout)
	}

	// A killed publish's temporary files are removed by the next one.
	write("dist/packages/.t-1.2.0.zip.tmp-1089678388", "partial")
	mustRun(t, "build", "-q", "-C", dir, "--cache", cache)
	distListed(t, dist)

	// A file release did not write: refused before building, then --clean.
	write("dist/notes.txt", "mine")
	r = releaseCmd(t, nil, "build", "-q", "-C", dir, "--cache", cache)
	if r.code != 2 || !strings.Contains(r.stderr, "notes.txt") || !strings.Contains(r.stderr, "--clean") {
		t.Fatalf("foreign file: exit %d\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dist, "notes.txt")); err != nil {
		t.Fatal("the refused build touched the foreign file")
	}
	mustRun(t, "build", "-q", "-C", dir, "--cache", cache, "--clean")
	distListed(t, dist)

	// An input that holds dist/ is refused by vet, plan and build alike.
	write("release.cue", "package release\nproduct: {name: \"t\", vendor: \"x\"}\nbuild: date: \"2025-06-01T00:00:00Z\"\nreleases: \"1.0.0\": inputs: [{dir: \".\"}]\n")
	for _, cmd := range []string{"vet", "plan", "build"} {
		r = releaseCmd(t, nil, cmd, "-C", dir, "--cache", cache)
		if r.code != 2 || !strings.Contains(r.stderr, "release.cue:4:") || !strings.Contains(r.stderr, "contains the output directory") {
			t.Errorf("%s with dist/ inside an input: exit %d\n%s", cmd, r.code, r.stderr)
		}
	}
}
