package nodepkg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/relcue/release/internal/atomicfile"
	"github.com/relcue/release/internal/parallel"
	"github.com/relcue/release/modules/deb"
	"github.com/relcue/release/modules/image"
	"github.com/relcue/release/modules/pkgzip"
)

// Deb is one .deb to put into a node package.
type Deb struct {
	// Group is the folder under packages/<osdir>/, e.g. "kubernetes".
	Group string
	// Path is the local .deb file.
	Path string
	// Origin says where the .deb comes from in messages: the deb target
	// that built it, or the configuration position of an existing file.
	Origin string
}

// ImageArchive is one OCI archive to put into a node package.
type ImageArchive struct {
	// Path is the local OCI archive (a tar of an OCI image layout).
	Path string
	// Ref, when set, is the reference the configuration expects the archive
	// to carry; a different one is an error.
	Ref string
	// Origin says where the archive comes from in messages.
	Origin string
}

// Options configures Build.
type Options struct {
	// Product and Version name the product release; OS and OSDir the OS
	// target and its folder under packages/.
	Product, Version, OS, OSDir string
	Debs                        []Deb
	Images                      []ImageArchive
	// Output is the zip to write. It appears atomically: on error or
	// cancellation nothing is left at Output or next to it.
	Output string
	// Date is every entry's timestamp; the zero time means 1980-01-01.
	Date time.Time
	// Level is the deflate level 1..9 (0 means 6).
	Level int
	// Workers bounds parallel inspection and compression; < 1 means 1.
	Workers int
	// Progress receives uncompressed bytes written; may be nil.
	Progress func(int64)
	// Log receives human-readable detail lines; may be nil.
	Log io.Writer
}

// Build writes a node package and returns its manifest. The .debs are
// described from their own control data (deb.Inspect) and the images from
// their archives (image.Inspect); both are stored byte for byte.
func Build(ctx context.Context, opts Options) (*Manifest, error) {
	m, err := buildNodePackage(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("node package %s %s: %w", opts.OS, opts.Version, err)
	}
	return m, nil
}

type inspectedDeb struct {
	Package
	src Deb
}

type inspectedImage struct {
	Image
	src ImageArchive
}

func buildNodePackage(ctx context.Context, opts Options) (*Manifest, error) {
	if opts.Output == "" {
		return nil, errors.New("no output path given")
	}
	workers := max(opts.Workers, 1)
	debs, images, err := inspectAll(ctx, workers, opts.Debs, opts.Images)
	if err != nil {
		return nil, err
	}
	c, err := newContents(opts, debs, images)
	if err != nil {
		return nil, err
	}
	level := opts.Level
	if level == 0 {
		level = pkgzip.DefaultLevel
	}
	date := opts.Date
	if date.IsZero() {
		date = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	wopts := pkgzip.WriterOptions{Date: date, Level: level, Workers: workers, Progress: opts.Progress}
	final, err := c.write(ctx, opts.Output, wopts)
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", opts.Output, err)
	}
	if opts.Log != nil {
		fmt.Fprintf(opts.Log, "node package %s %s: %d packages, %d images\n", opts.OS, opts.Version, len(final.Packages), len(final.Images))
	}
	return final, nil
}

// contents is what a node package holds: its manifest without the
// digests, which the zip writer computes, and where each file comes from.
type contents struct {
	manifest *Manifest
	debs     map[string]inspectedDeb   // by package name
	images   map[string]inspectedImage // by reference
}

