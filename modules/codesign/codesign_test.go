package codesign_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relcue/release/internal/peers"
	"github.com/relcue/release/modules/codesign"
	"github.com/relcue/release/modules/codesign/codesigntest"
)

const psScript = "# K2s setup script\r\nparam([string]$Name)\r\nWrite-Output \"hello $Name\"\r\n"

func loadKey(t *testing.T, c *codesigntest.Credential) *codesign.Key {
	t.Helper()
	k, err := codesign.LoadPKCS12(c.PKCS12, c.Password, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// signed signs src as name and returns the signed file.
func signed(t *testing.T, s *codesign.Signer, name, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(name))
	if err := s.SignFile(context.Background(), codesign.FormatOf(name, codesign.DefaultExtensions), name, src, dst); err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestSignedFilesPassOsslsigncodeAndAreReproducible(t *testing.T) {
	tool := peers.Tool(t, "osslsigncode")
	for _, ecdsa := range []bool{false, true} {
		dir := t.TempDir()
		cred := codesigntest.New(t, dir, codesigntest.Options{ECDSA: ecdsa})
		s := codesign.NewSigner(loadKey(t, cred), codesign.Settings{Description: "K2s", URL: "https://example.invalid/k2s"}, nil)
		ps := filepath.Join(dir, "Install.ps1")
		if err := os.WriteFile(ps, []byte(psScript), 0o644); err != nil {
			t.Fatal(err)
		}
		psm := filepath.Join(dir, "k2s.psm1")
		if err := os.WriteFile(psm, []byte(psScript), 0o644); err != nil {
			t.Fatal(err)
		}
		for name, src := range map[string]string{
			"bin/k2s.exe": codesigntest.WindowsExe(t, "k2s"), "lib/Install.ps1": ps, "lib/k2s.psm1": psm,
		} {
			a, b := signed(t, s, name, src), signed(t, s, name, src)
			da, _ := os.ReadFile(a)
			db, _ := os.ReadFile(b)
			orig, _ := os.ReadFile(src)
			if !bytes.Equal(da, db) {
				t.Errorf("ecdsa=%v %s: signing twice gave different bytes", ecdsa, name)
			}
			if bytes.Equal(da, orig) {
				t.Errorf("%s: signing changed nothing", name)
			}
			if out, err := exec.Command(tool, "verify", "-CAfile", cred.CAPEM, "-in", a).CombinedOutput(); err != nil {
				t.Errorf("ecdsa=%v: osslsigncode refuses signed %s: %v\n%s", ecdsa, name, err, out)
			}
			f, _ := os.Open(a)
			sig, err := codesign.Verify(f, codesign.FormatOf(name, codesign.DefaultExtensions), name)
			f.Close()
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if err := sig.CheckTrust([]*x509.Certificate{cred.Leaf}, time.Now()); err != nil {
				t.Errorf("%s: %v", name, err)
			}
			// Signing a signed file replaces the signature: same bytes.
			if again, _ := os.ReadFile(signed(t, s, name, a)); !bytes.Equal(again, da) {
				t.Errorf("%s: re-signing a signed file did not replace its signature", name)
			}
			// A tampered file is refused by both us and osslsigncode.
			tampered := filepath.Join(t.TempDir(), filepath.Base(name))
			bad := bytes.Clone(da)
			if strings.HasSuffix(name, ".exe") {
				bad[len(bad)/3] ^= 0xff
			} else {
				bad = bytes.Replace(bad, []byte("hello"), []byte("HELLO"), 1)
			}
			os.WriteFile(tampered, bad, 0o644)
			f, _ = os.Open(tampered)
			_, err = codesign.Verify(f, codesign.FormatOf(name, codesign.DefaultExtensions), name)
			f.Close()
			if err == nil || errors.Is(err, codesign.ErrNotSigned) {
				t.Errorf("%s: tampered file verified: %v", name, err)
			}
			if out, err := exec.Command(tool, "verify", "-CAfile", cred.CAPEM, "-in", tampered).CombinedOutput(); err == nil {
				t.Errorf("osslsigncode accepts tampered %s:\n%s", name, out)
			}
		}
	}
}

func TestTrust(t *testing.T) {
	dir := t.TempDir()
	cred := codesigntest.New(t, dir, codesigntest.Options{})
	other := codesigntest.New(t, t.TempDir(), codesigntest.Options{Name: "someone else"})
	s := codesign.NewSigner(loadKey(t, cred), codesign.Settings{}, nil)
	p := signed(t, s, "a.exe", codesigntest.WindowsExe(t, "trust"))
	f, _ := os.Open(p)
	defer f.Close()
	sig, err := codesign.Verify(f, codesign.PE, "a.exe")
	if err != nil {
		t.Fatal(err)
	}
	ca, err := codesign.LoadCertificates(cred.CAPEM)
	if err != nil {
		t.Fatal(err)
	}
	if err := sig.CheckTrust(ca, time.Now()); err != nil {
		t.Errorf("chain to the CA: %v", err)
	}
	otherCA, _ := codesign.LoadCertificates(other.CAPEM)
	if err := sig.CheckTrust(otherCA, time.Now()); err == nil || !strings.Contains(err.Error(), "not trusted") {
		t.Errorf("another CA trusted it: %v", err)
	}
	if err := sig.CheckTrust([]*x509.Certificate{cred.Leaf}, time.Now().AddDate(2, 0, 0)); err == nil {
		t.Error("an untimestamped signature stays valid after its certificate expired")
	}
	unsigned, _ := os.Open(codesigntest.WindowsExe(t, "trust"))
	defer unsigned.Close()
	if _, err := codesign.Verify(unsigned, codesign.PE, "a.exe"); !errors.Is(err, codesign.ErrNotSigned) {
		t.Errorf("unsigned: %v", err)
	}
}

func TestBadCredentials(t *testing.T) {
	dir := t.TempDir()
	good := codesigntest.New(t, dir, codesigntest.Options{})
	expired := codesigntest.New(t, t.TempDir(), codesigntest.Options{NotAfter: time.Now().Add(-time.Hour)})
	tls := codesigntest.New(t, t.TempDir(), codesigntest.Options{Usage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	unreadable := filepath.Join(dir, "locked.pfx")
	os.WriteFile(unreadable, []byte("x"), 0o000)
	junk := filepath.Join(dir, "junk.pfx")
	os.WriteFile(junk, []byte("not a pfx"), 0o600)
	for _, c := range []struct {
		name, path, password, want string
	}{
		{"wrong password", good.PKCS12, "nope", "wrong password; set RELEASE_AUTHENTICODE_PASSWORD"},
		{"expired", expired.PKCS12, expired.Password, "expired on"},
		{"not for code signing", tls.PKCS12, tls.Password, "not for code signing"},
		{"missing", filepath.Join(dir, "missing.pfx"), "x", "no such file"},
		{"not PKCS#12", junk, "x", "not a usable PKCS#12 file"},
	} {
		_, err := codesign.LoadPKCS12(c.path, c.password, time.Now())
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.path) {
			t.Errorf("%s: %v, want an error naming %s and saying %q", c.name, err, c.path, c.want)
		}
		if err != nil && strings.Contains(err.Error(), good.Password) {
			t.Errorf("%s: the error shows the password", c.name)
		}
	}
	if os.Getuid() != 0 {
		if _, err := codesign.LoadPKCS12(unreadable, "x", time.Now()); err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("unreadable: %v", err)
		}
	}
	env := map[string]string{codesign.EnvPKCS12: good.PKCS12, codesign.EnvPasswordFile: filepath.Join(dir, "pw")}
	os.WriteFile(env[codesign.EnvPasswordFile], []byte(good.Password+"\n"), 0o600)
	if k, err := codesign.FromEnv(func(k string) string { return env[k] }, time.Now()); err != nil || k == nil {
		t.Errorf("password file: %v", err)
	}
	if k, err := codesign.FromEnv(func(string) string { return "" }, time.Now()); k != nil || err != nil {
		t.Errorf("no environment: %v %v", k, err)
	}
}

func TestNotAPEImage(t *testing.T) {
	dir := t.TempDir()
	cred := codesigntest.New(t, dir, codesigntest.Options{})
	s := codesign.NewSigner(loadKey(t, cred), codesign.Settings{}, nil)
	src := filepath.Join(dir, "k2s.exe")
	os.WriteFile(src, []byte("echo not a binary"), 0o644)
	dst := filepath.Join(dir, "out.exe")
	err := s.SignFile(context.Background(), codesign.PE, "bin/k2s.exe", src, dst)
	if err == nil || !strings.Contains(err.Error(), "bin/k2s.exe") || !strings.Contains(err.Error(), "not a valid PE image") {
		t.Fatalf("%v", err)
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Error("a failed signing left its output")
	}
}

func TestTimestampServerDown(t *testing.T) {
	dir := t.TempDir()
	cred := codesigntest.New(t, dir, codesigntest.Options{})
	s := codesign.NewSigner(loadKey(t, cred), codesign.Settings{TimestampURL: "http://127.0.0.1:1/tsa"}, nil)
	dst := filepath.Join(dir, "out.exe")
	err := s.SignFile(context.Background(), codesign.PE, "bin/k2s.exe", codesigntest.WindowsExe(t, "tsa"), dst)
	if err == nil || !strings.Contains(err.Error(), "timestamp server http://127.0.0.1:1/tsa") {
		t.Fatalf("%v", err)
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Error("a failed signing left its output")
	}
}

func TestCheckExtensions(t *testing.T) {
	if err := codesign.CheckExtensions(codesign.DefaultExtensions); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{".EXE", "exe", ".txt", ".tar.gz"} {
		if err := codesign.CheckExtensions([]string{bad}); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("%s: %v", bad, err)
		}
	}
}
