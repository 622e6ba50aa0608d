package apply

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/relcue/release/internal/glob"
	"github.com/relcue/release/internal/parallel"
	"github.com/relcue/release/internal/strictjson"
	"github.com/relcue/release/modules/attest"
	"github.com/relcue/release/modules/delta"
	"github.com/relcue/release/modules/nodedelta"
	"github.com/relcue/release/modules/nodepkg"
	"github.com/relcue/release/modules/pkgmanifest"
	"github.com/relcue/release/modules/pkgzip"
)

// check is one expected file of an installation.
type check struct {
	path string
	want pkgzip.Digest
	// what says where the expectation comes from, for messages.
	what string
	// absentOK accepts a missing file (used with --force).
	absentOK bool
}

// problem is one file that does not match.
type problem struct {
	path string
	msg  string
}

// runChecks hashes the installed files in parallel and returns the ones that
// differ, sorted by path. err is only for cancellation or I/O failures other
// than a missing or unreadable file.
func runChecks(ctx context.Context, dir string, checks []check, workers int, progress func(int64)) ([]problem, error) {
	if len(checks) == 0 {
		// Nothing to hash is no failure, cancelled or not: the callers
		// decide at their own points what a cancellation means (a
		// finished commit must not be rolled back for it here).
		return nil, nil
	}
	found, err := parallel.Map(ctx, workers, checks, func(ctx context.Context, _ int, c check) (*problem, error) {
		return compareInstalled(ctx, dir, c, progress)
	})
	if err != nil {
		return nil, err
	}
	var problems []problem
	for _, p := range found {
		if p != nil {
			problems = append(problems, *p)
		}
	}
	slices.SortFunc(problems, func(a, b problem) int { return strings.Compare(a.path, b.path) })
	return problems, nil
}

// compareInstalled hashes the installed file c expects and returns how it
// differs, or nil if it does not.
func compareInstalled(ctx context.Context, dir string, c check, progress func(int64)) (*problem, error) {
	got, err := hashFile(ctx, filepath.Join(dir, filepath.FromSlash(c.path)), progress)
	var msg string
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if c.absentOK {
			return nil, nil
		}
		msg = fmt.Sprintf("%s is missing (%s sha256 %s)", c.path, c.what, c.want.SHA256)
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case err != nil:
		msg = fmt.Sprintf("%s: %v", c.path, err)
	case got != c.want:
		msg = fmt.Sprintf("%s has sha256 %s (%d bytes) but %s is sha256 %s (%d bytes)", c.path, got.SHA256, got.Size, c.what, c.want.SHA256, c.want.Size)
	default:
		return nil, nil
	}
	return &problem{path: c.path, msg: msg}, nil
}

// summarize turns problems into one message that names the first few.
func summarize(problems []problem) string {
	const show = 5
	var b strings.Builder
	for i, p := range problems {
		if i == show {
			fmt.Fprintf(&b, "; and %d more", len(problems)-show)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.msg)
	}
	return b.String()
}

// hashFile streams a regular file through SHA-256. Symbolic links and other
// special files are refused rather than followed.
func hashFile(ctx context.Context, p string, progress func(int64)) (pkgzip.Digest, error) {
	fi, err := os.Lstat(p)
	if err != nil {
		return pkgzip.Digest{}, err
	}
	if !fi.Mode().IsRegular() {
		return pkgzip.Digest{}, fmt.Errorf("is not a regular file (%s)", fi.Mode().Type())
	}
	f, err := os.Open(p)
	if err != nil {
		return pkgzip.Digest{}, err
	}
	defer f.Close()
	return digestOf(ctx, f, progress)
}

// digestOf streams r through SHA-256.
func digestOf(ctx context.Context, r io.Reader, progress func(int64)) (pkgzip.Digest, error) {
	h := sha256.New()
	n, err := copyCtx(ctx, h, r, progress)
	if err != nil {
		return pkgzip.Digest{}, err
	}
	return pkgzip.Digest{SHA256: hex.EncodeToString(h.Sum(nil)), Size: n}, nil
}

