// Package image builds the container images of node packages with
// go-containerregistry, from scratch or on a base image kept in the
// repository (an OCI image layout, an OCI archive or a docker-save tarball;
// nothing is ever pulled), and writes each as a reproducible OCI archive
// whose index.json names the image. Inspect reads such archives, ours or
// other tools', for node packages and their deltas.
package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/relcue/release/pipeline/config"
	"github.com/relcue/release/pipeline/digest"
	"github.com/relcue/release/pipeline/step"
)

const (
	// Kind is the step kind; ArtifactKind the kind of the archive artifact.
	Kind         = "image"
	ArtifactKind = "image"
	// StepVersion changes whenever Run's bytes could change for the same
	// spec and inputs, so that cached archives stop matching.
	StepVersion = "1"
	// baseSource is the source name of the base image.
	baseSource = "base"
)

// Spec is the canonical JSON spec of an image target. It holds no local
// paths (sources are referenced by name), so the cache key does not depend
// on where the repository is checked out.
type Spec struct {
	Ref    string `json:"ref"`
	Output string `json:"output"`
	// Date is RFC 3339 in UTC: every timestamp in the archive.
	Date string `json:"date"`
	Base *Base  `json:"base,omitempty"`
	// Platforms are canonical (see parsePlatform) and sorted.
	Platforms  []string          `json:"platforms"`
	Layers     []Layer           `json:"layers,omitempty"`
	Entrypoint []string          `json:"entrypoint,omitempty"`
	Cmd        []string          `json:"cmd,omitempty"`
	Env        map[string]string `json:"env,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
	WorkingDir string            `json:"workingDir,omitempty"`
	User       string            `json:"user,omitempty"`
}

// Base is the base image: the source holding it, its format and which
// image of it (by org.opencontainers.image.ref.name; "" = the only one).
type Base struct {
	Source string `json:"source"`
	// Format is FormatLayout (a directory) or FormatTarball (an OCI
	// archive or a docker-save tarball, told apart by content).
	Format string `json:"format"`
	Ref    string `json:"ref,omitempty"`
}

// Base formats.
const (
	FormatLayout  = "layout"
	FormatTarball = "tarball"
)

// Layer adds a source (a directory tree or a file) at Dest.
type Layer struct {
	Source string `json:"source"`
	Dir    bool   `json:"dir"`
	// Dest is absolute and clean: where the tree's root or the file goes.
	Dest string `json:"dest"`
	// Mode, if non-zero, is the file's mode (setuid, setgid and sticky
	// bits allowed); only file layers have one. Otherwise files get 0755
	// when executable and 0644 otherwise.
	Mode uint32 `json:"mode,omitempty"`
	// Platform restricts the layer to one platform (canonical form).
	Platform string `json:"platform,omitempty"`
}

// Targets plans one target per distinct image of each OS target. An image
// declared by several releases of an OS is built once; the same reference
// declared differently is an error, because a node that has loaded a tag
// never loads it again.
func Targets(m *config.Model) ([]step.Target, error) {
	if len(m.OS) > 0 && m.Build.Date.IsZero() {
		return nil, errors.New("the build date is not set; set build.date or SOURCE_DATE_EPOCH: every timestamp in an image comes from it")
	}
	var out []step.Target
	for _, osName := range slices.Sorted(maps.Keys(m.OS)) {
		ost := m.OS[osName]
		if ost == nil {
			return nil, fmt.Errorf("os %s is nil (configuration loader bug)", osName)
		}
		ts, err := osTargets(m, ost)
		if err != nil {
			return nil, err
		}
		out = append(out, ts...)
	}
	return out, nil
}

type planned struct {
	target  step.Target
	canon   string
	version string
	pos     config.Pos
}

func osTargets(m *config.Model, ost *config.OSTarget) ([]step.Target, error) {
	dir := ost.Dir
	if dir == "" {
		dir = ost.Name
	}
	if dir == "" || strings.ContainsAny(dir, `/\:*?"<>| `) || strings.Trim(dir, ".") == "" {
		return nil, posErr(ost.Pos, fmt.Errorf("os %q: directory name %q cannot be a path segment; use letters, digits, '.', '-' and '_'", ost.Name, dir))
	}
	versions := ost.Versions
	if len(versions) == 0 {
		versions = slices.Sorted(maps.Keys(ost.Releases))
	}
	byRef := map[string]*planned{}
	byFile := map[string]*planned{}
	var out []step.Target
	for _, v := range versions {
		if nr, ok := ost.Releases[v]; !ok || nr == nil {
			return nil, posErr(ost.Pos, fmt.Errorf("os %s: release %s is listed in Versions but not defined (configuration loader bug)", ost.Name, v))
		}
		images := NodeImages(m, ost.Name, v)
		for i := range images {
			img := &images[i]
			t, err := target(m, ost.Name, dir, img)
			if err != nil {
				pos := img.Pos
				var le *locError
				if errors.As(err, &le) {
					pos, err = le.pos, le.err
				}
				return nil, posErr(pos, fmt.Errorf("os %s, release %s, image %s: %w", ost.Name, v, img.Ref, err))
			}
			canon, err := canonical(t)
			if err != nil {
				return nil, err
			}
			p := &planned{target: t, canon: canon, version: v, pos: img.Pos}
			if prev, ok := byRef[img.Ref]; ok {
				if prev.canon != canon {
					return nil, posErr(img.Pos, fmt.Errorf("os %s: image %s is declared differently in release %s (%s) and release %s: a tag must always mean the same image: change the tag",
						ost.Name, img.Ref, prev.version, orUnknown(prev.pos), v))
				}
				continue
			}
			file := FileName(img.Ref)
			if prev, ok := byFile[file]; ok {
				return nil, posErr(img.Pos, fmt.Errorf("os %s: images %s (release %s, %s) and %s would both be stored as %s; rename one of them",
					ost.Name, prev.target.Spec.(Spec).Ref, prev.version, orUnknown(prev.pos), img.Ref, file))
			}
			byRef[img.Ref], byFile[file] = p, p
			out = append(out, t)
		}
	}
	return out, nil
}

