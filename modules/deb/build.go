package deb

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"

	"github.com/relcue/release/internal/filekind"
)

// Compression is nfpm's setting for data.tar. gzip is read by every dpkg
// and apt tool in use (zstd needs dpkg >= 1.21.18, which Debian 11 nodes
// lack), is in the standard library, and its output depends only on the
// input and level. Level 6 compresses about as well as 9 for binaries at a
// third of the time. control.tar is always gzip in nfpm.
const Compression = "gzip:6"

// Info describes a built package.
type Info struct {
	Package, Version, Architecture string
	// FileName is the conventional file name (FileName).
	FileName string
	// Files are the regular files and declared directories of data.tar,
	// sorted by path, generated documentation included; parent directories
	// are added by the packager and not listed.
	Files []File
	// Conffiles are the paths dpkg treats as conffiles, sorted.
	Conffiles []string
}

// File is one entry of a built package.
type File struct {
	Path string
	// Mode holds the permission bits and fs.ModeDir for a directory.
	Mode fs.FileMode
	Size int64
}

// entry is one thing to place in data.tar.
type entry struct {
	dst      string
	src      string // local file; "" for a directory
	mode     fs.FileMode
	size     int64
	conffile bool
	from     int // index in Spec.Contents, -1 for generated files
}

// Build writes the package described by spec to out, reading the files it
// names from sources (source name -> local path). The same spec and
// source contents give the same bytes on every machine: every timestamp is
// spec.Date, owners are root:root, entries are sorted, modes come from
// the spec or the executable bit only, and nothing about the host (user,
// host name, umask, source paths, file times) is recorded. A scratch
// directory next to out holds the generated documentation while building.
func Build(ctx context.Context, spec Spec, sources map[string]string, out string) (Info, error) {
	fail := func(err error) (Info, error) {
		return Info{}, fmt.Errorf("deb %s %s: %w", spec.Name, spec.Version, err)
	}
	if err := spec.check(); err != nil {
		return fail(err)
	}
	date, err := spec.date()
	if err != nil {
		return fail(err)
	}
	entries, err := collect(ctx, &spec, sources)
	if err != nil {
		return fail(err)
	}
	scripts, err := scriptPaths(&spec, sources)
	if err != nil {
		return fail(err)
	}
	scratch, err := os.MkdirTemp(filepath.Dir(out), ".deb-docs-*")
	if err != nil {
		return fail(fmt.Errorf("scratch directory for generated documentation: %w", err))
	}
	defer os.RemoveAll(scratch)
	if entries, err = withDocs(&spec, date, entries, scratch); err != nil {
		return fail(err)
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	if err := writePackage(nfpmInfo(&spec, date, scripts, entries), out); err != nil {
		return fail(err)
	}
	return describe(&spec, entries), nil
}

// withDocs adds the generated documentation (written into scratch) to
// entries, checks the whole tree and sorts it by path.
func withDocs(spec *Spec, date time.Time, entries []entry, scratch string) ([]entry, error) {
	docs, err := writeDocs(spec, date, entries, scratch)
	if err != nil {
		return nil, err
	}
	entries = append(entries, docs...)
	if err := checkTree(spec, entries); err != nil {
		return nil, err
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].dst < entries[j].dst })
	return entries, nil
}

// nfpmInfo is the package as nfpm takes it: control fields from the spec,
// every entry at date and owned by root.
func nfpmInfo(spec *Spec, date time.Time, scripts nfpm.Scripts, entries []entry) *nfpm.Info {
	epoch, upstream, revision := splitVersion(spec.Version)
	info := &nfpm.Info{
		Name:     spec.Name,
		Arch:     spec.Arch,
		Platform: "linux",
		Epoch:    epoch,
		Version:  upstream,
		// The version is Debian's, given whole; semver parsing would
		// rewrite it.
		VersionSchema:   "none",
		Release:         revision,
		Section:         spec.Section,
		Priority:        spec.Priority,
		Maintainer:      spec.Maintainer,
		Description:     spec.Description,
		Homepage:        spec.Homepage,
		License:         spec.License,
		DisableGlobbing: true,
		MTime:           date,
		Overridables: nfpm.Overridables{
			Depends:    spec.Depends,
			Recommends: spec.Recommends,
			Suggests:   spec.Suggests,
			Conflicts:  spec.Conflicts,
			Replaces:   spec.Replaces,
			Provides:   spec.Provides,
			Scripts:    scripts,
			Deb: nfpm.Deb{
				Arch:        spec.Arch,
				Compression: Compression,
				Predepends:  spec.PreDepends,
				Breaks:      spec.Breaks,
			},
		},
	}
	for _, e := range entries {
		info.Contents = append(info.Contents, e.content(date))
	}
	return info
}

// writePackage writes the .deb to out; a failure leaves no file there.
func writePackage(info *nfpm.Info, out string) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	err = deb.Default.Package(info, w)
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(out)
		return fmt.Errorf("packaging: %w", err)
	}
	return nil
}

func (e entry) content(date time.Time) *files.Content {
	c := &files.Content{
		Source:      e.src,
		Destination: e.dst,
		Type:        files.TypeFile,
		FileInfo: &files.ContentFileInfo{
			Owner: "root",
			Group: "root",
			Mode:  e.mode,
			MTime: date,
			Size:  e.size,
		},
	}
	switch {
	case e.src == "":
		c.Type = files.TypeDir
	case e.conffile:
		c.Type = files.TypeConfig
	}
	return c
}

