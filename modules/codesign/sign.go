package codesign

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"debug/pe"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/sassoftware/relic/v8/lib/authenticode"
	"github.com/sassoftware/relic/v8/lib/binpatch"
	"github.com/sassoftware/relic/v8/lib/certloader"
	"github.com/sassoftware/relic/v8/lib/pkcs7"
	"github.com/sassoftware/relic/v8/lib/pkcs9"
	"github.com/sassoftware/relic/v8/signers/sigerrors"

	"github.com/relcue/release/internal/smallfile"
)

// DefaultExtensions is what gets signed unless the configuration says
// otherwise: K2s's executables, libraries and PowerShell.
var DefaultExtensions = []string{".dll", ".exe", ".ps1", ".psd1", ".psm1"}

// peExtensions are the PE/COFF image kinds that may be configured.
var peExtensions = []string{".cpl", ".dll", ".efi", ".exe", ".mui", ".ocx", ".scr", ".sys"}

// Format is how a file is signed.
type Format int

const (
	// None: the file is not signed.
	None Format = iota
	// PE: a signature in the image's certificate table.
	PE
	// PowerShell: a signature block appended as comments.
	PowerShell
)

// FormatOf says how a file with this name is signed; only extensions
// in exts (lower case, with the dot) are considered.
func FormatOf(name string, exts []string) Format {
	ext := strings.ToLower(path.Ext(name))
	if !slices.Contains(exts, ext) {
		return None
	}
	return formatOfExt(ext)
}

func formatOfExt(ext string) Format {
	if slices.Contains(peExtensions, ext) {
		return PE
	}
	if _, ok := authenticode.GetSigStyle("x" + ext); ok {
		return PowerShell
	}
	return None
}

// CheckExtensions validates a configured extension list.
func CheckExtensions(exts []string) error {
	for _, e := range exts {
		if e != strings.ToLower(e) || !strings.HasPrefix(e, ".") || strings.Count(e, ".") != 1 {
			return fmt.Errorf("extension %q: write it lower case with one leading dot, e.g. \".exe\"", e)
		}
		if formatOfExt(e) == None {
			ps := authenticode.AllSigStyles()
			sort.Strings(ps)
			return fmt.Errorf("extension %q cannot carry an Authenticode signature; use PE images (%s) or PowerShell files (%s)", e, strings.Join(peExtensions, " "), strings.Join(ps, " "))
		}
	}
	return nil
}

// Settings are the non-secret parts of signing; they go into cache keys.
type Settings struct {
	// TimestampURL is an RFC 3161 time-stamping service; empty signs
	// without a timestamp (and reproducibly).
	TimestampURL string `json:"timestampURL,omitempty"`
	// Description and URL are shown by Windows in the signature details.
	Description string `json:"description,omitempty"`
	URL         string `json:"url,omitempty"`
}

// Signer signs files with one key and settings; safe for concurrent use.
type Signer struct {
	cert   *certloader.Certificate
	params *authenticode.OpusParams
}

// NewSigner prepares signing with key; client is used for timestamps
// (nil: a default client with a timeout).
func NewSigner(key *Key, s Settings, client *http.Client) *Signer {
	cert := *key.cert
	if s.TimestampURL != "" {
		if client == nil {
			client = &http.Client{Timeout: 60 * time.Second}
		}
		cert.Timestamper = timestamper{url: s.TimestampURL, client: client}
	}
	return &Signer{cert: &cert, params: &authenticode.OpusParams{Description: s.Description, URL: s.URL}}
}

// SignFile writes a signed copy of src to dst (which must not be src). An
// existing signature is replaced. name is the file's package path, for
// messages and to choose the format.
func (s *Signer) SignFile(ctx context.Context, format Format, name, src, dst string) error {
	if err := s.signFile(ctx, format, name, src, dst); err != nil {
		os.Remove(dst)
		return fmt.Errorf("signing %s: %w", name, err)
	}
	return nil
}

