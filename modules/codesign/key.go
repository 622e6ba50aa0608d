// Package codesign signs and verifies Windows content with Authenticode:
// PE images (.exe, .dll, …) and PowerShell scripts (.ps1, .psm1, .psd1),
// using relic's Authenticode library. Signatures carry no signing time, and
// both RSA PKCS#1 v1.5 and (RFC 6979) ECDSA signatures are deterministic,
// so the same file, certificate and settings always give the same bytes
// unless a timestamp server is used.
package codesign

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/sassoftware/relic/v8/lib/certloader"
	"software.sslmate.com/src/go-pkcs12"

	"github.com/relcue/release/internal/smallfile"
)

// Environment variables the signing credential comes from. The password
// never comes from the configuration and is never logged.
const (
	EnvPKCS12       = "RELEASE_AUTHENTICODE_PKCS12"
	EnvPassword     = "RELEASE_AUTHENTICODE_PASSWORD"
	EnvPasswordFile = "RELEASE_AUTHENTICODE_PASSWORD_FILE"
)

// maxPKCS12 bounds the credential file read into memory.
const maxPKCS12 = 1 << 20

// Key is a loaded code-signing credential.
type Key struct {
	cert *certloader.Certificate
	// Fingerprint is the hex SHA-256 of the signing certificate (DER); it
	// identifies the credential in cache keys without revealing anything.
	Fingerprint string
	Subject     string
	NotAfter    time.Time
	// Source names where the key came from, for messages.
	Source string
}

// Leaf is the signing certificate.
func (k *Key) Leaf() *x509.Certificate { return k.cert.Leaf }

// FromEnv loads the credential the environment names, or returns nil when
// EnvPKCS12 is not set. now is the time certificates must be valid at.
func FromEnv(getenv func(string) string, now time.Time) (*Key, error) {
	path := getenv(EnvPKCS12)
	if path == "" {
		return nil, nil
	}
	password, err := password(getenv)
	if err != nil {
		return nil, err
	}
	return LoadPKCS12(path, password, now)
}

func password(getenv func(string) string) (string, error) {
	pw, file := getenv(EnvPassword), getenv(EnvPasswordFile)
	switch {
	case pw != "" && file != "":
		return "", fmt.Errorf("both %s and %s are set; set one", EnvPassword, EnvPasswordFile)
	case file != "":
		data, err := smallfile.Read(file, 64<<10)
		if err != nil {
			return "", fmt.Errorf("%s: %w", EnvPasswordFile, err)
		}
		return strings.TrimRight(string(data), "\r\n"), nil
	}
	return pw, nil
}

// LoadPKCS12 reads a PKCS#12 (.pfx/.p12) file holding the signing key, its
// certificate and optionally the chain, and checks that it can sign code
// at now.
func LoadPKCS12(path, password string, now time.Time) (*Key, error) {
	fail := func(format string, args ...any) (*Key, error) {
		return nil, fmt.Errorf("authenticode key %s: %s", path, fmt.Sprintf(format, args...))
	}
	blob, err := smallfile.Read(path, maxPKCS12)
	if err != nil {
		return fail("%v; set %s to a readable PKCS#12 file", err, EnvPKCS12)
	}
	priv, leaf, chain, err := pkcs12.DecodeChain(blob, password)
	switch {
	case errors.Is(err, pkcs12.ErrIncorrectPassword):
		return fail("wrong password; set %s or %s to the file's password", EnvPassword, EnvPasswordFile)
	case err != nil:
		return fail("not a usable PKCS#12 file (%v); export the certificate with its private key as .pfx", err)
	case priv == nil:
		return fail("holds no private key; export the certificate with its private key")
	}
	signer, ok := priv.(crypto.Signer)
	if !ok {
		return fail("the private key (%T) cannot sign", priv)
	}
	switch k := signer.(type) {
	case *rsa.PrivateKey:
		if !k.PublicKey.Equal(leaf.PublicKey) {
			return fail("the private key does not belong to the certificate %s", leaf.Subject)
		}
	case *ecdsa.PrivateKey:
		if !k.PublicKey.Equal(leaf.PublicKey) {
			return fail("the private key does not belong to the certificate %s", leaf.Subject)
		}
	default:
		return fail("%T keys cannot make Authenticode signatures; use RSA or ECDSA", priv)
	}
	if now.Before(leaf.NotBefore) {
		return fail("certificate %s is not valid before %s", leaf.Subject, leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	if now.After(leaf.NotAfter) {
		return fail("certificate %s expired on %s; renew it", leaf.Subject, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if len(leaf.ExtKeyUsage) > 0 && !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageCodeSigning) && !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageAny) {
		return fail("certificate %s is not for code signing (its extended key usage lacks codeSigning)", leaf.Subject)
	}
	sum := sha256.Sum256(leaf.Raw)
	return &Key{
		cert: &certloader.Certificate{
			PrivateKey:   deterministic{signer},
			Leaf:         leaf,
			Certificates: append([]*x509.Certificate{leaf}, chain...),
		},
		Fingerprint: hex.EncodeToString(sum[:]),
		Subject:     leaf.Subject.String(),
		NotAfter:    leaf.NotAfter,
		Source:      path,
	}, nil
}

// deterministic signs without randomness: RSA PKCS#1 v1.5 ignores it, and
// ECDSA without a random source signs per RFC 6979, so signing twice gives
// the same bytes.
type deterministic struct{ crypto.Signer }

func (d deterministic) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if _, ok := opts.(*rsa.PSSOptions); ok {
		return nil, errors.New("RSA-PSS signatures are randomised; Authenticode signs with PKCS#1 v1.5")
	}
	return d.Signer.Sign(nil, digest, opts)
}

func parseCertificates(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		c, err := x509.ParseCertificate(data)
		if err != nil {
			return nil, errors.New("holds no certificate (want PEM \"CERTIFICATE\" blocks or one DER certificate)")
		}
		certs = append(certs, c)
	}
	return certs, nil
}
