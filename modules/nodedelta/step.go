// Package nodedelta builds node deltas: between two node packages of one OS
// target, the added and changed .debs and images, the lists of what was
// removed, K2s's delta-manifest.json (DeltaType "node-package"), checksums,
// and two POSIX sh scripts that verify and apply the delta on a Debian
// node with dpkg.
package nodedelta

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"time"

	"github.com/relcue/release/modules/nodepkg"
	"github.com/relcue/release/modules/pkgzip"
	"github.com/relcue/release/pipeline/config"
	"github.com/relcue/release/pipeline/step"
)

const (
	// Kind is the step kind; ArtifactKind the kind of the zip it makes.
	Kind         = "nodedelta"
	ArtifactKind = "node-delta"
	// StepVersion changes whenever Build's bytes could change for the same
	// inputs (including any change to the scripts), so that cached node
	// deltas stop matching.
	StepVersion = "1"
)

// TargetID is the stable ID of the node delta of one OS between releases.
func TargetID(os, from, to string) string { return "node-delta/" + os + "/" + from + ".." + to }

// OutputPath is where the node delta goes, relative to dist/.
func OutputPath(product, osDir, from, to string) string {
	return "node-deltas/" + product + "-node-delta-" + osDir + "-" + from + "-to-" + to + ".zip"
}

// Spec is the canonical JSON spec of a node delta target.
type Spec struct {
	Product string `json:"product"`
	OS      string `json:"os"`
	OSDir   string `json:"osDir"`
	From    string `json:"from"`
	To      string `json:"to"`
	Output  string `json:"output"`
	Date    string `json:"date"`
	Level   int    `json:"level"`
}

// Targets plans a node delta for every delta path of the model whose two
// releases the OS target both has, by OS name, in delta path order.
func Targets(m *config.Model) ([]step.Target, error) {
	var out []step.Target
	level := m.Build.CompressionLevel
	if level == 0 {
		level = pkgzip.DefaultLevel
	}
	for _, name := range slices.Sorted(maps.Keys(m.OS)) {
		o := m.OS[name]
		if o == nil {
			continue
		}
		dir := nodepkg.OSDir(o)
		for _, d := range m.Deltas {
			if o.Releases[d.From] == nil || o.Releases[d.To] == nil || d.From == d.To {
				continue
			}
			s := Spec{
				Product: m.Product.Name,
				OS:      o.Name,
				OSDir:   dir,
				From:    d.From,
				To:      d.To,
				Output:  OutputPath(m.Product.Name, dir, d.From, d.To),
				Date:    m.Build.Date.UTC().Format(time.RFC3339),
				Level:   level,
			}
			if err := pkgzip.CheckName(s.Output); err != nil {
				return nil, fmt.Errorf("%s: node delta %s: output: %w", d.Pos, TargetID(o.Name, d.From, d.To), err)
			}
			out = append(out, step.Target{
				ID:      TargetID(o.Name, d.From, d.To),
				Kind:    Kind,
				Spec:    s,
				Deps:    []string{nodepkg.TargetID(o.Name, d.From), nodepkg.TargetID(o.Name, d.To)},
				Pos:     d.Pos.String(),
				Outputs: []string{s.Output},
			})
		}
	}
	return out, nil
}

// Step builds node delta targets.
type Step struct{}

var _ step.Step = Step{}

func (Step) Kind() string    { return Kind }
func (Step) Version() string { return StepVersion }

// Run builds the node delta from the two node package dependencies.
func (Step) Run(ctx context.Context, in *step.Input) ([]step.Artifact, error) {
	var s Spec
	if err := in.DecodeSpec(&s); err != nil {
		return nil, err
	}
	if err := pkgzip.CheckName(s.Output); err != nil {
		return nil, fmt.Errorf("%s: bad spec: output: %w", in.Target, err)
	}
	date, err := time.Parse(time.RFC3339, s.Date)
	if err != nil {
		return nil, fmt.Errorf("%s: bad spec: date %q: %w", in.Target, s.Date, err)
	}
	if s.Level < 1 || s.Level > 9 {
		return nil, fmt.Errorf("%s: bad spec: level %d is out of range 1..9", in.Target, s.Level)
	}
	base, err := nodePackage(in, s.OS, s.From)
	if err != nil {
		return nil, err
	}
	target, err := nodePackage(in, s.OS, s.To)
	if err != nil {
		return nil, err
	}
	in.Progress.SetTotal(0)
	_, err = Build(ctx, Options{
		Base: base, Target: target,
		BaseVersion: s.From, TargetVersion: s.To,
		Output:   filepath.Join(in.OutDir, filepath.FromSlash(s.Output)),
		Date:     date,
		Level:    s.Level,
		Workers:  in.Workers,
		Progress: in.Progress.Add,
		Log:      in.Log,
	})
	if err != nil {
		return nil, err
	}
	return []step.Artifact{{Path: s.Output, Kind: ArtifactKind}}, nil
}

func nodePackage(in *step.Input, os, version string) (string, error) {
	id := nodepkg.TargetID(os, version)
	r, ok := in.Deps[id]
	if !ok {
		return "", fmt.Errorf("%s: dependency %s was not provided; the plan is inconsistent", in.Target, id)
	}
	a, ok := r.Find(nodepkg.ArtifactKind)
	if !ok {
		return "", fmt.Errorf("%s: dependency %s has no %q artifact", in.Target, id, nodepkg.ArtifactKind)
	}
	return filepath.Join(r.Dir, filepath.FromSlash(a.Path)), nil
}
