package main

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relcue/release/internal/peers"
	"github.com/relcue/release/modules/codesign"
	"github.com/relcue/release/modules/codesign/codesigntest"
	"github.com/relcue/release/modules/delta/deltatest"
)

// signedSample is the sample with real Windows binaries in place of its
// placeholder .exe files (the same placeholder gives the same binary, so
// unchanged files stay unchanged between releases) and signing turned on.
func signedSample(t *testing.T) string {
	t.Helper()
	dir := copySample(t)
	err := filepath.WalkDir(filepath.Join(dir, "payload"), func(p string, d fs.DirEntry, err error) error {
		switch {
		case err != nil || d.IsDir():
			return err
		case strings.HasSuffix(p, ".exe"):
			exe := readFile(t, codesigntest.WindowsExe(t, string(readFile(t, p))))
			return os.WriteFile(p, exe, 0o644)
		case filepath.Base(p) == "WindowsNodeArtifacts.zip":
			// The Windows node binaries are real too: signing signs
			// them inside the archive.
			return os.WriteFile(p, realExesInZip(t, p), 0o644)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "release.cue"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(f, "\nsigning: authenticode: {description: \"K2s\", url: \"https://example.invalid/k2s\"}\n")
	f.Close()
	return dir
}

// realExesInZip returns the zip at p with every .exe member replaced by a
// real PE image (one per distinct content).
func realExesInZip(t *testing.T, p string) []byte {
	t.Helper()
	zr, err := zip.OpenReader(p)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	members := map[string][]byte{}
	for _, f := range zr.File {
		name := strings.ReplaceAll(f.Name, `\`, "/")
		if strings.HasSuffix(name, "/") {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(rc)
		rc.Close()
		if strings.HasSuffix(name, ".exe") {
			data = readFile(t, codesigntest.WindowsExe(t, string(data)))
		}
		members[name] = data
	}
	return deltatest.NestedZip(t, members)
}

// rewriteZip copies src to dst with edit applied to every entry's bytes.
func rewriteZip(t *testing.T, src, dst string, edit func(name string, data []byte) []byte) {
	t.Helper()
	zr, err := zip.OpenReader(src)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	zw := zip.NewWriter(out)
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(rc)
		rc.Close()
		h := f.FileHeader
		w, err := zw.CreateHeader(&h)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(edit(f.Name, data))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// tamper rewrites zip so that entry name says "HELLO" where it said
// "hello"... in a signed script, and fixes every manifest hash to match:
// only the signature can tell.
func tamper(t *testing.T, src, name, dst string) {
	t.Helper()
	zr, err := zip.OpenReader(src)
	if err != nil {
		t.Fatal(err)
	}
	var old, changed []byte
	for _, f := range zr.File {
		if f.Name == name {
			rc, _ := f.Open()
			old, _ = io.ReadAll(rc)
			rc.Close()
		}
	}
	zr.Close()
	i := bytes.IndexByte(old, 'e')
	if old == nil || i < 0 {
		t.Fatalf("%s has no entry %s to tamper with", src, name)
	}
	changed = bytes.Clone(old)
	changed[i] = 'E'
	// The file's hash changes in the manifests, and so do the hashes of
	// the manifests other manifests list (package-manifest.json in a
	// delta's delta-manifest.json).
	subst := map[string]string{sha(old): sha(changed)}
	fix := func(data []byte) []byte {
		for o, n := range subst {
			data = bytes.ReplaceAll(data, []byte(o), []byte(n))
		}
		return data
	}
	contents := map[string][]byte{}
	zr, err = zip.OpenReader(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range zr.File {
		if strings.HasSuffix(f.Name, ".json") && f.Name != "delta-manifest.json" {
			rc, _ := f.Open()
			data, _ := io.ReadAll(rc)
			rc.Close()
			contents[f.Name] = data
		}
	}
	zr.Close()
	fixed := map[string][]byte{}
	for n, data := range contents {
		fixed[n] = fix(data)
	}
	for n := range contents {
		subst[sha(contents[n])] = sha(fixed[n])
	}
	rewriteZip(t, src, dst, func(n string, data []byte) []byte {
		switch {
		case n == name:
			return changed
		case fixed[n] != nil:
			return fixed[n]
		case n == "delta-manifest.json":
			return fix(data)
		}
		return data
	})
}

func TestSignedBuildVerifyApply(t *testing.T) {
	tool := peers.Tool(t, "osslsigncode")
	dir := signedSample(t)
	cred := codesigntest.New(t, t.TempDir(), codesigntest.Options{})
	dist := filepath.Join(dir, "dist")

	// Without a credential, or with a wrong one, nothing is built.
	r := releaseCmd(t, nil, "build", "-C", dir, "--cache", t.TempDir())
	if r.code != 2 || !strings.Contains(r.stderr, "release.cue") || !strings.Contains(r.stderr, codesign.EnvPKCS12) || !strings.Contains(r.stderr, "--unsigned") {
		t.Fatalf("no credential: exit %d\n%s", r.code, r.stderr)
	}
	r = releaseCmd(t, []string{codesign.EnvPKCS12 + "=" + cred.PKCS12, codesign.EnvPassword + "=wrong"}, "build", "-C", dir, "--cache", t.TempDir())
	if r.code != 2 || !strings.Contains(r.stderr, "wrong password") || strings.Contains(r.stderr, cred.Password) {
		t.Fatalf("wrong password: exit %d\n%s", r.code, r.stderr)
	}
	expired := codesigntest.New(t, t.TempDir(), codesigntest.Options{NotAfter: time.Now().Add(-time.Hour)})
	r = releaseCmd(t, expired.Env(), "build", "-C", dir, "--cache", t.TempDir())
	if r.code != 2 || !strings.Contains(r.stderr, "expired") {
		t.Fatalf("expired certificate: exit %d\n%s", r.code, r.stderr)
	}
	r = releaseCmd(t, []string{codesign.EnvPKCS12 + "=" + filepath.Join(t.TempDir(), "missing.pfx"), codesign.EnvPassword + "=" + cred.Password}, "build", "-C", dir, "--cache", t.TempDir())
	if r.code != 2 || !strings.Contains(r.stderr, "missing.pfx") || !strings.Contains(r.stderr, codesign.EnvPKCS12) {
		t.Fatalf("unreadable PKCS#12: exit %d\n%s", r.code, r.stderr)
	}
	badExt := copyTree(t, dir)
	setSampleText(t, badExt, "release.cue", `signing: authenticode: {`, `signing: authenticode: {extensions: [".exe", ".txt"], `)
	r = releaseCmd(t, cred.Env(), "build", "-C", badExt, "--cache", t.TempDir())
	if r.code != 2 || !strings.Contains(r.stderr, "signing.authenticode.extensions") || !strings.Contains(r.stderr, ".txt") {
		t.Fatalf("unsignable extension: exit %d\n%s", r.code, r.stderr)
	}
	for _, d := range []string{dist, filepath.Join(badExt, "dist")} {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Fatalf("a refused build created %s", d)
		}
	}

	cache := filepath.Join(t.TempDir(), "cache")
	r = releaseCmd(t, cred.Env(), "build", "-C", dir, "--cache", cache)
	if r.code != 0 {
		t.Fatalf("signed build: exit %d\n%s", r.code, r.stderr)
	}

	// Every shipped PE and PowerShell file passes osslsigncode, the
	// Windows node binaries unpacked from bin/WindowsNodeArtifacts.zip as
	// an installation holds them too.
	checked := 0
	for _, v := range []string{"1.4.0", "1.4.1", "1.5.0"} {
		tree := installed(t, filepath.Join(dist, "packages", "k2s-"+v+".zip"), v)
		filepath.WalkDir(tree, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || codesign.FormatOf(p, codesign.DefaultExtensions) == codesign.None {
				return err
			}
			checked++
			if out, err := exec.Command(tool, "verify", "-CAfile", cred.CAPEM, "-in", p).CombinedOutput(); err != nil {
				t.Errorf("osslsigncode refuses %s of %s: %v\n%s", strings.TrimPrefix(p, tree), v, err, out)
			}
			return nil
		})
	}
	if checked < 60 {
		t.Fatalf("only %d signed files checked", checked)
	}
	// The Apply-Delta.ps1 each k2s delta writes itself is signed as well.
	for _, v := range []string{"1.4.0", "1.4.1"} {
		script := filepath.Join(t.TempDir(), "Apply-Delta.ps1")
		if err := os.WriteFile(script, unzipEntry(t, filepath.Join(dist, "deltas", "k2s-delta-"+v+"-to-1.5.0.zip"), "Apply-Delta.ps1"), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(tool, "verify", "-CAfile", cred.CAPEM, "-in", script).CombinedOutput(); err != nil {
			t.Errorf("osslsigncode refuses the Apply-Delta.ps1 of the delta from %s: %v\n%s", v, err, out)
		}
	}

	// Signing again from a cold cache gives the same bytes, with every
	// step that signs nothing run by another process: the signing ones
	// (packages, and deltas for their Apply-Delta.ps1) stay in this one,
	// which holds the key.
	again := copyTree(t, dir)
	os.RemoveAll(filepath.Join(again, "dist"))
	if r := releaseCmd(t, cred.Env(), "build", "-C", again, "--cache", t.TempDir(), "--engine", "process"); r.code != 0 {
		t.Fatalf("second signed build: exit %d\n%s", r.code, r.stderr)
	}
	if a, b := readFile(t, filepath.Join(dist, "SHA256SUMS")), readFile(t, filepath.Join(again, "dist", "SHA256SUMS")); !bytes.Equal(a, b) {
		t.Fatalf("signing twice gave different artifacts:\n%s\n---\n%s", a, b)
	}

	// verify checks every signature; --require-signed also the signer.
	pkgs, _ := filepath.Glob(filepath.Join(dist, "packages", "*.zip"))
	deltas, _ := filepath.Glob(filepath.Join(dist, "deltas", "*.zip"))
	args := append([]string{"verify", "--require-signed", "--trusted-cert", cred.CAPEM}, append(pkgs, deltas...)...)
	if r := releaseCmd(t, nil, args...); r.code != 0 || !strings.Contains(r.stdout, "Authenticode: ") {
		t.Fatalf("verify --require-signed: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	other := codesigntest.New(t, t.TempDir(), codesigntest.Options{Name: "someone else"})
	if r := releaseCmd(t, nil, "verify", "--require-signed", "--trusted-cert", other.CAPEM, pkgs[0]); r.code != 1 || !strings.Contains(r.stderr, "not trusted") {
		t.Fatalf("verify with another CA: exit %d\n%s", r.code, r.stderr)
	}

	// A tampered signed script is refused by verify, with or without
	// --require-signed, even with the manifests fixed up to match.
	delta := filepath.Join(dist, "deltas", "k2s-delta-1.4.0-to-1.5.0.zip")
	script := "lib/modules/k2s/k2s.node.module/windowsnode/nodepackage.module.psm1"
	bad := filepath.Join(t.TempDir(), "k2s-delta-1.4.0-to-1.5.0.zip")
	tamper(t, delta, script, bad)
	if r := releaseCmd(t, nil, "verify", bad); r.code != 1 || !strings.Contains(r.stderr, script) || !strings.Contains(r.stderr, "signature") {
		t.Fatalf("verify of a tampered delta: exit %d\n%s", r.code, r.stderr)
	}
	badPkg := filepath.Join(t.TempDir(), "k2s-1.5.0.zip")
	tamper(t, filepath.Join(dist, "packages", "k2s-1.5.0.zip"), script, badPkg)
	if r := releaseCmd(t, nil, "verify", badPkg); r.code != 1 || !strings.Contains(r.stderr, script) {
		t.Fatalf("verify of a tampered package: exit %d\n%s", r.code, r.stderr)
	}

	// apply --require-signed refuses the tampered delta, changing nothing,
	// and applies the real one.
	install := installed(t, filepath.Join(dist, "packages", "k2s-1.4.0.zip"), "k2s")
	before := treeHash(t, install)
	r = releaseCmd(t, nil, "apply", bad, "--install-dir", install, "--require-signed", "--trusted-cert", cred.CAPEM)
	if r.code != 1 || !strings.Contains(r.stderr, script) || !strings.Contains(r.stderr, "nothing was changed") {
		t.Fatalf("apply of a tampered delta: exit %d\n%s", r.code, r.stderr)
	}
	if treeHash(t, install) != before {
		t.Fatal("a refused apply changed the installation")
	}
	if _, err := os.Stat(filepath.Join(install, ".release-apply")); !os.IsNotExist(err) {
		t.Fatal("a refused apply left its staging area")
	}
	r = releaseCmd(t, nil, "apply", delta, "--install-dir", install, "--require-signed", "--trusted-cert", cred.LeafPEM, "--format", "json")
	if r.code != 0 || !strings.Contains(r.stdout, `"signed"`) {
		t.Fatalf("apply --require-signed: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	want := appliedWant(t, filepath.Join(dist, "packages", "k2s-1.4.0.zip"), filepath.Join(dist, "packages", "k2s-1.5.0.zip"), delta)
	if treeHash(t, install) != treeHash(t, want) {
		t.Fatalf("installation after a signed apply differs from 1.5.0:\n%s", diffTrees(t, install, want))
	}

	// --unsigned builds without credentials, and --require-signed refuses
	// what it made.
	plain := copyTree(t, dir)
	os.RemoveAll(filepath.Join(plain, "dist"))
	if r := releaseCmd(t, nil, "build", "-C", plain, "--cache", t.TempDir(), "--unsigned"); r.code != 0 {
		t.Fatalf("--unsigned: exit %d\n%s", r.code, r.stderr)
	}
	if r := releaseCmd(t, nil, "verify", "--require-signed", "--trusted-cert", cred.CAPEM, filepath.Join(plain, "dist", "packages", "k2s-1.5.0.zip")); r.code != 1 || !strings.Contains(r.stderr, "is not signed") {
		t.Fatalf("verify --require-signed of an unsigned package: exit %d\n%s", r.code, r.stderr)
	}
	if r := releaseCmd(t, nil, "verify", "--require-signed", pkgs[0]); r.code != 2 || !strings.Contains(r.stderr, "--trusted-cert") {
		t.Fatalf("--require-signed without --trusted-cert: exit %d\n%s", r.code, r.stderr)
	}
}

// copyTree copies a directory (a configuration with its payload).
func copyTree(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		return os.WriteFile(target, readFile(t, p), info.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}
