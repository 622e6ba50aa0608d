package fullpkg

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/relcue/release/modules/pkgmanifest"
	"github.com/relcue/release/modules/pkgzip"
	"github.com/relcue/release/pipeline/step"
)

// useZip validates an existing package and copies it unchanged: the
// pipeline verified its sha256, so its bytes are what the release engineer
// pinned, and rewriting it would change them.
func useZip(ctx context.Context, in *step.Input, spec *Spec, out string) error {
	src, err := source(in, spec.Zip)
	if err != nil {
		return err
	}
	// Errors name the zip as the configuration does (position, URL or
	// path), not as the cache blob a URL was downloaded to.
	r, err := pkgzip.OpenAs(src, in.SourceLabel(spec.Zip))
	if err != nil {
		return err
	}
	defer r.Close()
	st, err := os.Stat(src)
	if err != nil {
		return err
	}
	var total int64
	for _, e := range r.Entries {
		total += e.Size
	}
	in.Progress.SetTotal(total + st.Size())

	if err := checkZipVersion(r, spec.Version); err != nil {
		return err
	}
	for _, e := range r.Entries {
		if err := spec.Paths.Check(e.Name); err != nil {
			return fmt.Errorf("%s: %w", r.Path, pkgzip.Hint(err, pkgzip.ConfigHint))
		}
	}
	m, hasManifest, err := pkgmanifest.Read(r)
	if err != nil {
		return err
	}
	if hasManifest {
		if err := checkManifestIdentity(r.Path, m, spec); err != nil {
			return err
		}
		if err := pkgmanifest.Check(r, m); err != nil {
			return err
		}
	}
	// Decompressing everything checks every entry's CRC, so a zip that was
	// corrupt when its sha256 was pinned fails here rather than on a node.
	digests, err := r.HashAll(ctx, in.Workers, progressFunc(in.Progress))
	if err != nil {
		return err
	}
	if hasManifest {
		if err := pkgmanifest.Verify(m, digests, r.Path); err != nil {
			return err
		}
	}
	return copyFile(ctx, src, out, in.Progress)
}

func checkZipVersion(r *pkgzip.Reader, version string) error {
	e := r.Lookup(pkgmanifest.VersionFile)
	if e == nil {
		return fmt.Errorf("%s: has no %s at its root; a full package must state its version there", r.Path, pkgmanifest.VersionFile)
	}
	rc, err := e.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	return checkVersion(rc, version, r.Path+": "+pkgmanifest.VersionFile)
}

func checkManifestIdentity(zipPath string, m *pkgmanifest.Manifest, spec *Spec) error {
	if m.Version != spec.Version {
		return fmt.Errorf("%s: %s is for version %s, but the release is %s", zipPath, pkgmanifest.Name, m.Version, spec.Version)
	}
	if m.Product != spec.Product {
		return fmt.Errorf("%s: %s is for product %q, but this is %q", zipPath, pkgmanifest.Name, m.Product, spec.Product)
	}
	return nil
}

// copyFile copies src to dst, reporting bytes and honouring ctx.
func copyFile(ctx context.Context, src, dst string, progress step.Progress) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer out.Close()
	buf := make([]byte, 1<<20)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, rerr := in.Read(buf)
		if n > 0 {
			if _, err := out.Write(buf[:n]); err != nil {
				return fmt.Errorf("copying %s: %w", src, err)
			}
			progress.Add(int64(n))
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return fmt.Errorf("copying %s: %w", src, rerr)
		}
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("copying %s: %w", src, err)
	}
	return nil
}
