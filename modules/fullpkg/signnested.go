package fullpkg

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/relcue/release/internal/atomicfile"
	"github.com/relcue/release/modules/codesign"
	"github.com/relcue/release/modules/pkgzip"
)

// signNested writes, as dst, the zip at src with every member it signs
// (by extension) signed. An installation holds such an archive's members
// expanded (deltas.nested: K2s's bin/WindowsNodeArtifacts.zip), so signing
// only the archive's neighbours would install unsigned binaries; K2s's own
// package tool signs the archive's contents and zips them again
// (New-K2sPackage.Signing.ps1, Invoke-OfflineArtifactsSigning). The new
// archive is written like every zip release writes: entries sorted, the
// build date, reproducible bytes.
func signNested(ctx context.Context, signer *codesign.Signer, exts []string, src, dst, tmp string, date time.Time, level, workers int) (signed int, err error) {
	r, err := pkgzip.Open(src)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	work, err := os.MkdirTemp(tmp, ".nested-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(work)
	err = atomicfile.WriteFuncMkdirAll(dst, 0o644, false, func(out *os.File) error {
		w := pkgzip.NewWriter(out, pkgzip.WriterOptions{Date: date, Level: level, Workers: workers, TempDir: work})
		for i, e := range r.Entries {
			// Every member is compressed again, at the package's level,
			// so that the archive's bytes depend on its content only.
			plain := filepath.Join(work, strconv.Itoa(i)+filepath.Ext(e.Name))
			if err := extract(e, plain); err != nil {
				return err
			}
			format := codesign.FormatOf(e.Name, exts)
			if format == codesign.None {
				if err := w.AddFile(e.Name, plain, e.Mode); err != nil {
					return err
				}
				continue
			}
			done := plain + ".signed" + filepath.Ext(e.Name)
			if err := signer.SignFile(ctx, format, e.Name, plain, done); err != nil {
				return fmt.Errorf("%s!%s: %w", filepath.Base(src), e.Name, err)
			}
			if err := w.AddFile(e.Name, done, e.Mode); err != nil {
				return err
			}
			signed++
		}
		_, err := w.Close(ctx)
		return err
	})
	return signed, err
}

// extract writes the entry's content to p.
func extract(e *pkgzip.Entry, p string) error {
	rc, err := e.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, rc); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
