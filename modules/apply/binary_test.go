package apply

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relcue/release/modules/delta"
	"github.com/relcue/release/modules/delta/deltatest"
)

// rebuiltBinaries makes the scenario look like a release of rebuilt
// binaries: a few large files change in small places (what patches are
// for), one changes completely (shipped whole), one small one changes
// below the threshold.
func rebuiltBinaries(seed uint64) func(*deltatest.Scenario) {
	return func(s *deltatest.Scenario) {
		rng := rand.New(rand.NewPCG(seed, 7))
		random := func(n int) []byte {
			b := make([]byte, n)
			for i := range b {
				b[i] = byte(rng.UintN(256))
			}
			return b
		}
		edit := func(b []byte) []byte {
			out := bytes.Clone(b)
			for range 20 {
				i := rng.IntN(len(out) - 64)
				copy(out[i:], random(1+rng.IntN(48)))
			}
			return append(out, random(1000)...)
		}
		for i, n := range []int{100 << 10, 300 << 10, 600<<10 + 12345} {
			p := fmt.Sprintf("bin/kube/bin%d.exe", i)
			base := random(n)
			s.Base[p] = deltatest.File{Data: base, Exec: true}
			s.Target[p] = deltatest.File{Data: edit(base), Exec: true}
		}
		s.Base["bin/kube/replaced.exe"] = deltatest.File{Data: random(200 << 10), Exec: true}
		s.Target["bin/kube/replaced.exe"] = deltatest.File{Data: random(200 << 10), Exec: true}
		small := random(10 << 10)
		s.Base["bin/kube/small.dll"] = deltatest.File{Data: small}
		s.Target["bin/kube/small.dll"] = deltatest.File{Data: edit(small)}
	}
}

func TestBinaryDeltaRoundTrip(t *testing.T) {
	for _, c := range []struct {
		seed         uint64
		withManifest bool
		workers      int
	}{{11, true, 1}, {12, false, 3}, {13, true, 4}} {
		t.Run(fmt.Sprintf("seed%d", c.seed), func(t *testing.T) {
			f := newFixtureMode(t, c.seed, c.withManifest, delta.ModeBinary, rebuiltBinaries(c.seed))
			if f.m.DeltaMode != delta.ModeBinary {
				t.Fatalf("DeltaMode %q", f.m.DeltaMode)
			}
			for i := range 3 {
				p := fmt.Sprintf("bin/kube/bin%d.exe", i)
				pt, ok := f.m.Patches[p]
				if !ok {
					t.Fatalf("%s was not patched; patches: %v", p, f.m.Patches)
				}
				if pt.Patch.Size > f.m.Files.Target[p].Size/10 {
					t.Errorf("%s: patch of %d bytes for a file of %d with a few edits", p, pt.Patch.Size, f.m.Files.Target[p].Size)
				}
				if pt.BaseSHA256 != f.m.Files.Base[p].SHA256 || pt.TargetSHA256 != f.m.Files.Target[p].SHA256 || pt.Algorithm != delta.PatchAlgorithm {
					t.Errorf("%s: %+v", p, pt)
				}
			}
			for _, p := range []string{"bin/kube/replaced.exe", "bin/kube/small.dll"} {
				if _, ok := f.m.Patches[p]; ok {
					t.Errorf("%s was patched; a file changed entirely, or under the threshold, ships whole", p)
				}
			}
			if _, err := VerifySigned(context.Background(), f.deltaZip, 2, nil); err != nil {
				t.Fatalf("verify: %v", err)
			}
			rep, err := Apply(context.Background(), f.deltaZip, f.install, Options{Workers: c.workers})
			if err != nil {
				t.Fatal(err)
			}
			assertTree(t, f.install, f.want)
			if rep.FilesWritten != len(f.m.Files.Target) {
				t.Errorf("wrote %d files, want %d", rep.FilesWritten, len(f.m.Files.Target))
			}
		})
	}
}

