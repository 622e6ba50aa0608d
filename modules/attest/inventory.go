package attest

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/relcue/release/modules/addon"
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

func tarInventory(ctx context.Context, file string) (*contents, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	c := &contents{}
	tr := tar.NewReader(f)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		h := sha256.New()
		var r io.Reader = tr
		var index []byte
		if hdr.Name == ocispec.ImageIndexFile {
			if index, err = io.ReadAll(io.LimitReader(tr, maxIndex)); err != nil {
				return nil, err
			}
			r = io.MultiReader()
			h.Write(index)
		}
		n, err := io.Copy(h, r)
		if err != nil {
			return nil, err
		}
		if index != nil {
			n = int64(len(index))
			var idx ocispec.Index
			if err := json.Unmarshal(index, &idx); err != nil {
				return nil, fmt.Errorf("%s: %w", ocispec.ImageIndexFile, err)
			}
			c.Manifests = idx.Manifests
		}
		c.Files = append(c.Files, fileItem{Path: hdr.Name, SHA256: hex.EncodeToString(h.Sum(nil)), Size: n})
	}
	sort.Slice(c.Files, func(i, j int) bool { return c.Files[i].Path < c.Files[j].Path })
	sort.Slice(c.Manifests, func(i, j int) bool {
		return c.Manifests[i].Annotations[addon.AnnotationExportName] < c.Manifests[j].Annotations[addon.AnnotationExportName]
	})
	return c, nil
}
