package deb

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relcue/release/pipeline/step"
)

type listed struct{ perm, owner, stamp string }

// listing parses `dpkg-deb --contents` (tar -tv) lines by path.
func listing(t *testing.T, out string) map[string]listed {
	t.Helper()
	m := map[string]listed{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		if len(f) != 6 {
			t.Fatalf("unexpected dpkg-deb --contents line %q", l)
		}
		m[f[5]] = listed{perm: f[0], owner: f[1], stamp: f[3] + " " + f[4]}
	}
	return m
}

func TestBuiltPackageAsDpkgDebSeesIt(t *testing.T) {
	tool(t, "dpkg-deb", "dpkg")
	root := payload(t)
	deb := runTarget(t, onlyTarget(t, model(map[string][]*BuildConfig{"1.5.0": {kubeletDecl(root)}})))
	if got := filepath.Base(deb); got != "kubelet_1.32.2-1_amd64.deb" {
		t.Errorf("file name %s", got)
	}

	fields := map[string]string{
		"Package":      "kubelet",
		"Version":      "1.32.2-1",
		"Architecture": "amd64",
		"Maintainer":   "Example Edge Systems <release@example.com>",
		"Section":      "admin",
		"Priority":     "optional",
		"Homepage":     "https://kubernetes.io",
		"Depends":      "iptables (>= 1.8.7), conntrack | conntrack-tools",
		"Pre-Depends":  "init-system-helpers (>= 1.54~)",
		"Recommends":   "ca-certificates",
		"Conflicts":    "kubernetes-node",
		"Breaks":       "kubeadm (<< 1.31)",
		"Replaces":     "kubernetes-node",
		"Provides":     "kubernetes-kubelet (= 1.32.2-1)",
		"Description":  "Kubernetes node agent\n The kubelet runs the pods scheduled to a node.\n .\n Built by the release pipeline's tests.",
	}
	for name, want := range fields {
		if got := strings.TrimRight(run(t, "dpkg-deb", "--field", deb, name), "\n"); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	if got := strings.TrimSpace(run(t, "dpkg-deb", "--field", deb, "Installed-Size")); !regexp.MustCompile(`^\d+$`).MatchString(got) {
		t.Errorf("Installed-Size %q is not a number", got)
	}

	entries := listing(t, run(t, "dpkg-deb", "--contents", deb))
	files := map[string]string{
		"./usr/bin/kubelet":                              "-rwxr-xr-x",
		"./etc/default/kubelet":                          "-rw-r--r--",
		"./etc/kubelet/token":                            "-rw-------",
		"./usr/lib/kubelet/plugins/cni/bridge":           "-rwxr-xr-x",
		"./usr/lib/kubelet/plugins/cni/README":           "-rw-r--r--",
		"./usr/lib/kubelet/plugins/conf/10-net.conflist": "-rw-r--r--",
		// The unit's source is executable; units never are.
		"./lib/systemd/system/kubelet.service":        "-rw-r--r--",
		"./usr/share/doc/kubelet/copyright":           "-rw-r--r--",
		"./usr/share/doc/kubelet/changelog.Debian.gz": "-rw-r--r--",
	}
	dirs := map[string]string{
		"./var/lib/kubelet/":         "drwxr-x---",
		"./usr/":                     "drwxr-xr-x",
		"./usr/lib/kubelet/plugins/": "drwxr-xr-x",
		"./lib/systemd/system/":      "drwxr-xr-x",
		"./usr/share/doc/kubelet/":   "drwxr-xr-x",
	}
	for p, e := range entries {
		if e.owner != "root/root" || e.stamp != "2025-06-01 00:00" {
			t.Errorf("%s: owner %s, time %s; want root/root at the build date", p, e.owner, e.stamp)
		}
		if !strings.HasSuffix(p, "/") {
			if _, ok := files[p]; !ok {
				t.Errorf("unexpected file %s in the package", p)
			}
		}
	}
	for p, want := range files {
		if got := entries[p].perm; got != want {
			t.Errorf("%s: mode %q, want %q", p, got, want)
		}
	}
	for p, want := range dirs {
		if got := entries[p].perm; got != want {
			t.Errorf("%s: mode %q, want %q", p, got, want)
		}
	}
	if _, ok := entries["./usr/lib/kubelet/plugins/empty/"]; ok {
		t.Error("an empty source directory was shipped; the planner's digest cannot see it")
	}

	if got := run(t, "dpkg-deb", "--info", deb, "conffiles"); got != "/etc/default/kubelet\n/etc/kubelet/token\n" {
		t.Errorf("conffiles %q: want the declared conffile and the file below /etc", got)
	}
	ctrl := run(t, "sh", "-c", `dpkg-deb --ctrl-tarfile "$1" | tar -tvf -`, "sh", deb)
	for _, want := range []string{`-rwxr-xr-x 0/0 .* \./postinst\n`, `-rwxr-xr-x 0/0 .* \./prerm\n`, `-rw-r--r-- 0/0 .* \./control\n`, `-rw-r--r-- 0/0 .* \./md5sums\n`, `-rw-r--r-- 0/0 .* \./conffiles\n`} {
		if !regexp.MustCompile(want).MatchString(ctrl) {
			t.Errorf("control archive lacks %s:\n%s", want, ctrl)
		}
	}
	if strings.Contains(ctrl, "preinst") || strings.Contains(ctrl, "postrm") {
		t.Errorf("control archive has scripts that were not declared:\n%s", ctrl)
	}

	// The payload is byte-identical to the sources, and md5sums agrees.
	x := t.TempDir()
	run(t, "dpkg-deb", "--extract", deb, x)
	for src, dst := range map[string]string{
		"bin/kubelet": "usr/bin/kubelet", "kubelet.default": "etc/default/kubelet",
		"plugins/cni/bridge": "usr/lib/kubelet/plugins/cni/bridge", "units/kubelet.service": "lib/systemd/system/kubelet.service",
	} {
		a, _ := os.ReadFile(filepath.Join(root, src))
		b, err := os.ReadFile(filepath.Join(x, dst))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s differs from its source %s (%v)", dst, src, err)
		}
	}
	sums := run(t, "dpkg-deb", "--info", deb, "md5sums")
	cmd := exec.Command("md5sum", "--check", "--strict", "--quiet")
	cmd.Dir, cmd.Stdin = x, strings.NewReader(sums)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("md5sums does not match the payload: %v\n%s", err, out)
	}
	if n := strings.Count(sums, "\n"); n != len(files) {
		t.Errorf("md5sums lists %d files, want %d:\n%s", n, len(files), sums)
	}
	changelog := run(t, "sh", "-c", `gzip -dc "$1"`, "sh", filepath.Join(x, "usr/share/doc/kubelet/changelog.Debian.gz"))
	if want := "kubelet (1.32.2-1) unstable; urgency=medium\n\n  * Built from its declaration in the release configuration.\n\n -- Example Edge Systems <release@example.com>  Sun, 01 Jun 2025 00:00:00 +0000\n"; changelog != want {
		t.Errorf("changelog:\n%s\nwant:\n%s", changelog, want)
	}
}

