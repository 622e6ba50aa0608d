package apply

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/relcue/release/internal/strictjson"
	"github.com/relcue/release/modules/delta"
	"github.com/relcue/release/modules/pkgzip"
)

// Layout of the apply state under <install>/.release-apply/.
const (
	journalName = "journal.json"
	stageDir    = "stage"
	backupDir   = "backup"
)

// Journal states. The transition to stateCommitting is the commit point: from
// then on a crash is finished forward, before it rolled back.
const (
	statePrepared    = "prepared"     // everything staged; installation untouched
	stateCommitting  = "committing"   // renames in progress; recovery rolls forward
	stateCommitted   = "committed"    // all renames done; recovery verifies and cleans up
	stateRollingBack = "rolling-back" // undo in progress; recovery finishes the undo
)

const journalVersion = 1

// journal is the durable description of one apply: enough to finish or undo
// it without the delta zip.
type journal struct {
	Version       int    `json:"version"`
	State         string `json:"state"`
	Delta         string `json:"delta"`
	BaseVersion   string `json:"baseVersion"`
	TargetVersion string `json:"targetVersion"`
	// Ops are sorted by path. An op with Stage writes stage/<Stage> to Path;
	// an op with Backup first moves the installed file to backup/<Backup>.
	// Every step is a rename whose progress is visible on disk (which of
	// source and destination exists), so any prefix of the commit can be
	// redone or undone.
	Ops []op `json:"ops"`
	// Created are the directories the commit creates (they did not exist,
	// or were files, before); an undo removes them again if empty.
	Created []string `json:"created"`
}

type op struct {
	Path   string         `json:"path"`
	Stage  string         `json:"stage,omitempty"`
	Backup string         `json:"backup,omitempty"`
	Target *pkgzip.Digest `json:"target,omitempty"`
}

var slotName = regexp.MustCompile(`^[0-9]{6,9}$`)

// txn is one journal bound to an installation directory.
type txn struct {
	dir   string // installation, absolute
	state string // <dir>/.release-apply
	j     *journal
}

func newTxn(dir string, j *journal) *txn {
	return &txn{dir: dir, state: filepath.Join(dir, delta.ApplyStateDir), j: j}
}

func (t *txn) installPath(p string) string { return filepath.Join(t.dir, filepath.FromSlash(p)) }
func (t *txn) stagePath(o op) string       { return filepath.Join(t.state, stageDir, o.Stage) }
func (t *txn) backupPath(o op) string      { return filepath.Join(t.state, backupDir, o.Backup) }

// save writes the journal durably: temp file, fsync, rename, fsync of the
// directory. A reader sees the old or the new journal, never a torn one.
func (t *txn) save(state string) error {
	t.j.State = state
	data, err := json.MarshalIndent(t.j, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(t.state, journalName+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("write journal: %w", err)
	}
	_, err = f.Write(append(data, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(t.state, journalName))
	}
	if err == nil {
		err = syncDir(t.state)
	}
	if err != nil {
		return fmt.Errorf("write journal %s: %w", filepath.Join(t.state, journalName), err)
	}
	return nil
}

// loadJournal reads and validates the journal of an interrupted apply. It
// returns nil, nil if there is none.
func loadJournal(dir string) (*journal, error) {
	p := filepath.Join(dir, delta.ApplyStateDir, journalName)
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read journal: %w", err)
	}
	// Strict: a field this release does not know, or anything after the
	// journal, means another writer, and undoing or redoing its renames
	// on a guess could lose files.
	var j journal
	if err := strictjson.Unmarshal(data, &j); err != nil {
		return nil, fmt.Errorf("journal %s is damaged (%v); inspect %s by hand: backup/ holds the replaced files, stage/ the new ones", p, err, filepath.Dir(p))
	}
	if err := j.validate(); err != nil {
		return nil, fmt.Errorf("journal %s is invalid (%v); inspect %s by hand: backup/ holds the replaced files, stage/ the new ones", p, err, filepath.Dir(p))
	}
	return &j, nil
}

