package apply

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relcue/release/modules/delta"
	"github.com/relcue/release/modules/delta/deltatest"
	"github.com/relcue/release/modules/pkgzip"
)

// A delta made under the posix policy can hold names a Windows
// installation cannot; apply refuses it under the default policy before
// touching anything, and applies it when told the installation is not on
// Windows.
func TestApplyRefusesNamesWindowsCannotHold(t *testing.T) {
	for i, c := range []struct{ path, want string }{
		{"lib/CON", `package path "lib/CON" has "CON", which Windows opens as the device CON`},
		{"AUX.psm1", `has "AUX.psm1", which Windows opens as the device AUX`},
		{"lib/trail.", `has "trail.", which ends with a dot that Windows strips`},
		{"lib/trail /x", `has "trail ", which ends with a space that Windows strips`},
		{"lib/a|b", `has '|' in "a|b"; Windows reserves the characters <>:"|?*`},
		{"lib/a\x7fb\x02", `has '\x02', a control character`},
	} {
		t.Run(c.path, func(t *testing.T) {
			dir := t.TempDir()
			s := deltatest.Generate(uint64(10 + i))
			s.Target[c.path] = deltatest.File{Data: []byte("new")}
			baseZip, targetZip := filepath.Join(dir, "base.zip"), filepath.Join(dir, "target.zip")
			deltatest.WritePackage(t, baseZip, s.Base, true)
			deltatest.WritePackage(t, targetZip, s.Target, true)
			deltaZip := filepath.Join(dir, "d.zip")
			if _, err := delta.Build(context.Background(), delta.Options{Base: baseZip, Target: targetZip, Output: deltaZip,
				WholeDirectories: s.Whole, Skip: s.Skip, Workers: 2, Paths: pkgzip.PathsPOSIX}); err != nil {
				t.Fatal(err)
			}
			install := filepath.Join(dir, "install")
			deltatest.Extract(t, baseZip, install)
			before := deltatest.ReadTree(t, install)
			_, err := Apply(context.Background(), deltaZip, install, Options{Workers: 2})
			for _, want := range []string{"apply d.zip to " + install + ": delta-manifest.json: ", c.want,
				"a Windows installation cannot hold it: rename it, or pass --paths posix if this installation is not on Windows; nothing was changed"} {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("error %v, want it to contain %q", err, want)
				}
			}
			if d := deltatest.Diff(before, deltatest.ReadTree(t, install)); d != "" {
				t.Fatalf("the refused apply changed the installation:\n%s", d)
			}
			if lexists(filepath.Join(install, delta.ApplyStateDir)) || lexists(filepath.Join(install, delta.ApplyLockFile)) {
				t.Fatal("the refused apply left its state or lock behind")
			}
			if _, err := Apply(context.Background(), deltaZip, install, Options{Workers: 2, Paths: pkgzip.PathsPOSIX}); err != nil {
				t.Fatalf("posix: %v", err)
			}
			if got, err := os.ReadFile(filepath.Join(install, filepath.FromSlash(c.path))); err != nil || string(got) != "new" {
				t.Fatalf("posix: %s holds %q, %v", c.path, got, err)
			}
		})
	}
}

func TestApplyRefusesUnknownPathPolicy(t *testing.T) {
	_, err := Apply(context.Background(), "d.zip", t.TempDir(), Options{Paths: "dos"})
	if err == nil || !strings.Contains(err.Error(), `path policy "dos": want "windows"`) {
		t.Fatalf("error %v", err)
	}
}

// The whole installed path must fit what the system can open: bytes
// under Linux's PATH_MAX, UTF-16 units on Windows with long paths.
func TestCheckPathLength(t *testing.T) {
	seg := strings.Repeat("d", 200)
	deep := func(n int) string { return strings.TrimSuffix(strings.Repeat(seg+"/", n), "/") }
	cases := []struct {
		goos, dir, p string
		want         string
	}{
		{"linux", "/opt/k2s-" + strings.Repeat("i", 91), deep(20), fmt.Sprintf("would be installed as a path of %d bytes, over the 4095 this system can open; install into a shorter directory than /opt/k2s-i", 101+len(deep(20)))},
		{"linux", "/opt/k2s", deep(20), ""},
		{"linux", "/" + strings.Repeat("i", 300), strings.Repeat("日", 1300), "over the 4095"}, // 3900 bytes of 1300 characters
		{"windows", `C:\k2s`, deep(20), ""},
		{"windows", `C:\k2s`, strings.Repeat("日", 1300), ""},
		{"windows", `C:\` + strings.Repeat("i", 32760), "x", "of 32765 UTF-16 units, over the 32759 this system can open"},
	}
	for _, c := range cases {
		err := checkPathLength(c.dir, c.p, c.goos)
		if c.want == "" {
			if err != nil {
				t.Errorf("%s: %d-byte path: %v", c.goos, len(c.p), err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "nothing was changed") {
			t.Errorf("%s: %d-byte path: %v, want it to say %q", c.goos, len(c.p), err, c.want)
		}
	}
}
