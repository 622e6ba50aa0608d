package apply

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/relcue/release/internal/parallel"
	"github.com/relcue/release/internal/strictjson"
	"github.com/relcue/release/modules/delta"
	"github.com/relcue/release/modules/pkgmanifest"
	"github.com/relcue/release/modules/pkgzip"
)

// recordVersion is the format of the installation record this release
// writes and reads.
const recordVersion = 1

// Record is what an installation should hold, kept at its root as
// delta.InstallRecord. release install writes it (every file it wrote,
// the members of nested archives included), every release apply replaces
// it as part of its commit, and release verify --install-dir checks the
// installation against it when given nothing else.
//
// A record is an expectation, not an observation: after a forced apply it
// describes the target version even where the installation is not that,
// so that verify keeps reporting the difference.
type Record struct {
	RecordVersion int
	// Version is the version the installation should be at.
	Version string
	// Sources are the file names of the package and deltas the record
	// follows, oldest first.
	Sources []string
	// SkipRules (internal/glob patterns) and SkipNames (file names, any
	// case) name the installed files release leaves to the product (see
	// Layout); verify does not judge them.
	SkipRules []string
	SkipNames []string
	// Nested are the archives the installation holds unpacked (Layout),
	// so that verify lays a package given without --profile out the same.
	Nested []delta.Nested `json:",omitempty"`
	// Unlisted are directories ("." for the whole installation) whose
	// files the record may not all list: an apply to an installation that
	// had no record knows the files of a nested archive only where its
	// delta changes them. A file there that the record does not list is
	// counted as unlisted, not as extra.
	Unlisted []string
	// Files are every file the installation should hold.
	Files map[string]pkgzip.Digest
}

// maxRecordSize bounds how much of a record is read; a record of a
// million files stays far below it.
const maxRecordSize = 512 << 20

// readRecord reads the installation's record, or returns nil if it has
// none.
func readRecord(dir string) (*Record, error) {
	p := filepath.Join(dir, delta.InstallRecord)
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("installation record: %w", err)
	}
	if !fi.Mode().IsRegular() || fi.Size() > maxRecordSize {
		return nil, fmt.Errorf("installation record %s is not a regular file of at most %d bytes; remove it and verify against the package", p, maxRecordSize)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("installation record: %w", err)
	}
	var r Record
	if err := strictjson.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("installation record %s is damaged (%v); verify against the package and deltas the installation came from", p, err)
	}
	if err := r.validate(); err != nil {
		return nil, fmt.Errorf("installation record %s is invalid (%v); verify against the package and deltas the installation came from", p, err)
	}
	return &r, nil
}

func (r *Record) validate() error {
	if r.RecordVersion != recordVersion {
		return fmt.Errorf("RecordVersion %d, this release reads %d", r.RecordVersion, recordVersion)
	}
	if r.Version == "" || strings.ContainsAny(r.Version, "\r\n\x00") {
		return fmt.Errorf("field Version %q is not one non-empty line", r.Version)
	}
	for p, d := range r.Files {
		if err := delta.CheckPath(p); err != nil {
			return err
		}
		if !validSHA256(d.SHA256) || d.Size < 0 {
			return fmt.Errorf("%s: bad digest %q (%d bytes)", p, d.SHA256, d.Size)
		}
	}
	for _, d := range r.Unlisted {
		if d == "." {
			continue
		}
		if err := delta.CheckPath(d); err != nil {
			return fmt.Errorf("field Unlisted: %w", err)
		}
	}
	return nil
}

