// Package apply applies cluster delta packages to an installation directory
// transactionally, verifies packages and installations, and recovers from
// an apply that was interrupted (crash, power loss, kill).
//
// An apply locks the installation, checks every file it will touch (and every
// unchanged file) against the hashes in the delta, stages the new files under
// <install>/.release-apply/stage/, writes a journal, and then commits by
// renames only: each old file is moved to .release-apply/backup/ and each new
// one moved into place. The journal's switch to "committing" is the commit
// point: an apply interrupted before it leaves the installation untouched,
// one interrupted after it is finished by the next Apply or Recover.
//
// Install and every Apply keep a record of what the installation should
// hold (Record, at delta.InstallRecord); VerifyInstallation checks an
// installation against it, or against the package and deltas it came from.
package apply

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/relcue/release/internal/parallel"
	"github.com/relcue/release/modules/delta"
	"github.com/relcue/release/modules/pkgmanifest"
	"github.com/relcue/release/modules/pkgzip"
)

// Options configures Apply.
type Options struct {
	// DryRun does every check and reports what would change, touching
	// nothing (not even the lock file).
	DryRun bool
	// Force applies even if the installed version is not the delta's base
	// or installed files differ from what the delta expects; every such
	// mismatch is reported as a warning instead.
	Force bool
	// Workers bounds parallel hashing and staging; < 1 means 1.
	Workers int
	// Progress receives bytes hashed and staged; may be nil. Calls are
	// serialized.
	Progress func(int64)
	// Log receives human-readable detail lines; may be nil.
	Log io.Writer
	// Signatures, with Require, refuses the delta unless every signable
	// file it writes carries a valid Authenticode signature by a trusted
	// signer; checked on the staged files, before anything is committed.
	Signatures *Signatures
	// Paths is the policy for the paths the delta installs; "" is
	// pkgzip.PathsWindows. On Windows only that policy is possible.
	Paths pkgzip.PathPolicy
	// Notice receives, before anything is written, what a forced apply
	// that overrides a check does not guarantee; may be nil. It is also
	// in Report.NotGuaranteed.
	Notice func(string)
}

// Report says what Apply, Recover or Verify did.
type Report struct {
	// Operation is "apply", "recover", "verify" or "install".
	Operation string `json:"operation"`
	// Path is the delta (apply) or the zip verified.
	Path string `json:"path,omitempty"`
	// Kind is, for verify, "package" or "delta".
	Kind       string `json:"kind,omitempty"`
	InstallDir string `json:"installDir,omitempty"`
	// BaseVersion and TargetVersion are the delta's; a verified full
	// package's version is TargetVersion.
	BaseVersion   string `json:"baseVersion,omitempty"`
	TargetVersion string `json:"targetVersion,omitempty"`
	// InstalledVersion is the VERSION apply found ("" for none); it is
	// BaseVersion unless --force let a mismatch through.
	InstalledVersion string `json:"installedVersion,omitempty"`
	DryRun           bool   `json:"dryRun"`
	Forced           bool   `json:"forced"`
	// AlreadyApplied is true when the installation was at TargetVersion
	// already (and verified as such); nothing was changed.
	AlreadyApplied bool `json:"alreadyApplied"`
	// Recovery is set when an interrupted apply was finished or undone.
	Recovery *Recovery `json:"recovery,omitempty"`
	// Added, Changed and Removed are the delta manifest's counts.
	Added   int `json:"added"`
	Changed int `json:"changed"`
	Removed int `json:"removed"`
	// FilesWritten, FilesRemoved and BytesWritten count what the apply
	// wrote and removed (with DryRun: would write and remove), wholesale
	// directories included.
	FilesWritten int   `json:"filesWritten"`
	FilesRemoved int   `json:"filesRemoved"`
	BytesWritten int64 `json:"bytesWritten"`
	// FilesVerified and BytesVerified count what was hashed by Verify.
	FilesVerified int   `json:"filesVerified,omitempty"`
	BytesVerified int64 `json:"bytesVerified,omitempty"`
	// Warnings are the mismatches --force let through.
	Warnings []string `json:"warnings,omitempty"`
	// NotGuaranteed says, for a forced apply that overrode a check, what
	// it does not guarantee.
	NotGuaranteed string `json:"notGuaranteed,omitempty"`
	// Result is the check of a forced apply's result against the
	// target, when one ran.
	Result *InstallCheck `json:"result,omitempty"`
	// Signatures is what the Authenticode checks found, when they ran.
	Signatures *SignatureReport `json:"signatures,omitempty"`
	// SBOM is set when verify checked the package's SBOM.
	SBOM *SBOMReport `json:"sbom,omitempty"`
}

