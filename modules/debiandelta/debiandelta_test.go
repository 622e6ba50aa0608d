package debiandelta_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relcue/release/modules/debiandelta"
	"github.com/relcue/release/modules/nodepkg"
	"github.com/relcue/release/modules/nodepkg/nodepkgtest"
	"github.com/relcue/release/modules/pkgzip"
)

func pkg(name, version, arch string, c byte) nodepkg.Package {
	file := name + "_" + strings.ReplaceAll(version, ":", "%3a") + "_" + arch + ".deb"
	return nodepkg.Package{Group: "g", Path: "g/" + file, Package: name, Version: version,
		Architecture: arch, SHA256: strings.Repeat(string(c), 64), Size: 10}
}

func manifests() (*nodepkg.Manifest, *nodepkg.Manifest) {
	base := &nodepkg.Manifest{OS: "debian12", OSDir: "debian12", Version: "1.4.0", Packages: []nodepkg.Package{
		pkg("kubelet", "1.31.4-1", "amd64", 'a'), pkg("k2s-common", "1.0-1", "all", 'b'), pkg("flannel-legacy", "0.22.0-1", "all", 'c'),
		pkg("rebuilt", "2.0-1", "all", 'd'),
	}}
	target := &nodepkg.Manifest{OS: "debian12", OSDir: "debian12", Version: "1.5.0", Packages: []nodepkg.Package{
		pkg("kubelet", "1:1.32.2-1.1", "amd64", 'e'), pkg("k2s-common", "1.0-1", "all", 'b'), pkg("cri-o", "1.32.0-1", "all", 'f'),
		pkg("rebuilt", "2.0-1", "all", '9'),
	}}
	return base, target
}

