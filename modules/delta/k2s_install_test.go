package delta_test

import (
	"bytes"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relcue/release/modules/delta"
	"github.com/relcue/release/modules/delta/deltatest"
	"github.com/relcue/release/modules/nodepkg/nodepkgtest"
)

// TestK2sDebianDeltaInChroot is the real judge of debian-delta/: a minimal
// Debian bookworm (debootstrap) with release 1.4.0's control-plane packages
// installed by dpkg, and the delta's apply-debian-delta.sh run the way
// K2s's update.module.psm1 runs it in the control-plane VM
// (Invoke-CommandInMasterVM, update.module.psm1:2066-2115 at eaa769c): only
// the script (with CRs stripped), packages/ and the Linux image archives
// (as images/) are copied to /tmp/k2s-delta-deb, and the script is started
// by its path, without arguments, from the login directory, with nohup,
// its exit code written to a file. The root must end at exactly 1.5.0's
// package set; verify-debian-delta.sh must refuse a root that is at
// neither set, and the apply a tampered .deb, changing nothing.
func TestK2sDebianDeltaInChroot(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the real install test (debootstrap chroot, about half a minute)")
	}
	if runtime.GOOS != "linux" {
		t.Skip("the install test needs a Linux chroot")
	}
	start := time.Now()
	f := newK2sFixture(t)
	c := nodepkgtest.NewChroot(t)
	t.Logf("delta and chroot ready in %s", time.Since(start).Round(time.Millisecond))
	names := []string{"kubelet", "kubeadm", "k2s-common", "flannel-legacy", "cri-o"}
	base := map[string]string{"kubelet": "1.31.4-1", "kubeadm": "1.31.4-1", "k2s-common": "1.0-1", "flannel-legacy": "0.22.0-1"}
	target := map[string]string{"kubelet": "1.32.2-1", "kubeadm": "1.32.2-1", "k2s-common": "1.0-1", "cri-o": "1.32.0-1"}

	// The whole delta, extracted in the root, for verify-debian-delta.sh.
	deltatest.Extract(t, f.out, filepath.Join(c.Root, "delta"))
	code, _, stderr := c.Run("/delta/debian-delta/verify-debian-delta.sh")
	if code != 1 || !strings.Contains(stderr, "package kubelet is not installed; the delta's base 1.4.0 has 1.31.4-1") ||
		!strings.Contains(stderr, "neither those of 1.4.0 (this delta's base) nor those of 1.5.0") {
		t.Errorf("verify on a root without the base packages: exit %d\n%s", code, stderr)
	}

	// The control plane at 1.4.0.
	deltatest.Extract(t, f.baseNode, filepath.Join(c.Root, "node-1.4.0"))
	var debs []string
	filepath.WalkDir(filepath.Join(c.Root, "node-1.4.0"), func(p string, e os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".deb") {
			debs = append(debs, strings.TrimPrefix(p, c.Root))
		}
		return nil
	})
	c.Must(append([]string{"dpkg", "-i"}, debs...)...)
	if got := c.Installed(names...); !maps.Equal(got, base) {
		t.Fatalf("base installed: %v", got)
	}
	if out := c.Must("/delta/debian-delta/verify-debian-delta.sh"); !strings.Contains(out, "installed packages are those of 1.4.0: the delta can be applied") {
		t.Errorf("verify on the base:\n%s", out)
	}

	// A buildah that records what it is asked to pull: the images' format
	// is judged by the real buildah (TestK2sImageDeltaBuildah); here, that
	// the script asks for every archive K2s copied.
	writeExec(t, filepath.Join(c.Root, "usr/local/bin/buildah"), "#!/bin/sh\n[ -f \"${2#oci-archive:}\" ] || exit 3\necho \"$@\" >>/buildah.log\n")

	// What K2s copies into the VM, and how it starts the script.
	copyK2sStyle := func(dir string) {
		remote := filepath.Join(c.Root, dir)
		if err := os.MkdirAll(filepath.Join(remote, "images"), 0o755); err != nil {
			t.Fatal(err)
		}
		extracted := filepath.Join(c.Root, "delta")
		copyFile(t, filepath.Join(extracted, "debian-delta/apply-debian-delta.sh"), filepath.Join(remote, "apply-debian-delta.sh"))
		copyTree(t, filepath.Join(extracted, "debian-delta/packages"), filepath.Join(remote, "packages"))
		copyTree(t, filepath.Join(extracted, "image-delta/linux/images"), filepath.Join(remote, "images"))
		c.Must("sed", "-i", `s/\r$//`, "/"+dir+"/apply-debian-delta.sh")
		c.Must("chmod", "+x", "/"+dir+"/apply-debian-delta.sh")
	}
	runK2sStyle := func(dir string) (int, string) {
		c.Run("sh", "-c", "cd /root && nohup /"+dir+"/apply-debian-delta.sh >/"+dir+"/deb-delta.log 2>&1 </dev/null; echo $? >/"+dir+"/deb-delta.exit")
		exit := strings.TrimSpace(string(mustReadFile(t, filepath.Join(c.Root, dir, "deb-delta.exit"))))
		log := string(mustReadFile(t, filepath.Join(c.Root, dir, "deb-delta.log")))
		code := 0
		if exit != "0" {
			code = 1
			if exit != "1" {
				t.Errorf("exit code %q", exit)
			}
		}
		return code, log
	}

	// A tampered .deb: refused, nothing changed.
	before := c.Status()
	copyK2sStyle("tmp/tampered")
	kubeletDeb := filepath.Join(c.Root, "tmp/tampered/packages/kubelet_1.32.2-1_"+f.arch+".deb")
	data := mustReadFile(t, kubeletDeb)
	data[len(data)/2] ^= 0x20
	if err := os.WriteFile(kubeletDeb, data, 0o644); err != nil {
		t.Fatal(err)
	}
	code, log := runK2sStyle("tmp/tampered")
	if code != 1 || !strings.Contains(log, "kubelet_1.32.2-1_"+f.arch+".deb has SHA-256") || !strings.Contains(log, "nothing was changed") {
		t.Errorf("apply with a tampered .deb: exit %d\n%s", code, log)
	}
	if !bytes.Equal(c.Status(), before) {
		t.Fatal("a refused apply changed the dpkg status")
	}

	// The real apply, as K2s runs it.
	copyK2sStyle("tmp/k2s-delta-deb")
	code, log = runK2sStyle("tmp/k2s-delta-deb")
	t.Logf("apply-debian-delta.sh, as K2s runs it:\n%s", log)
	if code != 0 {
		t.Fatalf("apply-debian-delta.sh exited %d", code)
	}
	for _, want := range []string{"purging flannel-legacy", "installing 3 package(s)",
		"Kubernetes goes to 1.32.2; no kubeadm control plane here (no /etc/kubernetes/admin.conf), so no kubeadm upgrade apply",
		"done: the control plane has the Debian packages of 1.5.0"} {
		if !strings.Contains(log, want) {
			t.Errorf("the log lacks %q", want)
		}
	}
	if got := c.Installed(names...); !maps.Equal(got, target) {
		t.Errorf("after the apply: %v\nwant %v", got, target)
	}
	for p, want := range map[string]string{
		"opt/k2s/kubelet/VERSION": "1.32.2-1\n", "var/lib/k2s-crio/state": "configured\n",
		"etc/k2s/flannel.conf": "", // purged with its conffile
	} {
		got, err := os.ReadFile(filepath.Join(c.Root, p))
		if (want == "") != os.IsNotExist(err) || (want != "" && string(got) != want) {
			t.Errorf("/%s = %q (%v), want %q", p, got, err, want)
		}
	}
	pulled := strings.Fields(string(mustReadFile(t, filepath.Join(c.Root, "buildah.log"))))
	wantPulled := []string{"pull", "oci-archive:/tmp/k2s-delta-deb/images/ghcr.io-example-k2s-tools-latest.tar",
		"pull", "oci-archive:/tmp/k2s-delta-deb/images/registry.k8s.io-pause-3.10.tar"}
	if !slices.Equal(pulled, wantPulled) {
		t.Errorf("buildah was asked for %v\nwant %v", pulled, wantPulled)
	}
	if out := c.Must("/delta/debian-delta/verify-debian-delta.sh", "--expect", "target"); !strings.Contains(out, "already those of 1.5.0") {
		t.Errorf("verify after the apply:\n%s", out)
	}
	if code, _, stderr := c.Run("/delta/debian-delta/verify-debian-delta.sh", "--expect", "base"); code != 1 || !strings.Contains(stderr, "not the Debian packages of 1.4.0") {
		t.Errorf("verify --expect base after the apply: exit %d\n%s", code, stderr)
	}

	// On a kubeadm control plane, the apply upgrades it with K2s's flags
	// (its apply-debian-delta.sh); run again, nothing else changes.
	applied := c.Status()
	writeExec(t, filepath.Join(c.Root, "etc/kubernetes/admin.conf"), "apiVersion: v1\nkind: Config\n")
	writeExec(t, filepath.Join(c.Root, "usr/local/bin/kubeadm"), "#!/bin/sh\necho \"$@\" >/kubeadm.log\n")
	code, log = runK2sStyle("tmp/k2s-delta-deb")
	if code != 0 || !strings.Contains(log, "the packages of 1.5.0 are installed already; not installing anything") {
		t.Errorf("second apply: exit %d\n%s", code, log)
	}
	if got := strings.TrimSpace(string(mustReadFile(t, filepath.Join(c.Root, "kubeadm.log")))); got != "upgrade apply v1.32.2 --yes --certificate-renewal=false --etcd-upgrade=false --ignore-preflight-errors=CoreDNSUnsupportedPlugins,ImagePull" {
		t.Errorf("kubeadm was run with %q", got)
	}
	if !bytes.Equal(c.Status(), applied) {
		t.Error("a second apply changed the dpkg status")
	}
	t.Logf("install test took %s", time.Since(start).Round(time.Millisecond))
}

func mustReadFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeExec(t *testing.T, p, content string) {
	t.Helper()
	writeFile(t, p, []byte(content))
	if err := os.Chmod(p, 0o755); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	writeFile(t, dst, mustReadFile(t, src))
}

// TestK2sImageDeltaBuildah is the real judge of image-delta/linux/images:
// Debian's buildah pulls each archive the way K2s's apply and
// apply-debian-delta.sh do (buildah pull oci-archive:<file>,
// update.module.psm1:1519-1558), into a vfs store of its own, and the
// image is then known by the reference the manifest's ContainerImageDiff
// names.
func TestK2sImageDeltaBuildah(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("buildah runs on Linux")
	}
	buildah := nodepkgtest.NeedTool(t, "buildah", "buildah")
	if os.Geteuid() != 0 {
		t.Fatal("buildah keeps its vfs store as root here; run the tests as root (CI does)")
	}
	f := newK2sFixture(t)
	dir := t.TempDir()
	deltatest.Extract(t, f.out, filepath.Join(dir, "delta"))
	store := []string{"--storage-driver", "vfs", "--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "runroot")}
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(buildah, append(slices.Clone(store), args...)...)
		cmd.Env = append(os.Environ(), "BUILDAH_ISOLATION=chroot", "TMPDIR="+dir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("buildah %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	var want []string
	for _, img := range append(slices.Clone(f.manifest.ContainerImageDiff.AddedImages), f.manifest.ContainerImageDiff.ChangedImages...) {
		if img.Platform != "linux" {
			continue
		}
		tar := filepath.Join(dir, "delta", "image-delta/linux/images", delta.LinuxImageFile(img.FullName))
		run("pull", "--quiet", "oci-archive:"+tar)
		want = append(want, img.FullName)
	}
	got := strings.Split(strings.TrimSpace(run("images", "--format", "{{.Name}}:{{.Tag}}")), "\n")
	slices.Sort(got)
	slices.Sort(want)
	if len(want) != 2 || !slices.Equal(got, want) {
		t.Errorf("buildah knows %v after pulling the image delta, want %v", got, want)
	}
}