// collect expands the contents into entries: directory trees into their
// regular files, sorted. Empty directories of a tree are not shipped:
// the planner's tree digest does not see them, so they must not change
// the bytes either; declare them with type "dir".
func collect(ctx context.Context, spec *Spec, sources map[string]string) ([]entry, error) {
	var out []entry
	for i := range spec.Contents {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		c := &spec.Contents[i]
		l := c.label(i)
		if c.Type == TypeDir {
			out = append(out, entry{dst: c.Dst, mode: dirMode(c.Mode), from: i})
			continue
		}
		src, ok := sources[c.Source]
		if !ok || src == "" {
			return nil, fmt.Errorf("%s names source %q, but none was provided (planner bug)", l, c.Source)
		}
		st, err := os.Stat(src)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s.src %s does not exist; fix the path or create it", l, src)
		}
		if err != nil {
			return nil, fmt.Errorf("%s.src: %w", l, err)
		}
		conf := func(dst string) bool { return c.Type == TypeConfig || strings.HasPrefix(dst, "/etc/") }
		switch {
		case st.Mode().IsRegular():
			// nfpm would package a symbolic link as a link: hand it the file.
			if src, err = filepath.EvalSymlinks(src); err != nil {
				return nil, fmt.Errorf("%s.src: %w", l, err)
			}
			out = append(out, entry{dst: c.Dst, src: src, mode: fileMode(c.Mode, st.Mode()), size: st.Size(), conffile: conf(c.Dst), from: i})
		case st.IsDir():
			err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return fmt.Errorf("%s.src: %w", l, err)
				}
				if d.IsDir() {
					return nil
				}
				if !d.Type().IsRegular() {
					return fmt.Errorf("%s.src: %s is a %s; packages hold regular files from trees, so replace it with the file it stands for", l, p, filekind.Name(d.Type()))
				}
				fi, err := d.Info()
				if err != nil {
					return fmt.Errorf("%s.src: %w", l, err)
				}
				rel, err := filepath.Rel(src, p)
				if err != nil {
					return err
				}
				dst := path.Join(c.Dst, filepath.ToSlash(rel))
				out = append(out, entry{dst: dst, src: p, mode: fileMode(c.Mode, fi.Mode()), size: fi.Size(), conffile: conf(dst), from: i})
				return nil
			})
			if err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("%s.src %s is a %s; use a regular file or a directory", l, src, filekind.Name(st.Mode()))
		}
	}
	return out, nil
}

// checkTree rejects two entries at one path and a file where another entry
// needs a directory, naming the entries involved.
func checkTree(spec *Spec, entries []entry) error {
	name := func(e entry) string {
		if e.from < 0 {
			return "the generated " + path.Base(e.dst)
		}
		return spec.Contents[e.from].label(e.from)
	}
	byDst := make(map[string]entry, len(entries))
	for _, e := range entries {
		if prev, dup := byDst[e.dst]; dup {
			return fmt.Errorf("%s and %s both write %s; each path on the node comes from one entry", name(prev), name(e), e.dst)
		}
		byDst[e.dst] = e
	}
	for _, e := range entries {
		for p := path.Dir(e.dst); p != "/"; p = path.Dir(p) {
			if parent, ok := byDst[p]; ok && parent.src != "" {
				return fmt.Errorf("%s writes the file %s, but %s needs it to be a directory for %s", name(parent), p, name(e), e.dst)
			}
		}
	}
	return nil
}

func scriptPaths(spec *Spec, sources map[string]string) (nfpm.Scripts, error) {
	var s nfpm.Scripts
	dst := map[string]*string{"preinst": &s.PreInstall, "postinst": &s.PostInstall, "prerm": &s.PreRemove, "postrm": &s.PostRemove}
	for _, sc := range spec.Scripts.list() {
		if sc.source == "" {
			continue
		}
		p, ok := sources[sc.source]
		if !ok || p == "" {
			return s, fmt.Errorf("scripts.%s names source %q, but none was provided (planner bug)", sc.name, sc.source)
		}
		if err := checkScript(p); err != nil {
			return s, fmt.Errorf("scripts.%s %w", sc.name, err)
		}
		*dst[sc.name] = p
	}
	return s, nil
}

// checkScript requires a regular file starting with "#!": dpkg executes
// maintainer scripts directly, so without an interpreter line the
// installation fails on the node rather than here.
func checkScript(p string) error {
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s does not exist; fix the path or create it", p)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is a %s, not a regular file", p, filekind.Name(st.Mode()))
	}
	head := make([]byte, 2)
	if n, _ := f.Read(head); n < 2 || string(head) != "#!" {
		return fmt.Errorf("%s does not start with \"#!\"; dpkg runs maintainer scripts directly, so give an interpreter line such as #!/bin/sh", p)
	}
	return nil
}

func fileMode(override uint32, src fs.FileMode) fs.FileMode {
	if override != 0 {
		return fs.FileMode(override)
	}
	if src.Perm()&0o111 != 0 {
		return 0o755
	}
	return 0o644
}

func dirMode(override uint32) fs.FileMode {
	if override != 0 {
		return fs.FileMode(override)
	}
	return 0o755
}

func describe(spec *Spec, entries []entry) Info {
	in := Info{
		Package: spec.Name, Version: spec.Version, Architecture: spec.Arch,
		FileName: FileName(spec.Name, spec.Version, spec.Arch),
	}
	for _, e := range entries {
		f := File{Path: e.dst, Mode: e.mode, Size: e.size}
		if e.src == "" {
			f.Mode |= fs.ModeDir
		}
		in.Files = append(in.Files, f)
		if e.conffile {
			in.Conffiles = append(in.Conffiles, e.dst)
		}
	}
	return in
}
