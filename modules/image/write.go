package image

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/relcue/release/pipeline/step"
)

// ociLayoutFile is the oci-layout file of every OCI image layout.
const ociLayoutFile = `{"imageLayoutVersion":"1.0.0"}`

// blobSource is one blob to write: bytes in memory, or a reader to open.
type blobSource struct {
	size int64
	data []byte
	open func() (io.ReadCloser, error)
}

// archiveContent gathers the blobs of an image or index, by digest, so
// that a layer shared by platforms is stored once.
type archiveContent struct {
	blobs map[v1.Hash]blobSource
}

func (c *archiveContent) addBytes(b []byte) v1.Hash {
	sum := sha256.Sum256(b)
	h := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
	c.blobs[h] = blobSource{size: int64(len(b)), data: b}
	return h
}

func (c *archiveContent) addImage(img v1.Image) error {
	raw, err := img.RawManifest()
	if err != nil {
		return err
	}
	c.addBytes(raw)
	cfg, err := img.RawConfigFile()
	if err != nil {
		return err
	}
	c.addBytes(cfg)
	m, err := img.Manifest()
	if err != nil {
		return err
	}
	for _, d := range m.Layers {
		if _, ok := c.blobs[d.Digest]; ok {
			continue
		}
		l, err := img.LayerByDigest(d.Digest)
		if err != nil {
			return err
		}
		c.blobs[d.Digest] = blobSource{size: d.Size, open: l.Compressed}
	}
	return nil
}

// writeArchive writes an OCI image layout as a tar to out and returns the
// index.json entry. Members are sorted by name and carry the build date,
// so the archive's bytes depend only on its content. index.json names the
// image by its full reference in org.opencontainers.image.ref.name, which
// `skopeo ... oci-archive:FILE:REF` and `buildah pull oci-archive:FILE`
// read, and in io.containerd.image.name, which `ctr images import` reads;
// it has exactly one entry, so `oci-archive:FILE` without a reference
// works too.
func writeArchive(ctx context.Context, out, ref string, top any, date time.Time, progress step.Progress) (v1.Descriptor, error) {
	c := &archiveContent{blobs: map[v1.Hash]blobSource{}}
	var desc *v1.Descriptor
	var err error
	switch t := top.(type) {
	case v1.Image:
		if err = c.addImage(t); err == nil {
			desc, err = partial.Descriptor(t)
		}
	case v1.ImageIndex:
		desc, err = c.addIndex(t)
	default:
		err = fmt.Errorf("cannot write a %T", top)
	}
	if err != nil {
		return v1.Descriptor{}, err
	}
	entry := v1.Descriptor{
		MediaType:   desc.MediaType,
		Size:        desc.Size,
		Digest:      desc.Digest,
		Annotations: map[string]string{annotationRefName: ref, annotationContainerName: ref},
	}
	index, err := json.Marshal(v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{entry}})
	if err != nil {
		return v1.Descriptor{}, err
	}

	var total int64
	for _, b := range c.blobs {
		total += b.size
	}
	progress.SetTotal(total)

	f, err := os.Create(out)
	if err != nil {
		return v1.Descriptor{}, err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	dir := func(name string) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: date})
	}
	if err := dir("blobs/"); err != nil {
		return v1.Descriptor{}, err
	}
	if err := dir("blobs/sha256/"); err != nil {
		return v1.Descriptor{}, err
	}
	for _, h := range slices.SortedFunc(maps.Keys(c.blobs), func(a, b v1.Hash) int { return strings.Compare(a.Hex, b.Hex) }) {
		if err := writeBlob(ctx, tw, h, c.blobs[h], date, progress); err != nil {
			return v1.Descriptor{}, err
		}
	}
	for _, m := range []struct {
		name string
		data []byte
	}{{"index.json", index}, {"oci-layout", []byte(ociLayoutFile)}} {
		if err := writeMember(tw, m.name, m.data, date); err != nil {
			return v1.Descriptor{}, err
		}
	}
	if err := tw.Close(); err != nil {
		return v1.Descriptor{}, err
	}
	return entry, f.Close()
}

func (c *archiveContent) addIndex(idx v1.ImageIndex) (*v1.Descriptor, error) {
	raw, err := idx.RawManifest()
	if err != nil {
		return nil, err
	}
	c.addBytes(raw)
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	for _, d := range im.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			return nil, err
		}
		if err := c.addImage(img); err != nil {
			return nil, err
		}
	}
	return partial.Descriptor(idx)
}

func writeMember(tw *tar.Writer, name string, data []byte, date time.Time) error {
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: date}); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}

// writeBlob copies a blob and verifies it on the way: base layers are read
// from files that nothing checked since planning.
func writeBlob(ctx context.Context, tw *tar.Writer, h v1.Hash, b blobSource, date time.Time, progress step.Progress) error {
	name, err := blobName(h)
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: b.size, ModTime: date}); err != nil {
		return err
	}
	var r io.Reader
	if b.open == nil {
		r = bytes.NewReader(b.data)
	} else {
		rc, err := b.open()
		if err != nil {
			return fmt.Errorf("blob %s: %w", h, err)
		}
		defer rc.Close()
		r = rc
	}
	sum := sha256.New()
	n, err := io.Copy(io.MultiWriter(tw, sum, progressWriter{progress}), io.LimitReader(&ctxReader{ctx, r}, b.size+1))
	if err != nil && n <= b.size {
		return fmt.Errorf("blob %s: %w", h, err)
	}
	switch {
	case n < b.size:
		return fmt.Errorf("blob %s has only %d bytes, its descriptor says %d; the base image is damaged", h, n, b.size)
	case n > b.size:
		return fmt.Errorf("blob %s has more bytes than its descriptor says (%d); the base image is damaged", h, b.size)
	}
	if got := hex.EncodeToString(sum.Sum(nil)); got != h.Hex {
		return fmt.Errorf("blob %s has content with digest sha256:%s; the base image is damaged", h, got)
	}
	return nil
}

type progressWriter struct{ p step.Progress }

func (w progressWriter) Write(b []byte) (int, error) {
	w.p.Add(int64(len(b)))
	return len(b), nil
}
