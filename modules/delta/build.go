package delta

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/relcue/release/internal/atomicfile"
	"github.com/relcue/release/modules/pkgmanifest"
	"github.com/relcue/release/modules/pkgzip"
)

// Options configures Build.
type Options struct {
	// Base and Target are the full package zips the delta goes from and to.
	Base, Target string
	// BaseNode and TargetNode, when both set, are the control-plane node
	// packages of the same two releases; their node-manifest.json files
	// fill DebianPackageDiff and ContainerImageDiff (see NodeDiffs).
	// Otherwise both diffs stay unprocessed, as K2s leaves them without a
	// VM to compare.
	BaseNode, TargetNode string
	// Output is the delta zip to write. It appears atomically: on error or
	// cancellation nothing is left at Output or next to it.
	Output string
	// WholeDirectories are shipped complete and replace the installed
	// directory (K2s default: bin/cni). Skip are glob patterns
	// (internal/glob) of paths excluded from the delta entirely.
	WholeDirectories, Skip []string
	// Date is GeneratedUtc and every entry's timestamp. The zero time means
	// 1980-01-01T00:00:00Z (the zip epoch), never "now", so that output
	// bytes only depend on the inputs.
	Date time.Time
	// Level is the deflate level 1..9 for entries release writes itself
	// (the manifest); shipped files are copied without recompression.
	// 0 means 6.
	Level int
	// Mode is "file" (default): changed files are shipped whole; or
	// "binary": changed files of at least PatchThreshold bytes are shipped
	// as patches against their base (see MakePatch) when the patch is
	// smaller than the file's compressed entry.
	Mode string
	// PatchThreshold is the smallest target size patched in binary mode;
	// 0 means DefaultPatchThreshold.
	PatchThreshold int64
	// PatchMemory bounds the memory of the patches made at once (each
	// holds its base and target, plus ~128 MiB per frame encoder in
	// flight); 0 means DefaultPatchMemory. A file whose patch alone needs
	// more is still patched, alone.
	PatchMemory int64
	// Workers bounds parallel hashing and compression; < 1 means 1.
	Workers int
	// Progress receives uncompressed bytes hashed and written; may be nil.
	// Calls are serialized.
	Progress func(int64)
	// Log receives human-readable detail lines; may be nil.
	Log io.Writer
}

// zipEpoch is the earliest time a zip's DOS timestamp can hold.
var zipEpoch = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

// Build writes the cluster delta zip from opts.Base to opts.Target and
// returns its manifest.
func Build(ctx context.Context, opts Options) (*Manifest, error) {
	m, err := buildDelta(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("delta %s..%s: %w", filepath.Base(opts.Base), filepath.Base(opts.Target), err)
	}
	return m, nil
}

