package addonsign

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content/memory"
)

func writePEM(t *testing.T, typ string, der []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSignatureManifestVerifies pushes a signature into a store and checks
// it as cosign does: the tag, the simple-signing payload naming the
// digest, the signature over the payload by the key's public half.
func TestSignatureManifestVerifies(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(ec)
	k, err := Load(writePEM(t, "PRIVATE KEY", der), "")
	if err != nil {
		t.Fatal(err)
	}
	artifact := digest.FromString("an addon manifest")
	sig, err := k.Sign("127.0.0.1:5000/addons/metrics", artifact)
	if err != nil {
		t.Fatal(err)
	}
	if sig.Tag != "sha256-"+artifact.Encoded()+".sig" {
		t.Fatalf("tag %s", sig.Tag)
	}
	// Deterministic (RFC 6979 nonces): pushing the same artifact again
	// writes the same signature manifest instead of moving the tag.
	if again, _ := k.Sign("127.0.0.1:5000/addons/metrics", artifact); again.Digest != sig.Digest {
		t.Fatalf("signing twice gave %s and %s", sig.Digest, again.Digest)
	}
	store := memory.New()
	ctx := context.Background()
	if err := sig.Push(ctx, store); err != nil {
		t.Fatal(err)
	}
	desc, err := store.Resolve(ctx, sig.Tag)
	if err != nil {
		t.Fatal(err)
	}
	read := func(d ocispec.Descriptor) []byte {
		rc, err := store.Fetch(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		b, _ := io.ReadAll(rc)
		return b
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(read(desc), &m); err != nil || len(m.Layers) != 1 || m.Layers[0].MediaType != PayloadMediaType {
		t.Fatalf("manifest %+v %v", m, err)
	}
	body := read(m.Layers[0])
	var p payload
	if err := json.Unmarshal(body, &p); err != nil || p.Critical.Image.DockerManifestDigest != artifact.String() || p.Critical.Type != payloadType {
		t.Fatalf("payload %s", body)
	}
	raw, err := base64.StdEncoding.DecodeString(m.Layers[0].Annotations[SignatureAnnotation])
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(k.PublicPEM)
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	if !ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), sum[:], raw) {
		t.Fatal("the signature does not verify with the public key")
	}
	if ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), sum[:1], raw) {
		t.Fatal("the check is not live")
	}
}

func TestLoadErrors(t *testing.T) {
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	edDER, _ := x509.MarshalPKCS8PrivateKey(edKey)
	if _, err := Load(writePEM(t, "PRIVATE KEY", edDER), ""); err != nil {
		t.Fatalf("Ed25519: %v", err)
	}
	text := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(text, []byte("hello"), 0o600)
	for _, tc := range []struct{ name, path, password, want string }{
		{"missing", filepath.Join(t.TempDir(), "nope.key"), "", EnvKey},
		{"not PEM", text, "", "not a PEM key"},
		{"certificate", writePEM(t, "CERTIFICATE", []byte{1}), "", `PEM block "CERTIFICATE" is not a private key`},
		{"garbage key", writePEM(t, "PRIVATE KEY", []byte{1, 2, 3}), "", "unreadable private key"},
		{"garbage envelope", writePEM(t, "ENCRYPTED SIGSTORE PRIVATE KEY", []byte("{}")), "pw", "cosign key"},
	} {
		_, err := Load(tc.path, tc.password)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.path) {
			t.Errorf("%s: %v; want it to name %s and say %q", tc.name, err, tc.path, tc.want)
		}
	}
	env := map[string]string{EnvKey: text, EnvPassword: "a", EnvPasswordFile: text}
	if _, err := FromEnv(func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), "set one") {
		t.Errorf("both passwords: %v", err)
	}
	if k, err := FromEnv(func(string) string { return "" }); k != nil || err != nil {
		t.Errorf("unset: %v %v", k, err)
	}
}
