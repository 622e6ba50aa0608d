package fullpkg

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/relcue/release/internal/strictjson"
	"github.com/relcue/release/modules/codesign"
	"github.com/relcue/release/modules/pkgzip"
	"github.com/relcue/release/pipeline/step"
)

// Step builds full packages. It registers nothing; modules/all lists it.
type Step struct {
	// Key signs Windows content when the spec asks for it.
	Key *codesign.Key
}

var _ step.Step = Step{}

func (Step) Kind() string    { return Kind }
func (Step) Version() string { return StepVersion }

// ChecksSources: a package's manifest needs the SHA-256 of every file it
// holds, so the step compares what it read with the plan itself
// (checkSources, useZip) instead of reading a private copy.
func (Step) ChecksSources() {}

var _ step.SourceChecker = Step{}

// Run writes the package to OutDir/<output>.
func (st Step) Run(ctx context.Context, in *step.Input) ([]step.Artifact, error) {
	spec, err := parseSpec(in.Spec)
	if err != nil {
		return nil, err
	}
	out := filepath.Join(in.OutDir, filepath.FromSlash(spec.Output))
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return nil, err
	}
	if spec.Zip != "" {
		err = useZip(ctx, in, spec, out)
	} else {
		err = st.assemble(ctx, in, spec, out)
	}
	if err != nil {
		os.Remove(out) // a partial zip must not look like a result
		return nil, err
	}
	return []step.Artifact{{Path: spec.Output, Kind: ArtifactKind}}, nil
}

// parseSpec decodes the spec strictly and checks what the planner
// promised, so that a hand-edited or stale spec fails clearly.
func parseSpec(raw json.RawMessage) (*Spec, error) {
	var s Spec
	if err := strictjson.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("fullpkg spec: %w", err)
	}
	if err := s.check(); err != nil {
		return nil, fmt.Errorf("fullpkg spec: %w", err)
	}
	return &s, nil
}

func (s *Spec) check() error {
	if err := checkIdentity(s.Product, s.Version, s.Output); err != nil {
		return err
	}
	if _, err := s.date(); err != nil {
		return err
	}
	if s.Level < 1 || s.Level > 9 {
		return fmt.Errorf("level %d is out of range 1..9", s.Level)
	}
	if _, err := pkgzip.ParsePathPolicy(string(s.Paths)); err != nil {
		return err
	}
	if s.Sign != nil {
		if s.Zip != "" {
			return errors.New("sign is set for an existing zip, which ships as pinned")
		}
		if err := codesign.CheckExtensions(s.Sign.Extensions); err != nil {
			return fmt.Errorf("sign: %w", err)
		}
	}
	if (s.Zip == "") == (len(s.Layers) == 0) {
		return errors.New("exactly one of zip and layers must be set")
	}
	for i, l := range s.Layers {
		if err := checkLayer(l); err != nil {
			return fmt.Errorf("layer %d: %w", i, err)
		}
	}
	return nil
}

func (s *Spec) date() (time.Time, error) {
	t, err := time.Parse(time.RFC3339, s.Date)
	if err != nil {
		return time.Time{}, fmt.Errorf("date: %w", err)
	}
	return t, nil
}

func source(in *step.Input, name string) (string, error) {
	p, ok := in.Sources[name]
	if !ok || p == "" {
		return "", fmt.Errorf("the spec uses source %q but the pipeline provided none (planner bug)", name)
	}
	return p, nil
}

// maxVersionFile bounds the VERSION file read into memory; a version is a
// short line.
const maxVersionFile = 4 << 10

// checkVersion compares the content of a VERSION file with the release
// version; where says which file it is.
func checkVersion(r io.Reader, version, where string) error {
	data, err := io.ReadAll(io.LimitReader(r, maxVersionFile+1))
	if err != nil {
		return fmt.Errorf("reading %s: %w", where, err)
	}
	if len(data) > maxVersionFile {
		return fmt.Errorf("%s is larger than %d bytes; it should hold just the version %s", where, maxVersionFile, version)
	}
	if got := strings.TrimSpace(string(data)); got != version {
		return fmt.Errorf("%s contains %q, but the release is %s; fix the file or the release's version", where, got, version)
	}
	return nil
}

// progressFunc adapts step.Progress to the callback pkgzip takes.
func progressFunc(p step.Progress) func(int64) {
	if p == nil {
		return nil
	}
	return p.Add
}
