package fullpkg

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	"github.com/relcue/release/modules/pkgmanifest"
	"github.com/relcue/release/modules/pkgzip"
	"github.com/relcue/release/pipeline/digest"
	"github.com/relcue/release/pipeline/readcheck"
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
	// Copy first, hashing the copy, and check only the copy: what ships
	// is then exactly the bytes compared with the plan's pin and
	// validated, whatever happens to src meanwhile. Errors name the zip as
	// the configuration does (position, URL or path), not as the cache
	// blob a URL was downloaded to, nor as the copy.
	label := in.SourceLabel(spec.Zip)
	f, st, err := digest.OpenRegular(src)
	if err != nil {
		return fmt.Errorf("%s: %w", label, err)
	}
	in.Progress.SetTotal(st.Size())
	sum, err := copyFile(ctx, f, out, in.Progress)
	f.Close()
	if err != nil {
		return fmt.Errorf("%s: copying: %w", label, err)
	}
	if err := readcheck.Compare(label, in.SourceDigests[spec.Zip], readcheck.FileDigest(sum)); err != nil {
		return err
	}
	return validateZip(ctx, in, spec, out, label, st.Size())
}

// validateZip checks the copied package: its version, paths, manifest and
// every entry's CRC.
func validateZip(ctx context.Context, in *step.Input, spec *Spec, zipPath, label string, size int64) error {
	r, err := pkgzip.OpenAs(zipPath, label)
	if err != nil {
		return err
	}
	defer r.Close()
	total := size
	for _, e := range r.Entries {
		total += e.Size
	}
	in.Progress.SetTotal(total)

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
	return nil
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

// copyFile copies src to dst, reporting bytes and honouring ctx, and
// returns the SHA-256 of what it copied.
func copyFile(ctx context.Context, src *os.File, dst string, progress step.Progress) (string, error) {
	out, err := os.Create(dst)
	if err != nil {
		return "", err
	}
	defer out.Close()
	h := sha256.New()
	buf := make([]byte, 1<<20)
	for {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		n, rerr := src.Read(buf)
		if n > 0 {
			h.Write(buf[:n])
			if _, err := out.Write(buf[:n]); err != nil {
				return "", err
			}
			progress.Add(int64(n))
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return "", rerr
		}
	}
	if err := out.Close(); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
