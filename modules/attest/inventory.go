package attest

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/relcue/release/modules/addon"
	"github.com/relcue/release/modules/deb"
	"github.com/relcue/release/modules/nodepkg"
	"github.com/relcue/release/modules/pkgmanifest"
	"github.com/relcue/release/modules/pkgzip"
)

// contents is what an artifact holds.
type contents struct {
	Files     []fileItem
	Debs      []nodepkg.Package
	Images    []nodepkg.Image
	Manifests []ocispec.Descriptor // an addon layout's artifacts
	OSDir     string
	// AddonImages and AddonDebs are inside an addon's layers.
	AddonImages []addonImage
	AddonDebs   []addonDeb
}

type addonImage struct {
	File, Ref, Digest string
}

type addonDeb struct {
	File    string
	Control deb.Control
	SHA256  string
}

type fileItem struct {
	Path   string
	SHA256 string
	Size   int64
}

// inventory lists an artifact's files. A zip's hashes come from the
// manifest release wrote into it (its own output, already verified when
// it was built); only entries no manifest lists are read.
func inventory(ctx context.Context, format, file string) (*contents, error) {
	switch format {
	case Package, NodePackage:
		return zipInventory(ctx, format, file)
	case Addon:
		return tarInventory(ctx, file)
	}
	return nil, fmt.Errorf("unknown subject format %q", format)
}

func zipInventory(ctx context.Context, format, file string) (*contents, error) {
	r, err := pkgzip.Open(file)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	c := &contents{}
	known := map[string]pkgzip.Digest{}
	switch format {
	case Package:
		m, ok, err := pkgmanifest.Read(r)
		if err != nil {
			return nil, err
		}
		if ok { // a pinned zip may have none: every entry is read
			known = m.Digests()
		}
	case NodePackage:
		m, err := nodepkg.ReadManifest(r)
		if err != nil {
			return nil, err
		}
		known = m.Entries()
		c.Debs, c.Images, c.OSDir = m.Packages, m.Images, m.OSDir
	}
	for _, e := range r.Entries {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		d, ok := known[e.Name]
		if !ok {
			if d, err = hashEntry(e); err != nil {
				return nil, err
			}
		}
		c.Files = append(c.Files, fileItem{Path: e.Name, SHA256: d.SHA256, Size: d.Size})
	}
	sort.Slice(c.Files, func(i, j int) bool { return c.Files[i].Path < c.Files[j].Path })
	return c, nil
}

func hashEntry(e *pkgzip.Entry) (pkgzip.Digest, error) {
	rc, err := e.Open()
	if err != nil {
		return pkgzip.Digest{}, err
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, rc)
	if err != nil {
		return pkgzip.Digest{}, fmt.Errorf("%s: %w", e.Name, err)
	}
	return pkgzip.Digest{SHA256: hex.EncodeToString(h.Sum(nil)), Size: n}, nil
}

// maxIndex bounds the OCI index read into memory.
const maxIndex = 4 << 20

// Bounds of the blobs kept from an addon archive's first pass: manifests
// are kilobytes.
const (
	maxKeptBlob  = 1 << 20
	maxKeptBlobs = 64 << 20
)

func tarInventory(ctx context.Context, file string) (*contents, error) {
	c := &contents{}
	kept := map[string][]byte{}
	var keptSize int
	err := walkTar(ctx, file, func(hdr *tar.Header, r io.Reader) error {
		h := sha256.New()
		var buf []byte
		if hdr.Name == ocispec.ImageIndexFile || (hdr.Size <= maxKeptBlob && keptSize+int(hdr.Size) <= maxKeptBlobs) {
			var err error
			if buf, err = io.ReadAll(io.LimitReader(r, maxIndex)); err != nil {
				return err
			}
			h.Write(buf)
			kept[hdr.Name] = buf
			keptSize += len(buf)
		}
		n, err := io.Copy(h, r)
		if err != nil {
			return err
		}
		n += int64(len(buf))
		if hdr.Name == ocispec.ImageIndexFile {
			var idx ocispec.Index
			if err := json.Unmarshal(buf, &idx); err != nil {
				return fmt.Errorf("%s: %w", ocispec.ImageIndexFile, err)
			}
			c.Manifests = idx.Manifests
		}
		c.Files = append(c.Files, fileItem{Path: hdr.Name, SHA256: hex.EncodeToString(h.Sum(nil)), Size: n})
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(c.Files, func(i, j int) bool { return c.Files[i].Path < c.Files[j].Path })
	sort.Slice(c.Manifests, func(i, j int) bool {
		return c.Manifests[i].Annotations[addon.AnnotationExportName] < c.Manifests[j].Annotations[addon.AnnotationExportName]
	})
	if err := addonContents(ctx, file, c, kept); err != nil {
		return nil, err
	}
	return c, nil
}

// walkTar calls fn for every regular file of a tar file.
func walkTar(ctx context.Context, file string, fn func(*tar.Header, io.Reader) error) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		if err := fn(hdr, tr); err != nil {
			return fmt.Errorf("%s: %w", hdr.Name, err)
		}
	}
}