// Recovery describes how an interrupted apply was resolved.
type Recovery struct {
	// Action is "rolled-forward", "rolled-back" or "discarded-stage" (the
	// apply was interrupted while staging; nothing had been touched).
	Action string `json:"action"`
	// State is the journal state found ("" for discarded-stage).
	State         string `json:"state,omitempty"`
	Delta         string `json:"delta,omitempty"`
	BaseVersion   string `json:"baseVersion,omitempty"`
	TargetVersion string `json:"targetVersion,omitempty"`
}

// Apply applies the delta zip to the installation in installDir. On error
// the returned report (which may be nil) still says whether an earlier
// interrupted apply was recovered.
func Apply(ctx context.Context, deltaZip, installDir string, opts Options) (*Report, error) {
	rep, err := apply(ctx, deltaZip, installDir, opts)
	if err != nil {
		return rep, fmt.Errorf("apply %s to %s: %w", filepath.Base(deltaZip), installDir, err)
	}
	return rep, nil
}

// Recover finishes or undoes an interrupted apply in installDir (forward if
// it had reached "committing", backward otherwise). Without one it does
// nothing and returns a report with a nil Recovery.
func Recover(ctx context.Context, installDir string) (*Report, error) {
	dir, err := installRoot(installDir)
	if err != nil {
		return nil, fmt.Errorf("recover %s: %w", installDir, err)
	}
	lock, err := acquireLock(dir)
	if err != nil {
		return nil, fmt.Errorf("recover %s: %w", installDir, err)
	}
	rep := &Report{Operation: "recover", InstallDir: dir}
	rep.Recovery, err = recoverLocked(ctx, dir, max(1, min(4, runtime.GOMAXPROCS(0))), nil, nil)
	lock.close(err)
	if err != nil {
		return rep, fmt.Errorf("recover %s: %w", installDir, err)
	}
	return rep, nil
}

func apply(ctx context.Context, deltaZip, dirArg string, opts Options) (rep *Report, err error) {
	dir, err := installRoot(dirArg)
	if err != nil {
		return nil, err
	}
	if opts.Paths, err = pkgzip.ParsePathPolicy(string(opts.Paths)); err != nil {
		return nil, err
	}
	if opts.Paths == pkgzip.PathsPOSIX && runtime.GOOS == "windows" {
		return nil, fmt.Errorf("path policy %q cannot be used on Windows, which cannot hold the names it allows", opts.Paths)
	}
	a := newApplyRun(deltaZip, dir, opts)
	if opts.DryRun {
		// A dry run touches nothing, not even the lock, so it cannot
		// recover either.
		if state := filepath.Join(dir, delta.ApplyStateDir); lexists(state) {
			return a.rep, fmt.Errorf("an apply is running or was interrupted (%s exists); run apply without --dry-run, or recover, first", state)
		}
	} else {
		lock, lerr := acquireLock(dir)
		if lerr != nil {
			return a.rep, lerr
		}
		// err is apply's result here, not a shadow of it: a simulated
		// crash anywhere in the apply leaves the lock file behind, as a
		// killed process would.
		defer func() { lock.close(err) }()
		if a.rep.Recovery, err = recoverLocked(ctx, dir, a.workers, a.opts.Progress, a.logf); err != nil {
			return a.rep, err
		}
	}
	return a.rep, a.run(ctx)
}

// applyRun is one Apply on a locked (or, dry, unlocked) installation: its
// options and the report its phases fill in.
type applyRun struct {
	deltaZip string
	dir      string // the installation, absolute
	opts     Options
	workers  int
	rep      *Report
}