// canonical is what makes two declarations the same image: the spec and
// which local paths feed it, not where in the configuration they are.
func canonical(t step.Target) (string, error) {
	type src struct {
		Name, Path string
		Dir        bool
	}
	srcs := make([]src, len(t.Sources))
	for i, s := range t.Sources {
		srcs[i] = src{s.Name, s.Path, s.Dir}
	}
	b, err := json.Marshal(struct {
		Spec    any
		Sources []src
	}{t.Spec, srcs})
	return string(b), err
}

// target plans one image declaration; its errors carry the most precise
// position when it is not the image's own.
func target(m *config.Model, osName, osDir string, img *Config) (step.Target, error) {
	if _, err := parseRef(img.Ref); err != nil {
		return step.Target{}, err
	}
	spec := Spec{
		Ref:        img.Ref,
		Output:     OutputPath(osDir, img.Ref),
		Date:       m.Build.Date.UTC().Format(time.RFC3339),
		Entrypoint: img.Entrypoint,
		Cmd:        img.Cmd,
		Env:        img.Env,
		Labels:     img.Labels,
		WorkingDir: img.WorkingDir,
		User:       img.User,
	}
	platforms := img.Platforms
	if len(platforms) == 0 {
		platforms = []string{DefaultPlatform}
	}
	for _, s := range platforms {
		_, canon, err := parsePlatform(s)
		if err != nil {
			return step.Target{}, err
		}
		if slices.Contains(spec.Platforms, canon) {
			return step.Target{}, fmt.Errorf("platform %s is listed twice (as %q)", canon, s)
		}
		spec.Platforms = append(spec.Platforms, canon)
	}
	// Sorted, so that the order of declaration changes neither the cache
	// key nor the index.
	slices.Sort(spec.Platforms)
	t := step.Target{ID: TargetID(osName, img.Ref), Kind: Kind, Pos: img.Pos.String(), Outputs: []string{spec.Output}}

	if b := img.Base; b != nil {
		base, src, err := planBase(b, img.Pos)
		if err != nil {
			return step.Target{}, at(b.Pos, err)
		}
		spec.Base = base
		t.Sources = append(t.Sources, src)
	} else if len(img.Layers) == 0 {
		return step.Target{}, errors.New("an image from scratch needs at least one layer; add layers or a base")
	}
	for i, l := range img.Layers {
		layer, src, err := planLayer(i, l, spec.Platforms)
		if err != nil {
			return step.Target{}, at(l.Pos, fmt.Errorf("layer %d: %w", i+1, err))
		}
		spec.Layers = append(spec.Layers, layer)
		t.Sources = append(t.Sources, src)
	}
	if err := spec.checkConfig(); err != nil {
		return step.Target{}, err
	}
	if spec.Base != nil {
		// Resolving the base now reports a missing image or platform with
		// the configuration's position instead of mid-build; it reads
		// only index and manifests, never layers.
		if err := checkBase(spec.Base, t.Sources[0].Path, spec.Platforms); err != nil {
			return step.Target{}, at(img.Base.Pos, err)
		}
	}
	t.Spec = spec
	return t, nil
}

func planBase(b *BaseConfig, fallback config.Pos) (*Base, step.Source, error) {
	pos := b.Pos
	if pos.File == "" {
		pos = fallback
	}
	src := step.Source{Name: baseSource, Pos: pos.String()}
	base := &Base{Source: baseSource, Ref: b.Ref}
	switch {
	case b.Layout != "" && b.Tarball != "":
		return nil, src, errors.New("base has both layout and tarball; give one")
	case b.Layout != "":
		base.Format, src.Path, src.Dir = FormatLayout, b.Layout, true
	case b.Tarball != "":
		base.Format, src.Path = FormatTarball, b.Tarball
	default:
		return nil, src, errors.New("base has neither layout nor tarball; give the OCI layout directory or the image tarball kept in the repository (nothing is pulled)")
	}
	if err := checkLocal(src.Path, src.Dir, "base "+base.Format); err != nil {
		return nil, src, err
	}
	return base, src, nil
}