// A patch rebuilds its file only from the base it was made against.
func TestBinaryDeltaRefusesTamperedBase(t *testing.T) {
	f := newFixtureMode(t, 21, true, delta.ModeBinary, rebuiltBinaries(21))
	p := "bin/kube/bin1.exe"
	installed := filepath.Join(f.install, filepath.FromSlash(p))
	data, _ := os.ReadFile(installed)
	data[len(data)/2] ^= 0x5a
	os.WriteFile(installed, data, 0o755)
	before := deltatest.ReadTree(t, f.install)
	_, err := Apply(context.Background(), f.deltaZip, f.install, Options{Workers: 2})
	if err == nil || !strings.Contains(err.Error(), p) {
		t.Fatalf("apply onto a tampered base: %v", err)
	}
	assertTree(t, f.install, before)

	// The patch format itself checks the base too.
	pt := f.m.Patches[p]
	if _, err := delta.ApplyPatch(data, []byte("irrelevant"), pt, f.m.Files.Target[p].Size, 2); err == nil || !strings.Contains(err.Error(), "the patch was made against "+pt.BaseSHA256) {
		t.Errorf("ApplyPatch on a tampered base: %v", err)
	}
}

// A corrupted patch entry is caught by verify and by apply, before the
// installation changes.
func TestBinaryDeltaRefusesCorruptPatch(t *testing.T) {
	f := newFixtureMode(t, 22, true, delta.ModeBinary, rebuiltBinaries(22))
	pt := f.m.Patches["bin/kube/bin2.exe"]
	corrupt := filepath.Join(f.dir, "corrupt.zip")
	rewriteEntry(t, f.deltaZip, corrupt, pt.Entry, func(b []byte) []byte { b[len(b)/2] ^= 0xff; return b })
	if _, err := VerifySigned(context.Background(), corrupt, 2, nil); err == nil || !strings.Contains(err.Error(), pt.Entry) {
		t.Errorf("verify of a corrupt patch: %v", err)
	}
	_, err := Apply(context.Background(), corrupt, f.install, Options{Workers: 2})
	if err == nil || !strings.Contains(err.Error(), "bin/kube/bin2.exe") {
		t.Fatalf("apply of a corrupt patch: %v", err)
	}
	assertTree(t, f.install, f.before)
}

// Binary deltas are reproducible: the same packages give the same bytes
// whatever the parallelism.
func TestBinaryDeltaReproducible(t *testing.T) {
	f := newFixtureMode(t, 23, true, delta.ModeBinary, rebuiltBinaries(23))
	var outs [][]byte
	for _, w := range []int{1, 8} {
		out := filepath.Join(f.dir, fmt.Sprintf("d%d.zip", w))
		if _, err := delta.Build(context.Background(), delta.Options{Base: f.baseZip, Target: f.targetZip, Output: out,
			WholeDirectories: f.s.Whole, Skip: f.s.Skip, Date: deltatest.Date, Workers: w, Mode: delta.ModeBinary, PatchMemory: 8 << 20}); err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(out)
		outs = append(outs, data)
	}
	first, _ := os.ReadFile(f.deltaZip)
	if !bytes.Equal(outs[0], outs[1]) || !bytes.Equal(outs[0], first) {
		t.Fatal("binary deltas differ between -j 1, -j 8 and the fixture's -j 2")
	}
}

// rewriteEntry copies a zip, passing one entry's content through change.
func rewriteEntry(t *testing.T, src, dst, name string, change func([]byte) []byte) {
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
	zw := zip.NewWriter(out)
	found := false
	for _, e := range zr.File {
		rc, err := e.Open()
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if e.Name == name {
			data, found = change(data), true
		}
		h := e.FileHeader
		w, err := zw.CreateHeader(&h)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	out.Close()
	if !found {
		t.Fatalf("%s has no entry %s", src, name)
	}
}
