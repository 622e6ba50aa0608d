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
