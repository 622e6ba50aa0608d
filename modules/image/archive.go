package image

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// archive is an image tarball read in place: one pass over the tar headers
// records where each member's bytes are, and members are then read as
// sections of the file. Nothing is extracted, so a multi-GiB base costs no
// disk space and blobs are read once, when they are copied.
type archive struct {
	f       *os.File
	members map[string]member
}

type member struct {
	off, size int64
}

// maxJSON bounds index, manifest and config files read into memory; real
// ones are a few KiB.
const maxJSON = 8 << 20

// openArchive indexes the tar at p; errors do not repeat the path, which
// callers name together with what the file is for.
func openArchive(p string) (*archive, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	a := &archive{f: f, members: map[string]member{}}
	if err := a.index(); err != nil {
		f.Close()
		return nil, err
	}
	return a, nil
}

func (a *archive) Close() error { return a.f.Close() }

func (a *archive) index() error {
	var magic [4]byte
	n, _ := io.ReadFull(a.f, magic[:])
	switch {
	case n >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		return errors.New("is gzip-compressed; an image archive is a plain tar: decompress it (gunzip) or keep the OCI layout directory instead")
	case n == 4 && bytes.Equal(magic[:], []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return errors.New("is zstd-compressed; an image archive is a plain tar: decompress it (zstd -d) or keep the OCI layout directory instead")
	}
	if _, err := a.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	// tar.Reader seeks over member data when its reader is an io.Seeker,
	// so indexing reads only the headers, and the file offset after Next
	// is where the member's data starts.
	tr := tar.NewReader(a.f)
	links := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if len(a.members) == 0 {
				return fmt.Errorf("is not a tar archive (%v)", err)
			}
			return fmt.Errorf("is a damaged tar archive (%v)", err)
		}
		name, err := memberName(h.Name)
		if err != nil {
			return err
		}
		switch h.Typeflag {
		case tar.TypeReg:
			off, err := a.f.Seek(0, io.SeekCurrent)
			if err != nil {
				return err
			}
			a.members[name] = member{off: off, size: h.Size}
		case tar.TypeLink:
			// Hard links are how some writers store a blob once under two
			// names; tar requires the target to come first.
			target, err := memberName(h.Linkname)
			if err != nil {
				return err
			}
			links[name] = target
		}
	}
	for name, target := range links {
		m, ok := a.members[target]
		if !ok {
			return fmt.Errorf("member %s is a hard link to %s, which the archive does not hold as a file", name, target)
		}
		a.members[name] = m
	}
	return nil
}

// memberName normalises a member name ("./blobs/x" -> "blobs/x") and
// rejects names that would leave an extraction directory.
func memberName(raw string) (string, error) {
	s := strings.TrimLeft(raw, "/")
	if s != raw || strings.HasPrefix(path.Clean(s), "../") || path.Clean(s) == ".." {
		return "", fmt.Errorf("member %q is not a relative path inside the archive", raw)
	}
	return path.Clean(s), nil
}

func (a *archive) has(name string) bool {
	_, ok := a.members[name]
	return ok
}

// open returns a member's bytes; each reader has its own offset, so
// several may be read at once.
func (a *archive) open(name string) (*io.SectionReader, error) {
	m, ok := a.members[name]
	if !ok {
		return nil, fmt.Errorf("no %s in the archive: %w", name, os.ErrNotExist)
	}
	return io.NewSectionReader(a.f, m.off, m.size), nil
}

func (a *archive) readJSON(name string) ([]byte, error) {
	r, err := a.open(name)
	if err != nil {
		return nil, err
	}
	if r.Size() > maxJSON {
		return nil, fmt.Errorf("%s has %d bytes, more than any index, manifest or config should (%d)", name, r.Size(), maxJSON)
	}
	return io.ReadAll(r)
}

// blobName is where a layout keeps a blob. Only sha256 is supported: it is
// what every tool writes and what the OCI spec requires implementations to
// support.
func blobName(h v1.Hash) (string, error) {
	if h.Algorithm != "sha256" || len(h.Hex) != 64 || strings.Trim(h.Hex, "0123456789abcdef") != "" {
		return "", fmt.Errorf("digest %q is not a sha256 digest", h.String())
	}
	return "blobs/sha256/" + h.Hex, nil
}

func (a *archive) blob(h v1.Hash) (*io.SectionReader, error) {
	n, err := blobName(h)
	if err != nil {
		return nil, err
	}
	return a.open(n)
}

