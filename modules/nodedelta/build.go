package nodedelta

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/relcue/release/internal/atomicfile"
	"github.com/relcue/release/modules/nodepkg"
	"github.com/relcue/release/modules/pkgzip"
)

// The node scripts are shipped as they are: they read the helper files next
// to them, so they never change with the delta's content.
var (
	//go:embed scripts/apply-node-delta.sh
	applyScript []byte
	//go:embed scripts/verify-node-delta.sh
	verifyScript []byte
)

// Options configures Build.
type Options struct {
	// Base and Target are node packages of one OS target.
	Base, Target string
	// BaseVersion and TargetVersion, when set, are the releases the node
	// packages must be (a mismatch is an error).
	BaseVersion, TargetVersion string
	// Output is the delta zip to write. It appears atomically: on error or
	// cancellation nothing is left at Output or next to it.
	Output string
	// Date is GeneratedUtc and every entry's timestamp; the zero time means
	// 1980-01-01.
	Date time.Time
	// Level is the deflate level 1..9 for the files release writes (0
	// means 6); .debs and images are copied without recompression.
	Level int
	// Workers bounds parallel compression; < 1 means 1.
	Workers int
	// Progress receives uncompressed bytes written; may be nil.
	Progress func(int64)
	// Log receives human-readable detail lines; may be nil.
	Log io.Writer
}

// zipEpoch is the earliest time a zip's DOS timestamp can hold.
var zipEpoch = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

// Build writes the node delta from opts.Base to opts.Target and returns
// its manifest. Only the two node-manifest.json files are read to diff;
// shipped .debs and images are copied raw from the target.
func Build(ctx context.Context, opts Options) (*Manifest, error) {
	m, err := buildNodeDelta(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("node delta %s..%s: %w", filepath.Base(opts.Base), filepath.Base(opts.Target), err)
	}
	return m, nil
}

func buildNodeDelta(ctx context.Context, opts Options) (*Manifest, error) {
	if opts.Base == "" || opts.Target == "" || opts.Output == "" {
		return nil, errors.New("base, target and output paths are all required")
	}
	date := opts.Date.UTC().Truncate(time.Second)
	if opts.Date.IsZero() || date.Before(zipEpoch) {
		date = zipEpoch
	}
	level := opts.Level
	if level == 0 {
		level = pkgzip.DefaultLevel
	}
	base, err := pkgzip.Open(opts.Base)
	if err != nil {
		return nil, fmt.Errorf("base node package: %w", err)
	}
	defer base.Close()
	target, err := pkgzip.Open(opts.Target)
	if err != nil {
		return nil, fmt.Errorf("target node package: %w", err)
	}
	defer target.Close()
	bm, tm, err := readManifests(opts, base, target)
	if err != nil {
		return nil, err
	}
	z, err := newDeltaZip(opts, date, bm, tm)
	if err != nil {
		return nil, err
	}
	m := z.manifest
	if opts.Log != nil {
		fmt.Fprintf(opts.Log, "node delta %s %s..%s: %d packages added, %d changed, %d removed; %d images added, %d changed, %d removed; %d files shipped\n",
			m.OS, m.BaseVersion, m.TargetVersion,
			m.DebianPackageDiff.AddedCount, m.DebianPackageDiff.ChangedCount, m.DebianPackageDiff.RemovedCount,
			m.ContainerImageDiff.AddedCount, m.ContainerImageDiff.ChangedCount, m.ContainerImageDiff.RemovedCount, len(z.payload))
	}
	wopts := pkgzip.WriterOptions{Date: date, Level: level, Workers: max(opts.Workers, 1), Progress: opts.Progress}
	if err := z.write(ctx, opts.Output, target, wopts); err != nil {
		return nil, fmt.Errorf("write %s: %w", opts.Output, err)
	}
	return m, nil
}

// readManifests reads the node manifests of both packages and checks that
// they make a delta.
func readManifests(opts Options, base, target *pkgzip.Reader) (bm, tm *nodepkg.Manifest, err error) {
	if bm, err = nodepkg.ReadManifest(base); err != nil {
		return nil, nil, fmt.Errorf("base node package: %w", err)
	}
	if tm, err = nodepkg.ReadManifest(target); err != nil {
		return nil, nil, fmt.Errorf("target node package: %w", err)
	}
	if err := checkPair(opts, bm, tm); err != nil {
		return nil, nil, err
	}
	return bm, tm, nil
}

// deltaZip is everything a node delta zip is written from.
type deltaZip struct {
	manifest *Manifest
	// manifestJSON is manifest, encoded.
	manifestJSON []byte
	// payload are the target entries shipped raw, with their digests.
	payload map[string]pkgzip.Digest
	// helpers are the files release writes itself, SHA256SUMS included.
	helpers map[string]helper
}