// lintianTag is one line of lintian output.
var lintianTag = regexp.MustCompile(`(?m)^([EWIPXO]): ([a-z0-9][a-z0-9+.-]+)(?: [a-z]+)?: (\S+)(.*)$`)

func TestLintianFindsNoErrors(t *testing.T) {
	lintian := tool(t, "lintian", "lintian")
	root := payload(t)
	kubelet := runTarget(t, onlyTarget(t, model(map[string][]*BuildConfig{"1.5.0": {kubeletDecl(root)}})))

	// A native, architecture-independent package whose copyright file
	// comes from its contents.
	tools := writeTree(t, t.TempDir(), map[string]tfile{
		"share/k2s-node-tools/drain.sh": {"#!/bin/sh\nset -e\necho drain\n", 0o755},
		"share/k2s-node-tools/README":   {"Helpers for K2s nodes.\n", 0o644},
		"copyright":                     {"Copyright 2025 Example Edge Systems\n\nLicense: MIT\n", 0o644},
	})
	native := onlyTarget(t, model(map[string][]*BuildConfig{"1.5.0": {{
		Name: "k2s-node-tools", Version: "1.0.0", Arch: "all",
		Maintainer: "Example Edge Systems <release@example.com>", Description: "helper scripts for K2s Linux nodes\nShipped to drain and inspect nodes.",
		Contents: []ContentConfig{
			{Src: filepath.Join(tools, "share"), Dst: "/usr/share"},
			{Src: filepath.Join(tools, "copyright"), Dst: "/usr/share/doc/k2s-node-tools/copyright"},
		},
		Pos: at(40),
	}}}))
	nativeDeb := runTarget(t, native)

	// An epoch, another architecture, a GPL license and a plain file below
	// /etc (made a conffile).
	crio := writeTree(t, t.TempDir(), map[string]tfile{"crio.conf": {"[crio]\n", 0o644}})
	epoch := onlyTarget(t, model(map[string][]*BuildConfig{"1.5.0": {{
		Name: "cri-o-config", Version: "1:1.32.0-2", Arch: "arm64", License: "GPL-2.0-or-later",
		Maintainer: "Example Edge Systems <release@example.com>", Description: "CRI-O configuration for K2s nodes\nDrop-in settings.",
		Contents: []ContentConfig{{Src: filepath.Join(crio, "crio.conf"), Dst: "/etc/crio/crio.conf.d/10-k2s.conf"}},
		Pos:      at(50),
	}}}))
	epochDeb := runTarget(t, epoch)

	// The negative control: dpkg-deb's own package without a copyright
	// file, which lintian must report as an error.
	broken := writeTree(t, t.TempDir(), map[string]tfile{
		"DEBIAN/control":           {"Package: brokenctl\nVersion: 1.0-1\nArchitecture: all\nMaintainer: Example <x@example.com>\nDescription: negative control\n", 0o644},
		"usr/share/brokenctl/data": {"x\n", 0o644},
	})
	brokenDeb := dpkgBuild(t, broken, "gzip")

	cmd := exec.Command(lintian, "--tag-display-limit", "0", "--fail-on", "none", kubelet, nativeDeb, epochDeb, brokenDeb)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("lintian: %v\n%s", err, out)
	}
	errorsOf := map[string][]string{}
	for _, m := range lintianTag.FindAllStringSubmatch(string(out), -1) {
		if m[1] == "E" {
			errorsOf[m[2]] = append(errorsOf[m[2]], m[3]+m[4])
		} else if m[2] != "brokenctl" {
			t.Logf("lintian %s: %s: %s%s", m[1], m[2], m[3], m[4])
		}
	}
	if !slices.Contains(errorsOf["brokenctl"], "no-copyright-file") {
		t.Fatalf("lintian did not report no-copyright-file for the negative control; is it working?\n%s", out)
	}
	for _, pkg := range []string{"kubelet", "k2s-node-tools", "cri-o-config"} {
		if errs := errorsOf[pkg]; len(errs) > 0 {
			t.Errorf("lintian errors for %s:\n%s", pkg, strings.Join(errs, "\n"))
		}
	}
}

