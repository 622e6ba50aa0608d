package image

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/relcue/release/pipeline/digest"
)

// Layers are written uncompressed (application/vnd.oci.image.layer.v1.tar):
//   - the digest then depends only on the tar bytes this file controls, not
//     on a compressor whose output may change with a Go or library update;
//   - the diff ID is the digest: no second hash, no decompression to verify;
//   - archives travel inside node package zips, which deflate them anyway,
//     and a gzip stream inside a zip neither compresses further nor lets
//     the zip's own compression see the content;
//   - every consumer (containerd, CRI-O/buildah/skopeo via containers/image,
//     Docker) accepts uncompressed OCI layers. Pushing to a registry
//     recompresses where the pusher wants it (skopeo does by default).
const layerMediaType = types.OCIUncompressedLayer

// entry is a path a layer writes, as it will be in the tar ("usr/bin/x",
// no leading or trailing slash).
type entry struct {
	name string
	dir  bool
	src  string // local file, for files
	mode int64
	uid  int
	gid  int
}

// layerContent is what a layer writes for a source: the file at Dest, or
// the tree's regular files below Dest, and every directory on the way
// (parents included, so that the tar extracts on its own).
type layerContent struct {
	files []entry
	dirs  []string
}

func collectLayer(l Layer, src string) (*layerContent, error) {
	c := &layerContent{}
	root := strings.TrimPrefix(l.Dest, "/")
	if l.Dir {
		tree, err := digest.Walk(src)
		if err != nil {
			return nil, err
		}
		for _, f := range tree {
			c.files = append(c.files, entry{
				name: path.Join(root, f.Path),
				src:  filepath.Join(src, filepath.FromSlash(f.Path)),
				mode: fileMode(l.Mode, f.Exec),
			})
		}
	} else {
		fi, err := os.Lstat(src)
		if err != nil {
			return nil, err
		}
		if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("%s is not a regular file (%s)", src, fi.Mode().Type())
		}
		c.files = append(c.files, entry{name: root, src: src, mode: fileMode(l.Mode, fi.Mode().Perm()&0o111 != 0)})
	}
	dirs := map[string]bool{}
	if l.Dir && root != "" {
		dirs[root] = true
	}
	for _, f := range c.files {
		for d := path.Dir(f.name); d != "."; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	c.dirs = slices.Sorted(maps.Keys(dirs))
	return c, nil
}

// paths are all paths the layer writes.
func (c *layerContent) paths() []string {
	out := slices.Clone(c.dirs)
	for _, f := range c.files {
		out = append(out, f.name)
	}
	return out
}

// entries are the layer's tar entries over the image as st describes it.
// Directory modes are not taken from the source: the planner's tree digest
// does not cover them, so they could not change the cache key; they are
// what the image already has there (see fsState), else 0755.
func (c *layerContent) entries(st *fsState) ([]entry, error) {
	out := make([]entry, 0, len(c.dirs)+len(c.files))
	for _, d := range c.dirs {
		m, err := st.dirMeta(d)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	for _, f := range c.files {
		if err := st.fileOK(f.name); err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	// Sorted by tar name (directories with their trailing slash): a
	// directory is a prefix of its children and sorts before them, so the
	// tar extracts in order, and the order never depends on the file
	// system's.
	slices.SortFunc(out, func(a, b entry) int { return strings.Compare(a.tarName(), b.tarName()) })
	return out, nil
}

func (e entry) tarName() string {
	if e.dir {
		return e.name + "/"
	}
	return e.name
}

func fileMode(mode uint32, exec bool) int64 {
	switch {
	case mode != 0:
		return int64(mode)
	case exec:
		return 0o755
	}
	return 0o644
}

// builtLayer is a layer written to a temporary file: uncompressed, so its
// digest is its diff ID.
type builtLayer struct {
	path   string
	digest v1.Hash
	size   int64
}

var _ v1.Layer = (*builtLayer)(nil)

func (l *builtLayer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *builtLayer) DiffID() (v1.Hash, error)            { return l.digest, nil }
func (l *builtLayer) Size() (int64, error)                { return l.size, nil }
func (l *builtLayer) MediaType() (types.MediaType, error) { return layerMediaType, nil }
func (l *builtLayer) Compressed() (io.ReadCloser, error)  { return os.Open(l.path) }
func (l *builtLayer) Uncompressed() (io.ReadCloser, error) {
	return os.Open(l.path)
}

// writeLayer writes entries as a tar into a new file in dir. Every header
// field that could vary between machines is fixed: mtime is the build
// date, owner and group are numeric only, and access/change times and
// extended attributes are never written.
func writeLayer(ctx context.Context, dir string, entries []entry, date time.Time) (_ *builtLayer, err error) {
	f, err := os.CreateTemp(dir, "layer-*.tar")
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = cerr
		}
		if err != nil {
			os.Remove(f.Name())
		}
	}()
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(f, h)}
	tw := tar.NewWriter(cw)
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hdr := &tar.Header{Name: e.tarName(), Mode: e.mode, Uid: e.uid, Gid: e.gid, ModTime: date}
		if e.dir {
			hdr.Typeflag = tar.TypeDir
			if err := tw.WriteHeader(hdr); err != nil {
				return nil, err
			}
			continue
		}
		if err := addFile(tw, hdr, e.src); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return &builtLayer{path: f.Name(), digest: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}, size: cw.n}, nil
}

func addFile(tw *tar.Writer, hdr *tar.Header, src string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file (%s)", src, fi.Mode().Type())
	}
	hdr.Typeflag, hdr.Size = tar.TypeReg, fi.Size()
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	n, err := io.Copy(tw, f)
	if err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	if n != hdr.Size {
		return fmt.Errorf("%s changed while it was read (%d bytes, then %d)", src, hdr.Size, n)
	}
	return nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// fsState is what the image holds so far at the paths our layers write:
