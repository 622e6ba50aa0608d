package delta

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
)

func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.UintN(256))
	}
	return b
}

// Patches round-trip across frame boundaries, for empty and tiny files,
// a target shorter or longer than its base, and whatever the workers.
// smallFrames makes frames of 64 KiB, so that a few hundred KiB exercise
// many frames (and the race detector stays quick).
func smallFrames(t *testing.T) {
	chunk, margin := patchChunk, patchMargin
	patchChunk, patchMargin = 64<<10, 64<<10
	t.Cleanup(func() { patchChunk, patchMargin = chunk, margin })
}

func TestPatchRoundTrip(t *testing.T) {
	smallFrames(t)
	rng := rand.New(rand.NewPCG(1, 2))
	big := randomBytes(rng, 3*patchChunk+12345)
	grown := append(bytes.Clone(big[:patchChunk]), randomBytes(rng, 64<<10)...)
	grown = append(grown, big[patchChunk:]...)
	edited := bytes.Clone(big)
	for i := 0; i < len(edited); i += 16 << 10 {
		edited[i] ^= 0xff
	}
	for _, c := range []struct {
		name         string
		base, target []byte
		maxPatch     int
	}{
		{"empty to empty", nil, nil, 200},
		{"empty to some", nil, []byte("hello"), 200},
		{"tiny", []byte("hello world"), []byte("hello, world"), 200},
		{"edited, 4 frames", big, edited, 8 << 10},
		{"grown in the middle", big, grown, 64<<10 + 8<<10},
		{"shrunk", big, big[:patchChunk/2], 2 << 10},
		{"unrelated", big[:128<<10], randomBytes(rng, 128<<10), 128<<10 + 4<<10},
	} {
		t.Run(c.name, func(t *testing.T) {
			var first []byte
			for _, w := range []int{1, 4} {
				p, err := MakePatch(c.base, c.target, w)
				if err != nil {
					t.Fatal(err)
				}
				if first == nil {
					first = p
				} else if !bytes.Equal(first, p) {
					t.Fatal("the patch depends on the workers")
				}
				if len(p) > c.maxPatch {
					t.Errorf("patch of %d bytes, want at most %d", len(p), c.maxPatch)
				}
				meta := Patch{Algorithm: PatchAlgorithm, BaseSHA256: sha256Hex(c.base), TargetSHA256: sha256Hex(c.target)}
				got, err := ApplyPatch(c.base, p, meta, int64(len(c.target)), w)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, c.target) {
					t.Fatal("the patch did not rebuild the target")
				}
			}
		})
	}
}

func TestApplyPatchRefusesBadInput(t *testing.T) {
	smallFrames(t)
	rng := rand.New(rand.NewPCG(3, 4))
	base := randomBytes(rng, 256<<10)
	target := append(bytes.Clone(base), "more"...)
	p, err := MakePatch(base, target, 2)
	if err != nil {
		t.Fatal(err)
	}
	meta := Patch{Algorithm: PatchAlgorithm, BaseSHA256: sha256Hex(base), TargetSHA256: sha256Hex(target)}
	size := int64(len(target))
	tampered := bytes.Clone(base)
	tampered[100] ^= 1
	truncated := p[:len(p)-10]
	flipped := bytes.Clone(p)
	flipped[len(flipped)-20] ^= 0xff
	wrongTarget := meta
	wrongTarget.TargetSHA256 = sha256Hex([]byte("x"))
	otherAlg := meta
	otherAlg.Algorithm = "bsdiff"
	for _, c := range []struct {
		name  string
		base  []byte
		patch []byte
		meta  Patch
		size  int64
		want  string
	}{
		{"tampered base", tampered, p, meta, size, "the patch was made against"},
		{"truncated patch", base, truncated, meta, size, "malformed"},
		{"corrupt frame", base, flipped, meta, size, ""},
		{"wrong size", base, p, meta, size + 1, "malformed"},
		{"wrong target hash", base, p, wrongTarget, size, "the rebuilt file has sha256"},
		{"unknown algorithm", base, p, otherAlg, size, `patch algorithm "bsdiff" is not supported`},
		{"not a patch", base, []byte("garbage"), meta, size, "no patch header"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ApplyPatch(c.base, c.patch, c.meta, c.size, 2)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
		})
	}
}
