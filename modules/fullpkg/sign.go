package fullpkg

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/relcue/release/internal/parallel"
	"github.com/relcue/release/modules/codesign"
	"github.com/relcue/release/pipeline/step"
)

// SignSpec is the public part of Authenticode signing: what is signed, by
// which certificate and how. The key itself never enters a spec.
type SignSpec struct {
	Extensions []string `json:"extensions"`
	// Certificate is the hex SHA-256 of the signing certificate: another
	// certificate makes other bytes, so it is part of the cache key.
	Certificate string `json:"certificate"`
	codesign.Settings
}

// signTree replaces, in files, every file to sign by a signed copy in a
// directory below tmpParent, which the caller removes with the returned
// function once the package is written.
func (st Step) signTree(ctx context.Context, in *step.Input, s *SignSpec, files []treeFile, tmpParent string) (cleanup func(), err error) {
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
	var toSign []signJob
	for i, f := range files {
		if format := codesign.FormatOf(f.name, s.Extensions); format != codesign.None {
			toSign = append(toSign, signJob{i, format})
		}
	}
	err = parallel.For(ctx, in.Workers, toSign, func(ctx context.Context, _ int, j signJob) error {
		f := &files[j.file]
		dst := filepath.Join(dir, strconv.Itoa(j.file)+filepath.Ext(f.name))
		if err := signer.SignFile(ctx, j.format, f.name, f.src, dst); err != nil {
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
	fmt.Fprintf(in.Log, "signed %d files with %s\n", len(toSign), st.Key.Subject)
	return cleanup, nil
}

func describeKey(k *codesign.Key) string {
	if k == nil {
		return "no signing credential"
	}
	return "the certificate sha256:" + k.Fingerprint + " (" + k.Subject + ")"
}
