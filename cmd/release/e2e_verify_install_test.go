package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// verifyInstallJSON is one element of verify --install-dir --format json.
type verifyInstallJSON struct {
	OK          bool     `json:"ok"`
	Basis       string   `json:"basis"`
	Version     string   `json:"version"`
	Against     []string `json:"against"`
	Differences []struct {
		Path           string `json:"path"`
		Problem        string `json:"problem"`
		ExpectedSHA256 string `json:"expectedSHA256"`
		ActualSHA256   string `json:"actualSHA256"`
	} `json:"differences"`
}

func parseVerifyInstall(t *testing.T, r result) verifyInstallJSON {
	t.Helper()
	var out []verifyInstallJSON
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || len(out) != 1 {
		t.Fatalf("verify --install-dir --format json: %v\n%s", err, r.stdout)
	}
	return out[0]
}

// TestVerifyInstallDirThroughCLI: an installation of the K2s-shaped
// sample made by release install (nested archive members in bin/kube,
// bin/cni, ...) verifies clean on its own, against its package with or
// without --profile, and after release apply against the target package
// and against base package plus delta; damage is reported file by file,
// all at once, in text and JSON, with exit code 1.
func TestVerifyInstallDirThroughCLI(t *testing.T) {
	dir := copySample(t)
	runBuild(t, dir, filepath.Join(t.TempDir(), "cache"), "--target", "delta/*", "--target", "package/*")
	dist := filepath.Join(dir, "dist")
	pkg140, pkg150 := filepath.Join(dist, "packages/k2s-1.4.0.zip"), filepath.Join(dist, "packages/k2s-1.5.0.zip")
	d140 := filepath.Join(dist, "deltas/k2s-delta-1.4.0-to-1.5.0.zip")

	install := installed(t, pkg140, "k2s")
	for _, args := range [][]string{{}, {pkg140}, {pkg140, "--profile", "k2s"}, {pkg140, "-C", dir}} {
		r := mustRun(t, append([]string{"verify", "--install-dir", install}, args...)...)
		if !strings.Contains(r.stdout, install+": matches 1.4.0") || !strings.Contains(r.stdout, "left to the product by its skip rules") {
			t.Errorf("verify %v: %s", args, r.stdout)
		}
	}
	mustRun(t, "apply", d140, "--install-dir", install, "-q")
	for _, args := range [][]string{{}, {pkg150}, {pkg140, d140}} {
		r := mustRun(t, append([]string{"verify", "--install-dir", install, "--format", "json"}, args...)...)
		if v := parseVerifyInstall(t, r); !v.OK || v.Version != "1.5.0" || len(v.Differences) != 0 {
			t.Errorf("verify %v after the apply: %s", args, r.stdout)
		}
	}

	// Damage: a missing file, an extra one and a changed member of the
	// nested archive.
	if err := os.Remove(filepath.Join(install, "LICENSE")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(install, "bin", "stray.exe"), []byte("stray"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(install, "bin", "kube", "kubelet.exe"), []byte("not kubelet"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{}, {pkg150}} {
		r := releaseCmd(t, nil, append([]string{"verify", "--install-dir", install}, args...)...)
		if r.code != 1 {
			t.Fatalf("verify %v of a damaged installation: exit %d\n%s\n%s", args, r.code, r.stdout, r.stderr)
		}
		for _, s := range []string{"does not match 1.5.0", "1 missing, 1 extra, 1 changed", "\n  missing  LICENSE: expected sha256 ",
			"\n  extra    bin/stray.exe: sha256 ", "\n  changed  bin/kube/kubelet.exe: sha256 "} {
			if !strings.Contains(r.stdout, s) {
				t.Errorf("verify %v lacks %q:\n%s", args, s, r.stdout)
			}
		}
		r = releaseCmd(t, nil, append([]string{"verify", "--install-dir", install, "--format", "json"}, args...)...)
		v := parseVerifyInstall(t, r)
		if r.code != 1 || v.OK || len(v.Differences) != 3 {
			t.Fatalf("json: exit %d\n%s", r.code, r.stdout)
		}
		got := map[string]string{}
		for _, d := range v.Differences {
			got[d.Path] = d.Problem
			if (d.Problem != "extra") != (d.ExpectedSHA256 != "") || (d.Problem != "missing") != (d.ActualSHA256 != "") {
				t.Errorf("hashes of %+v", d)
			}
		}
		if got["LICENSE"] != "missing" || got["bin/stray.exe"] != "extra" || got["bin/kube/kubelet.exe"] != "changed" {
			t.Errorf("json differences %v", got)
		}
	}

	// A directory given as a package points to --install-dir.
	if r := releaseCmd(t, nil, "verify", install); r.code != 1 || !strings.Contains(r.stderr, "it is a directory, not a package; to check an installation, run release verify --install-dir "+install) {
		t.Errorf("verify DIR: exit %d\n%s", r.code, r.stderr)
	}
	// Usage: --install-dir takes no signature flags; --profile needs it.
	if r := releaseCmd(t, nil, "verify", "--install-dir", install, "--require-signed"); r.code != 2 {
		t.Errorf("--install-dir --require-signed: exit %d\n%s", r.code, r.stderr)
	}
	if r := releaseCmd(t, nil, "verify", pkg150, "--profile", "k2s"); r.code != 2 {
		t.Errorf("--profile without --install-dir: exit %d\n%s", r.code, r.stderr)
	}
}

// TestForcedApplyThroughCLI is FIRST-USE finding 5 as a user ran it: the
// refusals name the matching delta or the full package and call --force
// dangerous; --force on an empty directory says first what it does not
// guarantee, then exits 1 listing every file it could not make right, and
// verify --install-dir lists them again; --force on 1.4.1 with the 1.4.0
// delta reports the version it found and that the result is 1.5.0.
func TestForcedApplyThroughCLI(t *testing.T) {
	dir := copySample(t)
	runBuild(t, dir, filepath.Join(t.TempDir(), "cache"), "--target", "delta/*", "--target", "package/*")
	dist := filepath.Join(dir, "dist")
	d140 := filepath.Join(dist, "deltas/k2s-delta-1.4.0-to-1.5.0.zip")

	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	r := releaseCmd(t, nil, "apply", d140, "--install-dir", empty)
	if r.code != 1 || !strings.Contains(r.stderr, "installation is unversioned (no VERSION file) but the delta is for 1.4.0; install the full package k2s-1.5.0.zip into a new directory") ||
		!strings.Contains(r.stderr, "--force would apply this delta anyway, which is dangerous") {
		t.Fatalf("unforced on an empty directory: exit %d\n%s", r.code, r.stderr)
	}
	r = releaseCmd(t, nil, "apply", d140, "--install-dir", empty, "--force", "-q")
	notice := strings.Index(r.stderr, "warning: --force overrides a failed check: the installation is unversioned (no VERSION file), not the delta's base 1.4.0")
	list := strings.Index(r.stderr, "--force: the result is not 1.5.0")
	if r.code != 1 || notice < 0 || list < notice || !strings.Contains(r.stderr, "\n  missing  LICENSE: expected sha256 ") ||
		!strings.Contains(r.stderr, "install the full package k2s-1.5.0.zip into a new directory to repair") {
		t.Fatalf("forced on an empty directory: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, empty+": unversioned -> 1.5.0 (forced; the delta is 1.4.0 -> 1.5.0)") || !strings.Contains(r.stdout, "the result is NOT 1.5.0") {
		t.Errorf("summary: %s", r.stdout)
	}
	missing := strings.Count(r.stderr, "\n  missing  ")
	v := releaseCmd(t, nil, "verify", "--install-dir", empty)
	if v.code != 1 || missing == 0 || strings.Count(v.stdout, "\n  missing  ") != missing || !strings.Contains(v.stdout, "\n  missing  LICENSE: ") {
		t.Errorf("verify after the forced apply (%d missing): exit %d\n%s", missing, v.code, v.stdout)
	}

	// 1.4.1 installed, the 1.4.0 delta: refused naming the 1.4.1 delta;
	// forced, the result happens to be exactly 1.5.0, and says so.
	install := installed(t, filepath.Join(dist, "packages/k2s-1.4.1.zip"), "k2s")
	r = releaseCmd(t, nil, "apply", d140, "--install-dir", install)
	if r.code != 1 || !strings.Contains(r.stderr, "installation is 1.4.1 but the delta is for 1.4.0; use k2s-delta-1.4.1-to-1.5.0.zip (the delta from 1.4.1) or install the full package k2s-1.5.0.zip") {
		t.Fatalf("unforced on 1.4.1: exit %d\n%s", r.code, r.stderr)
	}
	r = releaseCmd(t, nil, "apply", d140, "--install-dir", install, "--force", "--format", "json")
	var rep struct {
		InstalledVersion string `json:"installedVersion"`
		NotGuaranteed    string `json:"notGuaranteed"`
		Result           struct {
			OK bool `json:"ok"`
		} `json:"result"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || r.code != 0 || rep.InstalledVersion != "1.4.1" || !rep.Result.OK || rep.NotGuaranteed == "" {
		t.Fatalf("forced on 1.4.1: exit %d %v\n%s\n%s", r.code, err, r.stdout, r.stderr)
	}
	mustRun(t, "verify", "--install-dir", install)
	mustRun(t, "verify", "--install-dir", install, filepath.Join(dist, "packages/k2s-1.5.0.zip"))
	want := appliedWant(t, filepath.Join(dist, "packages/k2s-1.4.1.zip"), filepath.Join(dist, "packages/k2s-1.5.0.zip"), d140)
	if treeHash(t, install) != treeHash(t, want) {
		t.Errorf("forced 1.4.1 -> 1.5.0 is not 1.5.0:\n%s", diffTrees(t, install, want))
	}
	// The text summary names the version found, too.
	again := installed(t, filepath.Join(dist, "packages/k2s-1.4.1.zip"), "again")
	r = mustRun(t, "apply", d140, "--install-dir", again, "--force")
	if !strings.Contains(r.stdout, again+": 1.4.1 -> 1.5.0 (forced; the delta is 1.4.0 -> 1.5.0)") || !strings.Contains(r.stdout, "the result matches 1.5.0") {
		t.Errorf("summary: %s", r.stdout)
	}
}
