package apply

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/relcue/release/modules/delta"
	"github.com/relcue/release/modules/pkgmanifest"
	"github.com/relcue/release/modules/pkgzip"
)

// changeSet is the complete list of operations of one apply, checked up
// front. (Not to be confused with pipeline/plan, the build's DAG, nor with
// upgrade Plans: this is only what one delta does to one installation.)
type changeSet struct {
	ops      []op
	created  []string
	problems []problem
	writes   int
	removes  int
	bytes    int64
}

// planChanges decides every rename the apply will do and checks the
// installation: the hash of every file it replaces or removes, of every
// file it adds that exists already, and of every unchanged file the target
// package lists. Mismatches are problems (--force lets them through);
// layouts it cannot apply safely (symbolic links on the way, a directory
// where a file must go) are errors.
func planChanges(ctx context.Context, dir string, m *delta.Manifest, targetPM *pkgmanifest.Manifest, workers int, progress func(int64)) (*changeSet, error) {
	if err := refuseFileAboveFile(m); err != nil {
		return nil, err
	}
	pl := newChangePlanner(dir, m, targetPM)
	paths, err := pl.candidatePaths()
	if err != nil {
		return nil, err
	}
	for _, p := range paths {
		if err := pl.planPath(p); err != nil {
			return nil, err
		}
	}
	pl.checkUnchangedFiles()
	if err := pl.checkStructure(); err != nil {
		return nil, err
	}
	return pl.hashAndCount(ctx, workers, progress)
}

// changePlanner holds what the phases of planChanges share: the delta and
// the installation they read, and the changeSet and checks they build up.
type changePlanner struct {
	dir       string // the installation, absolute
	m         *delta.Manifest
	targetPM  *pkgmanifest.Manifest // nil when the delta ships none
	skipPaths map[string]bool

	// mandatory are the files the delta ships unchanged.
	mandatory map[string]bool

	cs           changeSet
	checks       []check  // installed files to hash before anything is staged
	dirsInTheWay []string // installed directories where the target has a file
	slot         int      // the last stage/backup name handed out
	// kinds caches the Lstat of directories above the files the apply
	// writes; fs.ModeIrregular marks "absent".
	kinds map[string]fs.FileMode
}

func newChangePlanner(dir string, m *delta.Manifest, targetPM *pkgmanifest.Manifest) *changePlanner {
	skipPaths := map[string]bool{}
	for _, p := range m.SpecialSkippedFiles {
		skipPaths[p] = true
	}
	mandatory := map[string]bool{}
	for _, p := range m.Mandatory {
		mandatory[p] = true
	}
	return &changePlanner{dir: dir, m: m, targetPM: targetPM, skipPaths: skipPaths, mandatory: mandatory, kinds: map[string]fs.FileMode{}}
}

func (pl *changePlanner) installPath(rel string) string {
	return filepath.Join(pl.dir, filepath.FromSlash(rel))
}

func (pl *changePlanner) isSkipped(p string) bool {
	return skipped(p, pl.skipPaths, pl.m.SkipRules, pl.m.SkipNames)
}