func (s *Signer) signFile(ctx context.Context, format Format, name, src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	var patch *binpatch.PatchSet
	switch format {
	case PE:
		d, err := authenticode.DigestPE(in, crypto.SHA256, false)
		if err != nil {
			return fmt.Errorf("not a valid PE image (%v); ship a real Windows binary or drop its extension from signing.authenticode.extensions", err)
		}
		if patch, _, err = d.Sign(ctx, s.cert, s.params); err != nil {
			return err
		}
	case PowerShell:
		style, _ := authenticode.GetSigStyle(strings.ToLower(name))
		d, err := authenticode.DigestPowershell(in, style, crypto.SHA256)
		if err != nil {
			return err
		}
		if patch, _, err = d.Sign(ctx, s.cert, s.params); err != nil {
			return err
		}
	default:
		return errors.New("not a signable format")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := in.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if err := patch.Apply(in, dst); err != nil {
		return err
	}
	if format != PE {
		return nil
	}
	// Windows checks the optional header's checksum of signed drivers and
	// osslsigncode reports a stale one; the signature does not cover it.
	out, err := os.OpenFile(dst, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := authenticode.FixPEChecksum(out); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// timestamper asks an RFC 3161 service to countersign.
type timestamper struct {
	url    string
	client *http.Client
}

func (t timestamper) Timestamp(ctx context.Context, req *pkcs9.Request) (*pkcs7.ContentInfoSignedData, error) {
	d := req.Hash.New()
	d.Write(req.EncryptedDigest)
	msg, hreq, err := pkcs9.NewRequest(t.url, req.Hash, d.Sum(nil))
	if err != nil {
		return nil, err
	}
	resp, err := t.client.Do(hreq.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("timestamp server %s: %w (check signing.authenticode.timestampURL, or leave it out to sign without a timestamp)", t.url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("timestamp server %s: %w", t.url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("timestamp server %s: HTTP %s", t.url, resp.Status)
	}
	tok, err := msg.ParseResponse(body)
	if err != nil {
		return nil, fmt.Errorf("timestamp server %s: %w", t.url, err)
	}
	return tok, nil
}

// ErrNotSigned is returned by Verify for a file without a signature.
var ErrNotSigned = errors.New("not signed")

// Signature is a verified Authenticode signature: the content matches the
// signed digest and the signature matches the signer's key. Whether the
// signer is trusted is CheckTrust's question.
type Signature struct {
	Signer        *x509.Certificate
	Intermediates []*x509.Certificate
	// Timestamp is the countersignature's time, or zero.
	Timestamp time.Time
}

// Verify checks the signature of one file's content; name (its package
// path) picks the PowerShell comment style.
func Verify(r io.ReadSeeker, format Format, name string) (*Signature, error) {
	var ts pkcs9.TimestampedSignature
	switch format {
	case PE:
		// A file that is no PE image cannot carry a signature: unsigned,
		// not tampered with.
		if ra, ok := r.(io.ReaderAt); ok {
			if f, err := pe.NewFile(ra); err != nil {
				return nil, fmt.Errorf("%w (not a PE image)", ErrNotSigned)
			} else {
				f.Close()
			}
		}
		sigs, err := authenticode.VerifyPE(r, false)
		if err != nil {
			return nil, verifyErr(err)
		}
		if len(sigs) == 0 {
			return nil, ErrNotSigned
		}
		ts = sigs[0].TimestampedSignature
	case PowerShell:
		style, _ := authenticode.GetSigStyle(strings.ToLower(name))
		sig, err := authenticode.VerifyPowershell(r, style, false)
		if err != nil {
			return nil, verifyErr(err)
		}
		ts = sig.TimestampedSignature
	default:
		return nil, errors.New("not a signable format")
	}
	s := &Signature{Signer: ts.Certificate, Intermediates: ts.Intermediates}
	if ts.CounterSignature != nil {
		s.Timestamp = ts.CounterSignature.SigningTime
	}
	return s, nil
}

func verifyErr(err error) error {
	var ns sigerrors.NotSignedError
	if errors.As(err, &ns) {
		return ErrNotSigned
	}
	return fmt.Errorf("bad signature: %w", err)
}

// CheckTrust accepts the signature if its signer is one of trusted, or
// chains to one of them for code signing at the signature's timestamp (or
// at now when it has none).
func (s *Signature) CheckTrust(trusted []*x509.Certificate, now time.Time) error {
	for _, t := range trusted {
		if bytes.Equal(t.Raw, s.Signer.Raw) {
			if !s.Timestamp.IsZero() {
				now = s.Timestamp
			}
			if now.After(t.NotAfter) || now.Before(t.NotBefore) {
				return fmt.Errorf("signed by %s, whose certificate is not valid at %s", s.Signer.Subject, now.UTC().Format(time.RFC3339))
			}
			return nil
		}
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	for _, t := range trusted {
		roots.AddCert(t)
	}
	for _, c := range s.Intermediates {
		inter.AddCert(c)
	}
	at := now
	if !s.Timestamp.IsZero() {
		at = s.Timestamp
	}
	if _, err := s.Signer.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}}); err != nil {
		return fmt.Errorf("signed by %s, which is not trusted: %w", s.Signer.Subject, err)
	}
	return nil
}

// LoadCertificates reads PEM or DER certificates (the trusted signers).
func LoadCertificates(path string) ([]*x509.Certificate, error) {
	data, err := smallfile.Read(path, 4<<20)
	if err != nil {
		return nil, err
	}
	certs, err := parseCertificates(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return certs, nil
}
