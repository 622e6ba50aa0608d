package image

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"cuelang.org/go/cue"

	"github.com/relcue/release/pipeline/config"
)

// SectionName is the image module's configuration section: the images
// under os.<name>.releases.<version>.images.
const SectionName = "image"

// Section decodes and checks the images of every node release.
var Section = config.Section{Name: SectionName, Decode: decodeSection}

// SectionConfig is the image section.
type SectionConfig struct {
	// Nodes holds the images of a node release by OS name, then version
	// (every version listed under the OS, declared or not).
	Nodes map[string]map[string][]Config
}

// NodeImages are the images a node of OS os needs for release version, in
// configuration order.
func NodeImages(m *config.Model, os, version string) []Config {
	c := config.SectionOf[*SectionConfig](m, SectionName)
	if c == nil {
		return nil
	}
	return c.Nodes[os][version]
}

// Config describes a container image built with go-containerregistry,
// from scratch or from a base kept in the repository (nothing is pulled).
type Config struct {
	// Ref is the image reference it is known by on a node, e.g.
	// "registry.k8s.io/pause:3.10".
	Ref string
	// Base is nil for an image from scratch.
	Base *BaseConfig
	// Platforms, e.g. "linux/amd64" (default) and "linux/arm64".
	Platforms  []string
	Layers     []LayerConfig
	Entrypoint []string
	Cmd        []string
	Env        map[string]string
	Labels     map[string]string
	WorkingDir string
	User       string
	Pos        config.Pos
}

// BaseConfig is a base image stored locally: an OCI image layout directory
// or an image tarball (OCI archive or docker save format). Ref picks an
// image from a layout holding several (by org.opencontainers.image.ref.name).
type BaseConfig struct {
	Layout  string
	Tarball string
	Ref     string
	Pos     config.Pos
}

// LayerConfig adds a directory tree (Dir) or one file (File) at Dest, an
// absolute path inside the image.
type LayerConfig struct {
	Dir  string
	File string
	Dest string
	Mode uint32
	// Platform restricts the layer to one platform ("" = all).
	Platform string
	Pos      config.Pos
}

// The raw types mirror cue/schema/os.cue, which documents them.
type rawNodeRelease struct {
	Images []rawImage `json:"images"`
}

type rawImage struct {
	Ref        string            `json:"ref"`
	Base       *rawBase          `json:"base"`
	Platforms  *[]string         `json:"platforms"`
	Layers     []rawLayer        `json:"layers"`
	Entrypoint []string          `json:"entrypoint"`
	Cmd        []string          `json:"cmd"`
	Env        map[string]string `json:"env"`
	Labels     map[string]string `json:"labels"`
	WorkingDir string            `json:"workingDir"`
	User       string            `json:"user"`
}

type rawBase struct {
	Layout  *string `json:"layout"`
	Tarball *string `json:"tarball"`
	Ref     *string `json:"ref"`
}

type rawLayer struct {
	Dir      *string `json:"dir"`
	File     *string `json:"file"`
	Dest     *string `json:"dest"`
	Mode     *uint32 `json:"mode"`
	Platform *string `json:"platform"`
}

// platformRE is os/arch[/variant] as OCI image indexes write it.
var platformRE = regexp.MustCompile(`^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?$`)

// debianPlatforms maps Debian architectures to OCI platforms, for the
// default platforms of an image.
var debianPlatforms = map[string]string{
	"amd64":    "linux/amd64",
	"arm64":    "linux/arm64",
	"armhf":    "linux/arm/v7",
	"armel":    "linux/arm/v5",
	"i386":     "linux/386",
	"ppc64el":  "linux/ppc64le",
	"s390x":    "linux/s390x",
	"riscv64":  "linux/riscv64",
	"mips64el": "linux/mips64le",
	"loong64":  "linux/loong64",
}

// decoder reads the image section through the loader's Decoder.
type decoder struct{ *config.Decoder }

func decodeSection(d *config.Decoder) any {
	b := decoder{d}
	m := d.Model()
	c := &SectionConfig{Nodes: map[string]map[string][]Config{}}
	for _, name := range m.OSNames {
		t := m.OS[name]
		nodes := map[string][]Config{}
		for _, v := range slices.Sorted(maps.Keys(t.Releases)) {
			rp := config.At("os", name, "releases", v)
			var raw rawNodeRelease
			if !d.Decode(rp, &raw) {
				continue
			}
			nodes[v] = b.nodeImages(rp, &raw, t)
		}
		c.Nodes[name] = nodes
	}
	return c
}

// nodeImages checks and resolves the images of one node release; a node
// package holds one archive per image reference.
func (b decoder) nodeImages(rp cue.Path, raw *rawNodeRelease, t *config.OSTarget) []Config {
	var out []Config
	refs := map[string]config.Pos{}
	for i := range raw.Images {
		ip := config.Join(rp, "images", i)
		im := b.image(ip, &raw.Images[i], t)
		out = append(out, im)
		if im.Ref == "" {
			continue
		}
		if p, dup := refs[im.Ref]; dup {
			b.Add(config.Problem{Pos: im.Pos, Path: ip.String(),
				Message: fmt.Sprintf("image %s is also listed at %s; list each image once", im.Ref, p),
				Related: []config.Pos{p}})
			continue
		}
		refs[im.Ref] = im.Pos
	}
	return out
}

