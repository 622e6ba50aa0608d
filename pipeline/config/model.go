// Package config loads a release configuration (a directory of CUE files in
// package "release"), validates it against the embedded schema and decodes it
// once into the typed Model below. CUE is used for validation and defaults
// only; nothing downstream of this package sees a cue.Value.
package config

import (
	"strconv"
	"time"
)

// Model is the validated, fully defaulted configuration of one product.
// All paths in it are absolute and cleaned.
type Model struct {
	// Dir is the absolute directory the configuration was loaded from.
	Dir     string
	Product Product
	Build   Build
	// Releases by version. Versions lists the keys in ascending semver order.
	Releases map[string]*Release
	Versions []string
	// Deltas is the expanded, de-duplicated list of delta paths (explicit
	// paths plus those produced by policies), sorted by (From, To) in
	// version order. An explicit path wins over the same path from a
	// policy, an earlier policy over a later one.
	Deltas []DeltaPath
	// OS holds the node OS targets by name (nil when os is empty); OSNames
	// lists the names in ascending order. Added with os: [Name]: #OSTarget.
	OS      map[string]*OSTarget
	OSNames []string
	// Addons by name (nil when none); AddonNames lists them in order.
	Addons     map[string]*Addon
	AddonNames []string
	// Registry is where addons are pushed (nil when not configured).
	Registry *Registry
	GitOps   GitOps
	// Rollouts are the rollout policies by name (nil when none);
	// RolloutNames lists them in order.
	Rollouts     map[string]*Rollout
	RolloutNames []string
	// Signing says what is signed; the keys are not part of the model.
	Signing Signing
}

// Signing is the signing section (zero when absent).
type Signing struct {
	// Authenticode is nil when Windows content is not signed.
	Authenticode *Authenticode
	// Cosign signs pushed addon artifacts.
	Cosign    bool
	CosignPos Pos
}

// Authenticode configures code signing of Windows content.
type Authenticode struct {
	// Extensions are lower case with the leading dot, sorted.
	Extensions   []string
	TimestampURL string
	Description  string
	URL          string
	Pos          Pos
}

// Product names what is being released.
type Product struct {
	Name   string
	Vendor string
}

// Build holds settings that affect every artifact.
type Build struct {
	// Dist is the absolute output directory (default <Dir>/dist).
	Dist string
	// Date is the fixed build date (UTC, second precision) written into every
	// timestamp of every artifact; it comes from build.date, or
	// build.sourceDateEpoch, or the SOURCE_DATE_EPOCH environment variable.
	Date time.Time
	// CompressionLevel is the deflate level for zips (1..9, default 6).
	CompressionLevel int
	// Reuse lets an assembled package copy the compressed entries of
	// unchanged files from the previous assembled release's package
	// (default true); the bytes are the same, the work is not.
	Reuse bool
}

// Release is one version of the product. Exactly one of Zip and Inputs is set.
type Release struct {
	Version string
	// Zip is an existing full package used as it is.
	Zip *Source
	// Inputs are overlaid, in order, to assemble the installation tree.
	// A path provided by two inputs is an error.
	Inputs []Input
	Pos    Pos
}

// Source is a single file, either local (Path) or fetched (URL). SHA256 is
// required with URL and optional with Path (verified when given).
type Source struct {
	Path   string
	URL    string
	SHA256 string
	Pos    Pos
}

// Input contributes files to an assembled release tree.
type Input struct {
	// Dir is a local directory whose whole tree is placed at Dest.
	Dir string
	// File is a single file placed at Dest (Dest is required then).
	File *Source
	// Dest is a forward-slash path relative to the tree root; "" means the root.
	Dest string
	// Mode, if non-zero, overrides the file mode of File (e.g. 0o755).
	Mode uint32
	Pos  Pos
}

// DeltaPath is one delta package to build, from a base to a target release.
type DeltaPath struct {
	From, To string
	// Mode is "file": changed files are shipped whole.
	Mode string
	// WholeDirectories are shipped complete and replace the installed
	// directory wholesale (default ["bin/cni"]).
	WholeDirectories []string
	// Skip are glob patterns (see internal/glob) of paths excluded from the
	// delta entirely, such as cluster-local configuration.
	Skip []string
	// Origin says where the path came from: "explicit" (OriginExplicit)
	// or "policy <n>", n being the index in deltas.policies.
	Origin string
	// Pos is the explicit path, or the policy that produced it.
	Pos Pos
}

