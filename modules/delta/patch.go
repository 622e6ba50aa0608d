package delta

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/bits"
	"sync"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sync/semaphore"

	"github.com/relcue/release/internal/parallel"
	"github.com/relcue/release/modules/pkgzip"
)

// Binary deltas: a changed file is shipped as a zstd frame compressed
// with its base file as the raw dictionary ("patch-from"), so that the
// unchanged parts of a rebuilt binary cost a few bytes of back-reference.
const (
	// PatchAlgorithm names the only patch format: a header listing the
	// frames, then zstd frames of 8 MiB of target each, whose raw
	// dictionary is the region of the base around the same relative
	// position (see MakePatch).
	PatchAlgorithm = "zstd-patch-from"
	// PatchDir holds the patch entries in a delta zip, at
	// <PatchDir>/<path>.patch. It is outside the installation tree, so a
	// tool that copies a delta's files as K2s does never overwrites a
	// binary with its patch.
	PatchDir = ".release-patches"
	// DefaultPatchThreshold is the smallest changed file (target size)
	// tried as a patch: below it the zip's deflate already costs little.
	DefaultPatchThreshold = 64 << 10
	// MaxPatchFile bounds base plus target of a patched file, which are
	// both held in memory while the patch is made and applied. Larger
	// files are shipped whole.
	MaxPatchFile = 1 << 30
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
func PatchEntry(p string) string { return PatchDir + "/" + p + ".patch" }

// Patches are cut into frames of patchChunk target bytes, each compressed
// with the base region around the same relative position (patchMargin on
// either side) as its dictionary. Binaries of two releases keep their
// layout, so that region holds nearly all matches; a smaller dictionary
// keeps more of it in the encoder's match tables (klauspost's best level
// loses matches in a whole 100 MB base: frames made patches 8% smaller on
// a 75 MB Go binary), bounds memory per frame, and lets frames be made
// and applied in parallel.
// They are variables only so that tests can make frames small.
var (
	patchChunk  = 8 << 20
	patchMargin = 8 << 20
)

const patchMagic = "RLSPATCH1\n"

// frameMemory is what encoding one frame takes: its dictionary and target
// and the encoder's window and tables.
func frameMemory() int64 { return int64(4 * (patchChunk + 2*patchMargin + patchChunk)) }

// patchFrame is one frame's entry in the patch header.
type patchFrame struct {
	dictStart, dictLen, targetLen, frameLen uint64
}

// frameWindow is a power of two covering a frame's dictionary and target.
func frameWindow(dict, target int) int {
	n := max(dict+target, zstd.MinWindowSize)
	return min(1<<bits.Len(uint(n-1)), zstd.MaxWindowSize)
}

// MakePatch encodes target against base: a header listing the frames,
// then the frames, each one zstd frame whose raw dictionary is a region
// of base. workers frames are made at once; each costs about 4 bytes per
// byte of its dictionary and target (at most 24 + 8 MiB), on top of the
// two files.
func MakePatch(base, target []byte, workers int) ([]byte, error) {
	if int64(len(base))+int64(len(target)) > MaxPatchFile {
		return nil, fmt.Errorf("base and target together over %d bytes are not patched", MaxPatchFile)
	}
	frames, sources := planFrames(len(base), target)
	// No caller cancels a patch half made; the first error stops the rest.
	encoded, err := parallel.Map(context.Background(), workers, frames, func(_ context.Context, i int, f patchFrame) ([]byte, error) {
		return encodeFrame(base[f.dictStart:f.dictStart+f.dictLen], sources[i])
	})
	if err != nil {
		return nil, err
	}
	out := []byte(patchMagic)
	out = binary.BigEndian.AppendUint32(out, uint32(len(frames)))
	for i, f := range frames {
		f.frameLen = uint64(len(encoded[i]))
		for _, v := range []uint64{f.dictStart, f.dictLen, f.targetLen, f.frameLen} {
			out = binary.BigEndian.AppendUint64(out, v)
		}
	}
	for _, e := range encoded {
		out = append(out, e...)
	}
	return out, nil
}

// planFrames cuts target into frames of patchChunk bytes (one, empty, for
// an empty target) and places each one's dictionary in a base of baseLen
// bytes; it returns the frames and their parts of target.
func planFrames(baseLen int, target []byte) ([]patchFrame, [][]byte) {
	var frames []patchFrame
	var sources [][]byte
	for off := 0; off < len(target) || off == 0; off += patchChunk {
		end := min(off+patchChunk, len(target))
		at := 0
		if len(target) > 0 {
			at = int(int64(off) * int64(baseLen) / int64(len(target)))
		}
		ds := max(0, at-patchMargin)
		de := min(baseLen, at+(end-off)+patchMargin)
		frames = append(frames, patchFrame{dictStart: uint64(ds), dictLen: uint64(de - ds), targetLen: uint64(end - off)})
		sources = append(sources, target[off:end])
		if end == len(target) {
			break
		}
	}
	return frames, sources
}

// encodeFrame compresses src with dict as its raw dictionary, one frame.
func encodeFrame(dict, src []byte) ([]byte, error) {
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.SpeedBestCompression),
		zstd.WithWindowSize(frameWindow(len(dict), len(src))),
		zstd.WithEncoderDictRaw(0, dict),
		zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderCRC(true),
		zstd.WithZeroFrames(true),
	)
	if err != nil {
		return nil, err
	}
	encoded := enc.EncodeAll(src, nil)
	return encoded, enc.Close()
}

