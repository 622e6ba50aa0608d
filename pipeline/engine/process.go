package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/relcue/release/pipeline/step"
)

// Process runs each step in a separate `release step` process on this
// host, through the same Request protocol a container engine uses, with
// host paths. It isolates steps from each other and from the scheduler,
// and it is how the tests prove the protocol gives the local engine's
// bytes without a container runtime.
type Process struct {
	Binary    string
	InProcess map[string]bool
	local     *Local
}

func init() {
	Register("process", func(_ context.Context, steps map[string]step.Step, cfg Config) (Engine, error) {
		bin := cfg.StepBinary
		if bin == "" {
			var err error
			if bin, err = os.Executable(); err != nil {
				return nil, fmt.Errorf("process engine: %w", err)
			}
		}
		return &Process{Binary: bin, InProcess: cfg.InProcess, local: &Local{Steps: steps}}, nil
	})
}

func (p *Process) Name() string { return "process" }
func (p *Process) Close() error { return nil }

func (p *Process) Run(ctx context.Context, kind string, in *step.Input) ([]step.Artifact, error) {
	if p.InProcess[kind] {
		return p.local.Run(ctx, kind, in)
	}
	req := Request{Target: in.Target, Kind: kind, Spec: in.Spec, Sources: in.Sources, SourceDigests: in.SourceDigests, SourceLabels: in.SourceLabels, Workers: in.Workers, Deps: map[string]Dep{}}
	for id, d := range in.Deps {
		req.Deps[id] = Dep{Dir: d.Dir, Artifacts: d.Artifacts}
	}
	data, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	// The request sits beside OutDir, never in it: OutDir must hold
	// outputs only.
	f, err := os.CreateTemp(filepath.Dir(in.OutDir), ".request-*.json")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, p.Binary, "step", "--request", f.Name(), "--out", in.OutDir)
	cmd.Stderr = &stderr
	runErr := cmd.Run()
	ReplayLog(stderr.String(), in.Progress, in.Log)
	if runErr != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("step process failed (%v)%s", runErr, LogTail(stderr.String()))
	}
	return ReadResponse(in.OutDir)
}