func buildDelta(ctx context.Context, opts Options) (*Manifest, error) {
	if opts.Base == "" || opts.Target == "" || opts.Output == "" {
		return nil, errors.New("base, target and output paths are all required")
	}
	whole, err := normalizeWholeDirs(opts.WholeDirectories)
	if err != nil {
		return nil, err
	}
	skip, err := normalizeSkip(opts.Skip)
	if err != nil {
		return nil, err
	}
	level := opts.Level
	if level == 0 {
		level = 6
	}
	if level < 1 || level > 9 {
		return nil, fmt.Errorf("compression level %d is outside 1..9", level)
	}
	workers := max(opts.Workers, 1)
	mode := opts.Mode
	if mode == "" {
		mode = ModeFile
	}
	if mode != ModeFile && mode != ModeBinary {
		return nil, fmt.Errorf("mode %q: want %q or %q", opts.Mode, ModeFile, ModeBinary)
	}
	date := opts.Date.UTC().Truncate(time.Second)
	if opts.Date.IsZero() || date.Before(zipEpoch) {
		date = zipEpoch
	}
	logf := func(format string, args ...any) {
		if opts.Log != nil {
			fmt.Fprintf(opts.Log, format+"\n", args...)
		}
	}

	base, err := pkgzip.Open(opts.Base)
	if err != nil {
		return nil, fmt.Errorf("base package: %w", err)
	}
	defer base.Close()
	target, err := pkgzip.Open(opts.Target)
	if err != nil {
		return nil, fmt.Errorf("target package: %w", err)
	}
	defer target.Close()

	bp, err := readPackage(ctx, "base", base, workers, opts.Progress)
	if err != nil {
		return nil, err
	}
	tp, err := readPackage(ctx, "target", target, workers, opts.Progress)
	if err != nil {
		return nil, err
	}
	if bp.version == tp.version {
		return nil, fmt.Errorf("base and target are both version %s; a delta needs two different versions", bp.version)
	}
	if (opts.BaseNode == "") != (opts.TargetNode == "") {
		return nil, errors.New("give both node packages (base and target) or neither")
	}
	var debDiff DebianPackageDiff
	var imgDiff ContainerImageDiff
	if opts.BaseNode != "" {
		bn, err := readNodeManifest("base", opts.BaseNode, bp.version)
		if err != nil {
			return nil, err
		}
		tn, err := readNodeManifest("target", opts.TargetNode, tp.version)
		if err != nil {
			return nil, err
		}
		if bn.OS != tn.OS {
			return nil, fmt.Errorf("the node packages are of two OS targets (%s and %s); pass both of the control-plane OS", bn.OS, tn.OS)
		}
		debDiff, imgDiff = NodeDiffs(bn, tn)
		logf("delta %s..%s: node %s: %d packages added, %d changed, %d removed; %d images added, %d changed, %d removed",
			bp.version, tp.version, tn.OS, debDiff.AddedCount, debDiff.ChangedCount, debDiff.RemovedCount,
			imgDiff.AddedCount, imgDiff.ChangedCount, imgDiff.RemovedCount)
	}

	d := diffFiles(bp.files, tp.files, whole, skip)
	logf("delta %s..%s: %d added, %d changed, %d removed, %d files in wholesale directories, %d skipped",
		bp.version, tp.version, len(d.Added), len(d.Changed), len(d.Removed), len(d.WholeTarget), len(d.Skipped))

	m := &Manifest{
		ManifestVersion:  ManifestVersion,
		GeneratedUtc:     date.Format(time.RFC3339),
		BasePackage:      filepath.Base(opts.Base),
		TargetPackage:    filepath.Base(opts.Target),
		BaseVersion:      bp.version,
		TargetVersion:    tp.version,
		WholeDirectories: whole,
		// K2s writes the matched files' names here; see the comment on the
		// Manifest type for why release lists paths.
		SpecialSkippedFiles: d.Skipped,
		Added:               d.Added,
		Changed:             d.Changed,
		Removed:             d.Removed,
		HashAlgorithm:       HashAlgorithm,
		DebianPackageDiff:   debDiff,
		ContainerImageDiff:  imgDiff,
		SkipRules:           skip,
		Files: FileHashes{
			Base:   map[string]pkgzip.Digest{},
			Target: map[string]pkgzip.Digest{},
		},
	}
	m.normalize()
	m.WholeDirectoriesCount = len(m.WholeDirectories)
	m.SpecialSkippedFilesCount = len(m.SpecialSkippedFiles)
	m.AddedCount, m.ChangedCount, m.RemovedCount = len(m.Added), len(m.Changed), len(m.Removed)

	var patches map[string][]byte
	if mode == ModeBinary {
		m.DeltaMode = ModeBinary
		patches, err = makePatches(ctx, base, target, bp, tp, d.Changed, opts, workers)
		if err != nil {
			return nil, err
		}
		if len(patches) > 0 {
			m.Patches = map[string]Patch{}
		}
		for p, data := range patches {
			pt := Patch{Algorithm: PatchAlgorithm, Entry: PatchEntry(p), BaseSHA256: bp.files[p].SHA256, TargetSHA256: tp.files[p].SHA256}
			pt.Patch.SHA256, pt.Patch.Size = sha256Hex(data), int64(len(data))
			m.Patches[p] = pt
		}
		logf("delta %s..%s: %d of %d changed files shipped as patches", bp.version, tp.version, len(patches), len(d.Changed))
	}

	var ship []string
	for _, l := range [][]string{d.Added, d.Changed, d.WholeTarget} {
		for _, p := range l {
			m.Files.Target[p] = tp.files[p].Digest
			ship = append(ship, p)
		}
	}
	for _, l := range [][]string{d.Changed, d.Removed, d.WholeBase} {
		for _, p := range l {
			m.Files.Base[p] = bp.files[p].Digest
		}
	}
	if bp.manifestEntry != nil {
		m.Files.Base[PackageManifestName] = bp.manifestDigest
	}
	if tp.manifestEntry != nil {
		m.Files.Target[PackageManifestName] = tp.manifestDigest
	}
	// Build's own output must pass the checks apply will make; a failure
	// here is a bug in release, not in the inputs.
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("internal error: the manifest built is invalid: %w", err)
	}
	data, err := m.Marshal()
	if err != nil {
		return nil, err
	}

	// 0644: CreateTemp makes the file 0600, but a delta is a publishable
	// artifact. Synced, because a delta is expensive to rebuild.
	err = atomicfile.WriteFuncMkdirAll(opts.Output, 0o644, true, func(w *os.File) error {
		zw := pkgzip.NewWriter(w, pkgzip.WriterOptions{Date: date, Level: level, Workers: workers, Progress: opts.Progress})
		if err := zw.AddBytes(ManifestName, data, pkgzip.ModeFile); err != nil {
			return err
		}
		if tp.manifestEntry != nil {
			if err := zw.AddRaw(PackageManifestName, tp.manifestEntry, tp.manifestDigest); err != nil {
				return err
			}
		}
		for _, p := range sortedKeys(patches) {
			e := target.Lookup(p)
			if err := zw.AddBytes(PatchEntry(p), patches[p], e.Mode); err != nil {
				return err
			}
		}
		for _, p := range ship {
			if _, ok := patches[p]; ok {
				continue
			}
			e := target.Lookup(p)
			if e == nil {
				return fmt.Errorf("internal error: target entry %s vanished", p)
			}
			if err := zw.AddRaw(p, e, tp.files[p].Digest); err != nil {
				return err
			}
		}
		written, err := zw.Close(ctx)
		if err != nil {
			return err
		}
		for _, pt := range m.Patches {
			if got := written[pt.Entry]; got != pt.Patch {
				return fmt.Errorf("internal error: patch %s was written as %+v, the manifest says %+v", pt.Entry, got, pt.Patch)
			}
		}
		for p, want := range m.Files.Target {
			if _, ok := m.Patches[p]; ok {
				continue
			}
			if got, ok := written[p]; !ok || got != want {
				return fmt.Errorf("internal error: entry %s was written as %+v, the manifest says %+v", p, got, want)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", opts.Output, err)
	}
	return m, nil
}

// pkgInfo is what Build needs from one full package.
type pkgInfo struct {
	version string
	files   map[string]fileInfo
	// manifestEntry is the package's package-manifest.json, or nil.
	manifestEntry  *pkgzip.Entry
	manifestDigest pkgzip.Digest
}

// readPackage gets the version and the digest of every file of a full
// package. The digests come from its package-manifest.json when it has one
// (after checking that the manifest describes this zip), otherwise every
// entry is streamed through SHA-256; nothing is extracted to disk.
func readPackage(ctx context.Context, role string, r *pkgzip.Reader, workers int, progress func(int64)) (*pkgInfo, error) {
	info := &pkgInfo{files: map[string]fileInfo{}}
	for _, e := range r.Entries {
		if Reserved(e.Name) || e.Name == ManifestName {
			return nil, fmt.Errorf("%s package %s: entry %s is reserved (%s, %s, %s); a full package must not contain it",
				role, r.Path, e.Name, ManifestName, ApplyStateDir, ApplyLockFile)
		}
	}
	v := r.Lookup(VersionFile)
	if v == nil {
		return nil, fmt.Errorf("%s package %s has no %s file at its root; a full package needs one", role, r.Path, VersionFile)
	}
	raw, err := readEntry(v, 4096)
	if err != nil {
		return nil, fmt.Errorf("%s package %s: %w", role, r.Path, err)
	}
	info.version = strings.TrimSpace(string(raw))
	if info.version == "" || strings.ContainsAny(info.version, "\r\n\x00") {
		return nil, fmt.Errorf("%s package %s: %s must hold one non-empty line, it holds %q", role, r.Path, VersionFile, raw)
	}

	pm, ok, err := pkgmanifest.Read(r)
	if err != nil {
		return nil, fmt.Errorf("%s package: %w", role, err)
	}
	var digests map[string]pkgzip.Digest
	if ok {
		// Check compares names and sizes only; contents are checked where
		// they are read (apply stages and Verify hash every shipped file).
		if err := pkgmanifest.Check(r, pm); err != nil {
			return nil, fmt.Errorf("%s package: %w", role, err)
		}
		if pm.Version != info.version {
			return nil, fmt.Errorf("%s package %s: %s says version %s but %s says %s; rebuild the package", role, r.Path, pkgmanifest.Name, pm.Version, VersionFile, info.version)
		}
		digests = pm.Digests()
		e := r.Lookup(pkgmanifest.Name)
		data, err := readEntry(e, maxManifestSize)
		if err != nil {
			return nil, fmt.Errorf("%s package %s: %w", role, r.Path, err)
		}
		sum := sha256.Sum256(data)
		info.manifestEntry = e
		info.manifestDigest = pkgzip.Digest{SHA256: hex.EncodeToString(sum[:]), Size: int64(len(data))}
	} else {
		digests, err = r.HashAll(ctx, workers, progress)
		if err != nil {
			return nil, fmt.Errorf("%s package: %w", role, err)
		}
	}
	for _, e := range r.Entries {
		if e.Name == PackageManifestName {
			continue
		}
		d, ok := digests[e.Name]
		if !ok {
			return nil, fmt.Errorf("%s package %s: entry %s has no digest in %s; rebuild the package", role, r.Path, e.Name, pkgmanifest.Name)
		}
		info.files[e.Name] = fileInfo{Digest: d, Exec: e.Mode&0o111 != 0}
	}
	return info, nil
}

// readEntry reads a small entry completely, refusing more than limit bytes.
func readEntry(e *pkgzip.Entry, limit int64) ([]byte, error) {
	if e.Size > limit {
		return nil, fmt.Errorf("entry %s is %d bytes, more than the %d expected", e.Name, e.Size, limit)
	}
	rc, err := e.Open()
	if err != nil {
		return nil, fmt.Errorf("open entry %s: %w", e.Name, err)
	}
	data, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("read entry %s: %w", e.Name, err)
	}
	return data, nil
}
