package delta_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/relcue/release/internal/glob"
	"github.com/relcue/release/modules/delta"
	"github.com/relcue/release/modules/delta/deltatest"
	"github.com/relcue/release/modules/pkgzip"
)

// packages writes the scenario's base and target packages into dir.
func packages(t *testing.T, dir string, s deltatest.Scenario, withManifest bool) (base, target string) {
	t.Helper()
	base = filepath.Join(dir, "k2s-base.zip")
	target = filepath.Join(dir, "k2s-target.zip")
	deltatest.WritePackage(t, base, s.Base, withManifest)
	deltatest.WritePackage(t, target, s.Target, withManifest)
	return base, target
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// expected computes the diff from the trees directly, independently of the
// implementation under test.
func expected(s deltatest.Scenario) (added, changed, removed, skipped, shipped []string) {
	isSkipped := func(p string) bool {
		for _, r := range s.Skip {
			if glob.MatchPrefix(r, p) {
				return true
			}
		}
		return false
	}
	inWhole := func(p string) bool { return strings.HasPrefix(p, "bin/cni/") }
	for p, f := range s.Target {
		switch {
		case isSkipped(p):
			skipped = append(skipped, p)
		case inWhole(p):
			shipped = append(shipped, p)
		default:
			b, ok := s.Base[p]
			if !ok {
				added = append(added, p)
				shipped = append(shipped, p)
			} else if !bytes.Equal(b.Data, f.Data) || b.Exec != f.Exec {
				changed = append(changed, p)
				shipped = append(shipped, p)
			}
		}
	}
	for p := range s.Base {
		_, inT := s.Target[p]
		switch {
		case isSkipped(p):
			if !inT {
				skipped = append(skipped, p)
			}
		case !inT && !inWhole(p):
			removed = append(removed, p)
		}
	}
	for _, l := range []*[]string{&added, &changed, &removed, &skipped, &shipped} {
		slices.Sort(*l)
		if *l == nil {
			*l = []string{}
		}
	}
	return
}

func TestBuild(t *testing.T) {
	for _, withManifest := range []bool{true, false} {
		t.Run(map[bool]string{true: "package-manifest", false: "hashed"}[withManifest], func(t *testing.T) {
			dir := t.TempDir()
			s := deltatest.Generate(7)
			base, target := packages(t, dir, s, withManifest)
			out := filepath.Join(dir, "out", "deltas", "k2s-delta.zip")
			var progressed int64
			m, err := delta.Build(context.Background(), delta.Options{
				Base: base, Target: target, Output: out,
				WholeDirectories: s.Whole, Skip: s.Skip, Date: deltatest.Date, Workers: 3,
				Progress: func(n int64) { progressed += n },
			})
			if err != nil {
				t.Fatal(err)
			}
			added, changed, removed, skipped, shipped := expected(s)
			for _, c := range []struct {
				name      string
				got, want []string
			}{{"Added", m.Added, added}, {"Changed", m.Changed, changed}, {"Removed", m.Removed, removed}, {"SpecialSkippedFiles", m.SpecialSkippedFiles, skipped}} {
				if !reflect.DeepEqual(c.got, c.want) {
					t.Errorf("%s = %q\nwant %q", c.name, c.got, c.want)
				}
			}
			if m.BaseVersion != "1.4.7" || m.TargetVersion != "1.5.7" || m.BasePackage != "k2s-base.zip" || m.TargetPackage != "k2s-target.zip" {
				t.Errorf("versions/packages = %s %s %s %s", m.BaseVersion, m.TargetVersion, m.BasePackage, m.TargetPackage)
			}
			if m.GeneratedUtc != "2026-03-01T12:00:00Z" {
				t.Errorf("GeneratedUtc = %s, want the build date", m.GeneratedUtc)
			}
			if len(changed) == 0 || len(added) == 0 || len(removed) == 0 {
				t.Fatalf("scenario too small to test anything: %d %d %d", len(added), len(changed), len(removed))
			}
			if withManifest && progressed != 0 {
				// Digests come from the package manifests; only writing
				// the small manifest is reported then.
				if progressed > 1<<20 {
					t.Errorf("progress %d: the packages were hashed although they have manifests", progressed)
				}
			}
			if !withManifest && progressed < int64(len(s.Base["big/payload.bin"].Data)) {
				t.Errorf("progress %d: hashing was not reported", progressed)
			}

			r, err := pkgzip.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			var names []string
			for _, e := range r.Entries {
				names = append(names, e.Name)
			}
			want := append(slices.Clone(shipped), delta.ManifestName)
			if withManifest {
				want = append(want, delta.PackageManifestName)
			}
			slices.Sort(want)
			if !reflect.DeepEqual(names, want) {
				t.Errorf("delta entries = %q\nwant %q", names, want)
			}
			rm, err := delta.ReadManifest(r)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(rm, m) {
				t.Errorf("ReadManifest differs from what Build returned")
			}
			// Every shipped entry has the target's bytes and hash, and was
			// copied raw: same compressed size and CRC as in the target zip.
			tr, err := pkgzip.Open(target)
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			for _, p := range shipped {
				e, te := r.Lookup(p), tr.Lookup(p)
				if e.File.CompressedSize64 != te.File.CompressedSize64 || e.File.CRC32 != te.File.CRC32 || e.File.Method != te.File.Method {
					t.Errorf("%s was not copied raw", p)
				}
				if d := m.Files.Target[p]; d.SHA256 != sum(s.Target[p].Data) || d.Size != int64(len(s.Target[p].Data)) {
					t.Errorf("Files.Target[%s] = %+v", p, d)
				}
				if e.Mode.Perm()&0o100 != 0 != s.Target[p].Exec {
					t.Errorf("%s: exec bit not kept", p)
				}
			}
			// Base hashes for everything apply replaces or removes, including
			// the wholesale directory's old files.
			for p, f := range s.Base {
				_, listed := m.Files.Base[p]
				wantListed := slices.Contains(changed, p) || slices.Contains(removed, p) || strings.HasPrefix(p, "bin/cni/") && !slices.Contains(skipped, p)
				if listed != wantListed {
					t.Errorf("Files.Base has %s: %v, want %v", p, listed, wantListed)
				}
				if listed && m.Files.Base[p].SHA256 != sum(f.Data) {
					t.Errorf("Files.Base[%s] has the wrong hash", p)
				}
			}
			if _, ok := m.Files.Target[delta.PackageManifestName]; ok != withManifest {
				t.Errorf("package-manifest.json shipped: %v, want %v", ok, withManifest)
			}
			if entries, _ := os.ReadDir(filepath.Dir(out)); len(entries) != 1 {
				t.Errorf("output directory has %d entries, want just the delta", len(entries))
			}
		})
	}
}

func TestBuildIsReproducible(t *testing.T) {
	dir := t.TempDir()
	s := deltatest.Generate(11)
	base, target := packages(t, dir, s, true)
	var outs [][]byte
	for i, workers := range []int{1, 4, 4} {
		out := filepath.Join(dir, "d", string(rune('a'+i))+".zip")
		_, err := delta.Build(context.Background(), delta.Options{
			Base: base, Target: target, Output: out,
			// Order and duplicates of the options must not matter.
			WholeDirectories: append([]string{`bin\cni\`}, s.Whole...),
			Skip:             append(slices.Clone(s.Skip[1:]), s.Skip...),
			Date:             deltatest.Date, Workers: workers,
		})
		if err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, data)
	}
	for i := 1; i < len(outs); i++ {
		if !bytes.Equal(outs[0], outs[i]) {
			t.Errorf("build %d differs from build 0", i)
		}
	}
	// A different date must show in the bytes, so the comparison above is
	// not comparing something constant.
	out := filepath.Join(dir, "d", "later.zip")
	if _, err := delta.Build(context.Background(), delta.Options{Base: base, Target: target, Output: out, WholeDirectories: s.Whole, Skip: s.Skip, Date: deltatest.Date.AddDate(0, 0, 1)}); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(out); bytes.Equal(data, outs[0]) {
		t.Errorf("the date does not affect the delta")
	}
}

func TestBuildErrorsLeaveNothing(t *testing.T) {
	dir := t.TempDir()
	s := deltatest.Generate(3)
	base, target := packages(t, dir, s, true)

	noVersion := s.Target.Clone()
	delete(noVersion, "VERSION")
	noVersionZip := filepath.Join(dir, "noversion.zip")
	deltatest.WritePackage(t, noVersionZip, noVersion, false)

	reserved := s.Target.Clone()
	reserved[".release-apply/stage/000001"] = deltatest.File{Data: []byte("x")}
	reservedZip := filepath.Join(dir, "reserved.zip")
	deltatest.WritePackage(t, reservedZip, reserved, false)

	data, err := os.ReadFile(target)
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(dir, "truncated.zip")
	if err := os.WriteFile(truncated, data[:len(data)/2], 0o644); err != nil {
		t.Fatal(err)
	}

	// A package manifest that lies about a file's size.
	lying := filepath.Join(dir, "lying.zip")
	rewriteZip(t, target, lying, func(name string, body []byte) []byte {
		if name == delta.PackageManifestName {
			return bytes.Replace(body, []byte(`"Size": 6`), []byte(`"Size": 7`), 1)
		}
		return body
	})

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()

	cases := []struct {
		name string
		ctx  context.Context
		opts delta.Options
		want string
	}{
		{"missing VERSION", nil, delta.Options{Base: base, Target: noVersionZip}, "has no VERSION file at its root"},
		{"same version", nil, delta.Options{Base: base, Target: base}, "both version 1.4.3"},
		{"truncated", nil, delta.Options{Base: base, Target: truncated}, "not a readable zip"},
		{"missing", nil, delta.Options{Base: filepath.Join(dir, "nope.zip"), Target: target}, "no such file"},
		{"reserved", nil, delta.Options{Base: base, Target: reservedZip}, "entry .release-apply/stage/000001 is reserved"},
		{"lying manifest", nil, delta.Options{Base: base, Target: lying}, "package-manifest.json"},
		{"bad skip", nil, delta.Options{Base: base, Target: target, Skip: []string{"a**"}}, "skip rule"},
		{"bad whole dir", nil, delta.Options{Base: base, Target: target, WholeDirectories: []string{"../x"}}, `".." segment`},
		{"bad level", nil, delta.Options{Base: base, Target: target, Level: 12}, "compression level 12"},
		{"cancelled", cancelled, delta.Options{Base: base, Target: target}, "context canceled"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			outDir := filepath.Join(dir, "out-"+strings.ReplaceAll(c.name, " ", "-"))
			c.opts.Output = filepath.Join(outDir, "sub", "d.zip")
			ctx := c.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			_, err := delta.Build(ctx, c.opts)
			if err == nil {
				t.Fatalf("no error, want %q", c.want)
			}
			t.Log(err)
			if !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "delta ") {
				t.Errorf("error %q, want it to contain %q", err, c.want)
			}
			if _, err := os.Stat(outDir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s was left behind (%v)", outDir, err)
			}
		})
	}
}

// rewriteZip copies src to dst through archive/zip, letting edit change
// entry contents (CRCs are recomputed, so only the content differs).
func rewriteZip(t *testing.T, src, dst string, edit func(name string, body []byte) []byte) {
	t.Helper()
	zr, err := zip.OpenReader(src)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	f, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zw := zip.NewWriter(f)
	for _, e := range zr.File {
		rc, err := e.Open()
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if _, err := buf.ReadFrom(rc); err != nil {
			t.Fatal(err)
		}
		rc.Close()
		h := e.FileHeader
		w, err := zw.CreateHeader(&zip.FileHeader{Name: h.Name, Method: h.Method, Modified: h.Modified, ExternalAttrs: h.ExternalAttrs, CreatorVersion: h.CreatorVersion})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(edit(path.Clean(h.Name), buf.Bytes())); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
}

// A target holding a name a Windows installation cannot hold makes no
// delta (nothing is written) unless the policy is posix; a skipped path is
// not the delta's to refuse.
func TestBuildRefusesNamesWindowsCannotHold(t *testing.T) {
	dir := t.TempDir()
	s := deltatest.Generate(3)
	base, _ := packages(t, dir, s, true)
	for i, c := range []struct{ path, want string }{
		{"lib/CON", `package path "lib/CON" has "CON", which Windows opens as the device CON`},
		{"lib/Com7.dll", `has "Com7.dll", which Windows opens as the device COM7`},
		{"lib/trail.", `has "trail.", which ends with a dot that Windows strips`},
		{"lib/trail. ", `has "trail. ", which ends with a space that Windows strips`},
		{"lib/what?.ps1", `has '?' in "what?.ps1"; Windows reserves the characters <>:"|?*`},
		{"lib/bell\a", `has '\a', a control character`},
	} {
		t.Run(c.path, func(t *testing.T) {
			tree := s.Target.Clone()
			tree[c.path] = deltatest.File{Data: []byte("x")}
			target := filepath.Join(dir, fmt.Sprintf("target-%d.zip", i))
			deltatest.WritePackage(t, target, tree, i%2 == 0)
			out := filepath.Join(dir, fmt.Sprintf("out-%d", i), "d.zip")
			_, err := delta.Build(context.Background(), delta.Options{Base: base, Target: target, Output: out})
			for _, want := range []string{"target package " + target + ": ", c.want, "a Windows installation cannot hold it: rename it"} {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("error %v, want it to contain %q", err, want)
				}
			}
			if h := pkgzip.Hint(err, "do this"); !strings.HasSuffix(h.Error(), "rename it, or do this") {
				t.Errorf("the error is not a Windows *pkgzip.NameError callers can add a way out to: %v", h)
			}
			if _, err := os.Stat(filepath.Dir(out)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s was left behind (%v)", filepath.Dir(out), err)
			}
			m, err := delta.Build(context.Background(), delta.Options{Base: base, Target: target, Output: out, Paths: pkgzip.PathsPOSIX})
			if err != nil || !slices.Contains(m.Added, c.path) {
				t.Fatalf("posix: %v; added %v", err, m)
			}
			skipped := filepath.Join(dir, fmt.Sprintf("skipped-%d.zip", i))
			if _, err := delta.Build(context.Background(), delta.Options{Base: base, Target: target, Output: skipped, Skip: []string{"lib/**"}}); err != nil {
				t.Errorf("with the name skipped: %v", err)
			}
		})
	}
}
