package nodedelta_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/relcue/release/modules/nodedelta"
	"github.com/relcue/release/modules/nodepkg/nodepkgtest"
)

// The real install test: a minimal Debian bookworm made with debootstrap,
// release 1.4.0's packages installed with dpkg, and the 1.4.0 -> 1.5.0
// node delta verified and applied by its own scripts inside the chroot.
//
// debootstrap downloads the base system once and keeps it as a tarball in
// $RELEASE_TEST_CACHE (default ~/.cache/release-test); later runs only
// unpack it. Set RELEASE_TEST_DEBIAN_MIRROR to use another mirror. Nothing
// is mounted into the chroot.

func TestInstallInChroot(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the real install test (debootstrap chroot, about half a minute)")
	}
	if runtime.GOOS != "linux" {
		t.Skip("the install test needs a Linux chroot")
	}
	start := time.Now()
	f := nodes(t)
	c := nodepkgtest.NewChroot(t)
	root := c.Root
	t.Logf("chroot ready in %s", time.Since(start).Round(time.Millisecond))
	phase := time.Now()

	// Release 1.4.0 as a node has it: its node package's .debs installed.
	extractTo(t, f.nodes["1.4.0"], filepath.Join(root, "node-1.4.0"))
	var debs []string
	filepath.WalkDir(filepath.Join(root, "node-1.4.0"), func(p string, e os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".deb") {
			debs = append(debs, strings.TrimPrefix(p, root))
		}
		return nil
	})
	if len(debs) != 3 {
		t.Fatalf("node package 1.4.0 has %d .debs, want 3", len(debs))
	}
	c.Must(append([]string{"dpkg", "-i"}, debs...)...)
	base := map[string]string{"relcue-common": "1.0-1", "relcue-flannel": "0.25.0-1", "relcue-kubelet": "1.31.4-1"}
	assertInstalled(t, c, base)

	// The good delta, a tampered copy and a delta for another base.
	dir := t.TempDir()
	good := filepath.Join(dir, "good.zip")
	buildDelta(t, "1.4.0", "1.5.0", good, 2)
	wrong := filepath.Join(dir, "wrong.zip")
	buildDelta(t, "1.5.0", "1.6.0", wrong, 2)
	extractTo(t, good, filepath.Join(root, "delta"))
	extractTo(t, good, filepath.Join(root, "tampered"))
	extractTo(t, wrong, filepath.Join(root, "wrong"))
	kubeletDeb := "packages/debian12/kubernetes/relcue-kubelet_1.31.6-1_" + f.arch + ".deb"
	flip(t, filepath.Join(root, "tampered", kubeletDeb))
	status := c.Status
	before := status()

	// Refusals: nothing may change.
	refused := []struct {
		name string
		args []string
		want []string
	}{
		{"tampered verify", []string{"sh", "/tampered/verify-node-delta.sh"},
			[]string{kubeletDeb + " has SHA-256", "the file was modified or is corrupt", "do not verify"}},
		{"tampered apply", []string{"sh", "/tampered/apply-node-delta.sh", "--skip-images"},
			[]string{kubeletDeb + " has SHA-256", "verification failed (see above); nothing was changed"}},
		{"wrong base verify", []string{"sh", "/wrong/verify-node-delta.sh"},
			[]string{"package relcue-kubelet 1.31.4-1 is installed; the delta's base 1.5.0 has 1.31.6-1 (neither the version of 1.5.0 nor of 1.6.0)",
				"package relcue-crio is not installed; the delta's base 1.5.0 has 1.32.0-1", "neither the base set (1.5.0) nor the target set (1.6.0)", "it was made for another release"}},
		{"wrong base apply", []string{"sh", "/wrong/apply-node-delta.sh", "--skip-images"},
			[]string{"neither the base set (1.5.0) nor the target set (1.6.0)", "nothing was changed"}},
		{"no image tool", []string{"sh", "/delta/apply-node-delta.sh"},
			[]string{"2 image(s) to import but none of buildah, podman or ctr is installed", "--skip-images", "nothing was changed"}},
	}
	for _, rc := range refused {
		code, stdout, stderr := c.Run(rc.args...)
		t.Logf("%s (exit %d):\n%s", rc.name, code, stderr)
		if code != 1 {
			t.Errorf("%s: exit %d, want 1\nstdout:\n%s\nstderr:\n%s", rc.name, code, stdout, stderr)
		}
		for _, w := range rc.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%s: stderr lacks %q:\n%s", rc.name, w, stderr)
			}
		}
		if !bytes.Equal(status(), before) {
			t.Fatalf("%s changed the dpkg status", rc.name)
		}
	}
	assertInstalled(t, c, base)
	t.Logf("refusals checked in %s", time.Since(phase).Round(time.Millisecond))
	phase = time.Now()

	// Verify and apply for real.
	stdout := c.Must("sh", "/delta/verify-node-delta.sh")
	if !strings.Contains(stdout, "installed packages are the base set (1.4.0): the delta can be applied") {
		t.Errorf("verify:\n%s", stdout)
	}
	stdout = c.Must("sh", "/delta/apply-node-delta.sh", "--skip-images")
	t.Logf("apply-node-delta.sh --skip-images:\n%s", stdout)
	for _, w := range []string{"purging relcue-flannel", "installing 2 package(s)", "not importing 2 image(s) (--skip-images)", "done: the node has the packages of the target release"} {
		if !strings.Contains(stdout, w) {
			t.Errorf("apply output lacks %q:\n%s", w, stdout)
		}
	}
	target := map[string]string{"relcue-common": "1.0-1", "relcue-crio": "1.32.0-1", "relcue-kubelet": "1.31.6-1"}
	assertInstalled(t, c, target)
	for p, want := range map[string]string{
		"opt/relcue/kubelet/VERSION":  "1.31.6-1\n",
		"etc/relcue/kubelet.conf":     "# kubelet 1.31.6-1\n", // unmodified conffile: upgraded
		"var/lib/relcue-crio/state":   "configured\n",         // postinst ran
		"opt/relcue/common/README":    "shared files\n",
		"etc/relcue/flannel.conf":     "", // purged with its conffile
		"opt/relcue/flannel/flanneld": "",
	} {
		data, err := os.ReadFile(filepath.Join(root, p))
		switch {
		case want == "" && !errors.Is(err, os.ErrNotExist):
			t.Errorf("/%s is still there after the purge (%v)", p, err)
		case want != "" && string(data) != want:
			t.Errorf("/%s = %q (%v), want %q", p, data, err, want)
		}
	}
	t.Logf("verify and apply in %s", time.Since(phase).Round(time.Millisecond))

	// Applied already: verify says so, apply changes nothing.
	applied := status()
	if stdout := c.Must("sh", "/delta/verify-node-delta.sh"); !strings.Contains(stdout, "already the target set (1.5.0)") {
		t.Errorf("verify after apply:\n%s", stdout)
	}
	if stdout := c.Must("sh", "/delta/apply-node-delta.sh", "--skip-images"); !strings.Contains(stdout, "already the target set; not installing anything") {
		t.Errorf("second apply:\n%s", stdout)
	}
	if !bytes.Equal(status(), applied) {
		t.Error("a second apply changed the dpkg status")
	}
	// A purge dpkg would refuse (relcue-kubelet and relcue-crio still
	// depend on relcue-common) is caught before anything changes.
	rels := nodepkgtest.Releases(f.arch)
	broken := nodepkgtest.Release{Version: "1.7.0", Images: rels[1].Images}
	for _, d := range rels[1].Debs {
		if d.Name != "relcue-common" {
			broken.Debs = append(broken.Debs, d)
		}
	}
	brokenNode := nodepkgtest.NodePackage(t, f.dir, broken)
	brokenDelta := filepath.Join(dir, "broken.zip")
	if _, err := nodedelta.Build(context.Background(), nodedelta.Options{Base: f.nodes["1.5.0"], Target: brokenNode, Output: brokenDelta}); err != nil {
		t.Fatal(err)
	}
	extractTo(t, brokenDelta, filepath.Join(root, "broken"))
	code, _, stderr := c.Run("sh", "/broken/apply-node-delta.sh", "--skip-images")
	t.Logf("purge refused (exit %d):\n%s", code, stderr)
	if code != 1 || !strings.Contains(stderr, "dependency problems prevent removal of relcue-common") ||
		!strings.Contains(stderr, "dpkg refuses to purge relcue-common (see above); nothing was changed") {
		t.Errorf("apply of a delta whose purge dpkg refuses: exit %d\n%s", code, stderr)
	}
	if !bytes.Equal(status(), applied) {
		t.Error("a refused purge changed the dpkg status")
	}
	assertInstalled(t, c, target)

	// The delta's base is gone now: the node is not 1.4.0 any more.
	if code, _, stderr := c.Run("sh", "/delta/verify-node-delta.sh", "--expect", "base"); code != 1 ||
		!strings.Contains(stderr, "package relcue-flannel is not installed") || !strings.Contains(stderr, "not the base set (1.4.0)") {
		t.Errorf("verify --expect base after apply: exit %d\n%s", code, stderr)
	}
	t.Logf("install test took %s", time.Since(start).Round(time.Millisecond))
}

// assertInstalled checks with dpkg-query that exactly these relcue-*
// packages are installed, at these versions.
func assertInstalled(t *testing.T, c *nodepkgtest.Chroot, want map[string]string) {
	t.Helper()
	got := c.Installed("relcue-common", "relcue-kubelet", "relcue-flannel", "relcue-crio")
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("installed relcue packages: %v\nwant %v", got, want)
	}
}

// flip changes one byte in the middle of a file.
func flip(t *testing.T, p string) {
	t.Helper()
	b := mustRead(t, p)
	b[len(b)/2] ^= 0x20
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