func validSHA256(s string) bool {
	if len(s) != 64 || strings.ToLower(s) != s {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// marshal encodes the record reproducibly: indented, map keys sorted,
// empty lists as [], with a final newline.
func (r *Record) marshal() ([]byte, error) {
	c := *r
	for _, l := range []*[]string{&c.Sources, &c.SkipRules, &c.SkipNames, &c.Unlisted} {
		if *l == nil {
			*l = []string{}
		}
	}
	if c.Files == nil {
		c.Files = map[string]pkgzip.Digest{}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(&c); err != nil {
		return nil, fmt.Errorf("encode the installation record: %w", err)
	}
	return buf.Bytes(), nil
}

// skips reports whether the record leaves p to the product.
func (r *Record) skips(p string) bool {
	return skipped(p, nil, r.SkipRules, r.SkipNames)
}

// unlisted reports whether p lies in a directory the record may not list
// completely.
func (r *Record) unlisted(p string) bool {
	for _, d := range r.Unlisted {
		if d == "." || strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}

// advance is the record after the delta m (named deltaName) was applied
// to an installation this record described: what apply writes, removes
// and replaces wholesale changes, everything else stays as recorded.
func (r *Record) advance(m *delta.Manifest, deltaName string) *Record {
	n := &Record{
		RecordVersion: recordVersion,
		Version:       m.TargetVersion,
		Sources:       append(slices.Clone(r.Sources), deltaName),
		SkipRules:     slices.Clone(m.SkipRules),
		SkipNames:     slices.Clone(m.SkipNames),
		Nested:        r.Nested,
		Files:         make(map[string]pkgzip.Digest, len(r.Files)),
	}
	for p, d := range r.Files {
		n.Files[p] = d
	}
	for p := range m.Files.Base {
		delete(n.Files, p)
	}
	for p := range n.Files {
		for _, d := range m.WholeDirectories {
			// A wholesale directory is replaced completely, except for
			// what the skip rules protect.
			if strings.HasPrefix(p, d+"/") && !skipped(p, nil, m.SkipRules, m.SkipNames) {
				delete(n.Files, p)
			}
		}
	}
	for p, d := range m.Files.Target {
		n.Files[p] = d
	}
	for _, d := range r.Unlisted {
		// A wholesale directory the delta ships is listed completely now.
		if !slices.Contains(m.WholeDirectories, d) {
			n.Unlisted = append(n.Unlisted, d)
		}
	}
	return n
}

// recordFromDelta is what an installation should hold after the delta m
// (named deltaName) was applied, judged from the delta alone: the target
// package's files (from the package-manifest.json it ships, pm) with
// what the delta writes. The members of nested archives the delta does
// not change are not in either, so the directories they unpack into
// (from layout) are Unlisted; without pm, nothing but what the delta
// writes is known, and the whole installation is.
func recordFromDelta(m *delta.Manifest, pm *pkgmanifest.Manifest, layout Layout, deltaName string) *Record {
	r := &Record{
		RecordVersion: recordVersion,
		Version:       m.TargetVersion,
		Sources:       []string{deltaName},
		SkipRules:     slices.Clone(m.SkipRules),
		SkipNames:     slices.Clone(m.SkipNames),
		Nested:        layout.Nested,
		Files:         map[string]pkgzip.Digest{},
	}
	if pm == nil {
		r.Unlisted = []string{"."}
	} else {
		listed := map[string]bool{}
		for _, f := range pm.Files {
			r.Files[f.Path] = pkgzip.Digest{SHA256: f.SHA256, Size: f.Size}
			listed[f.Path] = true
		}
		for _, d := range layout.nestedDirs(listed) {
			if !slices.Contains(m.WholeDirectories, d) {
				r.Unlisted = append(r.Unlisted, d)
			}
		}
	}
	for p, d := range m.Files.Target {
		r.Files[p] = d
	}
	return r
}

// recordFromPackage is what installing the full package at zipPath with
// layout gives: every file install writes, with its digest. Every entry
// is read, and checked against the package's manifest when it has one.
func recordFromPackage(ctx context.Context, zipPath string, layout Layout, workers int, progress func(int64)) (*Record, error) {
	r, err := pkgzip.Open(zipPath)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	files, version, closeNested, err := installFiles(r, layout.Nested)
	defer closeNested()
	if err != nil {
		return nil, err
	}
	progress = serialize(progress)
	digests, err := parallel.Map(ctx, max(workers, 1), files, func(ctx context.Context, _ int, f installFile) (pkgzip.Digest, error) {
		got, err := hashEntry(ctx, f.entry, progress)
		if err != nil {
			return got, fmt.Errorf("%s: %s: %w", zipPath, f.path, err)
		}
		if f.want != nil && got != *f.want {
			return got, fmt.Errorf("%s: %s has sha256 %s (%d bytes) but %s says %s (%d bytes); the package is corrupt, obtain it again",
				zipPath, f.path, got.SHA256, got.Size, pkgmanifest.Name, f.want.SHA256, f.want.Size)
		}
		return got, nil
	})
	if err != nil {
		return nil, err
	}
	rec := &Record{
		RecordVersion: recordVersion,
		Version:       version,
		Sources:       []string{filepath.Base(zipPath)},
		SkipRules:     slices.Clone(layout.Skip),
		SkipNames:     slices.Clone(layout.SkipNames),
		Nested:        layout.Nested,
		Files:         make(map[string]pkgzip.Digest, len(files)),
	}
	for i, f := range files {
		rec.Files[f.path] = digests[i]
	}
	return rec, nil
}

// recordFromInstalledManifest is the expectation of an installation that
// has no record but a package-manifest.json, as one unpacked from a
// package by hand does: the files that manifest lists (not itself, which
// it cannot), with the layout's skip rules, and the directories the
// layout's nested archives unpack into as Unlisted, since the manifest
// lists only the archives.
func recordFromInstalledManifest(dir string, layout Layout) (*Record, error) {
	data, err := os.ReadFile(filepath.Join(dir, pkgmanifest.Name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	pm, err := pkgmanifest.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("the installed %s: %w", pkgmanifest.Name, err)
	}
	r := &Record{
		RecordVersion: recordVersion,
		Version:       pm.Version,
		Sources:       []string{pkgmanifest.Name},
		SkipRules:     slices.Clone(layout.Skip),
		SkipNames:     slices.Clone(layout.SkipNames),
		Nested:        layout.Nested,
		// The manifest cannot list itself; it is what is trusted here.
		Files: map[string]pkgzip.Digest{pkgmanifest.Name: {SHA256: sha256Hex(data), Size: int64(len(data))}},
	}
	listed := map[string]bool{}
	for _, f := range pm.Files {
		r.Files[f.Path] = pkgzip.Digest{SHA256: f.SHA256, Size: f.Size}
		listed[f.Path] = true
	}
	r.Unlisted = layout.nestedDirs(listed)
	return r, nil
}

// hashEntry streams a zip entry through SHA-256.
func hashEntry(ctx context.Context, e *pkgzip.Entry, progress func(int64)) (pkgzip.Digest, error) {
	rc, err := e.Open()
	if err != nil {
		return pkgzip.Digest{}, err
	}
	defer rc.Close()
	return digestOf(ctx, rc, progress)
}