// copyCtx is io.Copy that notices cancellation between chunks and reports
// progress.
func copyCtx(ctx context.Context, dst io.Writer, src io.Reader, progress func(int64)) (int64, error) {
	buf := make([]byte, 256<<10)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		k, rerr := src.Read(buf)
		if k > 0 {
			if _, err := dst.Write(buf[:k]); err != nil {
				return n, err
			}
			n += int64(k)
			if progress != nil {
				progress(int64(k))
			}
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}

// VerifySigned checks a package zip completely. A full package: every
// entry against its package-manifest.json (and nothing missing or extra).
// A delta: every shipped file against delta-manifest.json's target hashes,
// and the shipped package-manifest.json against them too. Every entry is
// decompressed, so zip CRCs are checked as well.
//
// It also checks the Authenticode signature of every signable file a
// package or delta ships whole: a signature that does not match its file
// is always an error; with sig.Require (sig may be nil), so is a file that
// is unsigned or signed by someone sig does not trust. (Files a delta
// ships as binary patches are checked by apply, once rebuilt.)
//
// When the package's SBOM (zipPath + attest.SBOMSuffix, as build writes
// it) is present, it must describe this zip (its SHA-256) and list exactly
// its entries with their hashes.
func VerifySigned(ctx context.Context, zipPath string, workers int, sig *Signatures) (*Report, error) {
	if fi, err := os.Stat(zipPath); err == nil && fi.IsDir() {
		// Most likely an installation (FIRST-USE: "release verify /opt/k2s").
		return nil, fmt.Errorf("verify %s: it is a directory, not a package; to check an installation, run release verify --install-dir %s", zipPath, zipPath)
	}
	rep, err := verifyWithSBOM(ctx, zipPath, workers, sig)
	if err != nil {
		return nil, fmt.Errorf("verify %s: %w", zipPath, err)
	}
	return rep, nil
}

func verifyWithSBOM(ctx context.Context, zipPath string, workers int, sig *Signatures) (*Report, error) {
	sbomPath := zipPath + attest.SBOMSuffix
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var zipSum chan hashResult
	if _, err := os.Stat(sbomPath); err == nil {
		// The whole-file hash runs beside the entry hashing: one more
		// reader of a file the page cache is already holding.
		zipSum = make(chan hashResult, 1)
		go func() {
			d, err := hashFile(ctx, zipPath, nil)
			zipSum <- hashResult{d, err}
		}()
	}
	rep, digests, err := verify(ctx, zipPath, workers, sig)
	if zipSum != nil {
		if err != nil {
			cancel() // the package failed: its whole-file hash is not needed
		}
		sum := <-zipSum
		if err == nil {
			if sum.err != nil {
				return nil, sum.err
			}
			rep.SBOM, err = checkSBOM(sbomPath, sum.d.SHA256, digests)
		}
	}
	return rep, err
}

type hashResult struct {
	d   pkgzip.Digest
	err error
}

// checkSBOM compares an SBOM with the zip it sits beside.
func checkSBOM(sbomPath, zipSHA256 string, digests map[string]pkgzip.Digest) (*SBOMReport, error) {
	f, err := os.Open(sbomPath)
	if err != nil {
		return nil, fmt.Errorf("SBOM: %w", err)
	}
	defer f.Close()
	s, err := attest.ReadSBOM(f)
	if err != nil {
		return nil, fmt.Errorf("SBOM %s: %w; rebuild it with release build", sbomPath, err)
	}
	if s.ArtifactSHA256 != zipSHA256 {
		return nil, fmt.Errorf("SBOM %s describes %s with sha256 %s, but this file has sha256 %s: the package or its SBOM was changed after the build", sbomPath, s.Artifact, s.ArtifactSHA256, zipSHA256)
	}
	var problems []problem
	for _, p := range sortedKeys(digests) {
		want, ok := s.Files[p]
		switch {
		case !ok:
			problems = append(problems, problem{p, fmt.Sprintf("entry %s is not in the SBOM", p)})
		case want != digests[p]:
			problems = append(problems, problem{p, fmt.Sprintf("entry %s has sha256 %s (%d bytes) but the SBOM says %s (%d bytes)", p, digests[p].SHA256, digests[p].Size, want.SHA256, want.Size)})
		}
	}
	for _, p := range sortedKeys(s.Files) {
		if _, ok := digests[p]; !ok {
			problems = append(problems, problem{p, fmt.Sprintf("the SBOM lists %s, which the package does not hold", p)})
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("SBOM %s does not match the package: %s", sbomPath, summarize(problems))
	}
	return &SBOMReport{Path: sbomPath, Files: len(s.Files)}, nil
}

// SBOMReport says which SBOM verify checked.
type SBOMReport struct {
	Path  string `json:"path"`
	Files int    `json:"files"`
}

func verify(ctx context.Context, zipPath string, workers int, sig *Signatures) (*Report, map[string]pkgzip.Digest, error) {
	r, err := pkgzip.Open(zipPath)
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	rep := &Report{Operation: "verify", Path: zipPath}
	var total atomic.Int64
	digests, err := r.HashAll(ctx, max(workers, 1), func(n int64) { total.Add(n) })
	if err != nil {
		return nil, nil, err
	}
	rep.FilesVerified, rep.BytesVerified = len(digests), total.Load()
	rep, err = verifyKind(ctx, r, rep, digests, zipPath, workers, sig)
	return rep, digests, err
}

// verifyKind tells what kind of zip r is and checks it as such.
func verifyKind(ctx context.Context, r *pkgzip.Reader, rep *Report, digests map[string]pkgzip.Digest, zipPath string, workers int, sig *Signatures) (*Report, error) {
	if e := r.Lookup(delta.ManifestName); e != nil && isNodeDelta(e) {
		return verifyNodeDelta(r, rep, digests)
	}
	if r.Lookup(nodepkg.ManifestName) != nil {
		return verifyNodePackage(r, rep, digests)
	}
	if r.Lookup(delta.ManifestName) != nil {
		return verifyDelta(ctx, r, rep, digests, workers, sig)
	}
	return verifyPackage(ctx, r, rep, digests, zipPath, workers, sig)
}

// verifyDelta checks a cluster delta: every shipped file and patch against
// its manifest, the signatures of the files it ships whole, and the
// package manifest it ships against the manifest too.
func verifyDelta(ctx context.Context, r *pkgzip.Reader, rep *Report, digests map[string]pkgzip.Digest, workers int, sig *Signatures) (*Report, error) {
	rep.Kind = "delta"
	m, err := delta.ReadManifest(r)
	if err != nil {
		return nil, err
	}
	rep.BaseVersion, rep.TargetVersion = m.BaseVersion, m.TargetVersion
	rep.Added, rep.Changed, rep.Removed = m.AddedCount, m.ChangedCount, m.RemovedCount
	if problems := deltaEntryProblems(m, digests); len(problems) > 0 {
		return nil, fmt.Errorf("the delta is corrupt: %s; download or build it again", summarize(problems))
	}
	// Apply-Delta.ps1 and the rest of the upgrade tooling are signed like
	// the files installed.
	var whole []sigTarget
	for _, p := range sortedKeys(m.Entries()) {
		if _, patched := m.Patches[p]; !patched {
			if e := r.Lookup(p); e != nil {
				whole = append(whole, entryTarget(e))
			}
		}
	}
	if rep.Signatures, err = checkSignatures(ctx, sig, whole, workers); err != nil {
		return nil, err
	}
	if err := checkShippedPackageManifest(r, m); err != nil {
		return nil, err
	}
	return rep, nil
}

// deltaEntryProblems compares every patch and every file a delta ships
// whole with what its manifest says.
func deltaEntryProblems(m *delta.Manifest, digests map[string]pkgzip.Digest) []problem {
	var problems []problem
	for _, p := range sortedKeys(m.Patches) {
		pt := m.Patches[p]
		if got := digests[pt.Entry]; got != pt.Patch {
			problems = append(problems, problem{p, fmt.Sprintf("patch entry %s has sha256 %s (%d bytes) but %s says %s (%d bytes)",
				pt.Entry, got.SHA256, got.Size, delta.ManifestName, pt.Patch.SHA256, pt.Patch.Size)})
		}
	}
	for _, side := range []map[string]pkgzip.Digest{m.Files.Target, m.Files.Upgrade} {
		for _, p := range sortedKeys(side) {
			if _, patched := m.Patches[p]; patched {
				continue
			}
			if got := digests[p]; got != side[p] {
				problems = append(problems, problem{p, fmt.Sprintf("entry %s has sha256 %s (%d bytes) but %s says %s (%d bytes)",
					p, got.SHA256, got.Size, delta.ManifestName, side[p].SHA256, side[p].Size)})
			}
		}
	}
	slices.SortFunc(problems, func(a, b problem) int { return strings.Compare(a.path, b.path) })
	return problems
}

// checkShippedPackageManifest checks the package manifest a delta ships,
// if it ships one: it must be the target's and agree with the delta's
// manifest about every file both list.
func checkShippedPackageManifest(r *pkgzip.Reader, m *delta.Manifest) error {
	e := r.Lookup(delta.PackageManifestName)
	if e == nil {
		return nil
	}
	pm, err := readPackageManifest(e)
	if err != nil {
		return err
	}
	if pm.Version != m.TargetVersion {
		return fmt.Errorf("the shipped %s is for version %s but the delta goes to %s", pkgmanifest.Name, pm.Version, m.TargetVersion)
	}
	for _, f := range pm.Files {
		if d, ok := m.Files.Target[f.Path]; ok && (d.SHA256 != f.SHA256 || d.Size != f.Size) {
			return fmt.Errorf("%s and %s disagree about %s (%s vs %s)", pkgmanifest.Name, delta.ManifestName, f.Path, f.SHA256, d.SHA256)
		}
	}
	return nil
}

// verifyPackage checks a full package against its package manifest, and
// the signatures of all its files.
func verifyPackage(ctx context.Context, r *pkgzip.Reader, rep *Report, digests map[string]pkgzip.Digest, zipPath string, workers int, sig *Signatures) (*Report, error) {
	rep.Kind = "package"
	pm, ok, err := pkgmanifest.Read(r)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("it has neither %s nor %s, so there is nothing to verify against; rebuild it with release", pkgmanifest.Name, delta.ManifestName)
	}
	rep.TargetVersion = pm.Version
	if err := pkgmanifest.Verify(pm, digests, zipPath); err != nil {
		return nil, err
	}
	if v := r.Lookup(delta.VersionFile); v == nil {
		return nil, fmt.Errorf("it has no %s file; a full package needs one", delta.VersionFile)
	}
	var all []sigTarget
	for _, e := range r.Entries {
		all = append(all, entryTarget(e))
	}
	if rep.Signatures, err = checkSignatures(ctx, sig, all, workers); err != nil {
		return nil, err
	}
	return rep, nil
}

// skipped reports whether p is one of paths, matches (or lies under a
// directory matching) one of patterns, or has one of names as its file
// name in any letter case.
func skipped(p string, paths map[string]bool, patterns, names []string) bool {
	if paths[p] {
		return true
	}
	for _, n := range names {
		if strings.EqualFold(path.Base(p), n) {
			return true
		}
	}
	for _, s := range patterns {
		if s == p || glob.MatchPrefix(s, p) {
			return true
		}
	}
	return false
}

func readPackageManifest(e *pkgzip.Entry) (*pkgmanifest.Manifest, error) {
	rc, err := e.Open()
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", e.Name, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, 256<<20))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", e.Name, err)
	}
	pm, err := pkgmanifest.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", e.Name, err)
	}
	return pm, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// isNodeDelta tells a node delta from a cluster delta: both carry
