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
	"time"

	"github.com/relcue/release/internal/parallel"
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

// maxSignedInMemory is the largest signable entry read into memory for
// checking (the verifier seeks); a larger one is decompressed again for
// each backward seek instead (two passes for a PE image: the certificate
// table at its end, then the digest from its start), so memory stays
// bounded by workers × this.
const maxSignedInMemory = 32 << 20

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
			rs := &reopener{open: e.Open, size: e.Size}
			return rs, rs.close, nil
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
	var signable []signableTarget
	for _, t := range targets {
		if format := codesign.FormatOf(t.name, s.exts()); format != codesign.None {
			signable = append(signable, signableTarget{t, format})
		}
	}
	if len(signable) == 0 {
		// Nothing to check is no failure, cancelled or not; apply looks
		// at ctx itself before its commit point.
		return rep, nil
	}
	verdicts, err := parallel.Map(ctx, workers, signable, func(_ context.Context, _ int, t signableTarget) (signatureVerdict, error) {
		msg, signed := checkOne(t.sigTarget, t.format, s, now)
		return signatureVerdict{msg, signed}, nil
	})
	if err != nil {
		return nil, err
	}
	var problems []problem
	for i, v := range verdicts {
		name := signable[i].name
		switch {
		case v.problem != "":
			problems = append(problems, problem{name, v.problem})
		case v.signed:
			rep.Signed++
		default:
			rep.Unsigned++
			rep.UnsignedFiles = append(rep.UnsignedFiles, name)
		}
	}
	sort.Strings(rep.UnsignedFiles)
	if len(problems) > 0 {
		sort.Slice(problems, func(i, j int) bool { return problems[i].path < problems[j].path })
		return rep, fmt.Errorf("signature check failed: %s", summarize(problems))
	}
	return rep, nil
}

// signableTarget is a target of a signable format.
type signableTarget struct {
	sigTarget
	format codesign.Format
}

// signatureVerdict is what checkOne found for one file.
type signatureVerdict struct {
	problem string
	signed  bool
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

// reopener is an io.ReadSeeker over a stream that can only be read from
// its start: a backward seek opens it again, a forward one skips.
type reopener struct {
	open func() (io.ReadCloser, error)
	size int64
	rc   io.ReadCloser
	pos  int64 // of rc
	want int64 // where the next Read starts
}

func (r *reopener) Read(p []byte) (int, error) {
	if r.rc == nil || r.want < r.pos {
		r.close()
		rc, err := r.open()
		if err != nil {
			return 0, err
		}
		r.rc, r.pos = rc, 0
	}
	if r.want > r.pos {
		n, err := io.CopyN(io.Discard, r.rc, r.want-r.pos)
		r.pos += n
		if err != nil {
			return 0, err
		}
	}
	n, err := r.rc.Read(p)
	r.pos += int64(n)
	r.want = r.pos
	return n, err
}

// ReadAt lets the PE parser look at headers; it moves the position, which
// Verify does not rely on (it seeks before it reads).
func (r *reopener) ReadAt(p []byte, off int64) (int, error) {
	if _, err := r.Seek(off, io.SeekStart); err != nil {
		return 0, err
	}
	return io.ReadFull(r, p)
}

func (r *reopener) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += r.want
	case io.SeekEnd:
		offset += r.size
	default:
		return 0, errors.New("reopener: bad whence")
	}
	if offset < 0 {
		return 0, errors.New("reopener: negative position")
	}
	r.want = offset
	return offset, nil
}

func (r *reopener) close() {
	if r.rc != nil {
		r.rc.Close()
		r.rc = nil
	}
}
