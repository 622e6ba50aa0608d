package daggerengine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"

	"dagger.io/dagger"

	"github.com/relcue/release/pipeline/engine"
	"github.com/relcue/release/pipeline/step"
)

// Name is the engine's name for --engine.
const Name = "dagger"

func init() { engine.Register(Name, New) }

// Engine runs steps in containers on a Dagger engine.
type Engine struct {
	client    *dagger.Client
	base      *dagger.Container
	local     *engine.Local
	inProcess map[string]bool
	tmp       string
	via       string
}

// New finds an engine, assembles the step image from the static release
// binary and loads it into the engine, failing at once when any of that
// cannot be done.
func New(ctx context.Context, steps map[string]step.Step, cfg engine.Config) (engine.Engine, error) {
	ep, err := Discover(os.Getenv, exec.LookPath)
	if err != nil {
		return nil, err
	}
	binary := cfg.StepBinary
	if binary == "" {
		if binary, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("dagger engine: %w", err)
		}
	}
	tmp, err := os.MkdirTemp("", "release-dagger-*")
	if err != nil {
		return nil, err
	}
	imageTar := filepath.Join(tmp, "step-image.tar")
	digest, plat, err := StepImage(binary, FindCABundle(), imageTar)
	if err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("dagger engine: %w", err)
	}
	fmt.Fprintf(cfg.Log, "dagger engine via %s; step image %s (%s/%s)\n", ep.Via, digest, plat.OS, plat.Architecture)

	// The session serves the core API only: the SDK loads the workspace's
	// modules just when asked (WithLoadWorkspaceModules), so a dagger.json
	// around the working directory changes nothing.
	opts := []dagger.ClientOpt{dagger.WithLogOutput(cfg.Log)}
	if ep.RunnerHost != "" {
		opts = append(opts, dagger.WithRunnerHost(ep.RunnerHost))
	}
	if ep.CLI != "" && os.Getenv(EnvCLIBin) == "" {
		// The SDK looks for the CLI only in this variable and would
		// otherwise download one.
		os.Setenv(EnvCLIBin, ep.CLI)
	}
	client, err := dagger.Connect(ctx, opts...)
	if err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("dagger engine via %s: cannot connect: %w", ep.Via, err)
	}
	e := &Engine{client: client, local: &engine.Local{Steps: steps}, inProcess: cfg.InProcess, tmp: tmp, via: ep.Via}
	if ep, err := client.DefaultPlatform(ctx); err == nil && string(ep) != plat.OS+"/"+plat.Architecture {
		e.Close()
		return nil, fmt.Errorf("dagger engine runs %s, the step binary is %s/%s; pass --step-binary built with GOARCH for the engine", ep, plat.OS, plat.Architecture)
	}
	base := client.Container().Import(client.Host().File(imageTar))
	if base, err = base.Sync(ctx); err != nil {
		e.Close()
		return nil, fmt.Errorf("dagger engine: loading the step image: %w", err)
	}
	e.base = base
	return e, nil
}

func (e *Engine) Name() string { return Name }

func (e *Engine) Close() error {
	err := e.client.Close()
	os.RemoveAll(e.tmp)
	return err
}

// Run runs one step in its own container: its inputs mounted, `release
// step` executed, /out exported into in.OutDir.
func (e *Engine) Run(ctx context.Context, kind string, in *step.Input) ([]step.Artifact, error) {
	if e.inProcess[kind] {
		return e.local.Run(ctx, kind, in)
	}
	p, err := PlanStep(kind, in, "/")
	if err != nil {
		return nil, err
	}
	req, err := json.Marshal(p.Request)
	if err != nil {
		return nil, err
	}
	c := e.base
	host := e.client.Host()
	for _, m := range p.Mounts {
		if m.Dir {
			c = c.WithMountedDirectory(m.Container, host.Directory(m.Host))
		} else {
			c = c.WithMountedFile(m.Container, host.File(m.Host))
		}
	}
	c = c.WithNewFile(RequestPath, string(req)).
		WithExec([]string{BinaryPath, "step", "--request", RequestPath, "--out", OutDir})
	c, err = c.Sync(ctx)
	if err != nil {
		var ee *dagger.ExecError
		if errors.As(err, &ee) {
			engine.ReplayLog(ee.Stderr, in.Progress, in.Log)
			return nil, fmt.Errorf("step failed in its container (exit %d)%s", ee.ExitCode, engine.LogTail(ee.Stderr))
		}
		return nil, fmt.Errorf("dagger engine (%s): %w", e.via, err)
	}
	if stderr, err := c.Stderr(ctx); err == nil {
		engine.ReplayLog(stderr, in.Progress, io.Discard)
	}
	if _, err := c.Directory(OutDir).Export(ctx, in.OutDir); err != nil {
		return nil, fmt.Errorf("exporting the outputs from the dagger engine: %w", err)
	}
	return engine.ReadResponse(in.OutDir)
}
