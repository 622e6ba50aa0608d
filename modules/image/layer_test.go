package image

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// legacyTypeflag rewrites the typeflag of the tar header at offset to the
// pre-POSIX '\x00' (TypeRegA, which tar.Writer never writes) and fixes the
// header's checksum.
func legacyTypeflag(t *testing.T, b []byte, offset int) {
	t.Helper()
	hdr := b[offset : offset+512]
	hdr[156] = 0
	copy(hdr[148:156], "        ")
	sum := 0
	for _, c := range hdr {
		sum += int(c)
	}
	copy(hdr[148:156], fmt.Sprintf("%06o\x00 ", sum))
}

// Old archives mark regular files with '\x00' (and directories with '\x00'
// and a trailing slash): scanLayer must see them as a file and a directory,
// as archive/tar reports them, so a layer cannot be placed below the file.
func TestScanLayerReadsLegacyTypeflags(t *testing.T) {
	raw := tarOf(t, fileH("etc/hosts", "127.0.0.1\n"), dirH("opt/", 0o755, 0))
	// The file's header and its one block of data precede the directory's.
	legacyTypeflag(t, raw, 0)
	legacyTypeflag(t, raw, 1024)
	tr := tar.NewReader(bytes.NewReader(raw))
	for _, want := range []string{"etc/hosts", "opt/"} {
		h, err := tr.Next()
		if err != nil || h.Name != want {
			t.Fatalf("crafted tar: %v, %v; want %s", h, err, want)
		}
	}

	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil })
	if err != nil {
		t.Fatal(err)
	}
	diffID, err := l.DiffID()
	if err != nil {
		t.Fatal(err)
	}
	rec, err := scanLayer(context.Background(), l, diffID, map[string]bool{"etc/hosts": true, "opt": true})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]byte{}
	for _, e := range rec.entries {
		got[e.name] = e.meta.typ
	}
	if len(got) != 2 || got["etc/hosts"] != tar.TypeReg || got["opt"] != tar.TypeDir {
		t.Fatalf("types %q, want etc/hosts %q and opt %q", got, tar.TypeReg, tar.TypeDir)
	}
}
