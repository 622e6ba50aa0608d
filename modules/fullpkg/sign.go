package fullpkg

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sync/errgroup"

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
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(in.Workers, 1))
	var signed int
	for i := range files {
		f := &files[i]
		format := codesign.FormatOf(f.name, s.Extensions)
		if format == codesign.None {
			continue
		}
		signed++
		dst := filepath.Join(dir, strconv.Itoa(i)+filepath.Ext(f.name))
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			if err := signer.SignFile(gctx, format, f.name, f.src, dst); err != nil {
				return fmt.Errorf("%s: %w", f.owner, err)
			}
			info, err := os.Stat(dst)
			if err != nil {
				return err
			}
			f.src, f.size = dst, info.Size()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		cleanup()
		return nil, err
	}
	fmt.Fprintf(in.Log, "signed %d files with %s\n", signed, st.Key.Subject)
	return cleanup, nil
}

func describeKey(k *codesign.Key) string {
	if k == nil {
		return "no signing credential"
	}
	return "the certificate sha256:" + k.Fingerprint + " (" + k.Subject + ")"
}
