package nodepkgtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Chroot is a minimal Debian bookworm made with debootstrap, for tests
// that install .debs for real with dpkg. debootstrap downloads the base
// system once and keeps it as a tarball in $RELEASE_TEST_CACHE (default
// ~/.cache/release-test); later runs only unpack it. Set
// RELEASE_TEST_DEBIAN_MIRROR to use another mirror. Nothing is mounted
// into it.
type Chroot struct {
	// Root is the chroot's directory on the host.
	Root string
	t    testing.TB
}

// Suite is the Debian release of the chroot.
const Suite = "bookworm"

const defaultMirror = "http://deb.debian.org/debian"

// NewChroot makes a fresh chroot, removed when the test ends. It needs
// root and debootstrap, and fails the test without them.
func NewChroot(t testing.TB) *Chroot {
	t.Helper()
	debootstrap := NeedTool(t, "debootstrap", "debootstrap")
	NeedTool(t, "chroot", "coreutils")
	if os.Geteuid() != 0 {
		t.Fatal("the install tests run debootstrap and chroot and need root; run the tests as root (CI does), or with -short to skip them")
	}
	tarball := baseTarball(t, debootstrap)
	root, err := os.MkdirTemp("", "release-chroot-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeChroot(t, root) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, debootstrap, "--variant=minbase", "--unpack-tarball="+tarball, Suite, root, mirror())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("debootstrap --unpack-tarball=%s failed: %v\n%s\nDelete the tarball to download it again.", tarball, err, tail(out))
	}
	return &Chroot{Root: root, t: t}
}

func mirror() string {
	if m := os.Getenv("RELEASE_TEST_DEBIAN_MIRROR"); m != "" {
		return m
	}
	return defaultMirror
}

// baseTarball returns the cached debootstrap tarball, making it first if
// needed (a download of about 45 MB).
func baseTarball(t testing.TB, debootstrap string) string {
	t.Helper()
	cache := os.Getenv("RELEASE_TEST_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			t.Fatalf("no RELEASE_TEST_CACHE and no home directory for the debootstrap cache: %v", err)
		}
		cache = filepath.Join(home, ".cache", "release-test")
	}
	arch := HostArch(t)
	tarball := filepath.Join(cache, fmt.Sprintf("debootstrap-%s-minbase-%s.tgz", Suite, arch))
	if st, err := os.Stat(tarball); err == nil && st.Size() > 0 {
		return tarball
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatalf("debootstrap cache: %v", err)
	}
	work, err := os.MkdirTemp("", "release-debootstrap-*")
	if err != nil {
		t.Fatal(err)
	}
	defer removeChroot(t, work)
	tmp := fmt.Sprintf("%s.%d.tmp.tgz", tarball, os.Getpid())
	defer os.Remove(tmp)
	t.Logf("downloading the %s minbase system from %s once into %s", Suite, mirror(), tarball)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, debootstrap, "--variant=minbase", "--arch="+arch, "--make-tarball="+tmp, Suite, work, mirror())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("debootstrap --make-tarball (%s %s from %s) failed: %v\n%s\nCheck the network or set RELEASE_TEST_DEBIAN_MIRROR.", Suite, arch, mirror(), err, tail(out))
	}
	if err := os.Rename(tmp, tarball); err != nil {
		t.Fatal(err)
	}
	return tarball
}

// removeChroot unmounts whatever debootstrap or a test left mounted below
// root (deepest first) and only then deletes the tree: a recursive delete
// through a mounted /proc or bind-mounted /dev would reach the host.
func removeChroot(t testing.TB, root string) {
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
func mountsUnder(t testing.TB, dir string) []string {
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

// Run runs a command in the chroot with a clean environment and returns
// its exit code and output.
func (c *Chroot) Run(args ...string) (int, string, string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "chroot", append([]string{c.Root}, args...)...)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", "HOME=/root", "DEBIAN_FRONTEND=noninteractive"}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return ee.ExitCode(), stdout.String(), stderr.String()
	case err != nil:
		c.t.Fatalf("chroot %s %s: %v", c.Root, strings.Join(args, " "), err)
	}
	return 0, stdout.String(), stderr.String()
}

// Must runs a command in the chroot and fails the test unless it exits 0.
func (c *Chroot) Must(args ...string) string {
	c.t.Helper()
	code, stdout, stderr := c.Run(args...)
	if code != 0 {
		c.t.Fatalf("in the chroot, %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, stdout, stderr)
	}
	return stdout
}

// Installed returns, from dpkg-query, the version of every installed
// package whose name is in names, and fails the test for one of them that
// is neither installed nor gone (half-configured, config-files, ...).
func (c *Chroot) Installed(names ...string) map[string]string {
	c.t.Helper()
	out := c.Must("dpkg-query", "-W", "-f", "${Package} ${Version} ${db:Status-Status}\n")
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !slices.Contains(names, f[0]) {
			continue
		}
		switch {
		case len(f) == 3 && f[2] == "installed":
			got[f[0]] = f[1]
		case f[len(f)-1] != "not-installed":
			c.t.Errorf("package %s is in state %q (want installed or gone)", f[0], line)
		}
	}
	return got
}

// Status is /var/lib/dpkg/status, to tell whether something changed it.
func (c *Chroot) Status() []byte {
	c.t.Helper()
	b, err := os.ReadFile(filepath.Join(c.Root, "var/lib/dpkg/status"))
	if err != nil {
		c.t.Fatal(err)
	}
	return b
}

func tail(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}
