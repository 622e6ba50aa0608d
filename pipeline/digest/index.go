package digest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/relcue/release/internal/atomicfile"
	"github.com/relcue/release/internal/parallel"
	"github.com/relcue/release/pipeline/fingerprint"
)

// Index remembers the SHA-256 of local input files across runs, keyed by
// their fingerprints, so that planning an unchanged tree costs a walk and
// a stat per file instead of reading every byte. A file whose fingerprint
// differs from the record, or whose record was made within a timestamp
// granule of its last change, is hashed again. Records are advisory: a
// missing, stale or unreadable one only costs a re-hash, so two processes
// may write the same record and the last one wins.
type Index struct {
	dir string
	// now is the clock records are stamped with (tests move it).
	now func() time.Time

	hashed      atomic.Int64
	hashedBytes atomic.Int64
}

// OpenIndex keeps records below dir (created on first write).
func OpenIndex(dir string) *Index { return &Index{dir: dir, now: time.Now} }

// Stats is how much content an Index had to read.
type Stats struct {
	Hashed      int64 // files hashed because no trusted record matched
	HashedBytes int64
}

// Stats reports the files hashed so far.
func (x *Index) Stats() Stats {
	return Stats{Hashed: x.hashed.Load(), HashedBytes: x.hashedBytes.Load()}
}

// record is the stored state of one tree or file. Root guards against
// hash collisions of the record's name and against moved caches.
type record struct {
	Root  string                `json:"root"`
	Files map[string]recordFile `json:"files"`
}

type recordFile struct {
	FP     fingerprint.FP `json:"fp"`
	SHA256 string         `json:"sha256"`
	// At is when the file was stat'ed before it was read: the record is
	// trusted only if the file had settled by then.
	At int64 `json:"at"`
}

func (x *Index) path(root string) string {
	sum := sha256.Sum256([]byte(root))
	h := hex.EncodeToString(sum[:])
	return filepath.Join(x.dir, h[:2], h+".json")
}

func (x *Index) load(root string) map[string]recordFile {
	raw, err := os.ReadFile(x.path(root))
	if err != nil {
		return nil
	}
	var r record
	if json.Unmarshal(raw, &r) != nil || r.Root != root {
		return nil
	}
	return r.Files
}

func (x *Index) store(root string, files map[string]recordFile) error {
	raw, err := json.Marshal(record{Root: root, Files: files})
	if err != nil {
		return err
	}
	p := x.path(root)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return atomicfile.Write(p, raw, 0o600)
}

// trusted returns the recorded digest when it may be used for fp.
func trusted(rec recordFile, ok bool, fp fingerprint.FP) (string, bool) {
	if !ok || rec.FP != fp || rec.SHA256 == "" || !fp.Settled(time.Unix(0, rec.At)) {
		return "", false
	}
	return rec.SHA256, true
}

// hash reads path whose fingerprint was before, stamped at; a file that
// changes while it is read is an error rather than a digest of neither
// version.
func (x *Index) hash(ctx context.Context, path string, before fingerprint.FP, at time.Time) (recordFile, error) {
	sum, n, err := FileContext(ctx, path)
	if err != nil {
		return recordFile{}, err
	}
	after, err := fingerprint.Stat(path)
	if err != nil {
		return recordFile{}, err
	}
	if after != before || n != before.Size {
		return recordFile{}, fmt.Errorf("%s changed while it was read; run again once nothing writes it", path)
	}
	x.hashed.Add(1)
	x.hashedBytes.Add(n)
	return recordFile{FP: before, SHA256: sum, At: at.UnixNano()}, nil
}

// File is like the package's File, served from the index when the file's
// fingerprint matches a settled record.
func (x *Index) File(path string) (string, int64, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", 0, err
	}
	at := x.now()
	fp, err := fingerprint.Stat(abs)
	if err != nil {
		return "", 0, err
	}
	recs := x.load(abs)
	rec, ok := recs[""]
	if sum, ok := trusted(rec, ok, fp); ok {
		return sum, fp.Size, nil
	}
	rec, err = x.hash(context.Background(), abs, fp, at)
	if err != nil {
		return "", 0, err
	}
	if err := x.store(abs, map[string]recordFile{"": rec}); err != nil {
		return "", 0, fmt.Errorf("digest index: %w", err)
	}
	return rec.SHA256, fp.Size, nil
}

// Tree is like the package's Tree, hashing only the files whose
// fingerprints have no settled record.
func (x *Index) Tree(ctx context.Context, root string, workers int) (string, []TreeFile, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return "", nil, err
	}
	info, err := os.Stat(abs)
	if err != nil {
		return "", nil, err
	}
	if !info.IsDir() {
		return "", nil, fmt.Errorf("%s: not a directory", root)
	}
	// Stamped before any file is stat'ed: a file that changes after its
	// stat is then either caught by the second stat or recorded as racy.
	at := x.now()
	files, err := Walk(abs)
	if err != nil {
		return "", nil, err
	}
	recs := x.load(abs)
	next := make(map[string]recordFile, len(files))
	var stale []int // indexes into files of those to hash
	for i, f := range files {
		rec, ok := recs[f.Path]
		if sum, ok := trusted(rec, ok, f.FP); ok {
			files[i].SHA256 = sum
			next[f.Path] = rec
			continue
		}
		stale = append(stale, i)
	}
	hashed, err := parallel.Map(ctx, workers, stale, func(ctx context.Context, _, i int) (recordFile, error) {
		return x.hash(ctx, filepath.Join(abs, filepath.FromSlash(files[i].Path)), files[i].FP, at)
	})
	if err != nil {
		return "", nil, err
	}
	for k, i := range stale {
		files[i].SHA256 = hashed[k].SHA256
		next[files[i].Path] = hashed[k]
	}
	changed := len(stale) > 0 || len(recs) != len(files)
	if changed {
		if err := x.store(abs, next); err != nil {
			return "", nil, fmt.Errorf("digest index: %w", err)
		}
	}
	return TreeDigest(files), files, nil
}
