package codesign_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/digitorus/timestamp"

	"github.com/relcue/release/internal/peers"
	"github.com/relcue/release/modules/codesign"
	"github.com/relcue/release/modules/codesign/codesigntest"
)

// tsa is an RFC 3161 time-stamping authority on loopback: its own CA and
// a time-stamping certificate, answering every request at a fixed time.
type tsa struct {
	url, caPEM string
	at         time.Time
	requests   atomic.Int32
}

func startTSA(t *testing.T, at time.Time) *tsa {
	t.Helper()
	now := time.Now()
	caKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test TSA CA"},
		NotBefore: now.AddDate(-10, 0, 0), NotAfter: now.AddDate(10, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	// RFC 3161 2.3: the time-stamping purpose, critical, and only it.
	eku, _ := asn1.Marshal([]asn1.ObjectIdentifier{{1, 3, 6, 1, 5, 5, 7, 3, 8}})
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "test TSA"},
		NotBefore: now.AddDate(-10, 0, 0), NotAfter: now.AddDate(10, 0, 0),
		KeyUsage:        x509.KeyUsageDigitalSignature,
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 37}, Critical: true, Value: eku}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	s := &tsa{at: at, caPEM: filepath.Join(t.TempDir(), "tsa-ca.pem")}
	os.WriteFile(s.caPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		body, _ := io.ReadAll(r.Body)
		req, err := timestamp.ParseRequest(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		ts := timestamp.Timestamp{
			HashAlgorithm: req.HashAlgorithm, HashedMessage: req.HashedMessage, Nonce: req.Nonce,
			Time: s.at, SerialNumber: big.NewInt(int64(s.requests.Load())), Policy: asn1.ObjectIdentifier{1, 2, 3, 4, 1},
			AddTSACertificate: true,
		}
		resp, err := ts.CreateResponseWithOpts(cert, key, crypto.SHA256)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/timestamp-reply")
		w.Write(resp)
	}))
	t.Cleanup(srv.Close)
	s.url = srv.URL + "/tsa"
	return s
}

// TestTimestampedSignatures signs through a real RFC 3161 exchange:
// osslsigncode accepts the countersignature against the TSA's CA, Verify
// reports its time, and trust is judged at that time, so the signature
// outlives its certificate.
func TestTimestampedSignatures(t *testing.T) {
	tool := peers.Tool(t, "osslsigncode")
	at := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	ts := startTSA(t, at)
	dir := t.TempDir()
	cred := codesigntest.New(t, dir, codesigntest.Options{})
	s := codesign.NewSigner(loadKey(t, cred), codesign.Settings{TimestampURL: ts.url}, nil)
	ps := filepath.Join(dir, "Install.ps1")
	os.WriteFile(ps, []byte(psScript), 0o644)
	for name, src := range map[string]string{"bin/k2s.exe": codesigntest.WindowsExe(t, "timestamped"), "lib/Install.ps1": ps} {
		before := ts.requests.Load()
		p := signed(t, s, name, src)
		if ts.requests.Load() == before {
			t.Fatalf("%s: the TSA was not asked", name)
		}
		out, err := exec.Command(tool, "verify", "-CAfile", cred.CAPEM, "-TSA-CAfile", ts.caPEM, "-in", p).CombinedOutput()
		if err != nil {
			t.Fatalf("osslsigncode refuses timestamped %s: %v\n%s", name, err, out)
		}
		f, _ := os.Open(p)
		sig, err := codesign.Verify(f, codesign.FormatOf(name, codesign.DefaultExtensions), name)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !sig.Timestamp.Equal(at) {
			t.Errorf("%s: timestamp %v, want %v", name, sig.Timestamp, at)
		}
		// Two years on the certificate has expired; the timestamp says
		// the file was signed while it was valid.
		if err := sig.CheckTrust([]*x509.Certificate{cred.Leaf}, time.Now().AddDate(2, 0, 0)); err != nil {
			t.Errorf("%s: a timestamped signature after expiry: %v", name, err)
		}
	}
}

// A TSA that answers with an error fails the signing with its message,
// and nothing is written.
func TestTimestampServerRefuses(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "quota exceeded", http.StatusTooManyRequests)
	}))
	defer srv.Close()
	dir := t.TempDir()
	cred := codesigntest.New(t, dir, codesigntest.Options{})
	s := codesign.NewSigner(loadKey(t, cred), codesign.Settings{TimestampURL: srv.URL}, nil)
	dst := filepath.Join(dir, "out.exe")
	err := s.SignFile(context.Background(), codesign.PE, "bin/k2s.exe", codesigntest.WindowsExe(t, "tsa"), dst)
	if err == nil || !strings.Contains(err.Error(), "429") {
		t.Fatalf("%v", err)
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Error("a failed signing left its output")
	}
}