func newApplyRun(deltaZip, dir string, opts Options) *applyRun {
	opts.Progress = serialize(opts.Progress)
	return &applyRun{
		deltaZip: deltaZip,
		dir:      dir,
		opts:     opts,
		workers:  max(opts.Workers, 1),
		rep:      &Report{Operation: "apply", Path: deltaZip, InstallDir: dir, DryRun: opts.DryRun, Forced: opts.Force},
	}
}

func (a *applyRun) logf(format string, args ...any) {
	if a.opts.Log != nil {
		fmt.Fprintf(a.opts.Log, format+"\n", args...)
	}
}

// warn records a mismatch --force lets through.
func (a *applyRun) warn(msg string) {
	a.rep.Warnings = append(a.rep.Warnings, msg)
	a.logf("warning: %s", msg)
}

// run reads the delta, plans and checks every change, and (unless dry)
// stages and commits them.
func (a *applyRun) run(ctx context.Context) error {
	r, err := pkgzip.Open(a.deltaZip)
	if err != nil {
		return err
	}
	defer r.Close()
	m, targetPM, err := a.readDelta(r)
	if err != nil {
		return err
	}
	if err := checkPaths(a.dir, m, a.opts.Paths); err != nil {
		return err
	}
	done, err := a.checkInstalledVersion(ctx, m)
	if err != nil || done {
		return err
	}
	changes, err := planChanges(ctx, a.dir, m, targetPM, a.workers, a.opts.Progress)
	if err != nil {
		return err
	}
	if err := a.acceptChanges(m, changes); err != nil {
		return err
	}
	// Only what --force let through, not a cleanup warning of the commit.
	overridden := len(a.rep.Warnings) > 0
	if overridden {
		a.notice(m, targetPM, changes)
	}
	if a.opts.DryRun {
		a.logf("dry run: would write %d files (%d bytes) and remove %d", changes.writes, changes.bytes, changes.removes)
		return nil
	}
	rec := a.nextRecord(m, targetPM)
	t := newTxn(a.dir, &journal{
		Version:       journalVersion,
		Delta:         filepath.Base(a.deltaZip),
		BaseVersion:   m.BaseVersion,
		TargetVersion: m.TargetVersion,
		Ops:           changes.ops,
		Created:       changes.created,
	})
	if err := a.prepare(ctx, t, r, m, rec); err != nil {
		return a.discard(t, err)
	}
	if err := a.commit(ctx, t, changes); err != nil {
		return err
	}
	if overridden {
		return a.checkResult(ctx, m, rec)
	}
	return nil
}

// readDelta reads the delta's manifest and, if it ships one, the target's
// package manifest, which must be for the version the delta goes to.
func (a *applyRun) readDelta(r *pkgzip.Reader) (*delta.Manifest, *pkgmanifest.Manifest, error) {
	m, targetPM, err := readDeltaManifests(r)
	if err != nil {
		return nil, nil, err
	}
	a.rep.BaseVersion, a.rep.TargetVersion = m.BaseVersion, m.TargetVersion
	a.rep.Added, a.rep.Changed, a.rep.Removed = m.AddedCount, m.ChangedCount, m.RemovedCount
	return m, targetPM, nil
}

// readDeltaManifests reads a delta's manifest and, if it ships one, the
// target's package manifest, which must be for the version the delta
// goes to.
func readDeltaManifests(r *pkgzip.Reader) (*delta.Manifest, *pkgmanifest.Manifest, error) {
	m, err := delta.ReadManifest(r)
	if err != nil {
		return nil, nil, err
	}
	e := r.Lookup(delta.PackageManifestName)
	if e == nil {
		return m, nil, nil
	}
	targetPM, err := readPackageManifest(e)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", r.Path, err)
	}
	if targetPM.Version != m.TargetVersion {
		return nil, nil, fmt.Errorf("%s: the shipped %s is for %s but the delta goes to %s; the delta is inconsistent, rebuild it", r.Path, pkgmanifest.Name, targetPM.Version, m.TargetVersion)
	}
	return m, targetPM, nil
}

