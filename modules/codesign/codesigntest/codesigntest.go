// Package codesigntest makes throwaway code-signing credentials and real
// Windows binaries for tests.
package codesigntest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"software.sslmate.com/src/go-pkcs12"
)

// Credential is a PKCS#12 file and what verifiers need to trust it.
type Credential struct {
	PKCS12   string // path of the .pfx
	Password string
	// CAPEM is the root CA certificate (PEM) the signing certificate
	// chains to; LeafPEM the signing certificate itself.
	CAPEM, LeafPEM string
	Leaf           *x509.Certificate
}

// Options vary the credential.
type Options struct {
	// NotAfter of the signing certificate (default: a year from now).
	NotAfter time.Time
	// ECDSA makes a P-256 key instead of RSA-2048.
	ECDSA bool
	// Usage overrides the extended key usage (default code signing).
	Usage []x509.ExtKeyUsage
	Name  string // common name (default "release test signer")
}

// New writes a CA, a code-signing certificate issued by it and a
// password-protected PKCS#12 with key, certificate and CA into dir.
func New(t testing.TB, dir string, o Options) *Credential {
	t.Helper()
	c, err := Generate(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Generate is New for programs that are not tests (the benchmarks).
func Generate(dir string, o Options) (*Credential, error) {
	now := time.Now()
	if o.NotAfter.IsZero() {
		o.NotAfter = now.AddDate(1, 0, 0)
	}
	if o.Usage == nil {
		o.Usage = []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}
	}
	if o.Name == "" {
		o.Name = "release test signer"
	}
	caKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: o.Name + " CA", Organization: []string{"release tests"}},
		NotBefore: now.Add(-48 * time.Hour), NotAfter: now.AddDate(5, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, _ := x509.ParseCertificate(caDER)
	var key any
	var pub any
	if o.ECDSA {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		key, pub = k, &k.PublicKey
	} else {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, err
		}
		key, pub = k, &k.PublicKey
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: o.Name, Organization: []string{"release tests"}},
		NotBefore: now.Add(-24 * time.Hour), NotAfter: o.NotAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: o.Usage,
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, pub, caKey)
	if err != nil {
		return nil, err
	}
	leaf, _ := x509.ParseCertificate(leafDER)
	c := &Credential{
		PKCS12: filepath.Join(dir, "signer.pfx"), Password: "correct horse battery staple",
		CAPEM: filepath.Join(dir, "ca.pem"), LeafPEM: filepath.Join(dir, "signer.pem"), Leaf: leaf,
	}
	pfx, err := pkcs12.Modern.Encode(key, leaf, []*x509.Certificate{ca}, c.Password)
	if err != nil {
		return nil, err
	}
	for p, data := range map[string][]byte{
		c.PKCS12:  pfx,
		c.CAPEM:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		c.LeafPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}),
	} {
		if err := os.WriteFile(p, data, 0o600); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Env is the environment that hands the credential to release.
func (c *Credential) Env() []string {
	return []string{"RELEASE_AUTHENTICODE_PKCS12=" + c.PKCS12, "RELEASE_AUTHENTICODE_PASSWORD=" + c.Password}
}

var (
	exeOnce sync.Once
	exeDir  string
	exeErr  error
)

// WindowsExe returns a real PE image (a small Go program built for
// windows/amd64), built once per test process; variant is printed by the
// program, so different variants are different images.
func WindowsExe(t testing.TB, variant string) string {
	t.Helper()
	p, err := BuildWindowsExe(variant)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// BuildWindowsExe is WindowsExe for programs that are not tests.
func BuildWindowsExe(variant string) (string, error) {
	exeOnce.Do(func() { exeDir, exeErr = os.MkdirTemp("", "codesigntest-exe-") })
	if exeErr != nil {
		return "", exeErr
	}
	sum := sha256.Sum256([]byte(variant))
	id := hex.EncodeToString(sum[:8])
	out := filepath.Join(exeDir, id+".exe")
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	src := filepath.Join(exeDir, id)
	if err := os.MkdirAll(src, 0o755); err != nil {
		return "", err
	}
	prog := "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(" + strconv.Quote(variant) + ") }\n"
	if err := os.WriteFile(filepath.Join(src, "main.go"), []byte(prog), 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(src, "go.mod"), []byte("module example.invalid/v"+id+"\n\ngo 1.22\n"), 0o644); err != nil {
		return "", err
	}
	f, err := os.CreateTemp(exeDir, id+"-*.tmp")
	if err != nil {
		return "", err
	}
	f.Close()
	tmp := f.Name()
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w -buildid=", "-o", tmp, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=0", "GOFLAGS=", "GOWORK=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building a Windows test binary: %v\n%s", err, b)
	}
	if err := os.Rename(tmp, out); err != nil {
		return "", err
	}
	return out, nil
}
