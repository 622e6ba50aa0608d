package addonsign

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content/memory"
)

// Media types and annotations of cosign's signature format.
const (
	PayloadMediaType    = "application/vnd.dev.cosign.simplesigning.v1+json"
	SignatureAnnotation = "dev.cosignproject.cosign/signature"
	payloadType         = "cosign container image signature"
)

// Signature is a signature manifest, ready to push.
type Signature struct {
	// Tag is sha256-<hex>.sig: where cosign looks for the signatures of
	// the artifact with that digest.
	Tag    string
	Digest digest.Digest
	store  *memory.Store
	desc   ocispec.Descriptor
}

// payload is cosign's simple-signing payload; field order is cosign's.
type payload struct {
	Critical struct {
		Identity struct {
			DockerReference string `json:"docker-reference"`
		} `json:"identity"`
		Image struct {
			DockerManifestDigest string `json:"docker-manifest-digest"`
		} `json:"image"`
		Type string `json:"type"`
	} `json:"critical"`
	Optional map[string]any `json:"optional"`
}

// TagFor is the tag of the signatures of the artifact with digest d.
func TagFor(d digest.Digest) string {
	return strings.Replace(d.String(), ":", "-", 1) + ".sig"
}

// Sign makes the signature manifest for the artifact d in repository repo
// (host/path, no tag).
func (k *Key) Sign(repo string, d digest.Digest) (*Signature, error) {
	var p payload
	p.Critical.Identity.DockerReference = repo
	p.Critical.Image.DockerManifestDigest = d.String()
	p.Critical.Type = payloadType
	body, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	sig, err := k.sign(body)
	if err != nil {
		return nil, fmt.Errorf("sign %s@%s: %w", repo, d, err)
	}
	layer := ocispec.Descriptor{
		MediaType: PayloadMediaType, Digest: digest.FromBytes(body), Size: int64(len(body)),
		Annotations: map[string]string{SignatureAnnotation: base64.StdEncoding.EncodeToString(sig)},
	}
	config, err := json.Marshal(ocispec.Image{
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{layer.Digest}},
	})
	if err != nil {
		return nil, err
	}
	configDesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(config), Size: int64(len(config))}
	manifest, err := json.Marshal(ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: configDesc, Layers: []ocispec.Descriptor{layer},
	})
	if err != nil {
		return nil, err
	}
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(manifest), Size: int64(len(manifest))}
	store := memory.New()
	ctx := context.Background()
	for _, b := range []struct {
		d    ocispec.Descriptor
		data []byte
	}{{layer, body}, {configDesc, config}, {desc, manifest}} {
		if err := store.Push(ctx, b.d, bytes.NewReader(b.data)); err != nil {
			return nil, err
		}
	}
	if err := store.Tag(ctx, desc, TagFor(d)); err != nil {
		return nil, err
	}
	return &Signature{Tag: TagFor(d), Digest: desc.Digest, store: store, desc: desc}, nil
}

// Push copies the signature manifest into dst (a repository) under its
// tag; blobs the registry has are not uploaded again.
func (s *Signature) Push(ctx context.Context, dst oras.Target) error {
	_, err := oras.Copy(ctx, s.store, s.Tag, dst, s.Tag, oras.DefaultCopyOptions)
	return err
}