// checkInstalledVersion compares the installed version with the delta's.
// An installation at the target already is verified, and then done; one
// at any version but the base needs --force.
func (a *applyRun) checkInstalledVersion(ctx context.Context, m *delta.Manifest) (done bool, err error) {
	installed, err := readVersion(a.dir)
	if err != nil {
		return false, err
	}
	a.rep.InstalledVersion = installed
	if installed == m.TargetVersion {
		if err := verifyAt(ctx, a.dir, m, a.workers, a.opts.Progress); err != nil {
			return false, err
		}
		a.rep.AlreadyApplied = true
		a.logf("already at %s", m.TargetVersion)
		return true, nil
	}
	if installed != m.BaseVersion {
		shown := installed
		if shown == "" {
			shown = "unversioned (no " + delta.VersionFile + " file)"
		}
		msg := fmt.Sprintf("installation is %s but the delta is for %s", shown, m.BaseVersion)
		if !a.opts.Force {
			return false, errors.New(msg + "; " + versionHint(a.deltaZip, m, installed))
		}
		a.warn(msg)
	}
	return false, nil
}

// versionHint says what to use instead of a delta made for another base:
// the delta made for the installed version, by the name release gives it
// (delta.OutputPath), or the full package; and why --force is no way out.
func versionHint(deltaZip string, m *delta.Manifest, installed string) string {
	full := "the full package " + m.TargetPackage + " into a new directory (release install)"
	if installed == "" {
		return "install " + full + " instead. --force would apply this delta anyway, which is dangerous: it writes only the files the delta ships, so the installation gets none of the others"
	}
	use := "a delta from " + installed + " to " + m.TargetVersion
	if name, ok := matchingDelta(deltaZip, m, installed); ok {
		use = name + " (the delta from " + installed + ")"
	}
	return fmt.Sprintf("use %s or install %s. --force would apply this delta anyway, which is dangerous: it writes only the files the delta ships, so every other file stays %s's",
		use, full, installed)
}

// matchingDelta is the file name release gives the delta from installed
// to m's target (delta.OutputPath), for the product m's packages are of,
// or failing that the delta's own name with the installed version as base.
func matchingDelta(deltaZip string, m *delta.Manifest, installed string) (string, bool) {
	if product, ok := strings.CutSuffix(m.TargetPackage, "-"+m.TargetVersion+".zip"); ok && product != "" {
		return path.Base(delta.OutputPath(product, installed, m.TargetVersion)), true
	}
	if before, after, ok := strings.Cut(filepath.Base(deltaZip), "-"+m.BaseVersion+"-to-"); ok {
		return before + "-" + installed + "-to-" + after, true
	}
	return "", false
}

// acceptChanges reports what the changes write and remove, and refuses
// them if the installation is not what the delta expects, unless forced.
func (a *applyRun) acceptChanges(m *delta.Manifest, changes *changeSet) error {
	a.rep.FilesWritten, a.rep.FilesRemoved, a.rep.BytesWritten = changes.writes, changes.removes, changes.bytes
	if len(changes.problems) == 0 {
		return nil
	}
	if !a.opts.Force {
		return fmt.Errorf("the installation does not match what the delta expects: %s; restore those files from %s's full package %s and apply again, or install the full package %s into a new directory instead. --force would write the delta's files over them anyway, which is dangerous: the files the delta does not ship stay as they are",
			summarize(changes.problems), m.BaseVersion, m.BasePackage, m.TargetPackage)
	}
	for _, pr := range changes.problems {
		a.warn(pr.msg)
	}
	return nil
}

// prepare stages the new files, checks their signatures if required and
// takes the journal to the commit point. The installation is untouched
// until it returns nil.
func (a *applyRun) prepare(ctx context.Context, t *txn, r *pkgzip.Reader, m *delta.Manifest, rec *Record) error {
	if err := stageFiles(ctx, t, r, m.Patches, a.workers, a.opts.Progress); err != nil {
		return err
	}
	// The record is committed and rolled back with the files it describes.
	if err := stageRecord(t, rec); err != nil {
		return err
	}
	if err := a.checkStagedSignatures(ctx, t); err != nil {
		return err
	}
	if err := t.save(statePrepared); err != nil {
		return err
	}
	if err := crashPoint(pointJournal, 0); err != nil {
		return err
	}
	// A held file would make the commit fail part-way and roll back;
	// found now, the installation is never touched.
	if err := checkMovable(t); err != nil {
		return err
	}
	// The last moment a cancellation leaves the installation untouched:
	// it may have come after the staging.
	if err := ctx.Err(); err != nil {
		return err
	}
	return t.save(stateCommitting)
}

