// Package dist publishes build results into the output directory: each
// artifact placed from the cache, then SHA256SUMS and artifacts.json
// written last, so a reader that sees artifacts.json sees a complete,
// consistent set.
//
// Publishing costs what changed, not what is there: a dist file that still
// has the fingerprint recorded when it was published is left alone, one
// that merely looks different is hashed and kept if its content is right,
// and only a missing or wrong file is written — by reflink where the file
// system can share extents copy-on-write, else by copy_file_range, else by
// a plain copy. Never by hard link: a user editing a dist file must not
// change the cache.
package dist

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/relcue/release/internal/atomicfile"
	"github.com/relcue/release/internal/parallel"
	"github.com/relcue/release/pipeline/cache"
	"github.com/relcue/release/pipeline/digest"
	"github.com/relcue/release/pipeline/fingerprint"
)

// Artifact is one line of artifacts.json.
type Artifact struct {
	Target string `json:"target"`
	Kind   string `json:"kind"`
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// Item pairs a target with its cache entry.
type Item struct {
	Target string
	Entry  *cache.Entry
}

// Options configures Publish.
type Options struct {
	// State is the file that remembers what was published (fingerprints
	// of dist files and their SHA-256); "" keeps none, and then every
	// existing dist file is hashed to decide whether it is current.
	State string
	// Workers bounds parallel copies and hashes.
	Workers int
	// CurrentKey is the cache key the configuration now gives a target,
	// false if it no longer declares it. An artifact an earlier build
	// published stays listed only if it was published for that key (the
	// record in State says so): a package rebuilt since would otherwise
	// keep the SBOM of its old bytes beside it. nil: every target is
	// declared, and earlier artifacts are kept while unchanged.
	CurrentKey func(target string) (string, bool)
	// Clean removes every file of the directory that release did not
	// publish (listed in no artifacts.json) instead of refusing it.
	Clean bool
}

// Stats says what publishing did.
type Stats struct {
	Kept        int   `json:"kept"`        // already in place, untouched
	Written     int   `json:"written"`     // placed from the cache
	WrittenSize int64 `json:"writtenSize"` // bytes of the files placed
	// Methods counts written files by how they were placed: reflink,
	// copy_file_range or copy.
	Methods map[string]int `json:"methods,omitempty"`
	// Hashed counts dist files read to check them (no trusted record).
	Hashed int `json:"hashed"`
	// Carried counts artifacts of earlier builds still listed: targets
	// this build did not select, still declared and unchanged in dist/.
	Carried int `json:"carried"`
	// Removed lists the files taken out of dist/: artifacts of targets no
	// longer declared or no longer produced, files changed since they were
	// published, foreign files (with Clean) and a killed publish's
	// leftovers.
	Removed []string `json:"removed,omitempty"`
}

// Result is what Publish placed.
type Result struct {
	// Artifacts are this build's; Index is everything artifacts.json
	// and SHA256SUMS now list (Artifacts and the carried ones).
	Artifacts []Artifact
	Index     []Artifact
	Stats     Stats
}

// ForeignError says the directory holds files release did not publish.
type ForeignError struct {
	Dir   string
	Files []string // slash paths relative to Dir
}

func (e *ForeignError) Error() string {
	list := e.Files
	more := ""
	if len(list) > 5 {
		list, more = list[:5], fmt.Sprintf(" and %d more", len(e.Files)-5)
	}
	return fmt.Sprintf("%s holds %d file(s) that release did not publish (%s%s); it publishes only into a directory whose every file artifacts.json lists, so that artifacts.json and SHA256SUMS describe all of it: move them away, or pass --clean to remove them",
		e.Dir, len(e.Files), strings.Join(list, ", "), more)
}

// Collect lists the artifacts of items, sorted by path, and rejects two
// targets that claim the same output path.
func Collect(items []Item) ([]Artifact, error) {
	var out []Artifact
	owner := map[string]string{}
	for _, it := range items {
		for _, f := range it.Entry.Meta.Files {
			if prev, dup := owner[f.Path]; dup {
				return nil, fmt.Errorf("targets %s and %s both produce %s; give them different outputs", prev, it.Target, f.Path)
			}
			owner[f.Path] = it.Target
			out = append(out, Artifact{Target: it.Target, Kind: f.Kind, Path: f.Path, SHA256: f.SHA256, Size: f.Size})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// stateFile is the record of published files, keyed by dist path.
type stateFile struct {
	Dir   string                 `json:"dir"`
	Files map[string]stateRecord `json:"files"`
}

type stateRecord struct {
	SHA256 string         `json:"sha256"`
	FP     fingerprint.FP `json:"fp"`
	// Own is set for files this package wrote: nothing else writes them
	// between the copy and the fingerprint, so the racy-clean rule that
	// guards foreign files (At) does not apply.
	Own bool  `json:"own,omitempty"`
	At  int64 `json:"at,omitempty"`
	// Key is the cache key of the target the file was published for.
	Key string `json:"key,omitempty"`
}

// pending is one artifact's work: a temp file to rename into place, or
// nothing when the dist copy is current.
type pending struct {
	art    Artifact
	key    string // of the entry the artifact comes from
	dst    string
	tmp    string
	method string
	rec    stateRecord
	hashed bool // the dist copy was read to check it
}

// Publish places every artifact of items into dir and writes
// artifacts.json and SHA256SUMS. New files are first written to temporary
// names; only when all are ready are they renamed into place, so an error
// leaves dir as it was.
func Publish(ctx context.Context, dir string, items []Item, opts Options) (*Result, error) {
	arts, err := Collect(items)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	// One publisher at a time per directory: the leftovers of a killed
	// one can then be told from a live one's temporary files.
	unlock, err := lockDir(ctx, absDir)
	if err != nil {
		return nil, err
	}
	defer unlock()
	state := loadState(opts.State, absDir)
	inv, err := survey(absDir, arts, items, opts)
	if err != nil {
		return nil, err
	}
	carried, drop, err := carry(ctx, absDir, inv, state, opts)
	if err != nil {
		return nil, err
	}
	work := make([]*pending, len(arts))
	src := cachedFiles(items)
	for i, a := range arts {
		work[i] = &pending{art: a, key: src[a.Path].entry.Key, dst: filepath.Join(absDir, filepath.FromSlash(a.Path))}
	}
	if err := stage(ctx, work, src, state, opts.Workers); err != nil {
		return nil, err
	}
	next, stats, err := commit(work, state)
	if err != nil {
		return nil, err
	}
	index := append(append([]Artifact(nil), arts...), carried...)
	sort.Slice(index, func(i, j int) bool { return index[i].Path < index[j].Path })
	// Files leave dist/ only once the new ones are in place, and before
	// the index that no longer lists them is written.
	stats.Removed = removeFiles(absDir, append(append(drop, inv.foreign...), inv.leftovers...))
	for _, p := range drop {
		delete(next.Files, p)
	}
	stats.Carried = len(carried)
	if err := writeIndex(absDir, index); err != nil {
		return nil, err
	}
	if opts.State != "" {
		if err := saveState(opts.State, next); err != nil {
			return nil, fmt.Errorf("record published files: %w", err)
		}
	}
	return &Result{Artifacts: arts, Index: index, Stats: stats}, nil
}

// cachedFile is where the cache holds an artifact, and the entry that
// vouches for it.
type cachedFile struct {
	path  string
	entry *cache.Entry
}

// cachedFiles maps each artifact path of items to its cached file.
func cachedFiles(items []Item) map[string]cachedFile {
	src := map[string]cachedFile{}
	for _, it := range items {
		for _, f := range it.Entry.Meta.Files {
			src[f.Path] = cachedFile{filepath.Join(it.Entry.Dir, filepath.FromSlash(f.Path)), it.Entry}
		}
	}
	return src
}

// stage decides, in parallel, which dist files are current and writes
// every other one to a temporary file beside it. On error no temporary
// file is left.
func stage(ctx context.Context, work []*pending, src map[string]cachedFile, state stateFile, workers int) error {
	err := parallel.For(ctx, workers, work, func(_ context.Context, _ int, p *pending) error {
		current, hashed, rec, err := isCurrent(p.dst, p.art, state.Files[p.art.Path])
		p.hashed = hashed
		if err != nil {
			return fmt.Errorf("publish %s: %w", p.art.Path, err)
		}
		if current {
			p.rec = rec
			return nil
		}
		s := src[p.art.Path]
		if err := p.prepare(s.path, s.entry); err != nil {
			return fmt.Errorf("publish %s: %w", p.art.Path, err)
		}
		return nil
	})
	if err != nil {
		for _, p := range work {
			if p.tmp != "" {
				os.Remove(p.tmp)
			}
		}
	}
	return err
}

// commit renames the staged files into place and returns the record of
// the dist directory to keep (state, which loadState made for this
// directory, updated for these artifacts) and what publishing did.
func commit(work []*pending, state stateFile) (stateFile, Stats, error) {
	stats := Stats{Methods: map[string]int{}}
	next := stateFile{Dir: state.Dir, Files: map[string]stateRecord{}}
	for path, rec := range state.Files {
		next.Files[path] = rec // other builds' artifacts, still valid if untouched
	}
	for _, p := range work {
		if p.hashed {
			stats.Hashed++
		}
		if p.tmp == "" {
			stats.Kept++
			p.rec.Key = p.key
			next.Files[p.art.Path] = p.rec
			continue
		}
		if err := os.Rename(p.tmp, p.dst); err != nil {
			os.Remove(p.tmp)
			return stateFile{}, Stats{}, fmt.Errorf("publish %s: %w", p.art.Path, err)
		}
		// A rename sets the change time: fingerprint the file where it
		// now is.
		fp, err := fingerprint.Stat(p.dst)
		if err != nil {
			return stateFile{}, Stats{}, fmt.Errorf("publish %s: %w", p.art.Path, err)
		}
		p.rec = stateRecord{SHA256: p.art.SHA256, FP: fp, Own: true, Key: p.key}
		stats.Written++
		stats.WrittenSize += p.art.Size
		stats.Methods[p.method]++
		next.Files[p.art.Path] = p.rec
	}
	return next, stats, nil
}

// writeIndex writes SHA256SUMS, then artifacts.json: a reader that sees
// the new artifacts.json sees everything else already in place.
func writeIndex(absDir string, arts []Artifact) error {
	js, err := json.MarshalIndent(arts, "", "  ")
	if err != nil {
		return err
	}
	js = append(js, '\n')
	var sums bytes.Buffer
	for _, a := range arts {
		// Two spaces: the format sha256sum -c reads.
		fmt.Fprintf(&sums, "%s  %s\n", a.SHA256, a.Path)
	}
	if err := writeIfChanged(filepath.Join(absDir, "SHA256SUMS"), sums.Bytes()); err != nil {
		return err
	}
	return writeIfChanged(filepath.Join(absDir, "artifacts.json"), js)
}

// isCurrent decides whether dst already holds a: by its recorded
// fingerprint when it has one, else by hashing it. rec is the record to
// keep for a current file.
func isCurrent(dst string, a Artifact, rec stateRecord) (current, hashed bool, _ stateRecord, _ error) {
	at := time.Now()
	info, err := os.Lstat(dst)
	if errors.Is(err, fs.ErrNotExist) {
		return false, false, rec, nil
	}
	if err != nil {
		return false, false, rec, err
	}
	if !info.Mode().IsRegular() || info.Size() != a.Size || !published(info) {
		return false, false, rec, nil
	}
	fp, err := fingerprint.Of(dst, info)
	if err != nil {
		return false, false, rec, err
	}
	if rec.SHA256 == a.SHA256 && rec.FP == fp && (rec.Own || fp.Settled(time.Unix(0, rec.At))) {
		return true, false, rec, nil
	}
	sum, _, err := digest.File(dst)
	if err != nil {
		return false, true, rec, err
	}
	if sum != a.SHA256 {
		return false, true, rec, nil
	}
	after, err := fingerprint.Stat(dst)
	if err != nil || after != fp {
		return false, true, rec, nil // changing under us: replace it
	}
	return true, true, stateRecord{SHA256: sum, FP: fp, At: at.UnixNano()}, nil
}

// prepare writes the artifact's bytes from the cache file srcPath to a
// temporary file beside p.dst.
func (p *pending) prepare(srcPath string, e *cache.Entry) error {
	if err := os.MkdirAll(filepath.Dir(p.dst), 0o755); err != nil {
		return err
	}
	in, err := os.Open(srcPath)
	if err != nil {
		return err
	}
	defer in.Close()
	before, err := fingerprint.Stat(srcPath)
	if err != nil {
		return err
	}
	// The cache trusts the file by this fingerprint; one that differs is
	// read in full while copying and must hash right.
	trusted := false
	if fp, ok := e.Fingerprint(p.art.Path); ok && fp == before {
		trusted = true
	}
	tmp, err := os.CreateTemp(filepath.Dir(p.dst), "."+filepath.Base(p.dst)+".tmp-*")
	if err != nil {
		return err
	}
	p.tmp = tmp.Name()
	fail := func(err error) error {
		tmp.Close()
		os.Remove(p.tmp)
		p.tmp = ""
		return err
	}
	var h hash.Hash
	var method string
	var n int64
	if trusted {
		method, n, err = place(tmp, in, p.art.Size, nil)
	} else {
		h = sha256.New()
		method, n, err = place(tmp, in, p.art.Size, h)
	}
	if err != nil {
		return fail(err)
	}
	if n != p.art.Size {
		return fail(fmt.Errorf("cached copy changed while publishing (%d bytes, want %d); run `release cache verify --all` and build again", n, p.art.Size))
	}
	if trusted {
		if after, err := fingerprint.Stat(srcPath); err != nil || after != before {
			return fail(fmt.Errorf("cached copy changed while publishing; run `release cache verify --all` and build again"))
		}
	} else if got := hex.EncodeToString(h.Sum(nil)); got != p.art.SHA256 {
		return fail(fmt.Errorf("cached copy changed while publishing (sha256 %s, want %s); run `release cache verify --all` and build again", got, p.art.SHA256))
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(p.tmp)
		p.tmp = ""
		return err
	}
	p.method = method
	return nil
}

// place copies size bytes of src into the empty dst. With hash set, the
// bytes must pass through it, so only a plain copy will do.
func place(dst, src *os.File, size int64, hash io.Writer) (method string, n int64, err error) {
	if hash == nil {
		if m, n, ok, err := placeFast(dst, src, size); ok || err != nil {
			return m, n, err
		}
	}
	w := io.Writer(onlyWriter{dst})
	if hash != nil {
		w = io.MultiWriter(dst, hash)
	}
	n, err = io.Copy(w, onlyReader{src})
	return MethodCopy, n, err
}

// How files are placed (Stats.Methods).
const (
	MethodReflink       = "reflink"
	MethodCopyFileRange = "copy_file_range"
	MethodCopy          = "copy"
)

// onlyWriter and onlyReader hide *os.File's ReaderFrom/WriterTo so the
// plain copy is really one (the fast paths are chosen explicitly).
type onlyWriter struct{ io.Writer }
type onlyReader struct{ io.Reader }

func loadState(path, dir string) stateFile {
	st := stateFile{Dir: dir, Files: map[string]stateRecord{}}
	if path == "" {
		return st
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return st
	}
	var got stateFile
	if json.Unmarshal(raw, &got) != nil || got.Dir != dir || got.Files == nil {
		return st
	}
	return got
}

func saveState(path string, st stateFile) error {
	raw, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return atomicfile.Write(path, raw, 0o644)
}

// StatePath is where the record of a dist directory is kept below a
// state directory: one file per absolute dist path.
func StatePath(stateDir, dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(abs))
	return filepath.Join(stateDir, hex.EncodeToString(sum[:])+".json"), nil
}

// writeIfChanged leaves a file that already holds data alone (a no-op
// build writes nothing into dist/).
func writeIfChanged(p string, data []byte) error {
	if old, err := os.ReadFile(p); err == nil && bytes.Equal(old, data) {
		if info, err := os.Lstat(p); err == nil && info.Mode().IsRegular() && published(info) {
			return nil
		}
	}
	return atomicfile.Write(p, data, 0o644)
}

// published reports whether a file has the permissions dist files get
// (Windows has only a read-only bit, which 0644 leaves clear).
func published(info fs.FileInfo) bool {
	if runtime.GOOS == "windows" {
		return info.Mode().Perm()&0o200 != 0
	}
	return info.Mode().Perm() == 0o644
}
