// Package addonsign signs pushed OCI artifacts in the cosign/sigstore
// format, key-based and offline: a signature manifest tagged
// sha256-<digest>.sig in the artifact's repository, whose one layer is the
// simple-signing payload naming the artifact's digest and whose annotation
// holds the signature. `cosign verify --key` checks it.
package addonsign

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/nacl/secretbox"
	"golang.org/x/crypto/scrypt"

	"github.com/relcue/release/internal/smallfile"
)

// Environment variables of the signing key; COSIGN_PASSWORD is cosign's
// own, so a key made with `cosign generate-key-pair` works as it is.
const (
	EnvKey          = "RELEASE_COSIGN_KEY"
	EnvPassword     = "COSIGN_PASSWORD"
	EnvPasswordFile = "RELEASE_COSIGN_PASSWORD_FILE"
)

// Key signs artifacts.
type Key struct {
	signer crypto.Signer
	// Fingerprint is the hex SHA-256 of the public key (PKIX DER).
	Fingerprint string
	// PublicPEM is the public key as `cosign verify --key` reads it.
	PublicPEM []byte
	Source    string
}

// FromEnv loads the key the environment names, or nil when EnvKey is unset.
func FromEnv(getenv func(string) string) (*Key, error) {
	path := getenv(EnvKey)
	if path == "" {
		return nil, nil
	}
	pw, file := getenv(EnvPassword), getenv(EnvPasswordFile)
	if pw != "" && file != "" {
		return nil, fmt.Errorf("both %s and %s are set; set one", EnvPassword, EnvPasswordFile)
	}
	if file != "" {
		data, err := smallfile.Read(file, 64<<10)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", EnvPasswordFile, err)
		}
		pw = strings.TrimRight(string(data), "\r\n")
	}
	return Load(path, pw)
}

// Load reads a cosign private key (ENCRYPTED SIGSTORE/COSIGN PRIVATE KEY,
// as `cosign generate-key-pair` writes it) or an unencrypted PKCS#8 or EC
// PEM key.
func Load(path, password string) (*Key, error) {
	fail := func(format string, args ...any) (*Key, error) {
		return nil, fmt.Errorf("cosign key %s: %s", path, fmt.Sprintf(format, args...))
	}
	data, err := smallfile.Read(path, 1<<20)
	if err != nil {
		return fail("%v; set %s to a readable key file", err, EnvKey)
	}
	b, _ := pem.Decode(data)
	if b == nil {
		return fail("not a PEM key; make one with `cosign generate-key-pair`")
	}
	var der []byte
	switch b.Type {
	case "ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY":
		if der, err = decrypt(b.Bytes, password); err != nil {
			return fail("%v", err)
		}
	case "PRIVATE KEY", "EC PRIVATE KEY":
		der = b.Bytes
	default:
		return fail("PEM block %q is not a private key", b.Type)
	}
	priv, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		if ec, err2 := x509.ParseECPrivateKey(der); err2 == nil {
			priv, err = ec, nil
		}
	}
	if err != nil {
		return fail("unreadable private key: %v", err)
	}
	var signer crypto.Signer
	switch k := priv.(type) {
	case *ecdsa.PrivateKey:
		signer = k
	case *rsa.PrivateKey:
		signer = k
	case ed25519.PrivateKey:
		signer = k
	default:
		return fail("%T keys are not supported; use ECDSA (cosign's default), RSA or Ed25519", priv)
	}
	pub, err := x509.MarshalPKIXPublicKey(signer.Public())
	if err != nil {
		return fail("%v", err)
	}
	sum := sha256.Sum256(pub)
	return &Key{
		signer:      signer,
		Fingerprint: hex.EncodeToString(sum[:]),
		PublicPEM:   pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}),
		Source:      path,
	}, nil
}

// encrypted is go-securesystemslib's encrypted-key envelope, which cosign
// uses: scrypt for the key, NaCl secretbox for the cipher.
type encrypted struct {
	KDF struct {
		Name   string `json:"name"`
		Params struct {
			N, R, P int
		} `json:"params"`
		Salt []byte `json:"salt"`
	} `json:"kdf"`
	Cipher struct {
		Name  string `json:"name"`
		Nonce []byte `json:"nonce"`
	} `json:"cipher"`
	Ciphertext []byte `json:"ciphertext"`
}

func decrypt(envelope []byte, password string) ([]byte, error) {
	var e encrypted
	if err := json.Unmarshal(envelope, &e); err != nil {
		return nil, fmt.Errorf("unreadable encrypted key: %w", err)
	}
	if e.KDF.Name != "scrypt" || e.Cipher.Name != "nacl/secretbox" || len(e.Cipher.Nonce) != 24 {
		return nil, fmt.Errorf("unsupported key encryption %s/%s", e.KDF.Name, e.Cipher.Name)
	}
	if e.KDF.Params.N <= 1 || e.KDF.Params.N > 1<<22 || e.KDF.Params.R <= 0 || e.KDF.Params.P <= 0 {
		return nil, errors.New("implausible scrypt parameters")
	}
	k, err := scrypt.Key([]byte(password), e.KDF.Salt, e.KDF.Params.N, e.KDF.Params.R, e.KDF.Params.P, 32)
	if err != nil {
		return nil, err
	}
	var key [32]byte
	var nonce [24]byte
	copy(key[:], k)
	copy(nonce[:], e.Cipher.Nonce)
	out, ok := secretbox.Open(nil, e.Ciphertext, &nonce, &key)
	if !ok {
		return nil, fmt.Errorf("wrong password; set %s or %s to the key's password", EnvPassword, EnvPasswordFile)
	}
	return out, nil
}

// sign signs the SHA-256 of payload: deterministically for ECDSA (RFC
// 6979) and RSA PKCS#1 v1.5, so the same artifact gets the same
// signature manifest.
func (k *Key) sign(payload []byte) ([]byte, error) {
	if _, ok := k.signer.(ed25519.PrivateKey); ok {
		return k.signer.Sign(nil, payload, crypto.Hash(0))
	}
	sum := sha256.Sum256(payload)
	return k.signer.Sign(nil, sum[:], crypto.SHA256)
}
