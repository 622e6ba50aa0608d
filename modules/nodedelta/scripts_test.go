package nodedelta_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relcue/release/modules/nodepkg/nodepkgtest"
)

// The scripts must parse with dash, Debian's /bin/sh, which has no
// bash extensions.
func TestScriptsParse(t *testing.T) {
	for _, s := range []string{"scripts/verify-node-delta.sh", "scripts/apply-node-delta.sh"} {
		nodepkgtest.CheckPOSIXScript(t, s, mustRead(t, s))
	}
}

// run runs a script of an extracted delta with dash and returns its exit
// code, stdout and stderr.
func run(t *testing.T, dir, script string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command("dash", append([]string{filepath.Join(dir, script)}, args...)...)
	cmd.Dir = t.TempDir() // the scripts find their files without help
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, out.String(), errb.String()
}

func TestVerifyFiles(t *testing.T) {
	out := filepath.Join(t.TempDir(), "d.zip")
	buildDelta(t, "1.4.0", "1.5.0", out, 2)
	f := nodes(t)
	deb := "packages/debian12/kubernetes/relcue-kubelet_1.31.6-1_" + f.arch + ".deb"

	dir := extract(t, out)
	if code, stdout, stderr := run(t, dir, "verify-node-delta.sh", "--files-only"); code != 0 || !strings.Contains(stdout, "10 files match SHA256SUMS") {
		t.Errorf("intact delta: exit %d\n%s%s", code, stdout, stderr)
	}

	cases := []struct {
		name   string
		mutate func(dir string)
		want   []string
	}{
		{"tampered deb", func(d string) {
			p := filepath.Join(d, deb)
			b, _ := os.ReadFile(p)
			b[len(b)/2] ^= 1
			os.WriteFile(p, b, 0o644)
		}, []string{deb + " has SHA-256 ", "the file was modified or is corrupt", "do not verify"}},
		{"tampered list", func(d string) {
			os.WriteFile(filepath.Join(d, "packages.target"), []byte("relcue-common=1.0-1\n"), 0o644)
		}, []string{"packages.target has SHA-256"}},
		{"missing image", func(d string) {
			os.Remove(filepath.Join(d, "images/registry.k8s.io_pause__3.10.tar"))
		}, []string{"images/registry.k8s.io_pause__3.10.tar is missing; extract the whole node delta zip again"}},
		{"bad sums", func(d string) {
			os.WriteFile(filepath.Join(d, "SHA256SUMS"), []byte("xyz  packages.base\n"), 0o644)
		}, []string{"SHA256SUMS has a malformed line: xyz  packages.base"}},
		{"escaping path", func(d string) {
			os.WriteFile(filepath.Join(d, "SHA256SUMS"), []byte(strings.Repeat("0", 64)+"  ../etc/passwd\n"), 0o644)
		}, []string{"malformed line"}},
		{"no sums", func(d string) { os.Remove(filepath.Join(d, "SHA256SUMS")) }, []string{"SHA256SUMS is missing from"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := extract(t, out)
			c.mutate(d)
			code, stdout, stderr := run(t, d, "verify-node-delta.sh", "--files-only")
			if code != 1 {
				t.Errorf("exit %d, want 1\n%s%s", code, stdout, stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr does not contain %q:\n%s", w, stderr)
				}
			}
		})
	}

	if code, _, stderr := run(t, dir, "verify-node-delta.sh", "--bogus"); code != 2 || !strings.Contains(stderr, "unknown argument: --bogus") || !strings.Contains(stderr, "Usage: verify-node-delta.sh") {
		t.Errorf("unknown argument: exit %d\n%s", code, stderr)
	}
	if code, _, stderr := run(t, dir, "apply-node-delta.sh", "--bogus"); code != 2 || !strings.Contains(stderr, "Usage: apply-node-delta.sh") {
		t.Errorf("apply unknown argument: exit %d\n%s", code, stderr)
	}
}
