package image

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Annotations naming an image in an index.json. containerd writes the full
// name into its own key and may put only the tag into the OCI one, so both
// are accepted when choosing a base, and both are written.
const (
	annotationRefName       = "org.opencontainers.image.ref.name"
	annotationContainerName = "io.containerd.image.name"
	annotationBaseName      = "org.opencontainers.image.base.name"
	annotationBaseDigest    = "org.opencontainers.image.base.digest"
)

// baseStore is an opened base: an index (layout or OCI archive) or a
// single docker-save image.
type baseStore struct {
	what   string // for messages: "base layout x", "base tarball y"
	ref    string
	index  v1.ImageIndex // nil for docker-save
	docker v1.Image      // docker-save image, else nil
	close  func() error
}

// baseImage is the image of a base chosen for one platform, checked
// against its descriptors.
type baseImage struct {
	img      v1.Image
	digest   v1.Hash
	manifest *v1.Manifest
	config   *v1.ConfigFile
	// docker: layers are stored uncompressed under their diff IDs, see
	// build.go.
	docker bool
}

func openBase(b *Base, p string) (*baseStore, error) {
	s := &baseStore{what: "base " + b.Format + " " + p, ref: b.Ref, close: func() error { return nil }}
	switch b.Format {
	case FormatLayout:
		if _, err := os.Stat(filepath.Join(p, "oci-layout")); err != nil {
			return nil, fmt.Errorf("%s is not an OCI image layout (no oci-layout file); give a directory written by skopeo copy ... oci:DIR, crane pull --format=oci or similar", s.what)
		}
		lp, err := layout.FromPath(p)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.what, err)
		}
		if s.index, err = lp.ImageIndex(); err != nil {
			return nil, fmt.Errorf("%s: %w", s.what, err)
		}
		return s, nil
	case FormatTarball:
		a, err := openArchive(p)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.what, err)
		}
		if a.has("index.json") {
			// An OCI archive, or a docker save of Docker 25+, which holds
			// an OCI layout next to its manifest.json.
			s.close = a.Close
			if s.index, err = a.rootIndex(); err != nil {
				a.Close()
				return nil, fmt.Errorf("%s: %w", s.what, err)
			}
			return s, nil
		}
		hasManifest := a.has("manifest.json")
		a.Close()
		if !hasManifest {
			return nil, fmt.Errorf("%s holds neither index.json (OCI archive) nor manifest.json (docker save)", s.what)
		}
		var tag *name.Tag
		if b.Ref != "" {
			t, err := name.NewTag(b.Ref)
			if err != nil {
				return nil, fmt.Errorf("%s: base ref %q: %w", s.what, b.Ref, err)
			}
			tag = &t
		}
		img, err := tarball.ImageFromPath(p, tag)
		if err != nil {
			return nil, fmt.Errorf("%s (docker save format): %w", s.what, err)
		}
		s.docker = img
		return s, nil
	}
	return nil, fmt.Errorf("base format %q is neither %q nor %q", b.Format, FormatLayout, FormatTarball)
}

// checkBase resolves every platform of a base without reading layers.
func checkBase(b *Base, p string, platforms []string) error {
	s, err := openBase(b, p)
	if err != nil {
		return err
	}
	defer s.close()
	for _, pl := range platforms {
		want, _, err := parsePlatform(pl)
		if err != nil {
			return err
		}
		if _, err := s.image(want); err != nil {
			return err
		}
	}
	return nil
}

// image chooses the base image for a platform: the index.json entry named
// by the base ref (or the only entry), then, if that is an index, its
// manifest for the platform.
func (s *baseStore) image(want v1.Platform) (*baseImage, error) {
	if s.docker != nil {
		return s.check(s.docker, v1.Hash{}, want, true)
	}
	top, err := s.index.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("%s: index.json: %w", s.what, err)
	}
	entry, err := s.entry(top)
	if err != nil {
		return nil, err
	}
	switch {
	case entry.MediaType.IsImage():
		img, err := s.index.Image(entry.Digest)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.what, err)
		}
		return s.check(img, entry.Digest, want, false)
	case entry.MediaType.IsIndex():
		idx, err := s.index.ImageIndex(entry.Digest)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.what, err)
		}
		if err := checkRaw(idx, entry.Digest); err != nil {
			return nil, fmt.Errorf("%s: index %s: %w", s.what, entry.Digest, err)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return nil, fmt.Errorf("%s: index %s: %w", s.what, entry.Digest, err)
		}
		var found []v1.Descriptor
		var have []string
		for _, d := range im.Manifests {
			if !d.MediaType.IsImage() || d.Platform == nil {
				continue
			}
			have = append(have, platformString(d.Platform))
			if samePlatform(*d.Platform, want) {
				found = append(found, d)
			}
		}
		switch len(found) {
		case 0:
			return nil, fmt.Errorf("%s has no image for platform %s (it has: %s); use a base with that platform or drop the platform", s.what, want.String(), strings.Join(have, ", "))
		case 1:
		default:
			return nil, fmt.Errorf("%s has %d images for platform %s; keep one", s.what, len(found), want.String())
		}
		img, err := idx.Image(found[0].Digest)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.what, err)
		}
		return s.check(img, found[0].Digest, want, false)
	}
	return nil, fmt.Errorf("%s: index.json entry %s is a %q, neither an image nor an index", s.what, entry.Digest, entry.MediaType)
}