// blobBytes reads a small blob and checks it against its descriptor, so
// that a corrupt manifest or config is reported rather than used.
func (a *archive) blobBytes(d v1.Descriptor) ([]byte, error) {
	r, err := a.blob(d.Digest)
	if err != nil {
		return nil, fmt.Errorf("blob %s (%s) is missing: %w", d.Digest, d.MediaType, err)
	}
	if r.Size() != d.Size {
		return nil, fmt.Errorf("blob %s has %d bytes, its descriptor says %d; the file is damaged", d.Digest, r.Size(), d.Size)
	}
	if d.Size > maxJSON {
		return nil, fmt.Errorf("blob %s (%s) has %d bytes, more than any manifest or config should (%d)", d.Digest, d.MediaType, d.Size, maxJSON)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	if err := checkDigest(b, d.Digest); err != nil {
		return nil, fmt.Errorf("blob %s: %w", d.Digest, err)
	}
	return b, nil
}

func checkDigest(b []byte, want v1.Hash) error {
	got, _, err := v1.SHA256(bytes.NewReader(b))
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("content has digest %s; the file is damaged", got)
	}
	return nil
}

// rootIndex is the archive's index.json as a ggcr image index, so that the
// code choosing a base image works the same on layout directories.
func (a *archive) rootIndex() (v1.ImageIndex, error) {
	if !a.has("index.json") {
		return nil, errors.New("no index.json: not an OCI archive")
	}
	raw, err := a.readJSON("index.json")
	if err != nil {
		return nil, err
	}
	return &archiveIndex{a: a, raw: raw, mediaType: types.OCIImageIndex}, nil
}

type archiveIndex struct {
	a         *archive
	raw       []byte
	mediaType types.MediaType
}

var _ v1.ImageIndex = (*archiveIndex)(nil)

func (i *archiveIndex) MediaType() (types.MediaType, error) { return i.mediaType, nil }
func (i *archiveIndex) Digest() (v1.Hash, error)            { return partial.Digest(i) }
func (i *archiveIndex) Size() (int64, error)                { return partial.Size(i) }
func (i *archiveIndex) RawManifest() ([]byte, error)        { return i.raw, nil }

func (i *archiveIndex) IndexManifest() (*v1.IndexManifest, error) {
	var im v1.IndexManifest
	if err := json.Unmarshal(i.raw, &im); err != nil {
		return nil, fmt.Errorf("image index: %w", err)
	}
	return &im, nil
}

func (i *archiveIndex) find(h v1.Hash) (v1.Descriptor, error) {
	im, err := i.IndexManifest()
	if err != nil {
		return v1.Descriptor{}, err
	}
	for _, d := range im.Manifests {
		if d.Digest == h {
			return d, nil
		}
	}
	return v1.Descriptor{}, fmt.Errorf("the index lists no %s", h)
}

func (i *archiveIndex) Image(h v1.Hash) (v1.Image, error) {
	d, err := i.find(h)
	if err != nil {
		return nil, err
	}
	if !d.MediaType.IsImage() {
		return nil, fmt.Errorf("%s is a %s, not an image manifest", h, d.MediaType)
	}
	raw, err := i.a.blobBytes(d)
	if err != nil {
		return nil, err
	}
	return partial.CompressedToImage(&archiveImage{a: i.a, desc: d, raw: raw})
}

func (i *archiveIndex) ImageIndex(h v1.Hash) (v1.ImageIndex, error) {
	d, err := i.find(h)
	if err != nil {
		return nil, err
	}
	if !d.MediaType.IsIndex() {
		return nil, fmt.Errorf("%s is a %s, not an image index", h, d.MediaType)
	}
	raw, err := i.a.blobBytes(d)
	if err != nil {
		return nil, err
	}
	return &archiveIndex{a: i.a, raw: raw, mediaType: d.MediaType}, nil
}

// archiveImage is one image manifest of an archive (ggcr's
// partial.CompressedImageCore; partial fills in the rest).
type archiveImage struct {
	a    *archive
	desc v1.Descriptor
	raw  []byte
}

func (i *archiveImage) MediaType() (types.MediaType, error) { return i.desc.MediaType, nil }
func (i *archiveImage) RawManifest() ([]byte, error)        { return i.raw, nil }

func (i *archiveImage) RawConfigFile() ([]byte, error) {
	m, err := partial.Manifest(i)
	if err != nil {
		return nil, err
	}
	return i.a.blobBytes(m.Config)
}

func (i *archiveImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	m, err := partial.Manifest(i)
	if err != nil {
		return nil, err
	}
	if h == m.Config.Digest {
		return &archiveBlob{a: i.a, desc: m.Config}, nil
	}
	for _, d := range m.Layers {
		if d.Digest == h {
			return &archiveBlob{a: i.a, desc: d}, nil
		}
	}
	return nil, fmt.Errorf("image %s has no layer %s", i.desc.Digest, h)
}

type archiveBlob struct {
	a    *archive
	desc v1.Descriptor
}

func (b *archiveBlob) Digest() (v1.Hash, error)            { return b.desc.Digest, nil }
func (b *archiveBlob) Size() (int64, error)                { return b.desc.Size, nil }
func (b *archiveBlob) MediaType() (types.MediaType, error) { return b.desc.MediaType, nil }

func (b *archiveBlob) Compressed() (io.ReadCloser, error) {
	r, err := b.a.blob(b.desc.Digest)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(r), nil
}
