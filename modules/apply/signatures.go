package apply

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/relcue/release/modules/codesign"
	"github.com/relcue/release/modules/pkgzip"
)

// Signatures says which Authenticode signatures content must carry.
type Signatures struct {
	// Require refuses signable files without a valid signature by one of
	// Trusted (or a certificate chaining to one of them).
	Require bool
	Trusted []*x509.Certificate
	// Extensions are the signable files (default codesign.DefaultExtensions).
	Extensions []string
	// Now is when certificates must be valid for untimestamped
	// signatures (default: the clock).
	Now time.Time
}

func (s *Signatures) exts() []string {
	if s == nil || len(s.Extensions) == 0 {
		return codesign.DefaultExtensions
	}
	return s.Extensions
}

// SignatureReport counts what signature checks found.
type SignatureReport struct {
	Signed   int `json:"signed"`
	Unsigned int `json:"unsigned"`
	// UnsignedFiles lists the signable files without a signature.
	UnsignedFiles []string `json:"unsignedFiles,omitempty"`
}

// maxSignedInMemory bounds a compressed signable entry read into memory
// for checking (the verifier seeks); stored entries are read in place.
const maxSignedInMemory = 1 << 30

// sigTarget is one file to check: its package path and how to read it.
type sigTarget struct {
	name string
	open func() (io.ReadSeeker, func(), error)
}

func fileTarget(name, path string) sigTarget {
	return sigTarget{name: name, open: func() (io.ReadSeeker, func(), error) {
		f, err := os.Open(path)
		if err != nil {
			return nil, nil, err
		}
		return f, func() { f.Close() }, nil
	}}
}

func entryTarget(e *pkgzip.Entry) sigTarget {
	return sigTarget{name: e.Name, open: func() (io.ReadSeeker, func(), error) {
		if e.Size > maxSignedInMemory {
			return nil, nil, fmt.Errorf("%d bytes is more than the %d this check reads into memory", e.Size, maxSignedInMemory)
		}
		data, err := readAll(e)
		if err != nil {
			return nil, nil, err
		}
		return bytes.NewReader(data), func() {}, nil
	}}
}

// checkSignatures verifies every signable target: a bad signature is
// always an error, a missing or untrusted one when s.Require is set.
func checkSignatures(ctx context.Context, s *Signatures, targets []sigTarget, workers int) (*SignatureReport, error) {
	rep := &SignatureReport{}
	now := time.Now()
	if s != nil && !s.Now.IsZero() {
		now = s.Now
	}
	var mu sync.Mutex
	var problems []problem
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(workers, 1))
	for _, t := range targets {
		format := codesign.FormatOf(t.name, s.exts())
		if format == codesign.None {
			continue
		}
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			msg, signed := checkOne(t, format, s, now)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case msg != "":
				problems = append(problems, problem{t.name, msg})
			case signed:
				rep.Signed++
			default:
				rep.Unsigned++
				rep.UnsignedFiles = append(rep.UnsignedFiles, t.name)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	sort.Strings(rep.UnsignedFiles)
	if len(problems) > 0 {
		sort.Slice(problems, func(i, j int) bool { return problems[i].path < problems[j].path })
		return rep, fmt.Errorf("signature check failed: %s", summarize(problems))
	}
	return rep, nil
}

// checkOne returns a problem message, or whether the file is signed.
func checkOne(t sigTarget, format codesign.Format, s *Signatures, now time.Time) (string, bool) {
	r, done, err := t.open()
	if err != nil {
		return fmt.Sprintf("%s: %v", t.name, err), false
	}
	defer done()
	sig, err := codesign.Verify(r, format, t.name)
	switch {
	case errors.Is(err, codesign.ErrNotSigned):
		if s != nil && s.Require {
			return fmt.Sprintf("%s is not signed, and signed content is required", t.name), false
		}
		return "", false
	case err != nil:
		return fmt.Sprintf("%s: %v (the file was changed after it was signed)", t.name, err), false
	}
	if s != nil && s.Require {
		if err := sig.CheckTrust(s.Trusted, now); err != nil {
			return fmt.Sprintf("%s: %v", t.name, err), false
		}
	}
	return "", true
}