// addonLayer is an images or packages layer of an exported addon.
type addonLayer struct {
	export, title string
	packages      bool
}

// addonContents lists the images and .debs inside the addons' layers: a
// second pass over the archive reads only those layers, streaming (an
// image layer is a tar of OCI image archives, the packages layer a
// gzipped tree of .debs).
func addonContents(ctx context.Context, file string, c *contents, kept map[string][]byte) error {
	layers := map[string]addonLayer{}
	for _, m := range c.Manifests {
		raw, ok := kept["blobs/"+m.Digest.Algorithm().String()+"/"+m.Digest.Encoded()]
		if !ok {
			return fmt.Errorf("manifest %s is not in the archive", m.Digest)
		}
		var man ocispec.Manifest
		if err := json.Unmarshal(raw, &man); err != nil {
			return fmt.Errorf("manifest %s: %w", m.Digest, err)
		}
		for _, l := range man.Layers {
			switch l.MediaType {
			case addon.ImagesLinuxType, addon.ImagesWindowsType, addon.PackagesType:
				layers["blobs/"+l.Digest.Algorithm().String()+"/"+l.Digest.Encoded()] = addonLayer{
					export: m.Annotations[addon.AnnotationExportName], title: l.Annotations[ocispec.AnnotationTitle],
					packages: l.MediaType == addon.PackagesType,
				}
			}
		}
	}
	if len(layers) == 0 {
		return nil
	}
	return walkTar(ctx, file, func(hdr *tar.Header, r io.Reader) error {
		l, ok := layers[hdr.Name]
		if !ok {
			return nil
		}
		prefix := l.export + "/" + l.title + "/"
		if l.packages {
			zr, err := gzip.NewReader(r)
			if err != nil {
				return err
			}
			return walkReader(zr, func(h *tar.Header, r io.Reader) error {
				if !strings.HasSuffix(h.Name, ".deb") {
					return nil
				}
				sum := sha256.New()
				ctl, err := deb.InspectStream(io.TeeReader(r, sum))
				if err != nil {
					return fmt.Errorf("%s: %w", h.Name, err)
				}
				if _, err := io.Copy(sum, r); err != nil {
					return err
				}
				c.AddonDebs = append(c.AddonDebs, addonDeb{File: prefix + h.Name, Control: ctl, SHA256: hex.EncodeToString(sum.Sum(nil))})
				return nil
			})
		}
		return walkReader(r, func(h *tar.Header, r io.Reader) error {
			if !strings.HasSuffix(h.Name, ".tar") {
				return nil
			}
			im, err := imageIndex(r)
			if err != nil {
				return fmt.Errorf("%s: %w", h.Name, err)
			}
			im.File = prefix + h.Name
			c.AddonImages = append(c.AddonImages, im)
			return nil
		})
	})
}

// walkReader calls fn for every regular file of a tar stream.
func walkReader(r io.Reader, fn func(*tar.Header, io.Reader) error) error {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if hdr.Typeflag == tar.TypeReg {
			if err := fn(hdr, tr); err != nil {
				return err
			}
		}
	}
}

// imageIndex reads an OCI image archive's index.json from a stream: the
// image's name and manifest digest.
func imageIndex(r io.Reader) (addonImage, error) {
	var im addonImage
	err := walkReader(r, func(h *tar.Header, r io.Reader) error {
		if h.Name != ocispec.ImageIndexFile {
			return nil
		}
		raw, err := io.ReadAll(io.LimitReader(r, maxIndex))
		if err != nil {
			return err
		}
		var idx ocispec.Index
		if err := json.Unmarshal(raw, &idx); err != nil {
			return fmt.Errorf("%s: %w", ocispec.ImageIndexFile, err)
		}
		if len(idx.Manifests) != 1 {
			return fmt.Errorf("%s lists %d images, want one", ocispec.ImageIndexFile, len(idx.Manifests))
		}
		d := idx.Manifests[0]
		im.Ref, im.Digest = d.Annotations[ocispec.AnnotationRefName], d.Digest.String()
		if im.Ref == "" {
			im.Ref = d.Annotations["io.containerd.image.name"]
		}
		return nil
	})
	if err == nil && im.Digest == "" {
		err = fmt.Errorf("no %s: not an OCI image archive", ocispec.ImageIndexFile)
	}
	return im, err
}
