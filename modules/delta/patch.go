package delta

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/bits"
	"sync"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	"github.com/relcue/release/modules/pkgzip"
)

// Binary deltas: a changed file is shipped as a zstd frame compressed
// with its base file as the raw dictionary ("patch-from"), so that the
// unchanged parts of a rebuilt binary cost a few bytes of back-reference.
const (
	// PatchAlgorithm names the only patch format: one zstd frame whose
	// raw dictionary is the whole base file.
	PatchAlgorithm = "zstd-patch-from"
	// PatchDir holds the patch entries in a delta zip, at
	// <PatchDir>/<path>.zst. It is outside the installation tree, so a
	// tool that copies a delta's files as K2s does never overwrites a
	// binary with its patch.
	PatchDir = ".release-patches"
	// DefaultPatchThreshold is the smallest changed file (target size)
	// tried as a patch: below it the zip's deflate already costs little.
	DefaultPatchThreshold = 64 << 10
	// MaxPatchFile bounds base plus target of a patched file: the zstd
	// window has to reach from the end of the target back to the start of
	// the base, and zstd's window is at most 512 MiB. Larger files are
	// shipped whole.
	MaxPatchFile = zstd.MaxWindowSize
)

// Patch records one changed file shipped as a patch (release extension
// to the K2s manifest).
type Patch struct {
	Algorithm string
	// Entry is the patch's entry in the delta zip.
	Entry string
	// BaseSHA256 and TargetSHA256 are the file's hashes before and after,
	// as in Files; apply refuses a base that does not have BaseSHA256 and
	// a result that does not have TargetSHA256.
	BaseSHA256, TargetSHA256 string
	// Patch is the digest of the entry's content.
	Patch pkgzip.Digest
}

// PatchEntry is the entry name of the patch of path p.
func PatchEntry(p string) string { return PatchDir + "/" + p + ".zst" }

// patchWindow is the zstd window for a patch of target against base: a
// power of two covering the base (the dictionary) and the target, so that
// any byte of the target can refer back to any byte of the base.
func patchWindow(base, target int) int {
	n := max(base+target, zstd.MinWindowSize)
	w := 1 << bits.Len(uint(n-1))
	return min(w, zstd.MaxWindowSize)
}

// MakePatch compresses target with base as the raw dictionary at zstd's
// best level. Memory is the two files plus the encoder's window and
// tables: about 4 bytes per byte of base and target together.
func MakePatch(base, target []byte) ([]byte, error) {
	if len(base)+len(target) > MaxPatchFile {
		return nil, fmt.Errorf("base and target together over %d bytes are not patched", MaxPatchFile)
	}
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.SpeedBestCompression),
		zstd.WithWindowSize(patchWindow(len(base), len(target))),
		zstd.WithEncoderDictRaw(0, base),
		zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderCRC(true),
		zstd.WithZeroFrames(true),
	)
	if err != nil {
		return nil, err
	}
	defer enc.Close()
	return enc.EncodeAll(target, nil), nil
}

// ApplyPatch rebuilds a file from its base and patch, and checks both
// hashes: the base must be the one the patch was made against, the
// result the one the manifest promises. size is the target's size.
func ApplyPatch(base, patch []byte, p Patch, size int64) ([]byte, error) {
	if p.Algorithm != PatchAlgorithm {
		return nil, fmt.Errorf("patch algorithm %q is not supported (this release reads %s)", p.Algorithm, PatchAlgorithm)
	}
	if got := sha256Hex(base); got != p.BaseSHA256 {
		return nil, fmt.Errorf("the base file has sha256 %s, the patch was made against %s; this patch cannot rebuild it", got, p.BaseSHA256)
	}
	if size < 0 || int64(len(base))+size > MaxPatchFile {
		return nil, fmt.Errorf("target size %d is outside what patches hold", size)
	}
	dec, err := zstd.NewReader(nil,
		zstd.WithDecoderDictRaw(0, base),
		zstd.WithDecoderMaxWindow(uint64(patchWindow(len(base), int(size)))),
		zstd.WithDecoderMaxMemory(uint64(max(size, 1))),
		zstd.WithDecoderConcurrency(1),
	)
	if err != nil {
		return nil, err
	}
	defer dec.Close()
	out, err := dec.DecodeAll(patch, make([]byte, 0, size))
	if err != nil {
		return nil, fmt.Errorf("the patch does not decode: %w", err)
	}
	if int64(len(out)) != size {
		return nil, fmt.Errorf("the patch rebuilt %d bytes, the target has %d", len(out), size)
	}
	if got := sha256Hex(out); got != p.TargetSHA256 {
		return nil, fmt.Errorf("the rebuilt file has sha256 %s, the target %s", got, p.TargetSHA256)
	}
	return out, nil
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// DefaultPatchMemory bounds the memory of the patches made at once.
const DefaultPatchMemory = 2 << 30

// makePatches patches every changed file of at least the threshold whose
// patch is smaller than its compressed entry, in parallel within the
// memory budget. Both files are read into memory and checked against
// their digests first: a patch is only ever made against the bytes the
// manifest names.
func makePatches(ctx context.Context, base, target *pkgzip.Reader, bp, tp *pkgInfo, changed []string, opts Options, workers int) (map[string][]byte, error) {
	threshold := opts.PatchThreshold
	if threshold <= 0 {
		threshold = DefaultPatchThreshold
	}
	budget := opts.PatchMemory
	if budget <= 0 {
		budget = DefaultPatchMemory
	}
	sem := semaphore.NewWeighted(budget)
	var mu sync.Mutex
	out := map[string][]byte{}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	for _, p := range changed {
		bf, tf := bp.files[p], tp.files[p]
		if tf.Size < threshold || bf.Size+tf.Size > MaxPatchFile {
			continue
		}
		be, te := base.Lookup(p), target.Lookup(p)
		if be == nil || te == nil {
			return nil, fmt.Errorf("internal error: changed file %s is missing from a package", p)
		}
		cost := min(4*(bf.Size+tf.Size)+1, budget)
		g.Go(func() error {
			if err := sem.Acquire(gctx, cost); err != nil {
				return err
			}
			defer sem.Release(cost)
			bdata, err := readVerified(be, bf.Digest)
			if err != nil {
				return fmt.Errorf("base package: %w", err)
			}
			tdata, err := readVerified(te, tf.Digest)
			if err != nil {
				return fmt.Errorf("target package: %w", err)
			}
			patch, err := MakePatch(bdata, tdata)
			if err != nil {
				return fmt.Errorf("patch %s: %w", p, err)
			}
			mu.Lock()
			defer mu.Unlock()
			if opts.Progress != nil {
				opts.Progress(tf.Size)
			}
			if int64(len(patch)) < int64(te.File.CompressedSize64) {
				out[p] = patch
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

// readVerified reads a whole entry and checks it against its digest.
func readVerified(e *pkgzip.Entry, want pkgzip.Digest) ([]byte, error) {
	data, err := readEntry(e, want.Size)
	if err != nil {
		return nil, err
	}
	if int64(len(data)) != want.Size || sha256Hex(data) != want.SHA256 {
		return nil, fmt.Errorf("entry %s does not match its recorded sha256 %s; the package is corrupt", e.Name, want.SHA256)
	}
	return data, nil
}