// Pos is a place in a configuration file, for error messages.
type Pos struct {
	File      string
	Line, Col int
}

func (p Pos) String() string {
	if p.File == "" {
		return ""
	}
	if p.Line == 0 {
		return p.File
	}
	return p.File + ":" + strconv.Itoa(p.Line) + ":" + strconv.Itoa(p.Col)
}

// OSTarget is a node operating system the product ships packages for, such
// as the Debian of the control-plane VM.
type OSTarget struct {
	// Name is the key under os, e.g. "debian12".
	Name string
	// Dir names the OS in package paths (packages/<Dir>/...); default Name.
	// Two OS targets with the same Dir are an error.
	Dir string
	// Distro and Codename describe the OS ("debian", "bookworm").
	Distro   string
	Codename string
	// Arch lists Debian architectures of its nodes ("amd64", "arm64").
	Arch []string
	// ControlPlane marks the OS whose node contents fill the
	// DebianPackageDiff and ContainerImageDiff of cluster deltas. At most
	// one OS target sets it.
	ControlPlane bool
	// Releases maps product versions (which must be declared in
	// Model.Releases) to what a node of this OS needs for that release.
	Releases map[string]*NodeRelease
	// Versions lists the keys of Releases in ascending semver order.
	Versions []string
	Pos      Pos
}

// NodeRelease is the node content of one OS for one product release.
type NodeRelease struct {
	Version string
	Debs    []DebRef
	Images  []ImageSpec
	Pos     Pos
}

// DebRef is one .deb of a node package: built by the pipeline (Build) or an
// existing file (File). Group is the folder under packages/<os>/.
type DebRef struct {
	Group string
	Build *DebSpec
	File  *Source
	Pos   Pos
}

// DebSpec describes a .deb built with nfpm's deb packager.
type DebSpec struct {
	Name        string
	Version     string // Debian version: [epoch:]upstream[-revision]
	Arch        string // Debian architecture, or "all"
	Maintainer  string
	Description string
	Section     string
	Priority    string
	Homepage    string
	License     string // written to /usr/share/doc/<name>/copyright

	Depends, PreDepends, Recommends, Suggests []string
	Conflicts, Breaks, Replaces, Provides     []string

	Contents []DebContent
	// SystemdUnits are unit files installed in /lib/systemd/system.
	SystemdUnits []DebContent
	Scripts      DebScripts
	Pos          Pos
}

// DebContent is a file or directory tree placed in a .deb.
type DebContent struct {
	// Src is an absolute local file or directory ("" with Type "dir").
	Src string
	// Dst is the absolute path on the node, e.g. /usr/bin/kubelet.
	Dst string
	// Mode overrides the permission bits when non-zero.
	Mode uint32
	// Type is "file" (default), "config" (a conffile) or "dir" (an empty
	// directory).
	Type string
	Pos  Pos
}

// DebScripts are absolute paths of maintainer scripts ("" = none).
type DebScripts struct {
	PreInst, PostInst, PreRm, PostRm string
}

// ImageSpec describes a container image built with go-containerregistry,
// from scratch or from a base kept in the repository (nothing is pulled).
type ImageSpec struct {
	// Ref is the image reference it is known by on a node, e.g.
	// "registry.k8s.io/pause:3.10".
	Ref string
	// Base is nil for an image from scratch.
	Base *ImageBase
	// Platforms, e.g. "linux/amd64" (default) and "linux/arm64".
	Platforms  []string
	Layers     []ImageLayer
	Entrypoint []string
	Cmd        []string
	Env        map[string]string
	Labels     map[string]string
	WorkingDir string
	User       string
	Pos        Pos
}

// ImageBase is a base image stored locally: an OCI image layout directory
// or an image tarball (OCI archive or docker save format). Ref picks an
// image from a layout holding several (by org.opencontainers.image.ref.name).
type ImageBase struct {
	Layout  string
	Tarball string
	Ref     string
	Pos     Pos
}

// ImageLayer adds a directory tree (Dir) or one file (File) at Dest, an
// absolute path inside the image.
type ImageLayer struct {
	Dir  string
	File string
	Dest string
	Mode uint32
	// Platform restricts the layer to one platform ("" = all).
	Platform string
	Pos      Pos
}