// ApplyPatch rebuilds a file from its base and patch, and checks both
// hashes: the base must be the one the patch was made against, the
// result the one the manifest promises. size is the target's size.
// Frames are decoded in parallel, workers at a time. The base is hashed
// only when something fails: a wrong base cannot give the right result,
// so checking the result is enough, and the base's hash then says which
// of the two is to blame.
func ApplyPatch(base, patch []byte, p Patch, size int64, workers int) ([]byte, error) {
	out, err := applyPatch(base, patch, p, size, workers)
	if err != nil && p.Algorithm == PatchAlgorithm {
		if got := sha256Hex(base); got != p.BaseSHA256 {
			return nil, fmt.Errorf("the base file has sha256 %s, the patch was made against %s; this patch cannot rebuild it", got, p.BaseSHA256)
		}
	}
	return out, err
}

func applyPatch(base, patch []byte, p Patch, size int64, workers int) ([]byte, error) {
	if p.Algorithm != PatchAlgorithm {
		return nil, fmt.Errorf("patch algorithm %q is not supported (this release reads %s)", p.Algorithm, PatchAlgorithm)
	}
	if size < 0 || int64(len(base))+size > MaxPatchFile {
		return nil, fmt.Errorf("target size %d is outside what patches hold", size)
	}
	frames, body, err := parsePatch(patch, len(base), size)
	if err != nil {
		return nil, fmt.Errorf("the patch is malformed: %w", err)
	}
	out := make([]byte, size)
	// Each frame decodes into its own part of out.
	dsts, srcs := make([][]byte, len(frames)), make([][]byte, len(frames))
	var toff, poff uint64
	for i, f := range frames {
		// Capped, so that a frame decoding too much cannot write into its
		// neighbour's part while that one decodes.
		dsts[i] = out[toff : toff+f.targetLen : toff+f.targetLen]
		srcs[i] = body[poff : poff+f.frameLen]
		toff += f.targetLen
		poff += f.frameLen
	}
	err = parallel.For(context.Background(), workers, frames, func(_ context.Context, i int, f patchFrame) error {
		return decodeFrame(i, f, base[f.dictStart:f.dictStart+f.dictLen], srcs[i], dsts[i])
	})
	if err != nil {
		return nil, err
	}
	if got := sha256Hex(out); got != p.TargetSHA256 {
		return nil, fmt.Errorf("the rebuilt file has sha256 %s, the target %s", got, p.TargetSHA256)
	}
	return out, nil
}

// decodeFrame decodes frame i, src, with dict as its raw dictionary into
// dst, which must be exactly the frame's target.
func decodeFrame(i int, f patchFrame, dict, src, dst []byte) error {
	dec, err := zstd.NewReader(nil,
		zstd.WithDecoderDictRaw(0, dict),
		// Frames are bounded by patchChunk and patchMargin; the
		// encoder may declare any window up to that.
		zstd.WithDecoderMaxWindow(uint64(frameWindow(patchChunk+2*patchMargin, patchChunk))),
		zstd.WithDecoderMaxMemory(f.targetLen+1<<10),
		zstd.WithDecoderConcurrency(1),
	)
	if err != nil {
		return err
	}
	defer dec.Close()
	got, err := dec.DecodeAll(src, dst[:0])
	if err != nil {
		return fmt.Errorf("frame %d does not decode: %w", i, err)
	}
	if len(got) != len(dst) || (len(got) > 0 && &got[0] != &dst[0]) {
		return fmt.Errorf("frame %d rebuilt %d bytes, the header says %d", i, len(got), len(dst))
	}
	return nil
}

