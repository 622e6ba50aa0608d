package apply

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relcue/release/modules/codesign"
	"github.com/relcue/release/modules/codesign/codesigntest"
	"github.com/relcue/release/modules/pkgzip"
)

// TestSignaturesOfLargeEntriesAreCheckedStreaming: an entry larger than
// what is read into memory is checked by decompressing it again for each
// backward seek; the verdicts are the same as for small entries.
func TestSignaturesOfLargeEntriesAreCheckedStreaming(t *testing.T) {
	dir := t.TempDir()
	cred := codesigntest.New(t, dir, codesigntest.Options{})
	key, err := codesign.LoadPKCS12(cred.PKCS12, cred.Password, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// A real PE image with more than maxSignedInMemory of overlay, signed.
	exe, err := os.ReadFile(codesigntest.WindowsExe(t, "large"))
	if err != nil {
		t.Fatal(err)
	}
	overlay := make([]byte, maxSignedInMemory+1<<20)
	rand.Read(overlay[:1<<20]) // mostly zeros: the zip stays small
	big := filepath.Join(dir, "big.exe")
	os.WriteFile(big, append(exe, overlay...), 0o644)
	signed := filepath.Join(dir, "signed.exe")
	if err := codesign.NewSigner(key, codesign.Settings{}, nil).SignFile(context.Background(), codesign.PE, "big.exe", big, signed); err != nil {
		t.Fatal(err)
	}
	good, _ := os.ReadFile(signed)
	tampered := bytes.Clone(good)
	tampered[len(exe)+1<<19] ^= 1 // in the overlay, which the digest covers
	notPE := bytes.Repeat([]byte("MZ but no PE "), (maxSignedInMemory+1<<20)/13)

	for _, tc := range []struct {
		name, want     string
		data           []byte
		signed, unsign int
	}{
		{"signed", "", good, 1, 0},
		{"tampered", "bin/big.exe", tampered, 0, 0},
		{"not a PE image", "", notPE, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			zp := filepath.Join(t.TempDir(), "p.zip")
			f, _ := os.Create(zp)
			zw := zip.NewWriter(f)
			w, _ := zw.CreateHeader(&zip.FileHeader{Name: "bin/big.exe", Method: zip.Deflate})
			w.Write(tc.data)
			zw.Close()
			f.Close()
			r, err := pkgzip.Open(zp)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			e := r.Lookup("bin/big.exe")
			if e.Size <= maxSignedInMemory {
				t.Fatalf("entry of %d bytes is read into memory; the test needs a larger one", e.Size)
			}
			rep, err := checkSignatures(context.Background(), &Signatures{}, []sigTarget{entryTarget(e)}, 2)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("err %v, want one naming %s", err, tc.want)
				}
				return
			}
			if err != nil || rep.Signed != tc.signed || rep.Unsigned != tc.unsign {
				t.Fatalf("report %+v, err %v", rep, err)
			}
		})
	}
}

func TestReopenerSeeks(t *testing.T) {
	data := make([]byte, 1<<20)
	rand.Read(data)
	opens := 0
	r := &reopener{size: int64(len(data)), open: func() (io.ReadCloser, error) {
		opens++
		return io.NopCloser(bytes.NewReader(data)), nil
	}}
	defer r.close()
	buf := make([]byte, 100)
	for _, off := range []int64{0, 5000, 4000, 1<<20 - 100, 10} {
		if _, err := r.ReadAt(buf, off); err != nil || !bytes.Equal(buf, data[off:off+100]) {
			t.Fatalf("ReadAt %d: %v", off, err)
		}
	}
	if opens != 3 { // the first read and the two backward seeks
		t.Fatalf("%d opens, want 3", opens)
	}
	if n, _ := r.Seek(-10, io.SeekEnd); n != int64(len(data))-10 {
		t.Fatalf("SeekEnd %d", n)
	}
	rest, _ := io.ReadAll(r)
	if !bytes.Equal(rest, data[len(data)-10:]) {
		t.Fatal("read after SeekEnd")
	}
}