// entry picks the index.json entry the base ref names.
func (s *baseStore) entry(top *v1.IndexManifest) (v1.Descriptor, error) {
	var names []string
	var found []v1.Descriptor
	for _, d := range top.Manifests {
		n := d.Annotations[annotationRefName]
		if c := d.Annotations[annotationContainerName]; c != "" {
			n = c
		}
		if n == "" {
			n = "(unnamed " + d.Digest.String() + ")"
		}
		names = append(names, n)
		if s.ref != "" && (d.Annotations[annotationRefName] == s.ref || d.Annotations[annotationContainerName] == s.ref) {
			if !slices.ContainsFunc(found, func(f v1.Descriptor) bool { return f.Digest == d.Digest }) {
				found = append(found, d)
			}
		}
	}
	if len(top.Manifests) == 0 {
		return v1.Descriptor{}, fmt.Errorf("%s holds no image (index.json lists nothing)", s.what)
	}
	if s.ref == "" {
		if len(top.Manifests) > 1 {
			return v1.Descriptor{}, fmt.Errorf("%s holds %d images (%s); set the base's ref to the one to use", s.what, len(top.Manifests), strings.Join(names, ", "))
		}
		return top.Manifests[0], nil
	}
	switch len(found) {
	case 0:
		return v1.Descriptor{}, fmt.Errorf("%s has no image named %s (it has: %s); fix the base's ref", s.what, s.ref, strings.Join(names, ", "))
	case 1:
		return found[0], nil
	}
	return v1.Descriptor{}, fmt.Errorf("%s has %d different images named %s; keep one", s.what, len(found), s.ref)
}

// check verifies the chosen image's manifest and config against their
// digests (layers are verified as they are copied) and its platform.
func (s *baseStore) check(img v1.Image, digest v1.Hash, want v1.Platform, docker bool) (*baseImage, error) {
	if !docker {
		if err := checkRaw(img, digest); err != nil {
			return nil, fmt.Errorf("%s: manifest %s: %w", s.what, digest, err)
		}
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("%s: manifest: %w", s.what, err)
	}
	rawCfg, err := img.RawConfigFile()
	if err != nil {
		return nil, fmt.Errorf("%s: config: %w", s.what, err)
	}
	if !docker {
		if err := checkDigest(rawCfg, m.Config.Digest); err != nil {
			return nil, fmt.Errorf("%s: config %s: %w", s.what, m.Config.Digest, err)
		}
	}
	cf, err := v1.ParseConfigFile(bytes.NewReader(rawCfg))
	if err != nil {
		return nil, fmt.Errorf("%s: config: %w", s.what, err)
	}
	if have := cf.Platform(); have == nil || !samePlatform(*have, want) {
		return nil, fmt.Errorf("%s is an image for %s, not %s; use a base with that platform (a multi-platform index) or drop the platform", s.what, platformString(have), want.String())
	}
	if len(cf.RootFS.DiffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("%s: the config lists %d layers, the manifest %d; the image is damaged", s.what, len(cf.RootFS.DiffIDs), len(m.Layers))
	}
	for _, l := range m.Layers {
		if _, err := ociLayerType(l.MediaType); err != nil && !docker {
			return nil, fmt.Errorf("%s: layer %s: %w", s.what, l.Digest, err)
		}
	}
	if docker {
		if digest, err = img.Digest(); err != nil {
			return nil, fmt.Errorf("%s: %w", s.what, err)
		}
	}
	return &baseImage{img: img, digest: digest, manifest: m, config: cf, docker: docker}, nil
}

type rawManifest interface{ RawManifest() ([]byte, error) }

func checkRaw(r rawManifest, want v1.Hash) error {
	raw, err := r.RawManifest()
	if err != nil {
		return err
	}
	return checkDigest(raw, want)
}

// ociLayerType maps a base layer's media type to the OCI type it is
// written with: the archive is an OCI layout, and runtimes reading an OCI
// manifest expect OCI layer types. Non-distributable ("foreign") layers
// are refused: their bytes are not in the base, and a node package must
// work offline.
func ociLayerType(mt types.MediaType) (types.MediaType, error) {
	switch mt {
	case types.OCILayer, types.OCILayerZStd, types.OCIUncompressedLayer:
		return mt, nil
	case types.DockerLayer:
		return types.OCILayer, nil
	case types.DockerUncompressedLayer:
		return types.OCIUncompressedLayer, nil
	case types.DockerForeignLayer, types.OCIRestrictedLayer, types.OCIUncompressedRestrictedLayer:
		return "", fmt.Errorf("is a non-distributable layer (%s) whose bytes are fetched from elsewhere; node packages work offline, so use a base without foreign layers", mt)
	}
	return "", fmt.Errorf("has media type %q, which is not a container image layer", mt)
}
