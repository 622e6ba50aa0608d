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
	"slices"
	"strings"
	"time"

	"github.com/relcue/release/internal/atomicfile"
	"github.com/relcue/release/modules/applydelta"
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
	// Paths is the policy for the target's paths; "" is
	// pkgzip.PathsWindows. A refusal is a *pkgzip.NameError, so callers
	// can add how to opt out (pkgzip.Hint).
	Paths pkgzip.PathPolicy

	// Profile is "" for release's generic format or ProfileK2s for a
	// delta K2s's own upgrade code applies (see k2s.go): it needs
	// ApplyScript, both node packages and mode file.
	Profile string
	// SkipNames are file names left out wherever they are, in any letter
	// case (K2s's special skipped files).
	SkipNames []string
	// Always are target paths shipped even when they did not change
	// (Manifest.Mandatory); a target without one is refused.
	Always []string
	// Nested are archives of the package that installations hold
	// expanded; their members are diffed and shipped at their installed
	// paths instead.
	Nested []Nested
	// ApplyScript configures the Apply-Delta.ps1 of profile k2s.
	ApplyScript *applydelta.Settings
	// SignScript, when set, returns the Authenticode-signed bytes of a
	// script the delta writes itself (Apply-Delta.ps1).
	SignScript func(ctx context.Context, name string, data []byte) ([]byte, error)
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
	s, err := resolveSettings(opts)
	if err != nil {
		return nil, err
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
	bp, tp, err := readPackages(ctx, base, target, s.workers, opts.Progress)
	if err != nil {
		return nil, err
	}
	if err := s.checkVersions(bp.version, tp.version); err != nil {
		return nil, err
	}
	bn, err := expandNested(ctx, "base", base, bp, opts.Nested, s.workers, opts.Progress)
	defer bn.close()
	if err != nil {
		return nil, err
	}
	tn, err := expandNested(ctx, "target", target, tp, opts.Nested, s.workers, opts.Progress)
	defer tn.close()
	if err != nil {
		return nil, err
	}
	tp.nested = tn.files
	nodes, err := openNodes(opts, bp.version, tp.version)
	defer nodes.close()
	if err != nil {
		return nil, err
	}
	debDiff, imgDiff := nodes.diffs()
	addWindowsImages(&imgDiff, bn.images, tn.images)

	d := diffFiles(bp.files, tp.files, s.whole, s.skip)
	if extra := nestedWholeDirs(opts.Nested, d); len(extra) > 0 {
		s.whole = slices.Compact(slices.Sorted(slices.Values(append(s.whole, extra...))))
		d = diffFiles(bp.files, tp.files, s.whole, s.skip)
	}
	mandatory, err := mandatoryFiles(opts.Always, d, bp, tp, s)
	if err != nil {
		return nil, err
	}
	if err := checkTargetPaths(target.Path, tp, d.Skipped, opts.Paths); err != nil {
		return nil, err
	}
	logf(opts.Log, "delta %s..%s: %d added, %d changed, %d removed, %d files in wholesale directories, %d skipped, %d shipped unchanged",
		bp.version, tp.version, len(d.Added), len(d.Changed), len(d.Removed), len(d.WholeTarget), len(d.Skipped), len(mandatory))
	m := newManifest(opts, s, bp, tp, d, debDiff, imgDiff)
	m.Mandatory = mandatory
	var patches map[string][]byte
	if s.mode == ModeBinary {
		if patches, err = addPatches(ctx, m, base, target, bp, tp, d.Changed, opts, s.workers); err != nil {
			return nil, err
		}
	}
	ship := addFileHashes(m, d, bp, tp)
	var upgrade []upgradeEntry
	if s.profile == ProfileK2s {
		listPackageManifest(m)
		if upgrade, err = k2sEntries(ctx, opts, m, nodes, bn, tn, s.date); err != nil {
			return nil, err
		}
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
	out := deltaZip{settings: s, manifest: m, manifestJSON: data, target: target, tp: tp, patches: patches, ship: ship, upgrade: upgrade}
	if err := out.write(ctx, opts.Output, opts.Progress); err != nil {
		return nil, fmt.Errorf("write %s: %w", opts.Output, err)
	}
	return m, nil
}

// mandatoryFiles checks that the target has every path of always and
// returns, sorted, those the diff does not ship already: the unchanged
// ones.
func mandatoryFiles(always []string, d fileDiff, bp, tp *pkgInfo, s settings) ([]string, error) {
	shipped := setOf(append(slices.Clone(d.Added), d.Changed...))
	var out []string
	for _, p := range always {
		t, ok := tp.files[p]
		switch {
		case !ok:
			return nil, fmt.Errorf("the target package has no %s, which every delta must ship (deltas.always): the upgrade's entry points run it from the extracted delta; add it to the release, or remove it from deltas.always", p)
		case s.skip.skipped(p):
			return nil, fmt.Errorf("%s must be shipped (deltas.always) but a skip rule leaves it out; remove one of the two", p)
		case shipped[p] || wholeDirOf(p, s.whole) != "":
			continue // shipped as a change already
		case bp.files[p] != t:
			return nil, fmt.Errorf("internal error: %s differs between the packages but the diff does not ship it", p)
		}
		out = append(out, p)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// checkTargetPaths refuses a target whose installation, as the delta
// leaves it, holds a path the policy refuses. Skipped paths are never
// touched by apply, so they are not the delta's to refuse.
func checkTargetPaths(zipPath string, tp *pkgInfo, skipped []string, paths pkgzip.PathPolicy) error {
	for _, p := range sortedKeys(tp.files) {
		if _, skip := slices.BinarySearch(skipped, p); skip {
			continue
		}
		if err := paths.Check(p); err != nil {
			return fmt.Errorf("target package %s: %w", zipPath, err)
		}
	}
	return nil
}

// settings are the Options checked and with their defaults applied.
type settings struct {
	whole        []string
	skipPatterns []string
	skipNames    []string
	skip         skipper
	level        int
	workers      int
	mode         string
	date         time.Time
	profile      string
}

func resolveSettings(opts Options) (settings, error) {
	if opts.Base == "" || opts.Target == "" || opts.Output == "" {
		return settings{}, errors.New("base, target and output paths are all required")
	}
	whole, err := normalizeWholeDirs(opts.WholeDirectories)
	if err != nil {
		return settings{}, err
	}
	skip, err := normalizeSkip(opts.Skip)
	if err != nil {
		return settings{}, err
	}
	names, err := normalizeSkipNames(opts.SkipNames)
	if err != nil {
		return settings{}, err
	}
	var archives []string
	for _, n := range opts.Nested {
		if err := CheckPath(n.Archive); err != nil {
			return settings{}, fmt.Errorf("nested archive: %w", err)
		}
		archives = append(archives, n.Archive)
	}
	s := settings{whole: whole, skipPatterns: skip, skipNames: names, skip: newSkipper(skip, names, archives),
		level: opts.Level, workers: max(opts.Workers, 1), mode: opts.Mode, profile: opts.Profile}
	if s.level == 0 {
		s.level = 6
	}
	if s.level < 1 || s.level > 9 {
		return settings{}, fmt.Errorf("compression level %d is outside 1..9", s.level)
	}
	if s.mode == "" {
		s.mode = ModeFile
	}
	if s.mode != ModeFile && s.mode != ModeBinary {
		return settings{}, fmt.Errorf("mode %q: want %q or %q", opts.Mode, ModeFile, ModeBinary)
	}
	s.date = opts.Date.UTC().Truncate(time.Second)
	if opts.Date.IsZero() || s.date.Before(zipEpoch) {
		s.date = zipEpoch
	}
	if err := checkProfile(opts, s); err != nil {
		return settings{}, err
	}
	return s, nil
}

func logf(w io.Writer, format string, args ...any) {
	if w != nil {
		fmt.Fprintf(w, format+"\n", args...)
	}
}

// readPackages reads both full packages and refuses a pair of one version.
func readPackages(ctx context.Context, base, target *pkgzip.Reader, workers int, progress func(int64)) (bp, tp *pkgInfo, err error) {
	if bp, err = readPackage(ctx, "base", base, workers, progress); err != nil {
		return nil, nil, err
	}
	if tp, err = readPackage(ctx, "target", target, workers, progress); err != nil {
		return nil, nil, err
	}
	if bp.version == tp.version {
		return nil, nil, fmt.Errorf("base and target are both version %s; a delta needs two different versions", bp.version)
	}
	return bp, tp, nil
}

// newManifest is the manifest of the diff, its lists and counts filled;
// Files is left empty for addFileHashes.
func newManifest(opts Options, s settings, bp, tp *pkgInfo, d fileDiff, debDiff DebianPackageDiff, imgDiff ContainerImageDiff) *Manifest {
	m := &Manifest{
		ManifestVersion:  ManifestVersion,
		GeneratedUtc:     s.date.Format(time.RFC3339),
		BasePackage:      filepath.Base(opts.Base),
		TargetPackage:    filepath.Base(opts.Target),
		BaseVersion:      bp.version,
		TargetVersion:    tp.version,
		WholeDirectories: s.whole,
		// K2s writes the matched files' names here; see the comment on the
		// Manifest type for why release lists paths.
		SpecialSkippedFiles: d.Skipped,
		Added:               d.Added,
		Changed:             d.Changed,
		Removed:             d.Removed,
		HashAlgorithm:       HashAlgorithm,
		DebianPackageDiff:   debDiff,
		ContainerImageDiff:  imgDiff,
		Profile:             s.profile,
		SkipRules:           s.skipPatterns,
		SkipNames:           s.skipNames,
		Files: FileHashes{
			Base:   map[string]pkgzip.Digest{},
			Target: map[string]pkgzip.Digest{},
		},
	}
	if len(m.SkipNames) == 0 {
		m.SkipNames = nil // omitted, as ParseManifest then returns it
	}
	m.normalize()
	m.WholeDirectoriesCount = len(m.WholeDirectories)
	m.SpecialSkippedFilesCount = len(m.SpecialSkippedFiles)
	m.AddedCount, m.ChangedCount, m.RemovedCount = len(m.Added), len(m.Changed), len(m.Removed)
	return m
}

// addPatches makes the patches of a binary delta and records them in m.
func addPatches(ctx context.Context, m *Manifest, base, target *pkgzip.Reader, bp, tp *pkgInfo, changed []string, opts Options, workers int) (map[string][]byte, error) {
	m.DeltaMode = ModeBinary
	patches, err := makePatches(ctx, base, target, bp, tp, changed, opts, workers)
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
	logf(opts.Log, "delta %s..%s: %d of %d changed files shipped as patches", bp.version, tp.version, len(patches), len(changed))
	return patches, nil
}

// addFileHashes fills m.Files (see FileHashes) and returns the target
// files to ship, in the order they are written.
func addFileHashes(m *Manifest, d fileDiff, bp, tp *pkgInfo) []string {
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
	for _, p := range m.Mandatory {
		m.Files.Base[p] = bp.files[p].Digest
		m.Files.Target[p] = tp.files[p].Digest
		ship = append(ship, p)
	}
	return ship
}

// deltaZip is everything the delta zip is written from.
type deltaZip struct {
	settings
	manifest     *Manifest
	manifestJSON []byte
	target       *pkgzip.Reader
	tp           *pkgInfo
	patches      map[string][]byte
	ship         []string
	// upgrade are the entries for the upgrade tooling (profile k2s).
	upgrade []upgradeEntry
}

// write writes the zip to path: the manifest, the target's
// package-manifest.json, the patches, then the shipped files copied raw
// from the target; and checks that what was written is what the manifest
// says.
func (z *deltaZip) write(ctx context.Context, path string, progress func(int64)) error {
	// 0644: CreateTemp makes the file 0600, but a delta is a publishable
	// artifact. Synced, because a delta is expensive to rebuild.
	return atomicfile.WriteFuncMkdirAll(path, 0o644, true, func(w *os.File) error {
		zw := pkgzip.NewWriter(w, pkgzip.WriterOptions{Date: z.date, Level: z.level, Workers: z.workers, Progress: progress})
		if err := z.addEntries(zw); err != nil {
			return err
		}
		written, err := zw.Close(ctx)
		if err != nil {
			return err
		}
		return z.checkWritten(written)
	})
}

func (z *deltaZip) addEntries(zw *pkgzip.Writer) error {
	if err := zw.AddBytes(ManifestName, z.manifestJSON, pkgzip.ModeFile); err != nil {
		return err
	}
	if z.tp.manifestEntry != nil {
		if err := zw.AddRaw(PackageManifestName, z.tp.manifestEntry, z.tp.manifestDigest); err != nil {
			return err
		}
	}
	for _, p := range sortedKeys(z.patches) {
		e := z.target.Lookup(p)
		if err := zw.AddBytes(PatchEntry(p), z.patches[p], e.Mode); err != nil {
			return err
		}
	}
	for _, p := range z.ship {
		if _, ok := z.patches[p]; ok {
			continue
		}
		e := z.tp.lookup(z.target, p)
		if e == nil {
			return fmt.Errorf("internal error: target entry %s vanished", p)
		}
		if err := zw.AddRaw(p, e, z.tp.files[p].Digest); err != nil {
			return err
		}
	}
	for _, u := range z.upgrade {
		var err error
		if u.raw != nil {
			err = zw.AddRaw(u.name, u.raw, u.digest)
		} else {
			err = zw.AddBytes(u.name, u.data, u.mode)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// checkWritten compares the digests the zip writer computed with the
// manifest's: a difference is a bug in release, caught before the delta
// appears.
func (z *deltaZip) checkWritten(written map[string]pkgzip.Digest) error {
	m := z.manifest
	for _, pt := range m.Patches {
		if got := written[pt.Entry]; got != pt.Patch {
			return fmt.Errorf("internal error: patch %s was written as %+v, the manifest says %+v", pt.Entry, got, pt.Patch)
		}
	}
	for _, side := range []map[string]pkgzip.Digest{m.Files.Target, m.Files.Upgrade} {
		for p, want := range side {
			if _, ok := m.Patches[p]; ok {
				continue
			}
			if got, ok := written[p]; !ok || got != want {
				return fmt.Errorf("internal error: entry %s was written as %+v, the manifest says %+v", p, got, want)
			}
		}
	}
	return nil
}

// pkgInfo is what Build needs from one full package.
type pkgInfo struct {
	version string
	// files are the installed files: the package's entries and the
	// members of its nested archives at their installed paths.
	files map[string]fileInfo
	// nested are where the files from nested archives are read.
	nested map[string]nestedFile
	// manifestEntry is the package's package-manifest.json, or nil.
	manifestEntry  *pkgzip.Entry
	manifestDigest pkgzip.Digest
}

// lookup returns the entry to ship the file p from: the package's own
// entry, or the nested archive's member installed at p.
func (info *pkgInfo) lookup(r *pkgzip.Reader, p string) *pkgzip.Entry {
	if f, ok := info.nested[p]; ok {
		return f.entry
	}
	return r.Lookup(p)
}

// readPackage gets the version and the digest of every file of a full
// package. The digests come from its package-manifest.json when it has one
// (after checking that the manifest describes this zip), otherwise every
// entry is streamed through SHA-256; nothing is extracted to disk.
func readPackage(ctx context.Context, role string, r *pkgzip.Reader, workers int, progress func(int64)) (*pkgInfo, error) {
	info := &pkgInfo{files: map[string]fileInfo{}}
	for _, e := range r.Entries {
		if Reserved(e.Name) || e.Name == ManifestName {
			return nil, fmt.Errorf("%s package %s: entry %s is reserved (%s, %s, %s, %s); a full package must not contain it",
				role, r.Path, e.Name, ManifestName, ApplyStateDir, ApplyLockFile, InstallRecord)
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