func TestSameInputsGiveSameBytes(t *testing.T) {
	rootA, rootB := payload(t), payload(t)
	// Another checkout: other file times and group-writable modes with the
	// same executable bits.
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	err := filepath.WalkDir(rootB, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			mode := fs.FileMode(0o664)
			if fi.Mode()&0o100 != 0 {
				mode = 0o775
			}
			if err := os.Chmod(p, mode); err != nil {
				return err
			}
		}
		return os.Chtimes(p, old, old)
	})
	if err != nil {
		t.Fatal(err)
	}
	tgA := onlyTarget(t, model(map[string][]*BuildConfig{"1.5.0": {kubeletDecl(rootA)}}))
	tgB := onlyTarget(t, model(map[string][]*BuildConfig{"1.5.0": {kubeletDecl(rootB)}}))
	specA, specB := tgA.Spec.(Spec), tgB.Spec.(Spec)
	if a, b := fieldsJSON(specA), fieldsJSON(specB); !equalJSON(a, b) {
		t.Fatalf("the spec depends on where the checkout lives:\n%v\n%v", a, b)
	}

	build := func(tg step.Target, spec Spec) ([]byte, Info) {
		t.Helper()
		sources := map[string]string{}
		for _, s := range tg.Sources {
			sources[s.Name] = s.Path
		}
		out := filepath.Join(t.TempDir(), "k.deb")
		info, err := Build(context.Background(), spec, sources, out)
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return data, info
	}
	a1, infoA := build(tgA, specA)
	a2, _ := build(tgA, specA)
	b, infoB := build(tgB, specB)
	if !bytes.Equal(a1, a2) {
		t.Error("two builds of the same spec differ")
	}
	if !bytes.Equal(a1, b) {
		t.Error("builds from two checkouts with other file times and modes differ")
	}
	if !slices.Equal(infoA.Conffiles, infoB.Conffiles) || len(infoA.Files) != len(infoB.Files) {
		t.Errorf("infos differ: %+v vs %+v", infoA, infoB)
	}
	wantConf := []string{"/etc/default/kubelet", "/etc/kubelet/token"}
	if !slices.Equal(infoA.Conffiles, wantConf) {
		t.Errorf("Info.Conffiles %v, want %v", infoA.Conffiles, wantConf)
	}
	if !slices.IsSortedFunc(infoA.Files, func(x, y File) int { return strings.Compare(x.Path, y.Path) }) {
		t.Errorf("Info.Files are not sorted: %+v", infoA.Files)
	}

	later := specA
	later.Date = buildDate.Add(24 * time.Hour).Format(time.RFC3339)
	if c, _ := build(tgA, later); bytes.Equal(a1, c) {
		t.Error("a different build date gave the same bytes")
	}
	// The control data and file times carry the date: dpkg-deb shows it.
	tool(t, "dpkg-deb", "dpkg")
	out := filepath.Join(t.TempDir(), "later.deb")
	sources := map[string]string{}
	for _, s := range tgA.Sources {
		sources[s.Name] = s.Path
	}
	if _, err := Build(context.Background(), later, sources, out); err != nil {
		t.Fatal(err)
	}
	if l := listing(t, run(t, "dpkg-deb", "--contents", out)); l["./usr/bin/kubelet"].stamp != "2025-06-02 00:00" {
		t.Errorf("time %q", l["./usr/bin/kubelet"].stamp)
	}
	if got := run(t, "ar", "tv", out); !strings.Contains(got, "Jun  2 00:00 2025 debian-binary") {
		t.Errorf("ar member times are not the build date:\n%s", got)
	}
}

func equalJSON(a, b map[string]json.RawMessage) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !bytes.Equal(a[k], b[k]) {
			return false
		}
	}
	return true
}
