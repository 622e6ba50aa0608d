// Package step is the one interface between the pipeline (which plans,
// schedules and caches) and the modules (which know how to make one kind of
// artifact). A step is a pure function of its spec, its sources and the
// outputs of its dependencies; it writes files into OutDir and says which of
// them are artifacts. It never touches the cache, dist/ or other steps.
package step

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"

	"github.com/relcue/release/internal/strictjson"
)

// Step makes one kind of artifact.
type Step interface {
	// Kind names the step, e.g. "fullpkg". It is part of every cache key.
	Kind() string
	// Version changes whenever the step's output bytes for the same input
	// could change, so that old cache entries stop matching.
	Version() string
	// Run builds the outputs. It must be deterministic and must write only
	// below in.OutDir.
	Run(ctx context.Context, in *Input) ([]Artifact, error)
}

// SourceChecker is a step that compares what it reads of its sources with
// in.SourceDigests itself, while reading them, and fails with
// readcheck.ChangedError on a difference. The pipeline gives every other
// step verified private copies of its sources (pipeline/readcheck).
type SourceChecker interface {
	Step
	ChecksSources()
}

// Input is everything a step may read.
type Input struct {
	// Target is the target ID being built, for messages.
	Target string
	// Spec is the canonical JSON the planner produced for this target.
	Spec json.RawMessage
	// Sources maps source names (from the target's Sources) to local paths,
	// already verified against their digests.
	Sources map[string]string
	// SourceDigests maps source names to the digests the plan computed
	// ("sha256:<hex>" of a file, "tree:<hex>" of a directory), for steps
	// that record what they were made from.
	SourceDigests map[string]string
	// SourceLabels maps source names to how messages name them
	// (Source.Label); see SourceLabel.
	SourceLabels map[string]string
	// Deps maps dependency target IDs to their results.
	Deps map[string]Result
	// OutDir is an empty directory owned by this run. Artifact paths are
	// relative to it and become paths relative to dist/.
	OutDir string
	// Workers bounds the step's internal parallelism (>= 1).
	Workers int
	// Progress reports work done; never nil.
	Progress Progress
	// Log receives human-readable detail lines; never nil.
	Log io.Writer
}

// Result is the output of a finished dependency.
type Result struct {
	// Dir holds the dependency's files; artifact paths are relative to it.
	Dir       string
	Artifacts []Artifact
}

// Find returns the first artifact of the given kind, or false.
func (r Result) Find(kind string) (Artifact, bool) {
	for _, a := range r.Artifacts {
		if a.Kind == kind {
			return a, true
		}
	}
	return Artifact{}, false
}

// Artifact is one output file.
type Artifact struct {
	// Path is forward-slash, relative to OutDir (and to dist/).
	Path string `json:"path"`
	// Kind is the artifact kind, e.g. "package", "delta".
	Kind string `json:"kind"`
}

// Progress receives units of work (bytes, usually). SetTotal may be called
// again when the total becomes known or changes.
type Progress interface {
	SetTotal(total int64)
	Add(n int64)
}

// Discard is a Progress that ignores everything.
var Discard Progress = discard{}

type discard struct{}

func (discard) SetTotal(int64) {}
func (discard) Add(int64)      {}

// DecodeSpec decodes the planner's spec into v, strictly: a field the step
// does not know means the planner and the step disagree about the format.
func (in *Input) DecodeSpec(v any) error {
	if err := strictjson.Unmarshal(in.Spec, v); err != nil {
		return fmt.Errorf("%s: bad spec: %w", in.Target, err)
	}
	return nil
}

// DepArtifact is the local path of the first artifact of kind that
// dependency id produced.
func (in *Input) DepArtifact(id, kind string) (string, error) {
	r, ok := in.Deps[id]
	if !ok {
		return "", fmt.Errorf("%s: dependency %s was not provided; the plan is inconsistent", in.Target, id)
	}
	a, ok := r.Find(kind)
	if !ok {
		return "", fmt.Errorf("%s: dependency %s has no %q artifact", in.Target, id, kind)
	}
	return filepath.Join(r.Dir, filepath.FromSlash(a.Path)), nil
}

// SourceLabel is how messages should name source name: its label when the
// pipeline gave one, else its name and local path.
func (in *Input) SourceLabel(name string) string {
	if l := in.SourceLabels[name]; l != "" {
		return l
	}
	return Source{Name: name, Path: in.Sources[name]}.Label()
}
