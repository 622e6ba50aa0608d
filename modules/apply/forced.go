package apply

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/relcue/release/modules/delta"
	"github.com/relcue/release/modules/pkgmanifest"
	"github.com/relcue/release/modules/pkgzip"
)

// notice tells, before anything is written, what an apply that --force
// let past a failed check does not guarantee.
func (a *applyRun) notice(m *delta.Manifest, targetPM *pkgmanifest.Manifest, changes *changeSet) {
	var found []string
	if a.rep.InstalledVersion != m.BaseVersion {
		found = append(found, fmt.Sprintf("the installation is %s, not the delta's base %s", orUnversioned(a.rep.InstalledVersion), m.BaseVersion))
	}
	if n := len(changes.problems); n > 0 {
		found = append(found, fmt.Sprintf("%d installed file(s) are not what the delta expects", n))
	}
	untouched := "every other file"
	if targetPM != nil {
		written := 0
		for _, f := range targetPM.Files {
			if _, ok := m.Files.Target[f.Path]; ok {
				written++
			}
		}
		untouched = fmt.Sprintf("the other %d file(s) of %s", len(targetPM.Files)-written, m.TargetVersion)
	}
	msg := fmt.Sprintf("--force overrides a failed check: %s. This apply guarantees only the %d file(s) it writes and the %d it removes; %s stay as they are, so the result is %s only if they already were. "+
		"It is checked against %s afterwards: if it differs, apply fails and lists every difference (release verify --install-dir %s shows them again), and installing the full package %s into a new directory is the way to repair",
		strings.Join(found, ", and "), changes.writes, changes.removes, untouched, m.TargetVersion, m.TargetVersion, a.dir, m.TargetPackage)
	a.rep.NotGuaranteed = msg
	if a.opts.Notice != nil {
		a.opts.Notice(msg)
		return
	}
	a.logf("warning: %s", msg)
}

// nextRecord is the installation's record after this apply. An
// installation whose record says it is at the delta's base, as its
// VERSION does, keeps what the record knows (the members of nested
// archives above all) and takes the delta's changes; any other (no
// record, a stale one, a forced apply over another version) gets what
// the delta alone says the target holds.
func (a *applyRun) nextRecord(m *delta.Manifest, targetPM *pkgmanifest.Manifest) *Record {
	name := filepath.Base(a.deltaZip)
	old, err := readRecord(a.dir)
	if err != nil {
		// Only an expectation: the apply checked the files themselves.
		a.logf("warning: %v; this apply writes a new record from the delta", err)
	}
	if old != nil && old.Version == m.BaseVersion && a.rep.InstalledVersion == m.BaseVersion {
		return old.advance(m, name)
	}
	layout, err := LayoutOf(m.Profile)
	if err != nil {
		// ParseManifest accepts only profiles release has.
		a.logf("warning: %v", err)
	}
	return recordFromDelta(m, targetPM, layout, name)
}

// stageRecord adds the new record to the transaction as one more file:
// staged now, moved into place (the old one to the backup) by the commit.
func stageRecord(t *txn, rec *Record) error {
	data, err := rec.marshal()
	if err != nil {
		return err
	}
	slot := 0
	for _, o := range t.j.Ops {
		for _, s := range []string{o.Stage, o.Backup} {
			if n, err := strconv.Atoi(s); err == nil && n > slot {
				slot = n
			}
		}
	}
	want := pkgzip.Digest{SHA256: sha256Hex(data), Size: int64(len(data))}
	o := op{Path: delta.InstallRecord, Stage: fmt.Sprintf("%06d", slot+1), Target: &want}
	if fi, err := os.Lstat(t.installPath(o.Path)); err == nil {
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("%s is not a file; move it away, it is release's record of the installation", t.installPath(o.Path))
		}
		o.Backup = o.Stage
	}
	if err := writeSynced(t.stagePath(o), data); err != nil {
		return fmt.Errorf("stage the installation record: %w", err)
	}
	i, _ := slices.BinarySearchFunc(t.j.Ops, o.Path, func(x op, p string) int { return strings.Compare(x.Path, p) })
	t.j.Ops = slices.Insert(t.j.Ops, i, o)
	return nil
}

func writeSynced(p string, data []byte) (err error) {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return syncDir(filepath.Dir(p))
}

// checkResult checks a forced apply's result against the target, which
// is what rec says it should hold, and fails listing every difference.
// The commit stands either way: rolling back would only restore an
// installation the checks had already found wrong.
func (a *applyRun) checkResult(ctx context.Context, m *delta.Manifest, rec *Record) error {
	chk, err := checkTree(ctx, a.dir, rec, a.workers, a.opts.Progress)
	if err != nil {
		return fmt.Errorf("check the forced result against %s: %w; release verify --install-dir %s checks it again", m.TargetVersion, err, a.dir)
	}
	chk.Basis = "record"
	a.rep.Result = chk
	if chk.OK {
		a.logf("the result matches %s", m.TargetVersion)
		return nil
	}
	return &ResultError{Check: chk, TargetPackage: m.TargetPackage}
}

// ResultError is a forced apply whose result is not the target version.
type ResultError struct {
	Check         *InstallCheck
	TargetPackage string
}

func (e *ResultError) Error() string {
	return e.Summary() + ":\n" + differenceLines(e.Check)
}

// Summary is the error without the list of differences.
func (e *ResultError) Summary() string {
	c := e.Check
	return fmt.Sprintf("--force: the result is not %s: %d missing, %d extra, %d changed file(s) (release verify --install-dir %s lists them again); install the full package %s into a new directory to repair",
		c.Version, c.Missing, c.Extra, c.Changed, c.InstallDir, e.TargetPackage)
}

// differenceLines are the lines of the check's report after its summary.
func differenceLines(c *InstallCheck) string {
	_, rest, _ := strings.Cut(c.String(), "\n")
	return rest
}