func (j *journal) validate() error {
	if j.Version != journalVersion {
		return fmt.Errorf("version %d, this release understands %d", j.Version, journalVersion)
	}
	switch j.State {
	case statePrepared, stateCommitting, stateCommitted, stateRollingBack:
	default:
		return fmt.Errorf("unknown state %q", j.State)
	}
	for i, o := range j.Ops {
		// The installation record is reserved for apply's own op.
		if err := delta.CheckPath(o.Path); err != nil && o.Path != delta.InstallRecord {
			return err
		}
		if i > 0 && j.Ops[i-1].Path >= o.Path {
			return fmt.Errorf("ops not sorted at %s", o.Path)
		}
		if o.Stage != "" && !slotName.MatchString(o.Stage) || o.Backup != "" && !slotName.MatchString(o.Backup) {
			return fmt.Errorf("op %s: bad stage or backup name", o.Path)
		}
		if (o.Stage != "") != (o.Target != nil) || o.Stage == "" && o.Backup == "" {
			return fmt.Errorf("op %s: incomplete", o.Path)
		}
	}
	for _, d := range j.Created {
		if err := delta.CheckPath(d); err != nil {
			return err
		}
	}
	return nil
}

// forward performs (or finishes) the commit. It is idempotent: each rename
// is skipped when its result is already on disk.
func (t *txn) forward(ctx context.Context) error {
	n := 0
	renamed := func() error { n++; return crashPoint(pointCommit, n) }
	// Every old file goes to the backup first, so that a file can turn into
	// a directory (or back) between versions.
	for _, o := range t.j.Ops {
		if o.Backup == "" {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		bk := t.backupPath(o)
		if lexists(bk) {
			continue
		}
		src := t.installPath(o.Path)
		if !lexists(src) {
			// Vanished after planning; there is nothing left to preserve.
			continue
		}
		if err := os.Rename(src, bk); err != nil {
			return fmt.Errorf("move %s to the backup: %w", o.Path, err)
		}
		if err := renamed(); err != nil {
			return err
		}
	}
	t.pruneEmpty(backedUpParents(t.j.Ops), true)
	for _, o := range t.j.Ops {
		if o.Stage == "" {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		st := t.stagePath(o)
		if !lexists(st) {
			continue // placed already
		}
		dst := t.installPath(o.Path)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return fmt.Errorf("create directory for %s: %w", o.Path, err)
		}
		if err := os.Rename(st, dst); err != nil {
			return fmt.Errorf("move new %s into place: %w", o.Path, err)
		}
		if err := renamed(); err != nil {
			return err
		}
	}
	return t.syncParents()
}

// backward undoes any prefix of forward. New files go back to the stage
// (not deleted), so that backward itself can be interrupted and finished
// either way.
func (t *txn) backward() error {
	var errs []error
	n := 0
	renamed := func() error { n++; return crashPoint(pointRollback, n) }
	for i := len(t.j.Ops) - 1; i >= 0; i-- {
		o := t.j.Ops[i]
		if o.Stage == "" {
			continue
		}
		st, dst := t.stagePath(o), t.installPath(o.Path)
		placed := !lexists(st) && lexists(dst) && (o.Backup == "" || lexists(t.backupPath(o)))
		if !placed {
			continue
		}
		if err := os.Rename(dst, st); err != nil {
			errs = append(errs, fmt.Errorf("take new %s back out: %w", o.Path, err))
			continue
		}
		if err := renamed(); err != nil {
			return err
		}
	}
	// Only the directories the commit created: an ancestor that existed
	// empty before must stay.
	t.pruneEmpty(t.j.Created, false)
	for i := len(t.j.Ops) - 1; i >= 0; i-- {
		o := t.j.Ops[i]
		if o.Backup == "" {
			continue
		}
		bk, dst := t.backupPath(o), t.installPath(o.Path)
		if !lexists(bk) {
			continue // never moved, or restored already
		}
		if fi, err := os.Lstat(dst); err == nil && fi.IsDir() {
			// A directory the new version had in place of this file; it is
			// empty now unless someone wrote into it.
			os.Remove(dst)
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			errs = append(errs, fmt.Errorf("restore %s: %w", o.Path, err))
			continue
		}
		if err := os.Rename(bk, dst); err != nil {
			errs = append(errs, fmt.Errorf("restore %s from the backup: %w", o.Path, err))
			continue
		}
		if err := renamed(); err != nil {
			return err
		}
	}
	if err := t.syncParents(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// pruneEmpty removes those of dirs (relative paths), and with ancestors
// also their ancestors, that are empty, deepest first, never the
// installation root.
func (t *txn) pruneEmpty(dirs []string, ancestors bool) {
	set := map[string]bool{}
	for _, d := range dirs {
		for ; d != "." && d != ""; d = path.Dir(d) {
			set[d] = true
			if !ancestors {
				break
			}
		}
	}
	all := make([]string, 0, len(set))
	for d := range set {
		all = append(all, d)
	}
	// Longer paths first puts every directory before its ancestors.
	slices.SortFunc(all, func(a, b string) int {
		if c := strings.Count(b, "/") - strings.Count(a, "/"); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	for _, d := range all {
		p := t.installPath(d)
		if fi, err := os.Lstat(p); err != nil || !fi.IsDir() {
			continue
		}
		if empty, _ := isEmptyDir(p); empty {
			os.Remove(p)
		}
	}
}

// syncParents fsyncs the directories the commit renamed in, so a power
// loss after "committed" cannot bring back the old entries.
func (t *txn) syncParents() error {
	seen := map[string]bool{}
	for _, o := range t.j.Ops {
		d := filepath.Dir(t.installPath(o.Path))
		if seen[d] {
			continue
		}
		seen[d] = true
		if err := syncDir(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("sync directory %s: %w", d, err)
		}
	}
	for _, d := range []string{filepath.Join(t.state, stageDir), filepath.Join(t.state, backupDir)} {
		if err := syncDir(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("sync directory %s: %w", d, err)
		}
	}
	return nil
}

// stagedComplete reports whether every new file is still staged or already
// in place: the condition for rolling forward.
func (t *txn) stagedComplete() error {
	for _, o := range t.j.Ops {
		if o.Stage == "" || lexists(t.stagePath(o)) {
			continue
		}
		if lexists(t.installPath(o.Path)) && (o.Backup == "" || lexists(t.backupPath(o))) {
			continue
		}
		return fmt.Errorf("the new %s is neither staged nor in place", o.Path)
	}
	return nil
}

// verifyForward checks that every written file has its target hash and
// every removed file is gone.
func (t *txn) verifyForward(ctx context.Context, workers int, progress func(int64)) error {
	var checks []check
	for _, o := range t.j.Ops {
		if o.Target != nil {
			checks = append(checks, check{path: o.Path, want: *o.Target, what: "written"})
		} else if lexistsExact(t.installPath(o.Path)) {
			return fmt.Errorf("%s should have been removed but is still there", o.Path)
		}
	}
	problems, err := runChecks(ctx, t.dir, checks, workers, progress)
	if err != nil {
		return err
	}
	if len(problems) > 0 {
		return fmt.Errorf("after the commit %s", summarize(problems))
	}
	return nil
}

func (t *txn) removeState() error {
	if err := removeTree(t.state); err != nil {
		return fmt.Errorf("remove %s: %w", t.state, err)
	}
	return syncDir(t.dir)
}

func backedUpParents(ops []op) []string {
	var dirs []string
	for _, o := range ops {
		if o.Backup != "" {
			dirs = append(dirs, path.Dir(o.Path))
		}
	}
	return dirs
}

// entryName is the name of the directory entry that p, which must
// exist, resolves to. It differs from filepath.Base(p) on a
// case-insensitive file system when p is spelt in another case; ok is
// false if it cannot be told.
func entryName(p string) (name string, ok bool) {
	base := filepath.Base(p)
	f, err := os.Open(filepath.Dir(p))
	if err != nil {
		return "", false
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return "", false
	}
	if slices.Contains(names, base) {
		return base, true
	}
	target, err := os.Lstat(p)
	if err != nil {
		return "", false
	}
	for _, n := range names {
		if strings.EqualFold(n, base) {
			if fi, err := os.Lstat(filepath.Join(filepath.Dir(p), n)); err == nil && os.SameFile(fi, target) {
				return n, true
			}
		}
	}
	return "", false
}

// lexistsExact reports whether p exists under exactly its name: on a
// case-insensitive file system a removed file's name still finds a new
// file whose name differs only in case.
func lexistsExact(p string) bool {
	if !lexists(p) {
		return false
	}
	name, ok := entryName(p)
	return !ok || name == filepath.Base(p)
}

func lexists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func isEmptyDir(p string) (bool, error) {
	f, err := os.Open(p)
	if err != nil {
		return false, err
	}
	defer f.Close()
	_, err = f.Readdirnames(1)
	if err == io.EOF {
		return true, nil
	}
	return false, err
}
