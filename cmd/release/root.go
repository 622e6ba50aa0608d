package main

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

	"github.com/spf13/cobra"

	"github.com/relcue/release/internal/netx"
	"github.com/relcue/release/modules/addon"
	"github.com/relcue/release/modules/addonsign"
	"github.com/relcue/release/modules/all"
	"github.com/relcue/release/modules/codesign"
	"github.com/relcue/release/pipeline"
	"github.com/relcue/release/pipeline/config"
	"github.com/relcue/release/pipeline/progress"
)

// version is set at link time (-ldflags "-X main.version=...").
var version = "dev"

// usageError is a mistake in flags or arguments.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// silentError carries an exit code for a failure already reported.
type silentError struct{ code int }

func (e *silentError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func exitCode(ctx context.Context, err error) int {
	var silent *silentError
	var usage usageError
	switch {
	case errors.As(err, &silent):
		return silent.code
	case ctx.Err() != nil && errors.Is(err, context.Canceled):
		return exitCanceled
	case errors.As(err, &usage), pipeline.IsConfigError(err):
		return exitUsage
	case strings.HasPrefix(err.Error(), "unknown command"), strings.HasPrefix(err.Error(), "unknown flag"),
		strings.HasPrefix(err.Error(), "unknown shorthand flag"), strings.Contains(err.Error(), "flag needs an argument"),
		strings.HasPrefix(err.Error(), "invalid argument"), strings.Contains(err.Error(), "accepts ") && strings.Contains(err.Error(), "arg(s)"):
		return exitUsage
	}
	return exitFailure
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "release",
		Short: "Declarative release pipeline for edge Kubernetes distributions",
		Long: `release turns a CUE description of a product's versions into full offline
packages, delta packages between versions, and everything else a release
ships, each step content-addressed cached and reproducible byte for byte.

Exit codes: 0 ok, 1 build/apply/verify failure, 2 usage or config error,
130 interrupted.`,
		Example: `  release plan -C fixtures/sample
  release build -C fixtures/sample
  release build -C fixtures/sample --target 'delta/*' --format json
  release apply dist/deltas/k2s-delta-1.4.0-to-1.5.0.zip --install-dir /opt/k2s`,
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newPlan(), newBuild(), newVet(), newDelta(), newInstall(), newApply(), newVerify(), newCache(), newStep())
	return root
}

// common holds flags shared by commands that read a configuration.
type common struct {
	dir      string
	cacheDir string
	jobs     int
	format   string
	// registry overrides registry.host (--registry) when set.
	registry  string
	plainHTTP bool
	// unsigned builds without signing even where the configuration asks.
	unsigned bool
	// dist overrides build.dist (--dist), so that planning already
	// refuses a dist/ inside an input.
	dist string
	limitFlags
	// net bounds the network operations of the steps (pushes).
	net netx.Config
}

// bindSigning adds --unsigned.
func (c *common) bindSigning(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&c.unsigned, "unsigned", false, "ignore the signing section: build unsigned artifacts without credentials (pull-request builds)")
}

// keys loads the signing credentials the environment names. A credential
// that is set but unusable fails here, whether or not this build signs.
func (c *common) keys() (all.Keys, error) {
	if c.unsigned {
		return all.Keys{Net: c.net}, nil
	}
	ac, err := codesign.FromEnv(os.Getenv, time.Now())
	if err != nil {
		return all.Keys{}, &pipeline.ConfigError{Err: err}
	}
	ck, err := addonsign.FromEnv(os.Getenv)
	if err != nil {
		return all.Keys{}, &pipeline.ConfigError{Err: err}
	}
	return all.Keys{Authenticode: ac, Cosign: ck, Net: c.net}, nil
}

// bindRegistry adds the flags that say where addons are pushed.
func (c *common) bindRegistry(cmd *cobra.Command) {
	cmd.Flags().StringVar(&c.registry, "registry", "", "push addons to this registry host[:port] instead of registry.host")
	cmd.Flags().BoolVar(&c.plainHTTP, "plain-http", false, "talk plain HTTP to the registry (a local one), like registry.plainHTTP")
}

// adjust applies the registry and signing flags to the model.
func (c *common) adjust(m *config.Model) error {
	if c.unsigned {
		m.Signing = config.Signing{}
	}
	if c.dist != "" {
		abs, err := filepath.Abs(c.dist)
		if err != nil {
			return usageError{fmt.Errorf("--dist: %w", err)}
		}
		m.Build.Dist = abs
	}
	s := addon.SettingsOf(m)
	defer m.SetSection(addon.SectionName, s)
	if c.registry == "" {
		if c.plainHTTP {
			if s.Registry == nil {
				return usageError{fmt.Errorf("--plain-http needs a registry: set registry.host or pass --registry")}
			}
			s.Registry.PlainHTTP = true
		}
		return nil
	}
	if err := addon.CheckRegistryHost(c.registry); err != nil {
		return usageError{fmt.Errorf("--registry: %w", err)}
	}
	if s.Registry == nil {
		s.Registry = &addon.Registry{Prefix: addon.DefaultRegistryPrefix}
	}
	s.Registry.Host = c.registry
	s.Registry.PlainHTTP = s.Registry.PlainHTTP || c.plainHTTP
	return nil
}

func (c *common) bind(cmd *cobra.Command, formats ...string) {
	cmd.Flags().StringVarP(&c.dir, "dir", "C", ".", "directory holding the release configuration (*.cue, package release)")
	cmd.Flags().StringVar(&c.cacheDir, "cache", "", "cache directory (default: $RELEASE_CACHE or the user cache dir)")
	cmd.Flags().IntVarP(&c.jobs, "jobs", "j", 0, "parallel steps and hashing workers (default: number of CPUs)")
	c.limitFlags.bind(cmd)
	addFormat(cmd, &c.format, formats...)
}

func addFormat(cmd *cobra.Command, dst *string, formats ...string) {
	if len(formats) == 0 {
		formats = []string{"text", "json"}
	}
	cmd.Flags().StringVar(dst, "format", formats[0], "output format: "+strings.Join(formats, "|"))
}

func checkFormat(format string, allowed ...string) error {
	if len(allowed) == 0 {
		allowed = []string{"text", "json"}
	}
	for _, a := range allowed {
		if format == a {
			return nil
		}
	}
	return usageError{fmt.Errorf("--format %q: want one of %s", format, strings.Join(allowed, ", "))}
}

func (c *common) open(ctx context.Context) (*pipeline.Session, error) {
	if c.jobs < 0 {
		return nil, usageError{fmt.Errorf("--jobs must be positive")}
	}
	limits, err := c.limits()
	if err != nil {
		return nil, err
	}
	keys, err := c.keys()
	if err != nil {
		return nil, err
	}
	return pipeline.Open(ctx, all.Modules(keys), pipeline.Options{Dir: c.dir, CacheDir: c.cacheDir, Workers: c.jobs, Adjust: c.adjust, Limits: limits})
}

// reporter picks live bars or plain lines for stderr.
func reporter(quiet bool) progress.Reporter { return progress.Auto(os.Stderr, quiet) }

// writeJSON is every command's --format json: one indented document.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