// newContents lists the inspected files in a manifest, refusing two
// versions of one package and two archives of one image.
func newContents(opts Options, debs []inspectedDeb, images []inspectedImage) (*contents, error) {
	m := &Manifest{
		ManifestVersion: ManifestVersion,
		Product:         opts.Product,
		Version:         opts.Version,
		OS:              opts.OS,
		OSDir:           opts.OSDir,
		HashAlgorithm:   HashAlgorithm,
		Packages:        []Package{},
		Images:          []Image{},
	}
	c := &contents{manifest: m, debs: map[string]inspectedDeb{}, images: map[string]inspectedImage{}}
	for _, d := range debs {
		if prev, ok := c.debs[d.Package.Package]; ok {
			return nil, fmt.Errorf("package %s comes twice: version %s from %s (%s) and version %s from %s (%s); a node installs one version of a package, keep one of them",
				d.Package.Package, prev.Version, prev.src.Origin, prev.src.Path, d.Version, d.src.Origin, d.src.Path)
		}
		c.debs[d.Package.Package] = d
		m.Packages = append(m.Packages, d.Package)
	}
	for _, img := range images {
		if prev, ok := c.images[img.Ref]; ok {
			return nil, fmt.Errorf("image %s comes twice: from %s (%s) and from %s (%s); keep one of them",
				img.Ref, prev.src.Origin, prev.src.Path, img.src.Origin, img.src.Path)
		}
		c.images[img.Ref] = img
		m.Images = append(m.Images, img.Image)
	}
	m.sort()
	return c, nil
}

