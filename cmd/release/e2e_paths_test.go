package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// A name Windows cannot hold is a configuration error found when planning
// (exit 2), naming the input as the configuration does and both ways out,
// and leaves no package; build.paths: "posix" builds it,
// and then apply refuses the delta unless told the installation is not on
// Windows. The standalone delta command says how to opt out with its flag.
func TestWindowsNamesThroughCLI(t *testing.T) {
	dir := copySample(t)
	genericSample(t, dir)
	bad := filepath.Join(dir, "payload", "1.5.0", "lib", "CON.psm1")
	if err := os.WriteFile(bad, []byte("# a module Windows cannot hold\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(t.TempDir(), "cache")
	r := releaseCmd(t, nil, "build", "-C", dir, "--cache", cache)
	for _, want := range []string{"target package/1.5.0: inputs[1] at " + filepath.Join(dir, "release.cue") + ":",
		bad + `: package path "lib/CON.psm1" has "CON.psm1", which Windows opens as the device CON`,
		`a Windows installation cannot hold it: rename it, or set build: paths: "posix" if the product is never installed on Windows`} {
		if r.code != 2 || !strings.Contains(r.stderr, want) {
			t.Fatalf("build: exit %d, want 2 and stderr containing %q\n%s", r.code, want, r.stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "dist", "packages", "k2s-1.5.0.zip")); !os.IsNotExist(err) {
		t.Fatalf("the refused package was written: %v", err)
	}

	cue := filepath.Join(dir, "release.cue")
	src, err := os.ReadFile(cue)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cue, []byte(strings.Replace(string(src), "build: {", "build: {\n\tpaths: \"posix\"", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	runBuild(t, dir, cache)
	dist := filepath.Join(dir, "dist")
	d := filepath.Join(dist, "deltas", "k2s-delta-1.4.0-to-1.5.0.zip")
	install := filepath.Join(t.TempDir(), "k2s")
	unzipTo(t, filepath.Join(dist, "packages", "k2s-1.4.0.zip"), install)
	before := treeHash(t, install)
	r = releaseCmd(t, nil, "apply", d, "--install-dir", install)
	if r.code != 1 || !strings.Contains(r.stderr, `package path "lib/CON.psm1" has "CON.psm1"`) || !strings.Contains(r.stderr, "rename it, or pass --paths posix if this installation is not on Windows; nothing was changed") {
		t.Fatalf("apply: exit %d\n%s", r.code, r.stderr)
	}
	if treeHash(t, install) != before {
		t.Fatal("the refused apply changed the installation")
	}
	mustRun(t, "apply", d, "--install-dir", install, "--paths", "posix")
	if _, err := os.Stat(filepath.Join(install, "lib", "CON.psm1")); err != nil {
		t.Fatal(err)
	}

	out := filepath.Join(t.TempDir(), "d.zip")
	r = releaseCmd(t, nil, "delta", "--from", filepath.Join(dist, "packages", "k2s-1.4.0.zip"), "--to", filepath.Join(dist, "packages", "k2s-1.5.0.zip"), "-o", out)
	if r.code != 1 || !strings.Contains(r.stderr, "rename it, or pass --paths posix if the product is never installed on Windows") {
		t.Fatalf("delta: exit %d\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("the refused delta was written: %v", err)
	}
	mustRun(t, "delta", "--from", filepath.Join(dist, "packages", "k2s-1.4.0.zip"), "--to", filepath.Join(dist, "packages", "k2s-1.5.0.zip"), "-o", out, "--paths", "posix")
	if r := releaseCmd(t, nil, "delta", "--from", "a.zip", "--to", "b.zip", "-o", out, "--paths", "dos"); r.code != 2 || !strings.Contains(r.stderr, `--paths: path policy "dos"`) {
		t.Fatalf("delta --paths dos: exit %d\n%s", r.code, r.stderr)
	}
}

// A K2s installation's scripts are CRLF. Bytes are shipped as they are:
// the package manifest hashes the CRLF bytes, an independent unzip gets
// them back, a change of line endings alone is a change the delta ships,
// and apply installs exactly those bytes.
func TestCRLFScriptsShipAsTheyAre(t *testing.T) {
	dir := copySample(t)
	genericSample(t, dir)
	lf := "param([switch]$Offline)\nWrite-Output 'k2s'\n"
	crlf := strings.ReplaceAll(lf, "\n", "\r\n")
	write := func(rel, data string) {
		p := filepath.Join(dir, "payload", filepath.FromSlash(rel))
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("1.4.0/smallsetup/eol.ps1", lf)
	write("1.5.0/smallsetup/eol.ps1", crlf)
	write("1.5.0/smallsetup/InstallK8s.ps1", strings.ReplaceAll(string(readFile(t, filepath.Join(dir, "payload/1.5.0/smallsetup/InstallK8s.ps1"))), "\n", "\r\n"))
	runBuild(t, dir, filepath.Join(t.TempDir(), "cache"))
	dist := filepath.Join(dir, "dist")
	sum := func(s string) string { return sha256Hex([]byte(s)) }

	pkg := filepath.Join(dist, "packages", "k2s-1.5.0.zip")
	if got := manifestSHA256(t, pkg, "smallsetup/eol.ps1"); got != sum(crlf) {
		t.Fatalf("package-manifest.json hashes smallsetup/eol.ps1 as %s, not as its CRLF bytes (%s)", got, sum(crlf))
	}
	if got := string(unzipEntry(t, pkg, "smallsetup/eol.ps1")); got != crlf {
		t.Fatalf("unzip -p gives %q, want the CRLF bytes", got)
	}

	d := filepath.Join(dist, "deltas", "k2s-delta-1.4.0-to-1.5.0.zip")
	var m struct {
		Changed []string
		Files   struct {
			Target map[string]struct{ SHA256 string }
		}
	}
	if err := json.Unmarshal(unzipEntry(t, d, "delta-manifest.json"), &m); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(m.Changed, "smallsetup/eol.ps1") || m.Files.Target["smallsetup/eol.ps1"].SHA256 != sum(crlf) {
		t.Fatalf("a line-ending change is not shipped as a change to the CRLF bytes: Changed %v, target %+v", m.Changed, m.Files.Target["smallsetup/eol.ps1"])
	}
	install := filepath.Join(t.TempDir(), "k2s")
	unzipTo(t, filepath.Join(dist, "packages", "k2s-1.4.0.zip"), install)
	mustRun(t, "apply", d, "--install-dir", install)
	if got := string(readFile(t, filepath.Join(install, "smallsetup", "eol.ps1"))); got != crlf {
		t.Fatalf("apply installed %q, want the CRLF bytes", got)
	}
	mustRun(t, "verify", pkg)
}

// unzipEntry reads one entry with Info-ZIP's unzip, which converts
// nothing without -a: an independent reader of what we shipped.
func unzipEntry(t *testing.T, zipPath, name string) []byte {
	t.Helper()
	out, err := exec.Command("unzip", "-p", zipPath, name).Output()
	if err != nil {
		t.Fatalf("unzip -p %s %s: %v", zipPath, name, err)
	}
	return out
}

// manifestSHA256 is the sha256 package-manifest.json in zipPath gives p.
func manifestSHA256(t *testing.T, zipPath, p string) string {
	t.Helper()
	var pm struct {
		Files []struct{ Path, SHA256 string }
	}
	if err := json.Unmarshal(unzipEntry(t, zipPath, "package-manifest.json"), &pm); err != nil {
		t.Fatal(err)
	}
	for _, f := range pm.Files {
		if f.Path == p {
			return f.SHA256
		}
	}
	t.Fatalf("package-manifest.json of %s does not list %s", zipPath, p)
	return ""
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