// newDeltaZip diffs the two node manifests and builds the delta's
// manifest: the helper files, then SHA256SUMS over everything but itself
// and the manifest, then Files over everything but the manifest.
func newDeltaZip(opts Options, date time.Time, bm, tm *nodepkg.Manifest) (*deltaZip, error) {
	m, payload := diff(bm, tm)
	m.GeneratedUtc = date.Format(time.RFC3339)
	m.BasePackage = filepath.Base(opts.Base)
	m.TargetPackage = filepath.Base(opts.Target)

	files := helperFiles(bm, tm, m)
	for p, d := range payload {
		m.Files[p] = d
	}
	for name, f := range files {
		m.Files[name] = digestOf(f.data)
	}
	sums := sha256sums(m.Files)
	m.Files[Sums] = digestOf(sums)
	files[Sums] = helper{data: sums, mode: pkgzip.ModeFile}
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("internal error: the manifest built is invalid: %w", err)
	}
	data, err := m.Marshal()
	if err != nil {
		return nil, err
	}
	return &deltaZip{manifest: m, manifestJSON: data, payload: payload, helpers: files}, nil
}

// write writes the zip to path: the payload copied raw from target,
// the helper files, then the manifest; and checks that every entry was
// written as Files says.
func (z *deltaZip) write(ctx context.Context, path string, target *pkgzip.Reader, wopts pkgzip.WriterOptions) error {
	return atomicfile.WriteFuncMkdirAll(path, 0o644, true, func(w *os.File) error {
		zw := pkgzip.NewWriter(w, wopts)
		if err := z.addEntries(zw, target); err != nil {
			return err
		}
		written, err := zw.Close(ctx)
		if err != nil {
			return err
		}
		for p, want := range z.manifest.Files {
			if got, ok := written[p]; !ok || got != want {
				return fmt.Errorf("internal error: entry %s was written as %+v, the manifest says %+v", p, got, want)
			}
		}
		return nil
	})
}

func (z *deltaZip) addEntries(zw *pkgzip.Writer, target *pkgzip.Reader) error {
	for _, p := range slices.Sorted(maps.Keys(z.payload)) {
		e := target.Lookup(p)
		if e == nil {
			return fmt.Errorf("internal error: target entry %s vanished", p)
		}
		if err := zw.AddRaw(p, e, z.payload[p]); err != nil {
			return err
		}
	}
	for _, name := range slices.Sorted(maps.Keys(z.helpers)) {
		if err := zw.AddBytes(name, z.helpers[name].data, z.helpers[name].mode); err != nil {
			return err
		}
	}
	return zw.AddBytes(ManifestName, z.manifestJSON, pkgzip.ModeFile)
}

// checkPair refuses node packages that do not make a delta.
func checkPair(opts Options, bm, tm *nodepkg.Manifest) error {
	switch {
	case bm.OS != tm.OS || bm.OSDir != tm.OSDir:
		return fmt.Errorf("base is for OS %s (%s) but target for OS %s (%s); a node delta needs two node packages of one OS target", bm.OS, bm.OSDir, tm.OS, tm.OSDir)
	case bm.Product != tm.Product:
		return fmt.Errorf("base is of product %s but target of product %s", bm.Product, tm.Product)
	case opts.BaseVersion != "" && bm.Version != opts.BaseVersion:
		return fmt.Errorf("base node package %s is release %s, expected %s", opts.Base, bm.Version, opts.BaseVersion)
	case opts.TargetVersion != "" && tm.Version != opts.TargetVersion:
		return fmt.Errorf("target node package %s is release %s, expected %s", opts.Target, tm.Version, opts.TargetVersion)
	case bm.Version == tm.Version:
		return fmt.Errorf("base and target are both release %s; a node delta needs two different releases", bm.Version)
	}
	return nil
}