func planLayer(i int, l LayerConfig, platforms []string) (Layer, step.Source, error) {
	layer := Layer{Source: fmt.Sprintf("layer%d", i), Dest: l.Dest, Mode: l.Mode}
	src := step.Source{Name: layer.Source, Pos: l.Pos.String()}
	switch {
	case l.Dir != "" && l.File != "":
		return Layer{}, src, errors.New("has both dir and file; use one layer per source")
	case l.Dir != "":
		layer.Dir, src.Path, src.Dir = true, l.Dir, true
	case l.File != "":
		src.Path = l.File
	default:
		return Layer{}, src, errors.New("has neither dir nor file")
	}
	if l.Platform != "" {
		_, canon, err := parsePlatform(l.Platform)
		if err != nil {
			return Layer{}, src, err
		}
		if !slices.Contains(platforms, canon) {
			return Layer{}, src, fmt.Errorf("platform %s is not one of the image's platforms (%s); add it to the image's platforms or fix the layer's", canon, strings.Join(platforms, ", "))
		}
		layer.Platform = canon
	}
	if err := layer.check(); err != nil {
		return Layer{}, src, err
	}
	what := "file"
	if layer.Dir {
		what = "dir"
	}
	if err := checkLocal(src.Path, src.Dir, what); err != nil {
		return Layer{}, src, err
	}
	if layer.Dir {
		// The walk the step will do, so that a symlink or device inside
		// the tree is reported here, with the layer's position.
		if _, err := digest.Walk(src.Path); err != nil {
			return Layer{}, src, err
		}
	}
	return layer, src, nil
}

// checkLocal checks that a source exists as the kind of entry it must be.
// Symbolic links are refused: their meaning depends on the machine, and
// the planner digests trees without following them.
func checkLocal(p string, dir bool, what string) error {
	fi, err := os.Lstat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s %s does not exist; create it or correct the path", what, p)
	case err != nil:
		return fmt.Errorf("%s: %w", what, err)
	case fi.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("%s %s is a symbolic link; point to the real %s instead", what, p, map[bool]string{true: "directory", false: "file"}[dir])
	case dir && !fi.IsDir():
		return fmt.Errorf("%s %s is not a directory", what, p)
	case !dir && !fi.Mode().IsRegular():
		return fmt.Errorf("%s %s is not a regular file", what, p)
	}
	return nil
}

// check validates what the spec can say on its own; the planner and the
// step both rely on it.
func (l Layer) check() error {
	if l.Source == "" {
		return errors.New("layer has no source")
	}
	if err := checkDest(l.Dest); err != nil {
		return err
	}
	if !l.Dir && l.Dest == "/" {
		return errors.New(`dest "/" is the root directory; a file layer's dest is the file's absolute path, e.g. /usr/bin/tool`)
	}
	if l.Dir && l.Mode != 0 {
		return errors.New("mode applies to file layers only; a directory's files get 0755 when executable, else 0644")
	}
	if l.Mode > 0o7777 {
		return fmt.Errorf("mode %#o has bits beyond permissions and setuid/setgid/sticky; use e.g. 0o755 or 0o644", l.Mode)
	}
	return nil
}

// checkDest requires an absolute, clean path that stays inside the image.
func checkDest(dest string) error {
	switch {
	case dest == "":
		return errors.New(`dest is empty; give an absolute path inside the image, e.g. "/usr/local/bin"`)
	case !strings.HasPrefix(dest, "/"):
		return fmt.Errorf("dest %q is not absolute; paths inside the image start with /", dest)
	case strings.ContainsAny(dest, "\\\x00"):
		return fmt.Errorf("dest %q contains a backslash or NUL; use forward slashes", dest)
	}
	for _, seg := range strings.Split(dest[1:], "/") {
		if seg == ".." {
			return fmt.Errorf("dest %q escapes the image root with \"..\"; give the path it means", dest)
		}
	}
	if c := path.Clean(dest); c != dest {
		return fmt.Errorf("dest %q is not a clean path; write %q", dest, c)
	}
	return nil
}

func (s *Spec) checkConfig() error {
	for k := range s.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return fmt.Errorf("env name %q is empty or contains '=' or NUL", k)
		}
	}
	for k := range s.Labels {
		if k == "" {
			return errors.New("a label has an empty name")
		}
	}
	if s.WorkingDir != "" {
		if err := checkDest(s.WorkingDir); err != nil {
			return fmt.Errorf("workingDir: %w", err)
		}
	}
	return nil
}

func posErr(pos config.Pos, err error) error {
	if p := pos.String(); p != "" {
		return fmt.Errorf("%s: %w", p, err)
	}
	return err
}

// locError carries a position more precise than the image's (a layer's,
// the base's) up to where the message is assembled.
type locError struct {
	pos config.Pos
	err error
}

func (e *locError) Error() string { return posErr(e.pos, e.err).Error() }
func (e *locError) Unwrap() error { return e.err }

func at(pos config.Pos, err error) error {
	if pos.File == "" {
		return err
	}
	return &locError{pos, err}
}

func orUnknown(pos config.Pos) string {
	if p := pos.String(); p != "" {
		return p
	}
	return "position unknown"
}