// delta-manifest.json, only node deltas set DeltaType.
func isNodeDelta(e *pkgzip.Entry) bool {
	data, err := readEntryLimited(e, 64<<20)
	if err != nil {
		return false
	}
	var head struct{ DeltaType string }
	return json.Unmarshal(strictjson.StripBOM(data), &head) == nil && head.DeltaType == nodedelta.DeltaType
}

func readEntryLimited(e *pkgzip.Entry, limit int64) ([]byte, error) {
	rc, err := e.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, limit))
}

func verifyNodeDelta(r *pkgzip.Reader, rep *Report, digests map[string]pkgzip.Digest) (*Report, error) {
	m, err := nodedelta.ReadManifest(r)
	if err != nil {
		return nil, err
	}
	rep.Kind = "node-delta"
	rep.BaseVersion, rep.TargetVersion = m.BaseVersion, m.TargetVersion
	rep.Added, rep.Changed, rep.Removed = m.AddedCount, m.ChangedCount, m.RemovedCount
	var problems []problem
	for _, p := range sortedKeys(m.Files) {
		if got := digests[p]; got != m.Files[p] {
			problems = append(problems, problem{p, fmt.Sprintf("entry %s has sha256 %s (%d bytes) but %s says %s (%d bytes)",
				p, got.SHA256, got.Size, delta.ManifestName, m.Files[p].SHA256, m.Files[p].Size)})
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("the node delta is corrupt: %s; download or build it again", summarize(problems))
	}
	return rep, nil
}

func verifyNodePackage(r *pkgzip.Reader, rep *Report, digests map[string]pkgzip.Digest) (*Report, error) {
	m, err := nodepkg.ReadManifest(r)
	if err != nil {
		return nil, err
	}
	rep.Kind = "node-package"
	rep.TargetVersion = m.Version
	want := map[string]pkgzip.Digest{}
	for _, p := range m.Packages {
		want[path.Join("packages", m.OSDir, p.Path)] = pkgzip.Digest{SHA256: p.SHA256, Size: p.Size}
	}
	for _, im := range m.Images {
		want[path.Join("images", im.File)] = pkgzip.Digest{SHA256: im.SHA256, Size: im.Size}
	}
	var problems []problem
	for _, p := range sortedKeys(want) {
		if got := digests[p]; got != want[p] {
			problems = append(problems, problem{p, fmt.Sprintf("entry %s has sha256 %s (%d bytes) but %s says %s (%d bytes)",
				p, got.SHA256, got.Size, nodepkg.ManifestName, want[p].SHA256, want[p].Size)})
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("the node package is corrupt: %s; download or build it again", summarize(problems))
	}
	return rep, nil
}