// checkStagedSignatures, with Signatures.Require, refuses the delta unless
// every signable file it writes is validly signed by a trusted signer.
func (a *applyRun) checkStagedSignatures(ctx context.Context, t *txn) error {
	if a.opts.Signatures == nil || !a.opts.Signatures.Require {
		return nil
	}
	var staged []sigTarget
	for _, o := range t.j.Ops {
		if o.Stage != "" {
			staged = append(staged, fileTarget(o.Path, t.stagePath(o)))
		}
	}
	var err error
	if a.rep.Signatures, err = checkSignatures(ctx, a.opts.Signatures, staged, a.workers); err != nil {
		return fmt.Errorf("%s: %w; nothing was changed", a.deltaZip, err)
	}
	return nil
}

// discard cleans up after a failure before the commit point, which leaves
// the installation as it was: only the staging area has to go.
func (a *applyRun) discard(t *txn, err error) error {
	if isCrash(err) {
		return err
	}
	if rerr := t.removeState(); rerr != nil {
		return fmt.Errorf("%w (and cleaning up the staging area failed: %v)", err, rerr)
	}
	return err
}

// commit runs from the commit point on: the renames, the check of their
// result and the cleanup. Any failure rolls back to the base version.
func (a *applyRun) commit(ctx context.Context, t *txn, changes *changeSet) error {
	j := t.j
	if err := crashPoint(pointCommitting, 0); err != nil {
		return rollback(t, err)
	}
	a.logf("committing %s -> %s: %d files to write, %d to remove", j.BaseVersion, j.TargetVersion, changes.writes, changes.removes)
	if err := t.forward(ctx); err != nil {
		if isCrash(err) {
			return err
		}
		return rollback(t, fmt.Errorf("commit: %w", err))
	}
	if err := t.save(stateCommitted); err != nil {
		return rollback(t, err)
	}
	if err := crashPoint(pointCommitted, 0); err != nil {
		return rollback(t, err)
	}
	if err := t.verifyForward(ctx, a.workers, a.opts.Progress); err != nil {
		return rollback(t, err)
	}
	if err := crashPoint(pointCleanup, 0); err != nil {
		return rollback(t, err)
	}
	if err := t.removeState(); err != nil {
		// The installation is complete and verified; the next apply or
		// recover removes the leftovers.
		a.warn(err.Error())
	}
	a.logf("applied %s -> %s", j.BaseVersion, j.TargetVersion)
	return nil
}

// rollback undoes a commit after cause and says how that went. After a
// simulated crash it does nothing, as a killed process would not.
func rollback(t *txn, cause error) error {
	if isCrash(cause) {
		return cause
	}
	if err := t.save(stateRollingBack); err != nil {
		cause = fmt.Errorf("%w (and marking the journal failed: %v)", cause, err)
	}
	if err := t.backward(); err != nil {
		if isCrash(err) {
			return err
		}
		return fmt.Errorf("%w; rolling back failed too: %v; %s is kept, run recover to finish the rollback", cause, err, t.state)
	}
	if err := t.removeState(); err != nil {
		// A program may hold a staged file (a virus scanner, say): the
		// journal stays, and the next apply or recover, which finds
		// the rollback done, removes the rest.
		return fmt.Errorf("%w; the installation was rolled back to %s but %v; once nothing holds it, apply again or run apply --recover to remove the rest", cause, t.j.BaseVersion, err)
	}
	return fmt.Errorf("%w; the installation was rolled back to %s", cause, t.j.BaseVersion)
}

