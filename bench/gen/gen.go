// Package gen makes synthetic K2s-like installation trees for benchmarks:
// thousands of small files, some medium ones and a few large binaries, with
// content that compresses roughly like real executables; and a "next
// version" of a tree with a chosen share of its bytes changed.
package gen

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
)

// Shape sets how big a tree is.
type Shape struct {
	Small, Medium, Large, CNI             int   // file counts
	SmallMax, MediumMax, LargeMax, CNIMax int64 // upper bounds of sizes (lower bound is a quarter)
}

// GiB is roughly a 1 GiB K2s-like package: ~4000 small files, 40 medium,
// 8 large binaries.
var GiB = Shape{Small: 4000, Medium: 40, Large: 8, CNI: 6, SmallMax: 64 << 10, MediumMax: 8 << 20, LargeMax: 128 << 20, CNIMax: 2 << 20}

// Small is a quick tree for tests and the many-release config.
var Small = Shape{Small: 60, Medium: 2, Large: 1, CNI: 2, SmallMax: 8 << 10, MediumMax: 256 << 10, LargeMax: 1 << 20, CNIMax: 64 << 10}

// File is one generated file.
type File struct {
	Path string
	Size int64
	Seed uint64
	// Edit, when non-zero, makes the file a rebuild of Seed's content: a
	// few small regions overwritten, as a binary rebuilt with a small code
	// change differs from the previous build.
	Edit uint64
}

// Layout decides paths, sizes and content seeds of a tree.
func Layout(seed uint64, s Shape) []File {
	r := rand.New(rand.NewPCG(seed, 0x6b3273))
	var files []File
	size := func(max int64) int64 { return max/4 + r.Int64N(max-max/4+1) }
	dirs := []string{"lib/modules/k2s/k2s.infra.module", "lib/modules/k2s/k2s.cluster.module", "smallsetup/helpers", "addons/monitoring/manifests", "docs", "cfg", "lib/scripts"}
	for i := 0; i < s.Small; i++ {
		d := dirs[r.IntN(len(dirs))]
		files = append(files, File{Path: fmt.Sprintf("%s/sub%02d/file%05d.ps1", d, r.IntN(40), i), Size: size(s.SmallMax), Seed: r.Uint64()})
	}
	for i := 0; i < s.Medium; i++ {
		files = append(files, File{Path: fmt.Sprintf("bin/tools/tool%03d.exe", i), Size: size(s.MediumMax), Seed: r.Uint64()})
	}
	for i := 0; i < s.Large; i++ {
		files = append(files, File{Path: fmt.Sprintf("bin/kube/component%02d.exe", i), Size: size(s.LargeMax), Seed: r.Uint64()})
	}
	for i := 0; i < s.CNI; i++ {
		files = append(files, File{Path: fmt.Sprintf("bin/cni/plugin%d.exe", i), Size: size(s.CNIMax), Seed: r.Uint64()})
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	return files
}

// Next derives the files of a next version: about fraction of the bytes
// changed, spread like a real upgrade (one large binary, some medium and
// small files, a few added and removed).
func Next(files []File, seed uint64, fraction float64) []File {
	r := rand.New(rand.NewPCG(seed, 0x6e657874))
	var total int64
	for _, f := range files {
		total += f.Size
	}
	budget := int64(float64(total) * fraction)
	out := make([]File, 0, len(files))
	order := r.Perm(len(files))
	changed := map[int]bool{}
	// Largest first, so the budget goes mostly to big binaries as in a
	// Kubernetes patch release.
	sort.SliceStable(order, func(a, b int) bool { return files[order[a]].Size > files[order[b]].Size })
	for _, i := range order {
		if budget <= 0 {
			break
		}
		if files[i].Size <= budget && (files[i].Size > 1<<20 || r.IntN(3) == 0) {
			changed[i] = true
			budget -= files[i].Size
		}
	}
	for i, f := range files {
		switch {
		case r.IntN(100) == 0: // removed
			continue
		case changed[i] && f.Size > 1<<20:
			// A rebuilt binary: mostly the same bytes.
			f.Edit = r.Uint64()
		case changed[i]:
			f.Seed = r.Uint64()
		}
		out = append(out, f)
	}
	for i := 0; i < len(files)/100; i++ {
		out = append(out, File{Path: fmt.Sprintf("lib/modules/k2s/k2s.node.module/new/file%04d.ps1", i), Size: 4096 + r.Int64N(16<<10), Seed: r.Uint64()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// Write creates the files below dir, and VERSION unless version is "".
func Write(dir, version string, files []File) error {
	for _, f := range files {
		p := filepath.Join(dir, filepath.FromSlash(f.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := writeFile(p, f); err != nil {
			return err
		}
	}
	if version == "" {
		return nil
	}
	return os.WriteFile(filepath.Join(dir, "VERSION"), []byte(version), 0o644)
}

func writeFile(p string, f File) error {
	out, err := os.Create(p)
	if err != nil {
		return err
	}
	var src io.Reader = NewContent(f.Seed)
	if f.Edit != 0 {
		src = &editor{r: src, rng: rand.New(rand.NewPCG(f.Edit, 0x65646974))}
	}
	_, err = io.CopyN(out, src, f.Size)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// Content yields bytes that compress to roughly half, like executables:
// random runs mixed with repeats of earlier data.
type Content struct {
	r    *rand.Rand
	hist []byte
}

func NewContent(seed uint64) *Content {
	return &Content{r: rand.New(rand.NewPCG(seed, 0x636f6e74))}
}

func (c *Content) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		run := min(len(p)-n, 64+c.r.IntN(448))
		if len(c.hist) > 4096 && c.r.IntN(2) == 0 {
			off := c.r.IntN(len(c.hist) - run)
			copy(p[n:n+run], c.hist[off:off+run])
		} else {
			for i := 0; i < run; i += 8 {
				v := c.r.Uint64()
				for j := 0; j < 8 && i+j < run; j++ {
					p[n+i+j] = byte(v >> (8 * j))
				}
			}
		}
		c.hist = append(c.hist, p[n:n+run]...)
		if len(c.hist) > 1<<16 {
			c.hist = append(c.hist[:0], c.hist[len(c.hist)-1<<15:]...)
		}
		n += run
	}
	return n, nil
}

// editor overwrites a region of 16..512 bytes in about one 64 KiB block
// in eight of the stream it reads.
type editor struct {
	r   io.Reader
	rng *rand.Rand
	pos int64
}

func (e *editor) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	for i := 0; i < n; {
		block := e.pos + int64(i)
		next := (block/(64<<10) + 1) * (64 << 10)
		end := min(n, i+int(next-block))
		if e.rng.IntN(8) == 0 {
			start := i + e.rng.IntN(end-i)
			for j := start; j < min(end, start+16+e.rng.IntN(497)); j++ {
				p[j] = byte(e.rng.Uint32())
			}
		}
		i = end
	}
	e.pos += int64(n)
	return n, err
}
