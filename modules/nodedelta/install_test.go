package nodedelta_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
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

const (
	suite         = "bookworm"
	defaultMirror = "http://deb.debian.org/debian"
)

func TestInstallInChroot(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the real install test (debootstrap chroot, about half a minute)")
	}
	if runtime.GOOS != "linux" {
		t.Skip("the install test needs a Linux chroot")
	}
	debootstrap := nodepkgtest.NeedTool(t, "debootstrap", "debootstrap")
	nodepkgtest.NeedTool(t, "chroot", "coreutils")
	if os.Geteuid() != 0 {
		t.Fatal("the install test runs debootstrap and chroot and needs root; run the tests as root (CI does), or with -short to skip it")
	}
	start := time.Now()
	f := nodes(t)
	tarball := baseTarball(t, debootstrap)
	root := unpackChroot(t, debootstrap, tarball)
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
	mustChroot(t, root, append([]string{"dpkg", "-i"}, debs...)...)
	base := map[string]string{"relcue-common": "1.0-1", "relcue-flannel": "0.25.0-1", "relcue-kubelet": "1.31.4-1"}
	assertInstalled(t, root, base)

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
	status := func() []byte { return mustRead(t, filepath.Join(root, "var/lib/dpkg/status")) }
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
	for _, c := range refused {
		code, stdout, stderr := inChroot(t, root, c.args...)
		t.Logf("%s (exit %d):\n%s", c.name, code, stderr)
		if code != 1 {
			t.Errorf("%s: exit %d, want 1\nstdout:\n%s\nstderr:\n%s", c.name, code, stdout, stderr)
		}
		for _, w := range c.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%s: stderr lacks %q:\n%s", c.name, w, stderr)
			}
		}
		if !bytes.Equal(status(), before) {
			t.Fatalf("%s changed the dpkg status", c.name)
		}
	}
	assertInstalled(t, root, base)
	t.Logf("refusals checked in %s", time.Since(phase).Round(time.Millisecond))
	phase = time.Now()

	// Verify and apply for real.
	stdout := mustChroot(t, root, "sh", "/delta/verify-node-delta.sh")
	if !strings.Contains(stdout, "installed packages are the base set (1.4.0): the delta can be applied") {
		t.Errorf("verify:\n%s", stdout)
	}
	stdout = mustChroot(t, root, "sh", "/delta/apply-node-delta.sh", "--skip-images")
	t.Logf("apply-node-delta.sh --skip-images:\n%s", stdout)
	for _, w := range []string{"purging relcue-flannel", "installing 2 package(s)", "not importing 2 image(s) (--skip-images)", "done: the node has the packages of the target release"} {
		if !strings.Contains(stdout, w) {
			t.Errorf("apply output lacks %q:\n%s", w, stdout)
		}
	}
	target := map[string]string{"relcue-common": "1.0-1", "relcue-crio": "1.32.0-1", "relcue-kubelet": "1.31.6-1"}
	assertInstalled(t, root, target)
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
	if stdout := mustChroot(t, root, "sh", "/delta/verify-node-delta.sh"); !strings.Contains(stdout, "already the target set (1.5.0)") {
		t.Errorf("verify after apply:\n%s", stdout)
	}
	if stdout := mustChroot(t, root, "sh", "/delta/apply-node-delta.sh", "--skip-images"); !strings.Contains(stdout, "already the target set; not installing anything") {
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
	code, _, stderr := inChroot(t, root, "sh", "/broken/apply-node-delta.sh", "--skip-images")
	t.Logf("purge refused (exit %d):\n%s", code, stderr)
	if code != 1 || !strings.Contains(stderr, "dependency problems prevent removal of relcue-common") ||
		!strings.Contains(stderr, "dpkg refuses to purge relcue-common (see above); nothing was changed") {
		t.Errorf("apply of a delta whose purge dpkg refuses: exit %d\n%s", code, stderr)
	}
	if !bytes.Equal(status(), applied) {
		t.Error("a refused purge changed the dpkg status")
	}
	assertInstalled(t, root, target)

	// The delta's base is gone now: the node is not 1.4.0 any more.
	if code, _, stderr := inChroot(t, root, "sh", "/delta/verify-node-delta.sh", "--expect", "base"); code != 1 ||
		!strings.Contains(stderr, "package relcue-flannel is not installed") || !strings.Contains(stderr, "not the base set (1.4.0)") {
		t.Errorf("verify --expect base after apply: exit %d\n%s", code, stderr)
	}
	t.Logf("install test took %s", time.Since(start).Round(time.Millisecond))
}