// TestMake: K2s's lists (New-K2sDeltaPackage.ps1, the Debian delta: sorted,
// added as name=version, removed as names, upgraded as "name old new"),
// expected-k8s-version without the epoch or Debian revision and without a
// newline, only added and upgraded .debs shipped (a rebuild with the same
// version is no change, as in K2s), both JSON files with a byte order
// mark.
func TestMake(t *testing.T) {
	base, target := manifests()
	d, err := debiandelta.Make(debiandelta.Options{Base: base, Target: target, BasePackage: "a.zip", TargetPackage: "b.zip",
		Images: []debiandelta.Image{{File: "registry.k8s.io-pause-3.10.tar", Digest: pkgzip.Digest{SHA256: strings.Repeat("1", 64), Size: 3}}},
		Date:   time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	var names []string
	for _, f := range d.Files {
		files[f.Name] = string(f.Data)
		names = append(names, f.Name)
	}
	want := map[string]string{
		"packages.added":       "cri-o=1.32.0-1\n",
		"packages.removed":     "flannel-legacy\n",
		"packages.upgraded":    "kubelet 1.31.4-1 1:1.32.2-1.1\n",
		"expected-k8s-version": "1.32.2",
	}
	for n, w := range want {
		if files[n] != w {
			t.Errorf("%s = %q, want %q", n, files[n], w)
		}
	}
	if got := strings.Join(names, " "); got != "apply-debian-delta.sh debian-delta-manifest.json expected-k8s-version packages.added packages.removed packages.upgraded packages/download-manifest.json verify-debian-delta.sh" {
		t.Errorf("files: %s", got)
	}
	if len(d.Debs) != 2 || d.Debs[0].File != "cri-o_1.32.0-1_all.deb" || d.Debs[1].Entry != "packages/debian12/g/kubelet_1%3a1.32.2-1.1_amd64.deb" {
		t.Errorf("debs %+v", d.Debs)
	}
	if strings.Join(d.Offline, " ") != "cri-o=1.32.0-1 kubelet=1:1.32.2-1.1" || d.Downloaded[0] != "debian-delta/packages/cri-o_1.32.0-1_all.deb" {
		t.Errorf("offline %v %v", d.Offline, d.Downloaded)
	}
	for _, n := range []string{"debian-delta-manifest.json", "packages/download-manifest.json"} {
		if !strings.HasPrefix(files[n], "\uFEFF{\n") {
			t.Errorf("%s has no byte order mark: %q", n, files[n][:8])
		}
	}
	if !strings.Contains(files["debian-delta-manifest.json"], `"UpgradedCount": 1,`) || !strings.Contains(files["debian-delta-manifest.json"], `"SourceVhdxOld": "a.zip"`) {
		t.Errorf("manifest:\n%s", files["debian-delta-manifest.json"])
	}
	// The scripts carry the sets and sums they check.
	for _, want := range []string{"\nkubelet=1.31.4-1\n", "\nkubelet=1:1.32.2-1.1\n", "purge=' flannel-legacy'", "k8s_version='1.32.2'",
		strings.Repeat("1", 64) + "  registry.k8s.io-pause-3.10.tar", strings.Repeat("f", 64) + "  cri-o_1.32.0-1_all.deb"} {
		if !strings.Contains(files["apply-debian-delta.sh"], want) {
			t.Errorf("apply-debian-delta.sh lacks %q", want)
		}
	}
}

// TestScriptsParse: both scripts parse with dash, Debian's /bin/sh (K2s
// starts the script by its path, so by its #!/bin/sh line), and use no bash.
func TestScriptsParse(t *testing.T) {
	dash := nodepkgtest.NeedTool(t, "dash", "dash")
	base, target := manifests()
	d, err := debiandelta.Make(debiandelta.Options{Base: base, Target: target})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, f := range d.Files {
		if !strings.HasSuffix(f.Name, ".sh") {
			continue
		}
		p := filepath.Join(dir, f.Name)
		if err := os.WriteFile(p, f.Data, 0o755); err != nil {
			t.Fatal(err)
		}
		nodepkgtest.CheckPOSIXScript(t, f.Name, f.Data)
		if !f.Exec {
			t.Errorf("%s is not executable", f.Name)
		}
		// --help prints the usage, exit 2.
		out, err := exec.Command(dash, p, "--help").CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "Usage: "+f.Name) {
			t.Errorf("%s --help: %v\n%s", f.Name, err, out)
		}
	}
}

// TestMakeRefuses: a value that could change what a script does, a flat
// file name two packages share, and a kubelet whose version names no
// Kubernetes version are refused.
func TestMakeRefuses(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(b, t *nodepkg.Manifest)
		want string
	}{
		{"quote in a version", func(_, t *nodepkg.Manifest) { t.Packages[2].Version = "1.0'; rm -rf /'" }, "is not a Debian version"},
		{"name", func(b, _ *nodepkg.Manifest) { b.Packages[0].Package = "Kubelet" }, "is not a Debian package name"},
		{"same flat name", func(_, t *nodepkg.Manifest) {
			t.Packages = append(t.Packages, pkg("cri-o", "1.32.0-1", "all", '8'))
			t.Packages[4].Package, t.Packages[4].Path = "cri-o-two", "h/cri-o_1.32.0-1_all.deb"
		}, "both ship as cri-o_1.32.0-1_all.deb"},
		{"kubelet version", func(_, t *nodepkg.Manifest) { t.Packages[0].Version = "latest" }, "does not start with the Kubernetes version"},
		{"two OS", func(_, t *nodepkg.Manifest) { t.OS = "debian13" }, "two OS targets"},
	} {
		t.Run(c.name, func(t *testing.T) {
			base, target := manifests()
			c.edit(base, target)
			if _, err := debiandelta.Make(debiandelta.Options{Base: base, Target: target}); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want %q", err, c.want)
			}
		})
	}
	base, target := manifests()
	if _, err := debiandelta.Make(debiandelta.Options{Base: base, Target: target, Images: []debiandelta.Image{{File: "a b.tar", Digest: pkgzip.Digest{SHA256: strings.Repeat("1", 64)}}}}); err == nil {
		t.Error("an image file name with a space was accepted")
	}
}
