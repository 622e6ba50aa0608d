// Package config loads a release configuration (a directory of CUE files in
// package "release"), validates it against the embedded schema and decodes it
// into the typed Model below: the core every module shares (product, build,
// releases, deltas, the OS targets' identities, signing), and the sections
// the modules own and decode themselves through a Decoder (see Section).
// Positions and cross-references (versions that must exist, OS names) are
// this package's; what a .deb, an image, an addon or a rollout must be is
// the owning module's.
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
	// DeltaLayout is what every delta holds besides the diff, with the
	// profile's defaults applied.
	DeltaLayout DeltaLayout
	// OS holds the node OS targets by name (nil when os is empty); OSNames
	// lists the names in ascending order. Added with os: [Name]: #OSTarget.
	OS      map[string]*OSTarget
	OSNames []string
	// Signing says what is signed; the keys are not part of the model.
	Signing Signing

	// sections are the modules' parts of the configuration by section
	// name (see Section).
	sections map[string]any
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
	// Profile is the product family whose conventions the artifacts
	// follow: ProfileGeneric or ProfileK2s.
	Profile string
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
	// Paths is the policy for the installation paths packages and deltas
	// may hold: "windows" (default) refuses names a Windows filesystem
	// cannot represent, "posix" allows them (build.paths).
	Paths string
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
	// SkipNames are file names excluded wherever they are, in any letter
	// case (K2s's special skipped files).
	SkipNames []string
	// Origin says where the path came from: "explicit" (OriginExplicit)
	// or "policy <n>", n being the index in deltas.policies.
	Origin string
	// Pos is the explicit path, or the policy that produced it.
	Pos Pos
}

// DeltaLayout is what every delta holds besides the diff (deltas.always,
// deltas.nested, deltas.applyScript).
type DeltaLayout struct {
	// Always are package paths shipped in every delta, changed or not.
	Always []string
	// Nested are archives in the package that installations hold
	// expanded.
	Nested []NestedArchive
	// ApplyScript, when set, makes every delta carry an Apply-Delta.ps1
	// that hands over to it (profile k2s).
	ApplyScript *ApplyScript
}

// NestedArchive is a zip inside the package and where its members are
// installed.
type NestedArchive struct {
	// Archive is its package path.
	Archive string
	// Folders map folders of the archive to installation directories.
	Folders []NestedFolder
	// WindowsImages is the folder of the archive holding Windows image
	// tars, or "".
	WindowsImages string
	Pos           Pos
}

// NestedFolder installs the members under From (a folder of the archive)
// into the installation directory To.
type NestedFolder struct {
	From, To string
	// Whole makes To a wholesale directory whenever anything in it
	// changes.
	Whole bool
	// Rename maps a member's file name to its installed name.
	Rename map[string]string
}

// ApplyScript is what Apply-Delta.ps1 hands over to.
type ApplyScript struct {
	// Module is the delta's path of the PowerShell module to import.
	Module string
	// Function is called from the extracted delta's root.
	Function string
	// Preload are modules of the installation imported first when
	// present.
	Preload []string
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
	// Releases maps the versions listed under the OS to what a node of this
	// OS needs for that release, including versions not declared in
	// Model.Releases (reported as problems), so that sections can check
	// everything the user wrote.
	Releases map[string]*NodeRelease
	// Versions lists the declared keys of Releases in ascending semver
	// order.
	Versions []string
	Pos      Pos
}

// NodeRelease is the node content of one OS for one product release; the
// .debs and images are the deb and image modules' sections.
type NodeRelease struct {
	Version string
	Pos     Pos
}
