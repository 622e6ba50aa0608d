package pkgzip

import (
	"archive/zip"
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// manyEntriesZip writes a zip of n small deflated entries, the shape where
// per-entry costs of opening (header checks) dominate.
func manyEntriesZip(b *testing.B, n int) string {
	b.Helper()
	p := filepath.Join(b.TempDir(), "many.zip")
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	bw := bufio.NewWriter(f)
	zw := zip.NewWriter(bw)
	for i := range n {
		w, err := zw.Create(fmt.Sprintf("dir%03d/file%05d.txt", i%100, i))
		if err != nil {
			b.Fatal(err)
		}
		fmt.Fprintf(w, "content of file %d\n", i)
	}
	if err := zw.Close(); err != nil {
		b.Fatal(err)
	}
	if err := bw.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkOpen10k measures Open on a zip of 10,000 entries: the central
// directory and every entry's checks.
func BenchmarkOpen10k(b *testing.B) {
	p := manyEntriesZip(b, 10_000)
	b.ResetTimer()
	for b.Loop() {
		r, err := Open(p)
		if err != nil {
			b.Fatal(err)
		}
		r.Close()
	}
}

// BenchmarkOpenHash10k is Open followed by hashing every entry, what a
// zip: release or a delta input costs.
func BenchmarkOpenHash10k(b *testing.B) {
	p := manyEntriesZip(b, 10_000)
	b.ResetTimer()
	for b.Loop() {
		r, err := Open(p)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := r.HashAll(context.Background(), 2, nil); err != nil {
			b.Fatal(err)
		}
		r.Close()
	}
}