// base layers first, then each of our layers. It exists because a layer's
// tar must emit its parent directories, and an emitted directory replaces
// what the image had there: written blindly as 0755 root, "/tmp/x" would
// turn the base's sticky /tmp into 0755, and "/bin/x" on a merged-/usr
// base would replace the symlink /bin -> usr/bin with a directory holding
// only x.
type fsState struct {
	// have holds only paths our layers write (scanLayer's need); a base
	// may hold hundreds of thousands of others.
	have map[string]pathMeta
	// origin says where have's entries came from, for messages.
	origin map[string]string
}

type pathMeta struct {
	typ  byte
	mode int64
	uid  int
	gid  int
	link string
}

func newFSState() *fsState {
	return &fsState{have: map[string]pathMeta{}, origin: map[string]string{}}
}

// dirMeta is the directory entry to write at d: the image's own when it
// has a directory there (mode with sticky/setgid bits, owner), else 0755
// root.
func (s *fsState) dirMeta(d string) (entry, error) {
	e := entry{name: d, dir: true, mode: 0o755}
	m, ok := s.have[d]
	if !ok {
		return e, nil
	}
	switch m.typ {
	case tar.TypeDir:
		e.mode, e.uid, e.gid = m.mode&0o7777, m.uid, m.gid
		return e, nil
	case tar.TypeSymlink:
		return e, fmt.Errorf("/%s is a symbolic link to %s in %s; a layer cannot write below it without replacing the link with a directory: use the path the link points to", d, m.link, s.origin[d])
	}
	return e, fmt.Errorf("/%s is a file in %s, so nothing can be placed below it; choose another dest", d, s.origin[d])
}

func (s *fsState) fileOK(name string) error {
	if m, ok := s.have[name]; ok && m.typ == tar.TypeDir {
		return fmt.Errorf("/%s is a directory in %s; a file cannot replace it: give the file's full path as dest", name, s.origin[name])
	}
	return nil
}

// apply records one layer's entries over the state, after its whiteouts.
func (s *fsState) apply(rec *layerRecord, origin string) {
	for _, d := range rec.opaque {
		s.removeBelow(d)
	}
	for _, p := range rec.whiteouts {
		s.remove(p)
		s.removeBelow(p)
	}
	for _, e := range rec.entries {
		s.have[e.name] = e.meta
		s.origin[e.name] = origin
	}
}

func (s *fsState) remove(p string) {
	delete(s.have, p)
	delete(s.origin, p)
}

func (s *fsState) removeBelow(dir string) {
	prefix := dir + "/"
	if dir == "" {
		prefix = ""
	}
	for k := range s.have {
		if strings.HasPrefix(k, prefix) {
			s.remove(k)
		}
	}
}

// applyOwn records a layer we write.
func (s *fsState) applyOwn(entries []entry, origin string) {
	rec := &layerRecord{}
	for _, e := range entries {
		m := pathMeta{typ: tar.TypeReg, mode: e.mode}
		if e.dir {
			m = pathMeta{typ: tar.TypeDir, mode: e.mode, uid: e.uid, gid: e.gid}
		}
		rec.entries = append(rec.entries, recEntry{e.name, m})
	}
	s.apply(rec, origin)
}

// layerRecord is what one base layer does to the paths of interest.
type layerRecord struct {
	entries   []recEntry
	whiteouts []string // paths deleted from lower layers
	opaque    []string // directories whose lower content is hidden
}

type recEntry struct {
	name string
	meta pathMeta
}

// scanLayer reads a base layer's tar for the paths in need and checks its
// content against the diff ID the config declares.
func scanLayer(ctx context.Context, l v1.Layer, diffID v1.Hash, need map[string]bool) (*layerRecord, error) {
	rc, err := l.Uncompressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	h := sha256.New()
	// tar.Reader reads every byte through the tee (it cannot seek), so the
	// hash covers the whole layer.
	tee := io.TeeReader(&ctxReader{ctx, rc}, h)
	tr := tar.NewReader(tee)
	rec := &layerRecord{}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading the layer's tar: %w; the base is damaged", err)
		}
		name := path.Clean(strings.TrimLeft(hdr.Name, "/"))
		if name == "." {
			continue
		}
		dir, base := path.Split(name)
		dir = strings.TrimSuffix(dir, "/")
		switch {
		case base == ".wh..wh..opq":
			rec.opaque = append(rec.opaque, dir)
			continue
		case strings.HasPrefix(base, ".wh."):
			rec.whiteouts = append(rec.whiteouts, path.Join(dir, strings.TrimPrefix(base, ".wh.")))
			continue
		}
		if !need[name] {
			continue
		}
		// tar.Reader already reports the legacy '\x00' typeflag as TypeReg
		// (TypeDir with a trailing slash); a hard link is a file here.
		typ := hdr.Typeflag
		if typ == tar.TypeLink {
			typ = tar.TypeReg
		}
		rec.entries = append(rec.entries, recEntry{name, pathMeta{typ: typ, mode: hdr.Mode, uid: hdr.Uid, gid: hdr.Gid, link: hdr.Linkname}})
	}
	// Trailing bytes after the tar's end blocks still count for the diff
	// ID.
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return nil, err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != diffID.Hex {
		return nil, fmt.Errorf("its content has diff ID sha256:%s but the config says %s; the base is damaged", got, diffID)
	}
	return rec, nil
}

// ctxReader stops long reads when the build is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func layerErr(i int, l Layer, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		err = fmt.Errorf("%w; the source vanished after planning", err)
	}
	return fmt.Errorf("layer %d (%s at %s): %w", i+1, l.Source, l.Dest, err)
}
