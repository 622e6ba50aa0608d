package image

import (
	"fmt"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// FileName is the archive's file name in a node package: the reference with
// "/" replaced by "_" and ":" by "__", plus ".tar" (K2s's convention):
// registry.k8s.io/pause:3.10 -> registry.k8s.io_pause__3.10.tar.
//
// A digest reference keeps its "@", which is legal in file names on Linux
// and Windows and cannot occur in a repository or tag, so a pinned image
// never shares a name with a tagged one:
// registry.k8s.io/pause@sha256:ab.. -> registry.k8s.io_pause@sha256__ab...tar.
// The mapping is not reversible ("a/b_c" and "a_b/c" collide); the reference
// itself travels in the archive's index.json, and Targets rejects two
// references of one OS that map to the same name.
func FileName(ref string) string {
	s := strings.ReplaceAll(ref, "/", "_")
	return strings.ReplaceAll(s, ":", "__") + ".tar"
}

// TargetID is the stable ID of the target building ref for an OS target
// (by its name, e.g. "debian12").
func TargetID(osName, ref string) string {
	return "image/" + osName + "/" + strings.TrimSuffix(FileName(ref), ".tar")
}

// OutputPath is where the archive goes, relative to dist/; osDir is the OS
// target's Dir.
func OutputPath(osDir, ref string) string {
	return "images/" + osDir + "/" + FileName(ref)
}

// maxFileName is the longest file name NTFS and ext4 accept (bytes; refs
// are ASCII).
const maxFileName = 255

// parseRef validates an image reference. References must be complete
// (registry, repository and tag or digest: ggcr's StrictValidation) and
// written the way container runtimes name images after loading the
// archive: CRI-O and containerd normalise "pause:3.10" to
// "docker.io/library/pause:3.10", so a short or legacy spelling would name
// an image the node never looks up.
func parseRef(ref string) (name.Reference, error) {
	const how = "write registry/repository:tag (or @sha256:<digest>), e.g. registry.k8s.io/pause:3.10"
	if ref == "" {
		return nil, fmt.Errorf("image ref is empty; %s", how)
	}
	// ggcr canonicalises Docker Hub to index.docker.io, so Hub spellings
	// are checked on the text.
	reg, rest, _ := strings.Cut(ref, "/")
	switch {
	case reg == "index.docker.io" || reg == "registry-1.docker.io":
		return nil, fmt.Errorf("image ref %q: write Docker Hub images as docker.io/%s, the name runtimes use", ref, rest)
	case reg == "docker.io" && !strings.Contains(rest, "/"):
		return nil, fmt.Errorf("image ref %q: Docker Hub's official images live under library/; write docker.io/library/%s", ref, rest)
	case reg != strings.ToLower(reg):
		return nil, fmt.Errorf("image ref %q: write the registry in lower case (%s), as runtimes compare names literally", ref, strings.ToLower(reg))
	}
	r, err := name.ParseReference(ref, name.StrictValidation)
	if err != nil {
		return nil, fmt.Errorf("image ref %q is not a complete reference (%v); %s", ref, err, how)
	}
	if n := len(FileName(ref)); n > maxFileName {
		return nil, fmt.Errorf("image ref %q is too long: its archive name would have %d bytes (at most %d)", ref, n, maxFileName)
	}
	return r, nil
}

// archs are the architectures (GOARCH names, as OCI uses them) an image
// may be built for, with the variants each accepts. The first variant is
// the default that "os/arch" means: containerd treats "linux/arm" as
// "linux/arm/v7" and "linux/arm64/v8" as "linux/arm64", and the spec uses
// the same canonical form so that equivalent spellings share a cache key.
var archs = map[string][]string{
	"amd64":    {""},
	"arm64":    {"", "v8"},
	"arm":      {"v7", "v6", "v5"},
	"386":      {""},
	"ppc64le":  {""},
	"s390x":    {""},
	"riscv64":  {""},
	"mips64le": {""},
	"loong64":  {""},
}

// DefaultPlatform is built when an image lists no platforms.
const DefaultPlatform = "linux/amd64"

// parsePlatform validates "os/arch[/variant]" and returns its canonical
// form.
func parsePlatform(s string) (v1.Platform, string, error) {
	const how = "use os/arch[/variant] such as linux/amd64, linux/arm64 or linux/arm/v7"
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 {
		return v1.Platform{}, "", fmt.Errorf("unknown platform %q; %s", s, how)
	}
	if parts[0] != "linux" {
		return v1.Platform{}, "", fmt.Errorf("unknown platform %q: node images are Linux images; %s", s, how)
	}
	variants, ok := archs[parts[1]]
	if !ok {
		known := make([]string, 0, len(archs))
		for a := range archs {
			known = append(known, a)
		}
		slices.Sort(known)
		return v1.Platform{}, "", fmt.Errorf("unknown platform %q: architecture %q is not one of %s; %s", s, parts[1], strings.Join(known, ", "), how)
	}
	p := v1.Platform{OS: parts[0], Architecture: parts[1], Variant: variants[0]}
	if len(parts) == 3 {
		if !slices.Contains(variants, parts[2]) || parts[2] == "" {
			return v1.Platform{}, "", fmt.Errorf("unknown platform %q: %s has no variant %q; %s", s, parts[1], parts[2], how)
		}
		if parts[1] != "arm64" { // arm64/v8 is plain arm64
			p.Variant = parts[2]
		}
	}
	return p, p.String(), nil
}

// samePlatform reports whether a platform found in a base image is the one
// wanted, treating default variants as equal (an index entry "linux/arm64/v8"
// serves "linux/arm64").
func samePlatform(have v1.Platform, want v1.Platform) bool {
	if have.OS != want.OS || have.Architecture != want.Architecture {
		return false
	}
	variants := archs[have.Architecture]
	norm := func(v string) string {
		if v == "" && len(variants) > 0 {
			return variants[0]
		}
		if have.Architecture == "arm64" && v == "v8" {
			return ""
		}
		return v
	}
	return norm(have.Variant) == norm(want.Variant)
}

// platformString names a platform for messages ("linux/arm64/v8").
func platformString(p *v1.Platform) string {
	if p == nil || p.OS == "" {
		return "unknown platform"
	}
	return p.String()
}
