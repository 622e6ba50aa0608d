package image

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Info describes an image archive: an OCI image layout in a tar holding
// one image (single- or multi-platform).
type Info struct {
	// RefName is the image's name from index.json: the
	// org.opencontainers.image.ref.name annotation, or containerd's
	// io.containerd.image.name when only that is set; "" when unnamed.
	RefName string `json:"refName"`
	// MediaType and Digest are the index.json entry's: an image manifest,
	// or an image index for a multi-platform image.
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	// Size is the sum of the sizes of the distinct blobs the image
	// consists of (indexes, manifests, configs, layers), as a registry
	// would store them.
	Size int64 `json:"size"`
	// Images are the platform images in index order; attestation and
	// other non-image manifests are not listed.
	Images []ImageInfo `json:"images"`
}

// ImageInfo is one platform's image.
type ImageInfo struct {
	Platform string `json:"platform"`
	// Digest is the manifest's; ConfigDigest the config's, which is what
	// runtimes show as the image ID.
	Digest       string `json:"digest"`
	ConfigDigest string `json:"configDigest"`
	// Size counts the manifest, config and layers.
	Size int64 `json:"size"`
}

// Platforms lists the image's platforms in index order.
func (i Info) Platforms() []string {
	out := make([]string, len(i.Images))
	for n, im := range i.Images {
		out[n] = im.Platform
	}
	return out
}

// Inspect reads an image archive, ours or another tool's, and verifies it:
// every blob the image references must be present with the size and
// digest its descriptor states. Layers are hashed in full, so the cost is
// one read of the archive.
func Inspect(tarPath string) (Info, error) {
	info, err := inspect(tarPath)
	if err != nil {
		return Info{}, fmt.Errorf("image archive %s: %w", tarPath, err)
	}
	return info, nil
}

func inspect(p string) (Info, error) {
	a, err := openArchive(p)
	if err != nil {
		return Info{}, err
	}
	defer a.Close()
	if !a.has("index.json") {
		if a.has("manifest.json") {
			return Info{}, errors.New("is a docker save archive, not an OCI archive; convert it with skopeo copy docker-archive:FILE oci-archive:NEW:REF")
		}
		return Info{}, errors.New("has no index.json: not an OCI archive")
	}
	if !a.has("oci-layout") {
		return Info{}, errors.New("has no oci-layout file: not an OCI image layout")
	}
	raw, err := a.readJSON("index.json")
	if err != nil {
		return Info{}, err
	}
	var top v1.IndexManifest
	if err := json.Unmarshal(raw, &top); err != nil {
		return Info{}, fmt.Errorf("index.json: %w", err)
	}
	if len(top.Manifests) != 1 {
		var names []string
		for _, d := range top.Manifests {
			names = append(names, d.Annotations[annotationRefName])
		}
		return Info{}, fmt.Errorf("index.json lists %d images (%s); an image archive holds exactly one", len(top.Manifests), strings.Join(names, ", "))
	}
	d := top.Manifests[0]
	info := Info{
		RefName:   d.Annotations[annotationRefName],
		MediaType: string(d.MediaType),
		Digest:    d.Digest.String(),
	}
	if info.RefName == "" {
		info.RefName = d.Annotations[annotationContainerName]
	}
	w := &walker{a: a, seen: map[v1.Hash]bool{}}
	if err := w.walk(d, &info, nil, 0); err != nil {
		return Info{}, err
	}
	info.Size = w.size
	return info, nil
}

// walker verifies the blobs below a descriptor, each once.
type walker struct {
	a    *archive
	seen map[v1.Hash]bool
	size int64
}

// maxDepth bounds nested indexes; real images nest at most twice.
const maxDepth = 4

func (w *walker) walk(d v1.Descriptor, info *Info, img *ImageInfo, depth int) error {
	switch {
	case d.MediaType.IsIndex():
		if depth >= maxDepth {
			return fmt.Errorf("index %s: indexes nest deeper than %d", d.Digest, maxDepth)
		}
		raw, err := w.small(d)
		if err != nil {
			return err
		}
		var im v1.IndexManifest
		if err := json.Unmarshal(raw, &im); err != nil {
			return fmt.Errorf("index %s: %w", d.Digest, err)
		}
		for _, c := range im.Manifests {
			if err := w.walk(c, info, nil, depth+1); err != nil {
				return err
			}
		}
		return nil
	case d.MediaType.IsImage():
		raw, err := w.small(d)
		if err != nil {
			return err
		}
		var m v1.Manifest
		if err := json.Unmarshal(raw, &m); err != nil {
			return fmt.Errorf("manifest %s: %w", d.Digest, err)
		}
		ii := ImageInfo{Digest: d.Digest.String(), ConfigDigest: m.Config.Digest.String(), Size: d.Size + m.Config.Size}
		cfg, err := w.small(m.Config)
		if err != nil {
			return fmt.Errorf("manifest %s: config: %w", d.Digest, err)
		}
		var cf v1.ConfigFile
		if err := json.Unmarshal(cfg, &cf); err != nil {
			return fmt.Errorf("config %s: %w", m.Config.Digest, err)
		}
		p := d.Platform
		if p == nil {
			p = cf.Platform()
		}
		ii.Platform = platformString(p)
		for _, l := range m.Layers {
			ii.Size += l.Size
			if err := w.blob(l); err != nil {
				return fmt.Errorf("manifest %s: layer: %w", d.Digest, err)
			}
		}
		// Build attestations (BuildKit) are manifests for "unknown/unknown";
		// they are verified but are no platform of the image.
		if ii.Platform != "unknown/unknown" {
			info.Images = append(info.Images, ii)
		}
		return nil
	}
	// Signatures, SBOMs and other artifacts: present and intact is enough.
	return w.blob(d)
}

// small reads and verifies a manifest, index or config.
func (w *walker) small(d v1.Descriptor) ([]byte, error) {
	b, err := w.a.blobBytes(d)
	if err != nil {
		return nil, err
	}
	if !w.seen[d.Digest] {
		w.seen[d.Digest] = true
		w.size += d.Size
	}
	return b, nil
}

// blob verifies a blob by streaming it through SHA-256.
func (w *walker) blob(d v1.Descriptor) error {
	if w.seen[d.Digest] {
		return nil
	}
	r, err := w.a.blob(d.Digest)
	if err != nil {
		return fmt.Errorf("blob %s (%s) is missing: %w", d.Digest, d.MediaType, err)
	}
	if r.Size() != d.Size {
		return fmt.Errorf("blob %s has %d bytes, its descriptor says %d; the file is damaged", d.Digest, r.Size(), d.Size)
	}
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return fmt.Errorf("blob %s: %w", d.Digest, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != d.Digest.Hex {
		return fmt.Errorf("blob %s: content has digest sha256:%s; the file is damaged", d.Digest, got)
	}
	w.seen[d.Digest] = true
	w.size += d.Size
	return nil
}
