package addon

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/relcue/release/internal/atomicfile"
)

// File is a file stored in a layer: a local Path stored as Name.
type File struct {
	Name string
	Path string
}

// SyncFile is a generated file of the gitops-sync/ folder.
type SyncFile struct {
	Path string // relative to the manifests layer root, e.g. "gitops-sync/kustomization.yaml"
	Data []byte
}

// Impl is one implementation to export.
type Impl struct {
	Name string
	// LinuxImages and WindowsImages are image archives stored under
	// their Name in the images layers.
	LinuxImages, WindowsImages []File
	// Packages are stored at their Name (e.g. "debianpackages/x/x.deb").
	Packages []File
	Sync     []SyncFile
}

// Options describes one addon export.
type Options struct {
	Name, Version string
	// Dir is the addon directory; Manifest its parsed manifest.
	Dir      string
	Manifest *Manifest
	// Impls are exported in name order.
	Impls          []Impl
	Vendor         string
	License        string
	Description    string
	ProductVersion string
	Date           time.Time
	OmitImages     bool
	OmitPackages   bool
	// LayoutDir is created as an OCI image layout; TarPath, when set,
	// receives the same layout as a tar.
	LayoutDir string
	TarPath   string
}

// Exported says what an export wrote.
type Exported struct {
	// Manifests are the index entries, one per implementation.
	Manifests []ocispec.Descriptor
	// Files lists every file of the layout, relative to LayoutDir.
	Files []string
}