func (pl *changePlanner) inWholeDirectory(p string) bool {
	for _, d := range pl.m.WholeDirectories {
		if strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}

// refuseFileAboveFile rejects a delta that writes both a file and
// something below it: no order of renames can apply that.
func refuseFileAboveFile(m *delta.Manifest) error {
	for _, p := range sortedKeys(m.Files.Target) {
		for a := path.Dir(p); a != "."; a = path.Dir(a) {
			if _, ok := m.Files.Target[a]; ok {
				return fmt.Errorf("the delta writes both the file %s and %s under it; the delta is invalid, rebuild it", a, p)
			}
		}
	}
	return nil
}

// candidatePaths is, sorted, every path the apply may touch: the delta's
// base and target files and whatever is installed in its wholesale
// directories.
func (pl *changePlanner) candidatePaths() ([]string, error) {
	paths := map[string]bool{}
	for p := range pl.m.Files.Target {
		paths[p] = true
	}
	for p := range pl.m.Files.Base {
		paths[p] = true
	}
	for _, d := range pl.m.WholeDirectories {
		if err := pl.addInstalledFiles(d, paths); err != nil {
			return nil, err
		}
	}
	return sortedKeys(paths), nil
}

// addInstalledFiles adds to paths the files installed under the wholesale
// directory d that no skip rule protects: wholesale directories are
// replaced completely, so installed files the target does not have go too,
// whatever they are.
func (pl *changePlanner) addInstalledFiles(d string, paths map[string]bool) error {
	root := pl.installPath(d)
	fi, err := os.Lstat(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return fmt.Errorf("wholesale directory %s is a symbolic link; release will not replace files through it, make it a real directory", d)
	}
	if !fi.IsDir() {
		return nil
	}
	err = filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(pl.dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if !pl.isSkipped(rel) {
			paths[rel] = true
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list wholesale directory %s: %w", d, err)
	}
	return nil
}

// planPath decides what happens to one path: a file the target has is
// staged, an installed file is first moved to the backup, and the installed
// content the delta relies on is to be checked.
func (pl *changePlanner) planPath(p string) error {
	t, inT := pl.m.Files.Target[p]
	b, inB := pl.m.Files.Base[p]
	if pl.mandatory[p] {
		// Shipped for the upgrade's entry points, unchanged: the
		// installed file must be the base's, and it stays as it is.
		pl.checks = append(pl.checks, check{path: p, want: b, what: pl.m.BaseVersion + "'s"})
		return nil
	}
	fi, err := os.Lstat(pl.installPath(p))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: %w", p, err)
	}
	if err == nil && inT && !inB && pl.isOtherNameRemoved(p) {
		// A case-insensitive file system (Windows, Wine, casefolded
		// ext4) found the base's file under another case of the name;
		// the delta removes that one, which frees p.
		err = fs.ErrNotExist
	}
	isDir := err == nil && fi.IsDir()
	isFile := err == nil && !fi.IsDir()
	o := op{Path: p}
	if inT || isFile {
		// A file that is replaced keeps one name in stage/ and backup/.
		pl.slot++
		slot := fmt.Sprintf("%06d", pl.slot)
		if inT {
			o.Stage, o.Target = slot, &t
		}
		if isFile {
			o.Backup = slot
		}
	}
	switch {
	case isDir && inT:
		pl.dirsInTheWay = append(pl.dirsInTheWay, p)
	case isDir:
		pl.cs.problems = append(pl.cs.problems, problem{p, fmt.Sprintf("%s is a directory but %s has a file there", p, pl.m.BaseVersion)})
	case inB:
		pl.checks = append(pl.checks, check{path: p, want: b, what: pl.m.BaseVersion + "'s"})
	case isFile && inT && !pl.inWholeDirectory(p):
		// An added file that is there already: fine if it is the same, a
		// conflict otherwise.
		pl.checks = append(pl.checks, check{path: p, want: t, what: "the file the delta adds", absentOK: true})
	}
	if o.Stage != "" || o.Backup != "" {
		pl.cs.ops = append(pl.cs.ops, o)
	}
	return nil
}

// isOtherNameRemoved reports whether what is installed at p (which
// exists) is really an entry with another name, found by a
// case-insensitive lookup, that the apply removes: a path of the base the
// target does not have, or a file in a wholesale directory.
func (pl *changePlanner) isOtherNameRemoved(p string) bool {
	name, ok := entryName(pl.installPath(p))
	if !ok || name == path.Base(p) {
		return false
	}
	q := path.Join(path.Dir(p), name)
	if _, inT := pl.m.Files.Target[q]; inT {
		return false
	}
	_, inB := pl.m.Files.Base[q]
	return inB || pl.inWholeDirectory(q) && !pl.isSkipped(q)
}

// checkUnchangedFiles adds a check of every file the target package lists
// and the delta leaves alone: unless it is the base's, the result of the
// apply is not the target.
func (pl *changePlanner) checkUnchangedFiles() {
	if pl.targetPM == nil {
		return
	}
	for _, f := range pl.targetPM.Files {
		if _, ok := pl.m.Files.Target[f.Path]; ok || f.Path == pkgmanifest.Name || pl.isSkipped(f.Path) {
			continue
		}
		pl.checks = append(pl.checks, check{path: f.Path, want: pkgzip.Digest{SHA256: f.SHA256, Size: f.Size}, what: "the unchanged file of " + pl.m.BaseVersion})
	}
}

// checkStructure makes sure nothing is written through a symbolic link and
// a file only goes where nothing, or something the delta removes, is; and
// it finds the directories the commit creates.
func (pl *changePlanner) checkStructure() error {
	removed := map[string]bool{}
	for _, o := range pl.cs.ops {
		if o.Backup != "" && o.Stage == "" {
			removed[o.Path] = true
		}
	}
	created := map[string]bool{}
	for _, o := range pl.cs.ops {
		if err := pl.checkAncestors(o, removed, created); err != nil {
			return err
		}
	}
	for _, d := range pl.dirsInTheWay {
		if err := pl.checkDirInTheWay(d, removed); err != nil {
			return err
		}
		// It is pruned once emptied, then the file takes its place.
		delete(created, d)
	}
	for d := range created {
		pl.cs.created = append(pl.cs.created, d)
	}
	slices.Sort(pl.cs.created)
	return nil
}

// checkAncestors checks the directories above o.Path. Those that are
// missing, or files the delta removes, go into created if o writes a file.
func (pl *changePlanner) checkAncestors(o op, removed, created map[string]bool) error {
	for a := path.Dir(o.Path); a != "."; a = path.Dir(a) {
		k, ok, err := pl.kindOf(a)
		if err != nil {
			return fmt.Errorf("%s: %w", a, err)
		}
		switch {
		case !ok:
			if o.Stage != "" {
				created[a] = true
			}
		case k&fs.ModeSymlink != 0:
			return fmt.Errorf("%s is a symbolic link; release will not write %s through it, make %s a real directory", a, o.Path, a)
		case k.IsDir():
		case removed[a]:
			if o.Stage != "" {
				created[a] = true
			}
		default:
			return fmt.Errorf("%s cannot be written: %s is a file the delta does not remove; move it away", o.Path, a)
		}
	}
	return nil
}

// kindOf is the file type installed at rel, and whether anything is.
func (pl *changePlanner) kindOf(rel string) (fs.FileMode, bool, error) {
	if k, ok := pl.kinds[rel]; ok {
		return k, k != fs.ModeIrregular, nil
	}
	fi, err := os.Lstat(pl.installPath(rel))
	if errors.Is(err, fs.ErrNotExist) {
		pl.kinds[rel] = fs.ModeIrregular
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	pl.kinds[rel] = fi.Mode().Type()
	return fi.Mode().Type(), true, nil
}

// checkDirInTheWay refuses to replace the installed directory d by a file
// unless the delta removes everything in it: nothing may be lost.
func (pl *changePlanner) checkDirInTheWay(d string, removed map[string]bool) error {
	return filepath.WalkDir(pl.installPath(d), func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(pl.dir, p)
		if rel = filepath.ToSlash(rel); !removed[rel] {
			return fmt.Errorf("%s is a directory in the installation but %s has a file there, and %s would be lost; move the directory away", d, pl.m.TargetVersion, rel)
		}
		return nil
	})
}

// hashAndCount hashes the installed files the plan relies on, adds the
// mismatches to its problems and counts what the apply writes and removes.
func (pl *changePlanner) hashAndCount(ctx context.Context, workers int, progress func(int64)) (*changeSet, error) {
	problems, err := runChecks(ctx, pl.dir, pl.checks, workers, progress)
	if err != nil {
		return nil, err
	}
	cs := &pl.cs
	cs.problems = append(cs.problems, problems...)
	slices.SortFunc(cs.problems, func(a, b problem) int { return strings.Compare(a.path, b.path) })
	for _, o := range cs.ops {
		switch {
		case o.Stage != "":
			cs.writes++
			cs.bytes += o.Target.Size
		case o.Backup != "":
			cs.removes++
		}
	}
	return cs, nil
}