// diff fills the manifest's lists and returns the target entries to ship
// with their digests. Files are compared by content (what a node must
// receive), packages by name (what dpkg sees).
func diff(bm, tm *nodepkg.Manifest) (*Manifest, map[string]pkgzip.Digest) {
	m := &Manifest{
		ManifestVersion:         ManifestVersion,
		DeltaType:               DeltaType,
		BaseVersion:             bm.Version,
		TargetVersion:           tm.Version,
		HashAlgorithm:           HashAlgorithm,
		DebianDeltaRelativePath: nodepkg.PackagesDir + "/" + tm.OSDir,
		OS:                      tm.OS,
		OSDir:                   tm.OSDir,
		Files:                   map[string]pkgzip.Digest{},
	}
	m.normalize()
	be, te := bm.Entries(), tm.Entries()
	payload := map[string]pkgzip.Digest{}
	for _, p := range slices.Sorted(maps.Keys(te)) {
		b, ok := be[p]
		switch {
		case !ok:
			m.Added = append(m.Added, p)
			payload[p] = te[p]
		case b != te[p]:
			m.Changed = append(m.Changed, p)
			payload[p] = te[p]
		}
	}
	for _, p := range slices.Sorted(maps.Keys(be)) {
		if _, ok := te[p]; !ok {
			m.Removed = append(m.Removed, p)
		}
	}

	d := nodepkg.Compare(bm, tm)
	dp := &m.DebianPackageDiff
	dp.Processed = true
	for _, p := range d.AddedPackages {
		dp.Added = append(dp.Added, p.Path)
	}
	for _, p := range d.RemovedPackages {
		dp.Removed = append(dp.Removed, p.Path)
	}
	for _, c := range d.ChangedPackages {
		dp.Changed = append(dp.Changed, c.Target.Path)
	}
	slices.Sort(dp.Added)
	slices.Sort(dp.Removed)
	slices.Sort(dp.Changed)

	ci := &m.ContainerImageDiff
	bImg := map[string]nodepkg.Image{}
	for _, i := range bm.Images {
		bImg[i.File] = i
	}
	tImg := map[string]nodepkg.Image{}
	for _, i := range tm.Images {
		tImg[i.File] = i
	}
	for _, p := range m.Added {
		if f, ok := strings.CutPrefix(p, imagesDir); ok {
			ci.AddedImages[f] = imageInfo(tImg[f])
		}
	}
	for _, p := range m.Changed {
		if f, ok := strings.CutPrefix(p, imagesDir); ok {
			ci.ChangedImages[f] = imageInfo(tImg[f])
		}
	}
	for _, p := range m.Removed {
		if f, ok := strings.CutPrefix(p, imagesDir); ok {
			ci.RemovedImages[f] = imageInfo(bImg[f])
		}
	}
	m.AddedCount, m.ChangedCount, m.RemovedCount = len(m.Added), len(m.Changed), len(m.Removed)
	dp.AddedCount, dp.RemovedCount, dp.ChangedCount = len(dp.Added), len(dp.Removed), len(dp.Changed)
	ci.AddedCount, ci.RemovedCount, ci.ChangedCount = len(ci.AddedImages), len(ci.RemovedImages), len(ci.ChangedImages)
	return m, payload
}

func imageInfo(i nodepkg.Image) ImageInfo {
	id := strings.TrimPrefix(i.ImageId, "sha256:")
	if len(id) > 12 {
		id = id[:12]
	}
	return ImageInfo{FullName: i.Ref, ImageId: id, Size: HumanSize(i.Size)}
}

type helper struct {
	data []byte
	mode fs.FileMode
}

// helperFiles are the plain-text lists and the scripts at the root.
func helperFiles(bm, tm *nodepkg.Manifest, m *Manifest) map[string]helper {
	pkgs := m.DebianDeltaRelativePath + "/"
	var removedDebs, removedImages []string
	for _, p := range m.Removed {
		if rel, ok := strings.CutPrefix(p, pkgs); ok {
			removedDebs = append(removedDebs, rel)
		} else if f, ok := strings.CutPrefix(p, imagesDir); ok {
			removedImages = append(removedImages, f)
		}
	}
	return map[string]helper{
		PackagesRemoved: {data: lines(removedDebs), mode: pkgzip.ModeFile},
		ImagesRemoved:   {data: lines(removedImages), mode: pkgzip.ModeFile},
		PackagesBase:    {data: lines(bm.PackageSet()), mode: pkgzip.ModeFile},
		PackagesTarget:  {data: lines(tm.PackageSet()), mode: pkgzip.ModeFile},
		ApplyScript:     {data: applyScript, mode: pkgzip.ModeExec},
		VerifyScript:    {data: verifyScript, mode: pkgzip.ModeExec},
	}
}

// lines joins l with LF after every line ("" for none).
func lines(l []string) []byte {
	var b strings.Builder
	for _, s := range l {
		b.WriteString(s)
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// sha256sums is the content of SHA256SUMS for the given files, in the
// format of sha256sum (two spaces: text mode), sorted by path.
func sha256sums(files map[string]pkgzip.Digest) []byte {
	var b strings.Builder
	for _, p := range slices.Sorted(maps.Keys(files)) {
		b.WriteString(files[p].SHA256 + "  " + p + "\n")
	}
	return []byte(b.String())
}

func digestOf(data []byte) pkgzip.Digest {
	sum := sha256.Sum256(data)
	return pkgzip.Digest{SHA256: hex.EncodeToString(sum[:]), Size: int64(len(data))}
}
