// Package deltatest builds full packages and installation trees for the
// tests of modules/delta and modules/apply.
package deltatest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relcue/release/modules/pkgmanifest"
	"github.com/relcue/release/modules/pkgzip"
)

// File is one file of a tree.
type File struct {
	Data []byte
	Exec bool
	// Link is the target of a symbolic link (Data is unused then).
	Link string
}

// Tree maps forward-slash paths to files.
type Tree map[string]File

// Clone copies t (file contents are shared; they are never mutated).
func (t Tree) Clone() Tree {
	c := make(Tree, len(t))
	for k, v := range t {
		c[k] = v
	}
	return c
}

// Date is the fixed date test packages are written with.
var Date = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// WritePackage writes tree as a full package zip at p, with a
// package-manifest.json describing it if withManifest.
func WritePackage(t testing.TB, p string, tree Tree, withManifest bool) {
	t.Helper()
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pkgzip.NewWriter(f, pkgzip.WriterOptions{Date: Date, Level: 1, Workers: 2})
	for _, name := range sortedKeys(tree) {
		mode := pkgzip.ModeFile
		if tree[name].Exec {
			mode = pkgzip.ModeExec
		}
		if err := w.AddBytes(name, tree[name].Data, mode); err != nil {
			t.Fatal(err)
		}
	}
	if withManifest {
		version := strings.TrimSpace(string(tree["VERSION"].Data))
		err := w.AddGenerated(pkgmanifest.Name, pkgzip.ModeFile, func(d map[string]pkgzip.Digest) ([]byte, error) {
			return ManifestFor("k2s", version, d)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// ManifestFor encodes the package-manifest.json of a package whose files
// have the digests d.
func ManifestFor(product, version string, d map[string]pkgzip.Digest) ([]byte, error) {
	return pkgmanifest.New(product, version, d).Marshal()
}

// Extract writes every entry of the zip at zipPath below dir, keeping the
// executable bit, the way an installer unpacks a full package.
func Extract(t testing.TB, zipPath, dir string) {
	t.Helper()
	r, err := pkgzip.Open(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, e := range r.Entries {
		dst := filepath.Join(dir, filepath.FromSlash(e.Name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		rc, err := e.Open()
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, e.Mode.Perm()); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dst, e.Mode.Perm()); err != nil {
			t.Fatal(err)
		}
	}
}

// WriteTree writes tree below dir.
func WriteTree(t testing.TB, dir string, tree Tree) {
	t.Helper()
	for p, f := range tree {
		dst := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if f.Link != "" {
			if err := os.Symlink(f.Link, dst); err != nil {
				t.Fatal(err)
			}
			continue
		}
		mode := fs.FileMode(0o644)
		if f.Exec {
			mode = 0o755
		}
		if err := os.WriteFile(dst, f.Data, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dst, mode); err != nil {
			t.Fatal(err)
		}
	}
}

// ReadTree reads every regular file and symbolic link (not following it)
// below dir. Anything else fails the test.
func ReadTree(t testing.TB, dir string) Tree {
	t.Helper()
	tree := Tree{}
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if e.Type()&fs.ModeSymlink != 0 {
			target, err := os.Readlink(p)
			tree[filepath.ToSlash(rel)] = File{Link: target}
			return err
		}
		if !e.Type().IsRegular() {
			return fmt.Errorf("%s is not a regular file", p)
		}
		info, err := e.Info()
		if err != nil {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		tree[filepath.ToSlash(rel)] = File{Data: data, Exec: info.Mode()&0o100 != 0}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

// Dirs lists every directory below dir (relative, sorted).
func Dirs(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || !e.IsDir() || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// Diff describes how got differs from want, or returns "" if they are equal.
func Diff(want, got Tree) string {
	var b strings.Builder
	for _, p := range sortedKeys(want) {
		g, ok := got[p]
		switch {
		case !ok:
			fmt.Fprintf(&b, "missing %s\n", p)
		case !bytes.Equal(g.Data, want[p].Data):
			fmt.Fprintf(&b, "content of %s differs (%d bytes, want %d)\n", p, len(g.Data), len(want[p].Data))
		case g.Link != want[p].Link:
			fmt.Fprintf(&b, "%s links to %q, want %q\n", p, g.Link, want[p].Link)
		case g.Exec != want[p].Exec:
			fmt.Fprintf(&b, "exec bit of %s is %v, want %v\n", p, g.Exec, want[p].Exec)
		}
	}
	for _, p := range sortedKeys(got) {
		if _, ok := want[p]; !ok {
			fmt.Fprintf(&b, "unexpected %s\n", p)
		}
	}
	return b.String()
}

// Scenario is a generated pair of releases plus local installation state.
type Scenario struct {
	Base, Target Tree
	// Local are files an installation has that no package has (cluster
	// configuration, stale plugins); some are covered by Skip, some not.
	Local Tree
	// Whole are the wholesale directories and Skip the skip rules to use.
	Whole, Skip []string
}

// Dirs files are generated in: normal ones, a wholesale one, deep and
// non-ASCII ones, and the skip-rule ones.
var genDirs = []string{
	"", "bin", "bin/cni", "lib/modules/k2s.cluster.module", "smallsetup/helpers",
	"a/b/c/d/e/f/g/h/i/j/k", "dïr/ünïcödé/日本語", "addons/monitoring/manifests",
	"etc/kubernetes/pki", "cfg",
}

// Generate makes a random scenario; the same seed gives the same scenario.
// It covers empty files, a few-MiB file, deep and unicode paths, files moving
// into and out of the wholesale directory bin/cni, added, removed, changed,
// mode-only changed and unchanged files, and skip-rule paths in both
// packages and only in the installation.
func Generate(seed uint64) Scenario {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	content := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			// Half random, half text, so that compression has work to do.
			if i%2 == 0 {
				b[i] = byte(rng.UintN(256))
			} else {
				b[i] = "kubelet containerd flannel "[i%27]
			}
		}
		return b
	}
	name := func() string {
		d := genDirs[rng.IntN(len(genDirs)-2)] // never the skip-rule dirs
		f := fmt.Sprintf("f%03d%s", rng.IntN(1000), []string{".exe", ".ps1", ".json", "", ".dll", "-ü.txt"}[rng.IntN(6)])
		return path.Join(d, f)
	}
	size := func() int {
		switch r := rng.IntN(10); {
		case r == 0:
			return 0
		case r < 8:
			return rng.IntN(4096)
		default:
			return 4096 + rng.IntN(64<<10)
		}
	}
	s := Scenario{
		Base:   Tree{},
		Local:  Tree{},
		Whole:  []string{"bin/cni"},
		Skip:   []string{"etc/kubernetes/pki/**", "cfg/local.conf", "bin/cni/local-*.conf"},
		Target: nil,
	}
	s.Base["VERSION"] = File{Data: fmt.Appendf(nil, "1.4.%d\n", seed)}
	s.Base["big/payload.bin"] = File{Data: content(3<<20 + rng.IntN(1<<20))}
	s.Base["empty.txt"] = File{}
	for range 40 + rng.IntN(30) {
		s.Base[name()] = File{Data: content(size()), Exec: rng.IntN(4) == 0}
	}
	for range 3 {
		s.Base[fmt.Sprintf("bin/cni/plugin%d.exe", rng.IntN(100))] = File{Data: content(size()), Exec: true}
	}
	// Skip-rule paths present in the packages: the installation keeps its
	// own version of them whatever the target has.
	s.Base["etc/kubernetes/pki/ca.crt"] = File{Data: []byte("base ca")}
	s.Base["cfg/local.conf"] = File{Data: []byte("base local conf")}

	s.Target = s.Base.Clone()
	s.Target["VERSION"] = File{Data: fmt.Appendf(nil, "1.5.%d\n", seed)}
	for _, p := range sortedKeys(s.Base) {
		if p == "VERSION" || strings.HasPrefix(p, "etc/") || strings.HasPrefix(p, "cfg/") {
			continue
		}
		f := s.Base[p]
		switch r := rng.IntN(100); {
		case r < 12:
			delete(s.Target, p)
		case r < 30:
			s.Target[p] = File{Data: content(size()), Exec: f.Exec}
		case r < 35:
			s.Target[p] = File{Data: f.Data, Exec: !f.Exec}
		case r < 45:
			// Move, also into or out of the wholesale directory.
			delete(s.Target, p)
			to := path.Join([]string{"bin/cni", "bin", "lib"}[rng.IntN(3)], "moved-"+path.Base(p))
			s.Target[to] = f
		}
	}
	for range 10 + rng.IntN(10) {
		s.Target[name()] = File{Data: content(size()), Exec: rng.IntN(3) == 0}
	}
	s.Target["bin/cni/new-plugin.exe"] = File{Data: content(size()), Exec: true}
	s.Target["etc/kubernetes/pki/ca.crt"] = File{Data: []byte("target ca")}
	s.Target["etc/kubernetes/pki/new.crt"] = File{Data: []byte("target new cert")}
	s.Target["cfg/local.conf"] = File{Data: []byte("target local conf")}

	s.Local["etc/kubernetes/pki/cluster.key"] = File{Data: []byte("local key")}
	s.Local["bin/cni/local-net.conf"] = File{Data: []byte("local cni conf")}
	s.Local["bin/cni/stale-plugin.exe"] = File{Data: []byte("left over by hand"), Exec: true}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