func (b decoder) image(ip cue.Path, raw *rawImage, t *config.OSTarget) Config {
	im := Config{
		Ref:        raw.Ref,
		Entrypoint: nilIfEmpty(raw.Entrypoint),
		Cmd:        nilIfEmpty(raw.Cmd),
		WorkingDir: raw.WorkingDir,
		User:       raw.User,
		Pos:        b.Pos(ip),
	}
	if raw.Ref == "" {
		b.Problem(config.Join(ip, "ref"), `empty; name the image as nodes know it, e.g. "registry.k8s.io/pause:3.10"`)
	}
	if raw.Base != nil {
		im.Base = b.imageBase(config.Join(ip, "base"), raw.Base)
	}
	im.Platforms = b.platforms(ip, raw.Platforms, t)
	if raw.Base == nil && len(raw.Layers) == 0 {
		b.Problem(ip, "an image from scratch needs at least one layer; add layers, or a base")
	}
	for i := range raw.Layers {
		im.Layers = append(im.Layers, b.layer(config.Join(ip, "layers", i), &raw.Layers[i], im.Platforms))
	}
	im.Env = b.keyed(config.Join(ip, "env"), raw.Env, "variable")
	im.Labels = b.keyed(config.Join(ip, "labels"), raw.Labels, "label")
	return im
}

func (b decoder) imageBase(bp cue.Path, raw *rawBase) *BaseConfig {
	base := &BaseConfig{Pos: b.Pos(bp)}
	switch {
	case raw.Layout != nil && raw.Tarball != nil:
		b.Problem(bp, "set either layout or tarball, not both")
	case raw.Layout == nil && raw.Tarball == nil:
		b.Problem(bp, "set layout (an OCI image layout directory) or tarball (an OCI archive or docker save tarball)")
	}
	if raw.Layout != nil {
		base.Layout = b.Local(config.Join(bp, "layout"), *raw.Layout)
	}
	if raw.Tarball != nil {
		base.Tarball = b.Local(config.Join(bp, "tarball"), *raw.Tarball)
	}
	if raw.Ref != nil {
		base.Ref = *raw.Ref
		if base.Ref == "" {
			b.Problem(config.Join(bp, "ref"), "empty; name the image to use from the base, or leave ref out if it holds one")
		}
	}
	return base
}

// platforms returns an image's platforms: those given, or by default one
// per architecture of its OS.
func (b decoder) platforms(ip cue.Path, given *[]string, t *config.OSTarget) []string {
	pp := config.Join(ip, "platforms")
	if given == nil {
		var out []string
		for _, a := range t.Arch {
			p, ok := debianPlatforms[a]
			if !ok {
				if a != "" && a != "all" {
					b.Problem(ip, "no default platform for arch %q of %s; set platforms (e.g. [\"linux/amd64\"])", a, config.At("os", t.Name))
				}
				continue
			}
			if !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
		return out
	}
	if len(*given) == 0 {
		b.Problem(pp, "empty; list at least one platform, or leave platforms out for those of the OS's arch")
	}
	for i, p := range *given {
		if msg := platformProblem(p); msg != "" {
			b.Problem(config.Join(pp, i), "%s", msg)
		} else if slices.Contains((*given)[:i], p) {
			b.Problem(config.Join(pp, i), "%q is listed twice; remove one", p)
		}
	}
	return *given
}

func platformProblem(p string) string {
	if !platformRE.MatchString(p) {
		return fmt.Sprintf(`%q is not a platform; write os/arch[/variant], e.g. "linux/amd64" or "linux/arm/v7"`, p)
	}
	return ""
}

func (b decoder) layer(lp cue.Path, raw *rawLayer, platforms []string) LayerConfig {
	l := LayerConfig{Pos: b.Pos(lp)}
	switch {
	case raw.Dir != nil && raw.File != nil:
		b.Problem(lp, "set either dir or file, not both")
	case raw.Dir == nil && raw.File == nil:
		b.Problem(lp, "set dir (a directory tree) or file (a single file)")
	}
	if raw.Dir != nil {
		l.Dir = b.Local(config.Join(lp, "dir"), *raw.Dir)
		l.Dest = "/"
		if raw.Mode != nil {
			b.Problem(config.Join(lp, "mode"), "mode applies to file layers only; a directory's files keep their own modes")
		}
	}
	if raw.File != nil {
		l.File = b.Local(config.Join(lp, "file"), *raw.File)
		if raw.Mode != nil {
			l.Mode = *raw.Mode
		}
	}
	switch {
	case raw.Dest != nil:
		l.Dest = *raw.Dest
		if msg := config.TargetPathProblem(l.Dest, "in the image", "/usr/local/bin/tool", raw.File == nil); msg != "" {
			b.Problem(config.Join(lp, "dest"), "%s", msg)
		}
	case raw.File != nil:
		b.Problem(config.Join(lp, "dest"), `a file layer needs dest, the file's absolute path in the image (e.g. "/usr/local/bin/tool")`)
	}
	if raw.Platform != nil {
		l.Platform = *raw.Platform
		if msg := platformProblem(l.Platform); msg != "" {
			b.Problem(config.Join(lp, "platform"), "%s", msg)
		} else if len(platforms) > 0 && !slices.Contains(platforms, l.Platform) {
			b.Problem(config.Join(lp, "platform"), "%q is not a platform of the image (%s); use one of them, or add it to platforms",
				l.Platform, strings.Join(platforms, ", "))
		}
	}
	return l
}

// keyed returns env or labels (nil when empty), reporting unusable names.
func (b decoder) keyed(kp cue.Path, m map[string]string, what string) map[string]string {
	for _, k := range slices.Sorted(maps.Keys(m)) {
		switch {
		case strings.TrimSpace(k) == "":
			b.Problem(config.Join(kp, k), "empty %s name; name it, or remove the entry", what)
		case what == "variable" && strings.Contains(k, "="):
			b.Problem(config.Join(kp, k), "%q contains \"=\", which ends a variable name; rename it", k)
		}
	}
	if len(m) == 0 {
		return nil
	}
	return m
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}