// parsePatch checks the header against the sizes it must describe.
func parsePatch(patch []byte, baseLen int, size int64) ([]patchFrame, []byte, error) {
	rest, ok := bytes.CutPrefix(patch, []byte(patchMagic))
	if !ok || len(rest) < 4 {
		return nil, nil, errors.New("no patch header")
	}
	n := binary.BigEndian.Uint32(rest)
	rest = rest[4:]
	if uint64(n)*32 > uint64(len(rest)) || n == 0 {
		return nil, nil, fmt.Errorf("header claims %d frames", n)
	}
	frames := make([]patchFrame, n)
	var targetSum, frameSum uint64
	for i := range frames {
		f := &frames[i]
		f.dictStart = binary.BigEndian.Uint64(rest[0:])
		f.dictLen = binary.BigEndian.Uint64(rest[8:])
		f.targetLen = binary.BigEndian.Uint64(rest[16:])
		f.frameLen = binary.BigEndian.Uint64(rest[24:])
		rest = rest[32:]
		if f.dictStart > uint64(baseLen) || f.dictLen > uint64(baseLen)-f.dictStart || f.targetLen > uint64(patchChunk) {
			return nil, nil, fmt.Errorf("frame %d reaches outside the base or is too large", i)
		}
		targetSum += f.targetLen
		frameSum += f.frameLen
	}
	if targetSum != uint64(size) || frameSum != uint64(len(rest)) {
		return nil, nil, fmt.Errorf("frames hold %d target and %d patch bytes, want %d and %d", targetSum, frameSum, size, len(rest))
	}
	return frames, rest, nil
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
	cands, err := patchCandidates(base, target, bp, tp, changed, threshold)
	if err != nil {
		return nil, err
	}
	sem := semaphore.NewWeighted(budget)
	var mu sync.Mutex // serializes opts.Progress
	patches, err := parallel.Map(ctx, workers, cands, func(ctx context.Context, _ int, c patchCandidate) ([]byte, error) {
		// Both files, plus the encoders of the frames in flight.
		cost := min(2*(c.baseFile.Size+c.targetFile.Size)+int64(workers)*frameMemory(), budget)
		if err := sem.Acquire(ctx, cost); err != nil {
			return nil, err
		}
		defer sem.Release(cost)
		patch, err := c.patch(workers)
		if err != nil {
			return nil, err
		}
		if opts.Progress != nil {
			mu.Lock()
			opts.Progress(c.targetFile.Size)
			mu.Unlock()
		}
		if int64(len(patch)) >= int64(c.targetEntry.File.CompressedSize64) {
			return nil, nil // no gain: the file is shipped whole
		}
		return patch, nil
	})
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for i, c := range cands {
		if patches[i] != nil {
			out[c.path] = patches[i]
		}
	}
	return out, nil
}

// patchCandidate is a changed file that is worth trying as a patch.
type patchCandidate struct {
	path                   string
	baseFile, targetFile   fileInfo
	baseEntry, targetEntry *pkgzip.Entry
}

// patchCandidates are the changed files of at least threshold bytes whose
// two versions fit MaxPatchFile.
func patchCandidates(base, target *pkgzip.Reader, bp, tp *pkgInfo, changed []string, threshold int64) ([]patchCandidate, error) {
	var out []patchCandidate
	for _, p := range changed {
		bf, tf := bp.files[p], tp.files[p]
		if tf.Size < threshold || bf.Size+tf.Size > MaxPatchFile {
			continue
		}
		be, te := base.Lookup(p), target.Lookup(p)
		if be == nil || te == nil {
			return nil, fmt.Errorf("internal error: changed file %s is missing from a package", p)
		}
		out = append(out, patchCandidate{path: p, baseFile: bf, targetFile: tf, baseEntry: be, targetEntry: te})
	}
	return out, nil
}

// patch reads both versions, checked against their digests, and patches.
func (c patchCandidate) patch(workers int) ([]byte, error) {
	bdata, err := readVerified(c.baseEntry, c.baseFile.Digest)
	if err != nil {
		return nil, fmt.Errorf("base package: %w", err)
	}
	tdata, err := readVerified(c.targetEntry, c.targetFile.Digest)
	if err != nil {
		return nil, fmt.Errorf("target package: %w", err)
	}
	patch, err := MakePatch(bdata, tdata, workers)
	if err != nil {
		return nil, fmt.Errorf("patch %s: %w", c.path, err)
	}
	return patch, nil
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