// recoverLocked resolves an interrupted apply; the caller holds the lock.
func recoverLocked(ctx context.Context, dir string, workers int, progress func(int64), logf func(string, ...any)) (*Recovery, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	state := filepath.Join(dir, delta.ApplyStateDir)
	if !lexists(state) {
		return nil, nil
	}
	j, err := loadJournal(dir)
	if err != nil {
		return nil, err
	}
	if j == nil {
		// Interrupted while staging: the installation was never touched.
		if err := removeTree(state); err != nil {
			return nil, fmt.Errorf("remove the staging area of an interrupted apply: %w", err)
		}
		logf("recovery: discarded the staging area of an apply interrupted before its commit")
		return &Recovery{Action: "discarded-stage"}, nil
	}
	t := newTxn(dir, j)
	rec := &Recovery{State: j.State, Delta: j.Delta, BaseVersion: j.BaseVersion, TargetVersion: j.TargetVersion}
	what := fmt.Sprintf("the interrupted apply of %s (%s -> %s, state %s)", j.Delta, j.BaseVersion, j.TargetVersion, j.State)
	back := func(reason error) (*Recovery, error) {
		rec.Action = "rolled-back"
		if err := t.save(stateRollingBack); err != nil {
			return rec, fmt.Errorf("roll back %s: %w", what, err)
		}
		if err := t.backward(); err != nil {
			if isCrash(err) {
				return rec, err
			}
			return rec, fmt.Errorf("roll back %s: %w; %s is kept for inspection", what, err, state)
		}
		if err := t.removeState(); err != nil {
			return rec, err
		}
		if reason != nil {
			return rec, fmt.Errorf("%s could not be finished (%v); it was rolled back to %s", what, reason, j.BaseVersion)
		}
		logf("recovery: rolled back %s", what)
		return rec, nil
	}
	switch j.State {
	case statePrepared, stateRollingBack:
		return back(nil)
	case stateCommitting:
		if err := t.stagedComplete(); err != nil {
			return back(err)
		}
		if err := t.forward(ctx); err != nil {
			if isCrash(err) {
				return rec, err
			}
			return back(err)
		}
		if err := t.save(stateCommitted); err != nil {
			return back(err)
		}
	}
	if err := t.verifyForward(ctx, workers, progress); err != nil {
		return back(err)
	}
	if err := t.removeState(); err != nil {
		return rec, err
	}
	rec.Action = "rolled-forward"
	logf("recovery: finished %s", what)
	return rec, nil
}