// baseTarball returns the cached debootstrap tarball, making it first if
// needed (a download of about 45 MB).
func baseTarball(t *testing.T, debootstrap string) string {
	t.Helper()
	cache := os.Getenv("RELEASE_TEST_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			t.Fatalf("no RELEASE_TEST_CACHE and no home directory for the debootstrap cache: %v", err)
		}
		cache = filepath.Join(home, ".cache", "release-test")
	}
	arch := nodepkgtest.HostArch(t)
	tarball := filepath.Join(cache, fmt.Sprintf("debootstrap-%s-minbase-%s.tgz", suite, arch))
	if st, err := os.Stat(tarball); err == nil && st.Size() > 0 {
		return tarball
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatalf("debootstrap cache: %v", err)
	}
	mirror := os.Getenv("RELEASE_TEST_DEBIAN_MIRROR")
	if mirror == "" {
		mirror = defaultMirror
	}
	work, err := os.MkdirTemp("", "release-debootstrap-*")
	if err != nil {
		t.Fatal(err)
	}
	defer removeChroot(t, work)
	tmp := fmt.Sprintf("%s.%d.tmp.tgz", tarball, os.Getpid())
	defer os.Remove(tmp)
	t.Logf("downloading the %s minbase system from %s once into %s", suite, mirror, tarball)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, debootstrap, "--variant=minbase", "--arch="+arch, "--make-tarball="+tmp, suite, work, mirror)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("debootstrap --make-tarball (%s %s from %s) failed: %v\n%s\nCheck the network or set RELEASE_TEST_DEBIAN_MIRROR.", suite, arch, mirror, err, tail(out))
	}
	if err := os.Rename(tmp, tarball); err != nil {
		t.Fatal(err)
	}
	return tarball
}

// unpackChroot makes a fresh chroot from the tarball and removes it when
// the test ends.
func unpackChroot(t *testing.T, debootstrap, tarball string) string {
	t.Helper()
	root, err := os.MkdirTemp("", "release-chroot-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeChroot(t, root) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	mirror := os.Getenv("RELEASE_TEST_DEBIAN_MIRROR")
	if mirror == "" {
		mirror = defaultMirror
	}
	cmd := exec.CommandContext(ctx, debootstrap, "--variant=minbase", "--unpack-tarball="+tarball, suite, root, mirror)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("debootstrap --unpack-tarball=%s failed: %v\n%s\nDelete the tarball to download it again.", tarball, err, tail(out))
	}
	return root
}

// removeChroot unmounts whatever debootstrap or a test left mounted below
// root (deepest first) and only then deletes the tree: a recursive delete
// through a mounted /proc or bind-mounted /dev would reach the host.
func removeChroot(t *testing.T, root string) {
	t.Helper()
	mounts := mountsUnder(t, root)
	for i := len(mounts) - 1; i >= 0; i-- {
		if out, err := exec.Command("umount", "-l", mounts[i]).CombinedOutput(); err != nil {
			t.Errorf("umount -l %s: %v\n%s", mounts[i], err, out)
		}
	}
	if left := mountsUnder(t, root); len(left) > 0 {
		t.Errorf("not deleting %s: still mounted below it: %s; unmount them and delete it by hand", root, strings.Join(left, ", "))
		return
	}
	if err := os.RemoveAll(root); err != nil {
		t.Errorf("removing the chroot %s: %v", root, err)
	}
}

// mountsUnder lists the mount points at or below dir, sorted (parents
// first), from /proc/self/mountinfo.
func mountsUnder(t *testing.T, dir string) []string {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatalf("cannot check for mounts below %s: %v", dir, err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMount(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	slices.Sort(out)
	return out
}

// unescapeMount decodes the octal escapes (\040 for a space) of mountinfo.
func unescapeMount(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// inChroot runs a command in the chroot with a clean environment.
func inChroot(t *testing.T, root string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "chroot", append([]string{root}, args...)...)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", "HOME=/root", "DEBIAN_FRONTEND=noninteractive"}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return ee.ExitCode(), stdout.String(), stderr.String()
	case err != nil:
		t.Fatalf("chroot %s %s: %v", root, strings.Join(args, " "), err)
	}
	return 0, stdout.String(), stderr.String()
}

func mustChroot(t *testing.T, root string, args ...string) string {
	t.Helper()
	code, stdout, stderr := inChroot(t, root, args...)
	if code != 0 {
		t.Fatalf("in the chroot, %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, stdout, stderr)
	}
	return stdout
}

// assertInstalled checks with dpkg-query that exactly these relcue-*
// packages are installed, at these versions.
func assertInstalled(t *testing.T, root string, want map[string]string) {
	t.Helper()
	out := mustChroot(t, root, "dpkg-query", "-W", "-f", "${Package} ${Version} ${db:Status-Status}\n")
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && strings.HasPrefix(f[0], "relcue-") && f[2] == "installed" {
			got[f[0]] = f[1]
		} else if len(f) >= 2 && strings.HasPrefix(f[0], "relcue-") && f[len(f)-1] != "not-installed" {
			t.Errorf("package %s is in state %q (want installed or gone)", f[0], line)
		}
	}
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

func tail(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}