// Export writes the addon as an OCI image layout: one manifest per
// implementation with its config blob and non-empty layers, and an
// index.json listing them tagged v<version>. Every byte depends only on
// the inputs and Date.
func Export(opts Options) (*Exported, error) {
	date := opts.Date.UTC()
	lw, err := newLayout(opts.LayoutDir)
	if err != nil {
		return nil, err
	}
	var all []string
	for _, im := range opts.Manifest.Spec.Implementations {
		all = append(all, im.Name)
	}
	impls := slices.Clone(opts.Impls)
	slices.SortFunc(impls, func(a, b Impl) int { return strings.Compare(a.Name, b.Name) })
	out := &Exported{}
	for _, im := range impls {
		d, err := exportImpl(lw, opts, im, all, date)
		if err != nil {
			return nil, fmt.Errorf("implementation %s: %w", im.Name, err)
		}
		out.Manifests = append(out.Manifests, d)
	}
	idx := ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: out.Manifests,
		Annotations: nonEmpty(map[string]string{
			annotationCreated:                 date.Format(time.RFC3339),
			"org.opencontainers.image.vendor": opts.Vendor,
			annotationK2sVer:                  opts.ProductVersion,
			annotationExportDay:               date.Format(time.RFC3339),
			annotationExportTyp:               "specific",
			annotationCount:                   strconv.Itoa(len(impls)),
		}),
	}
	raw, err := json.Marshal(idx)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(opts.LayoutDir, ocispec.ImageIndexFile), raw, 0o644); err != nil {
		return nil, err
	}
	layoutRaw, _ := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	if err := os.WriteFile(filepath.Join(opts.LayoutDir, ocispec.ImageLayoutFile), layoutRaw, 0o644); err != nil {
		return nil, err
	}
	out.Files = append([]string{ocispec.ImageIndexFile, ocispec.ImageLayoutFile}, lw.files()...)
	slices.Sort(out.Files)
	if opts.TarPath != "" {
		if err := writeLayoutTar(opts.LayoutDir, out.Files, opts.TarPath, date); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// exportImpl writes one implementation's layers, config and manifest
// blobs, in that order, and returns the manifest's index entry.
func exportImpl(lw *layout, opts Options, im Impl, all []string, date time.Time) (ocispec.Descriptor, error) {
	contents, err := implLayers(opts, im, all)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	layers, err := writeLayers(lw, contents, date)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	desc := implDescription(opts, im.Name)
	cd, err := writeConfig(lw, opts, im.Name, desc, date)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	return writeManifest(lw, opts, im.Name, desc, cd, layers, date)
}

// implLayerSet holds the contents of each of the layerKinds, by index.
type implLayerSet [7][]entry

// implLayers lists what goes into each layer: the addon's files, then the
// images and packages unless the options omit them.
func implLayers(opts Options, im Impl, all []string) (implLayerSet, error) {
	var contents implLayerSet
	implDir := ImplDir(opts.Dir, opts.Name, im.Name)
	var others []string
	if implDir == opts.Dir {
		for _, o := range all {
			if o != im.Name {
				others = append(others, o)
			}
		}
	}
	var sync []entry
	for _, f := range im.Sync {
		sync = append(sync, entry{Name: f.Path, Data: f.Data})
	}
	files, err := fileLayers(opts.Dir, implDir, others, sync)
	if err != nil {
		return contents, err
	}
	copy(contents[:4], files[:])
	add := func(layer int, src []File) {
		for _, f := range src {
			contents[layer] = append(contents[layer], entry{Name: f.Name, Src: f.Path})
		}
	}
	if !opts.OmitImages {
		add(layerImagesLinux, im.LinuxImages)
		add(layerImagesWindows, im.WindowsImages)
	}
	if !opts.OmitPackages {
		add(layerPackages, im.Packages)
	}
	return contents, nil
}

// writeLayers writes every non-empty layer (and the manifests layer even
// when empty) as a tar blob, gzipped where its kind says so.
func writeLayers(lw *layout, contents implLayerSet, date time.Time) ([]ocispec.Descriptor, error) {
	var layers []ocispec.Descriptor
	for i, k := range layerKinds {
		if len(contents[i]) == 0 && i != layerManifests {
			continue
		}
		d, err := lw.writeBlob(k.MediaType, func(w io.Writer) error {
			if !k.Gzip {
				return writeTar(w, contents[i], date)
			}
			zw, err := gzipWriter(w)
			if err != nil {
				return err
			}
			if err := writeTar(zw, contents[i], date); err != nil {
				return err
			}
			return zw.Close()
		})
		if err != nil {
			return nil, fmt.Errorf("layer %s: %w", k.File, err)
		}
		d.Annotations = map[string]string{annotationTitle: k.File}
		layers = append(layers, d)
	}
	return layers, nil
}

// implDescription is the export's description if set, else the
// implementation's, else the addon's.
func implDescription(opts Options, impl string) string {
	if opts.Description != "" {
		return opts.Description
	}
	if mi, _ := opts.Manifest.Implementation(impl); mi.Description != "" {
		return mi.Description
	}
	return opts.Manifest.Metadata.Description
}

func writeConfig(lw *layout, opts Options, impl, desc string, date time.Time) (ocispec.Descriptor, error) {
	// Field order is fixed by the struct, unlike K2s's hashtable.
	cfg, _ := json.Marshal(struct {
		Name           string `json:"name"`
		Version        string `json:"version"`
		Implementation string `json:"implementation"`
		Description    string `json:"description"`
		K2sVersion     string `json:"k2sVersion"`
		ExportDate     string `json:"exportDate"`
	}{opts.Name, opts.Version, impl, desc, opts.ProductVersion, date.Format("2006-01-02T15:04:05Z")})
	return lw.writeBlob(ConfigMediaType, func(w io.Writer) error { _, err := w.Write(cfg); return err })
}

// writeManifest writes the implementation's manifest blob and returns its
// index entry, tagged v<version>.
func writeManifest(lw *layout, opts Options, impl, desc string, config ocispec.Descriptor, layers []ocispec.Descriptor, date time.Time) (ocispec.Descriptor, error) {
	exportName := ExportName(opts.Name, impl)
	ann := nonEmpty(map[string]string{
		annotationTitle:                        exportName,
		annotationVersion:                      opts.Version,
		annotationCreated:                      date.Format(time.RFC3339),
		"org.opencontainers.image.vendor":      opts.Vendor,
		"org.opencontainers.image.licenses":    opts.License,
		"org.opencontainers.image.description": desc,
		annotationName:                         opts.Name,
		annotationImpl:                         impl,
		annotationExport:                       exportName,
		annotationK2sVer:                       opts.ProductVersion,
		annotationExportDay:                    date.Format(time.RFC3339),
		annotationExportTyp:                    "specific",
	})
	man := ocispec.Manifest{
		Versioned:    specs.Versioned{SchemaVersion: 2},
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: ArtifactType,
		Config:       config,
		Layers:       layers,
		Annotations:  ann,
	}
	raw, err := json.Marshal(man)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	md, err := lw.writeBlob(ocispec.MediaTypeImageManifest, func(w io.Writer) error { _, err := w.Write(raw); return err })
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	md.ArtifactType = ArtifactType
	md.Annotations = map[string]string{
		annotationRefName: "v" + opts.Version,
		annotationTitle:   exportName,
		annotationVersion: opts.Version,
		annotationName:    opts.Name,
		annotationImpl:    impl,
		annotationExport:  exportName,
	}
	return md, nil
}

func nonEmpty(m map[string]string) map[string]string {
	for k, v := range m {
		if v == "" {
			delete(m, k)
		}
	}
	return m
}

// layout writes blobs into an OCI image layout directory.
type layout struct {
	dir   string
	blobs map[string]bool
}

func newLayout(dir string) (*layout, error) {
	if err := os.MkdirAll(filepath.Join(dir, ocispec.ImageBlobsDir, "sha256"), 0o755); err != nil {
		return nil, err
	}
	return &layout{dir: dir, blobs: map[string]bool{}}, nil
}

// writeBlob streams a blob into the layout while hashing it, so that even
// hundreds of MB of image layers are written once and never held in memory.
func (l *layout) writeBlob(mediaType string, fill func(io.Writer) error) (ocispec.Descriptor, error) {
	bdir := filepath.Join(l.dir, ocispec.ImageBlobsDir, "sha256")
	f, err := os.CreateTemp(bdir, ".tmp-")
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	defer os.Remove(f.Name())
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(f, h)}
	if err := fill(cw); err != nil {
		f.Close()
		return ocispec.Descriptor{}, err
	}
	if err := f.Close(); err != nil {
		return ocispec.Descriptor{}, err
	}
	hexd := hex.EncodeToString(h.Sum(nil))
	if err := os.Rename(f.Name(), filepath.Join(bdir, hexd)); err != nil {
		return ocispec.Descriptor{}, err
	}
	l.blobs[hexd] = true
	return ocispec.Descriptor{MediaType: mediaType, Digest: digest.NewDigestFromEncoded(digest.SHA256, hexd), Size: cw.n}, nil
}

func (l *layout) files() []string {
	var out []string
	for h := range l.blobs {
		out = append(out, ocispec.ImageBlobsDir+"/sha256/"+h)
	}
	slices.Sort(out)
	return out
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// writeLayoutTar writes the layout's files as a tar (what `oras copy
// --from-oci-layout` and K2s's import read), atomically.
func writeLayoutTar(dir string, files []string, dst string, date time.Time) error {
	var entries []entry
	for _, f := range files {
		entries = append(entries, entry{Name: f, Src: filepath.Join(dir, filepath.FromSlash(f))})
	}
	return atomicfile.WriteFunc(dst, 0o600, false, func(f *os.File) error {
		return writeTar(f, entries, date)
	})
}