// verifyAt checks an installation that says it is at the delta's target
// version: every file the delta would have written must have its target
// hash and every file it would have removed must be gone.
func verifyAt(ctx context.Context, dir string, m *delta.Manifest, workers int, progress func(int64)) error {
	var checks []check
	for _, p := range sortedKeys(m.Files.Target) {
		checks = append(checks, check{path: p, want: m.Files.Target[p], what: m.TargetVersion})
	}
	problems, err := runChecks(ctx, dir, checks, workers, progress)
	if err != nil {
		return err
	}
	for _, p := range sortedKeys(m.Files.Base) {
		if _, ok := m.Files.Target[p]; !ok && lexistsExact(filepath.Join(dir, filepath.FromSlash(p))) {
			problems = append(problems, problem{p, fmt.Sprintf("%s is still there but %s removed it", p, m.TargetVersion)})
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("installation says it is %s already, but %s; reinstall %s from its full package", m.TargetVersion, summarize(problems), m.TargetVersion)
	}
	return nil
}

// stageFiles streams every new file from the delta into the staging area,
// hashing as it goes, so that a corrupt delta is caught before the commit.
func stageFiles(ctx context.Context, t *txn, r *pkgzip.Reader, patches map[string]delta.Patch, workers int, progress func(int64)) error {
	for _, d := range []string{stageDir, backupDir} {
		if err := os.MkdirAll(filepath.Join(t.state, d), 0o755); err != nil {
			return fmt.Errorf("create the staging area: %w", err)
		}
	}
	var toStage []op
	for _, o := range t.j.Ops {
		if o.Stage != "" {
			toStage = append(toStage, o)
		}
	}
	var staged atomic.Int64
	err := parallel.For(ctx, workers, toStage, func(ctx context.Context, _ int, o op) error {
		if err := stageFile(ctx, t, r, patches, o, progress); err != nil {
			return err
		}
		return crashPoint(pointStaged, int(staged.Add(1)))
	})
	if err != nil {
		return err
	}
	return syncDir(filepath.Join(t.state, stageDir))
}

// stageFile stages the new file of o, shipped whole or as a patch of the
// installed one.
func stageFile(ctx context.Context, t *txn, r *pkgzip.Reader, patches map[string]delta.Patch, o op, progress func(int64)) error {
	if pt, ok := patches[o.Path]; ok {
		e := r.Lookup(pt.Entry)
		if e == nil {
			return fmt.Errorf("%s: no patch entry %s", r.Path, pt.Entry)
		}
		if err := stagePatch(e, pt, t.installPath(o.Path), t.stagePath(o), *o.Target, progress); err != nil {
			return fmt.Errorf("%s: %s: %w", r.Path, o.Path, err)
		}
		return nil
	}
	e := r.Lookup(o.Path)
	if e == nil {
		return fmt.Errorf("%s: no entry %s", r.Path, o.Path)
	}
	if err := stageOne(ctx, e, t.stagePath(o), *o.Target, progress); err != nil {
		return fmt.Errorf("%s: entry %s: %w", r.Path, o.Path, err)
	}
	return nil
}

func stageOne(ctx context.Context, e *pkgzip.Entry, dst string, want pkgzip.Digest, progress func(int64)) (err error) {
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	rc, err := e.Open()
	if err != nil {
		return err
	}
	h := sha256.New()
	n, err := copyCtx(ctx, io.MultiWriter(f, h), rc, progress)
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want.SHA256 || n != want.Size {
		return fmt.Errorf("content has sha256 %s (%d bytes) but %s says %s (%d bytes); the delta is corrupt, download or build it again",
			got, n, delta.ManifestName, want.SHA256, want.Size)
	}
	if err := f.Sync(); err != nil {
		return err
	}
	// The zip's executable bit is authoritative; the umask is not.
	return f.Chmod(pkgzip.NormalMode(e.Mode))
}

// stagePatch rebuilds a patched file from the installed base and the
// patch, both checked against the manifest, into the staging area. It
// holds the base, the patch and the result in memory: about 2x the file.
func stagePatch(e *pkgzip.Entry, pt delta.Patch, basePath, dst string, want pkgzip.Digest, progress func(int64)) (err error) {
	if e.Size != pt.Patch.Size {
		return fmt.Errorf("patch entry %s is %d bytes, %s says %d; the delta is corrupt, download or build it again", e.Name, e.Size, delta.ManifestName, pt.Patch.Size)
	}
	patch, err := readAll(e)
	if err != nil {
		return err
	}
	if got := sha256Hex(patch); got != pt.Patch.SHA256 {
		return fmt.Errorf("patch entry %s has sha256 %s but %s says %s; the delta is corrupt, download or build it again", e.Name, got, delta.ManifestName, pt.Patch.SHA256)
	}
	base, err := os.ReadFile(basePath)
	if err != nil {
		return fmt.Errorf("read the installed base file: %w", err)
	}
	// ApplyPatch checks the result against TargetSHA256, which the
	// manifest ties to want.
	out, err := delta.ApplyPatch(base, patch, pt, want.Size, runtime.GOMAXPROCS(0))
	if err != nil {
		return err
	}
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	if _, err := f.Write(out); err != nil {
		return err
	}
	if progress != nil {
		progress(int64(len(out)))
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return f.Chmod(pkgzip.NormalMode(e.Mode))
}

func readAll(e *pkgzip.Entry) ([]byte, error) {
	rc, err := e.Open()
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(rc, e.Size+1))
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	return data, err
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// serialize makes a progress callback safe for the parallel workers, so
// callers need no locking of their own.
func serialize(progress func(int64)) func(int64) {
	if progress == nil {
		return nil
	}
	var mu sync.Mutex
	return func(n int64) {
		mu.Lock()
		defer mu.Unlock()
		progress(n)
	}
}

func installRoot(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return "", fmt.Errorf("installation directory: %w", err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("installation directory %s is not a directory", abs)
	}
	return abs, nil
}

// readVersion returns the trimmed VERSION of an installation, or "" if it
// has none.
func readVersion(dir string) (string, error) {
	data, err := os.ReadFile(filepath.Join(dir, delta.VersionFile))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read the installed version: %w", err)
	}
	return strings.TrimSpace(string(data)), nil
}