// write writes the node package to path: the .debs and images in
// manifest order, then node-manifest.json with their digests, which it
// returns.
func (c *contents) write(ctx context.Context, path string, wopts pkgzip.WriterOptions) (*Manifest, error) {
	var final *Manifest
	err := atomicfile.WriteFuncMkdirAll(path, 0o644, true, func(w *os.File) error {
		zw := pkgzip.NewWriter(w, wopts)
		if err := c.addFiles(zw); err != nil {
			return err
		}
		err := zw.AddGenerated(ManifestName, pkgzip.ModeFile, func(digests map[string]pkgzip.Digest) ([]byte, error) {
			m, err := c.manifest.withDigests(digests)
			if err != nil {
				return nil, err
			}
			data, err := m.Marshal()
			if err != nil {
				return nil, err
			}
			final = m
			return data, nil
		})
		if err != nil {
			return err
		}
		_, err = zw.Close(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	return final, nil
}

func (c *contents) addFiles(zw *pkgzip.Writer) error {
	m := c.manifest
	for _, p := range m.Packages {
		d := c.debs[p.Package]
		if err := zw.AddFile(p.Entry(m.OSDir), d.src.Path, pkgzip.ModeFile); err != nil {
			return fmt.Errorf("%s (%s): %w", d.src.Origin, d.src.Path, err)
		}
	}
	for _, img := range m.Images {
		a := c.images[img.Ref]
		if err := zw.AddFile(img.Entry(), a.src.Path, pkgzip.ModeFile); err != nil {
			return fmt.Errorf("%s (%s): %w", a.src.Origin, a.src.Path, err)
		}
	}
	return nil
}

// withDigests returns a copy of m with the SHA256 and Size of every file
// taken from the digests the zip writer computed.
func (m *Manifest) withDigests(digests map[string]pkgzip.Digest) (*Manifest, error) {
	c := *m
	c.Packages = slices.Clone(m.Packages)
	c.Images = slices.Clone(m.Images)
	for i, p := range c.Packages {
		dg, ok := digests[p.Entry(c.OSDir)]
		if !ok {
			return nil, fmt.Errorf("internal error: no digest for %s", p.Entry(c.OSDir))
		}
		c.Packages[i].SHA256, c.Packages[i].Size = dg.SHA256, dg.Size
	}
	for i, img := range c.Images {
		dg, ok := digests[img.Entry()]
		if !ok {
			return nil, fmt.Errorf("internal error: no digest for %s", img.Entry())
		}
		c.Images[i].SHA256, c.Images[i].Size = dg.SHA256, dg.Size
	}
	return &c, nil
}

// inspectAll inspects the .debs and the image archives, workers at a time
// in one pool (both are mostly reading files), keeping their order.
func inspectAll(ctx context.Context, workers int, srcDebs []Deb, srcImages []ImageArchive) ([]inspectedDeb, []inspectedImage, error) {
	debs := make([]inspectedDeb, len(srcDebs))
	images := make([]inspectedImage, len(srcImages))
	jobs := make([]func() error, 0, len(srcDebs)+len(srcImages))
	for i, d := range srcDebs {
		jobs = append(jobs, func() error {
			p, err := inspectDeb(d)
			debs[i] = inspectedDeb{Package: p, src: d}
			return err
		})
	}
	for i, a := range srcImages {
		jobs = append(jobs, func() error {
			img, err := inspectImage(a)
			images[i] = inspectedImage{Image: img, src: a}
			return err
		})
	}
	err := parallel.For(ctx, workers, jobs, func(_ context.Context, _ int, job func() error) error { return job() })
	if err != nil {
		return nil, nil, err
	}
	return debs, images, nil
}

// inspectDeb reads a .deb's control data and places it in its group. The
// digest is filled in when the file is written.
func inspectDeb(d Deb) (Package, error) {
	where := d.Origin
	if where == "" {
		where = d.Path
	}
	if err := CheckGroup(d.Group); err != nil {
		return Package{}, fmt.Errorf("%s: %w", where, err)
	}
	st, err := os.Stat(d.Path)
	if err != nil {
		return Package{}, fmt.Errorf("%s: %w", where, err)
	}
	if !st.Mode().IsRegular() || st.Size() == 0 {
		return Package{}, fmt.Errorf("%s: %s is not a non-empty regular file; a .deb is expected", where, d.Path)
	}
	c, err := deb.Inspect(d.Path)
	if err != nil {
		return Package{}, fmt.Errorf("%s: %w", where, err)
	}
	if err := CheckControl(c.Package, c.Version, c.Architecture); err != nil {
		return Package{}, fmt.Errorf("%s: %s: control data: %w", where, d.Path, err)
	}
	file := deb.FileName(c.Package, c.Version, c.Architecture)
	if err := checkFileName("deb file", file); err != nil {
		return Package{}, fmt.Errorf("%s: %w", where, err)
	}
	return Package{
		Group:        d.Group,
		Path:         d.Group + "/" + file,
		Package:      c.Package,
		Version:      c.Version,
		Architecture: c.Architecture,
	}, nil
}

// inspectImage reads an OCI archive's index and names its file after its
// reference.
func inspectImage(a ImageArchive) (Image, error) {
	where := a.Origin
	if where == "" {
		where = a.Path
	}
	info, err := image.Inspect(a.Path)
	if err != nil {
		return Image{}, fmt.Errorf("%s: %w", where, err)
	}
	if info.RefName == "" {
		return Image{}, fmt.Errorf("%s: %s names no image (no org.opencontainers.image.ref.name in its index.json); node images must carry their reference", where, a.Path)
	}
	if a.Ref != "" && info.RefName != a.Ref {
		return Image{}, fmt.Errorf("%s: %s carries reference %q, but the configuration names it %q; rebuild the image", where, a.Path, info.RefName, a.Ref)
	}
	if len(info.Images) == 0 {
		return Image{}, fmt.Errorf("%s: %s holds no platform image", where, a.Path)
	}
	img := Image{
		File:   image.FileName(info.RefName),
		Ref:    info.RefName,
		Digest: info.Digest,
		// Runtimes show the config digest as the image ID; a multi-platform
		// image has one per platform, and the first in index order stands
		// for it (Digest identifies the whole image).
		ImageId:   info.Images[0].ConfigDigest,
		Platforms: info.Platforms(),
	}
	slices.Sort(img.Platforms)
	img.Platforms = slices.Compact(img.Platforms)
	if img.Platforms == nil {
		img.Platforms = []string{}
	}
	// Size and SHA256 are filled in when the file is written; validate the
	// rest now so that the error names the source.
	probe := img
	probe.SHA256, probe.Size = strings.Repeat("0", 64), 1
	if err := probe.validate(); err != nil {
		return Image{}, fmt.Errorf("%s: %s: %w", where, a.Path, err)
	}
	return img, nil
}
