package fullpkg

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/relcue/release/internal/parallel"
	"github.com/relcue/release/modules/codesign"
	"github.com/relcue/release/modules/pkgzip"
	"github.com/relcue/release/pipeline/readcheck"
	"github.com/relcue/release/pipeline/step"
)

// SignSpec is the public part of Authenticode signing: what is signed, by
// which certificate and how. The key itself never enters a spec.
type SignSpec struct {
	Extensions []string `json:"extensions"`
	// Nested are package paths of archives installations hold expanded
	// (deltas.nested): their members are signed too, and the archive
	// written again.
	Nested []string `json:"nested,omitempty"`
	// Certificate is the hex SHA-256 of the signing certificate: another
	// certificate makes other bytes, so it is part of the cache key.
	Certificate string `json:"certificate"`
	codesign.Settings
}

// signTree replaces, in files, every file to sign by a signed copy in a
// directory below tmpParent, which the caller removes with the returned
// function once the package is written.
func (st Step) signTree(ctx context.Context, in *step.Input, spec *Spec, files []treeFile, tmpParent string) (cleanup func(), err error) {
	s := spec.Sign
	if st.Key == nil || st.Key.Fingerprint != s.Certificate {
		return nil, fmt.Errorf("%s is signed with the certificate sha256:%s, but this process has %s; set %s (and its password) to that credential, or build with --unsigned",
			in.Target, s.Certificate, describeKey(st.Key), codesign.EnvPKCS12)
	}
	dir, err := os.MkdirTemp(tmpParent, ".signing-")
	if err != nil {
		return nil, err
	}
	cleanup = func() { os.RemoveAll(dir) }
	signer := codesign.NewSigner(st.Key, s.Settings, nil)
	type signJob struct {
		file   int // index into files
		format codesign.Format
	}
	var toSign, nested []signJob
	for i, f := range files {
		if format := codesign.FormatOf(f.name, s.Extensions); format != codesign.None {
			toSign = append(toSign, signJob{i, format})
		} else if slices.Contains(s.Nested, f.name) {
			nested = append(nested, signJob{file: i})
		}
	}
	date, err := spec.date()
	if err != nil {
		cleanup()
		return nil, err
	}
	signedInside := 0
	for _, j := range nested {
		f := &files[j.file]
		src, err := readOnce(ctx, f, filepath.Join(dir, strconv.Itoa(j.file)+".src.zip"))
		if err != nil {
			cleanup()
			return nil, err
		}
		dst := filepath.Join(dir, strconv.Itoa(j.file)+".zip")
		n, err := signNested(ctx, signer, s.Extensions, src, dst, dir, date, spec.Level, in.Workers)
		if err != nil {
			cleanup()
			return nil, fmt.Errorf("%s: %w", f.owner, err)
		}
		info, err := os.Stat(dst)
		if err != nil {
			cleanup()
			return nil, err
		}
		f.src, f.size = dst, info.Size()
		signedInside += n
	}
	err = parallel.For(ctx, in.Workers, toSign, func(ctx context.Context, _ int, j signJob) error {
		f := &files[j.file]
		src, err := readOnce(ctx, f, filepath.Join(dir, strconv.Itoa(j.file)+".src"+filepath.Ext(f.name)))
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, strconv.Itoa(j.file)+filepath.Ext(f.name))
		if err := signer.SignFile(ctx, j.format, f.name, src, dst); err != nil {
			return fmt.Errorf("%s: %w", f.owner, err)
		}
		info, err := os.Stat(dst)
		if err != nil {
			return err
		}
		f.src, f.size = dst, info.Size()
		return nil
	})
	if err != nil {
		cleanup()
		return nil, err
	}
	fmt.Fprintf(in.Log, "signed %d files (and %d inside %d archives) with %s\n", len(toSign), signedInside, len(nested), st.Key.Subject)
	return cleanup, nil
}

// readOnce copies a file about to be signed to a private path, hashing
// what it copies: the signature covers exactly the bytes checked against
// the plan (checkSources), whatever happens to the input afterwards.
func readOnce(ctx context.Context, f *treeFile, dst string) (string, error) {
	sum, n, err := readcheck.CopyFile(ctx, f.src, dst)
	if err != nil {
		return "", fmt.Errorf("%s: %w", f.owner, err)
	}
	f.read = &pkgzip.Digest{SHA256: sum, Size: n}
	return dst, nil
}

func describeKey(k *codesign.Key) string {
	if k == nil {
		return "no signing credential"
	}
	return "the certificate sha256:" + k.Fingerprint + " (" + k.Subject + ")"
}
