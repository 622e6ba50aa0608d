package main

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/relcue/release/internal/units"
	"github.com/relcue/release/pipeline/config"
)

// Environment variables that set the configuration's limits where the
// flags are not given (a CI job sets them once).
const (
	envCUETimeout     = "RELEASE_CUE_TIMEOUT"
	envMaxConfigBytes = "RELEASE_MAX_CONFIG_BYTES"
	envMaxDeltaPaths  = "RELEASE_MAX_DELTA_PATHS"
)

// limitFlags are the bounds on loading a configuration (config.Limits).
type limitFlags struct {
	cmd           *cobra.Command
	timeout       time.Duration
	maxBytes      string
	maxDeltaPaths int
}

func (l *limitFlags) bind(cmd *cobra.Command) {
	l.cmd = cmd
	f := cmd.Flags()
	f.DurationVar(&l.timeout, "cue-timeout", config.DefaultTimeout, "give up evaluating the configuration after this long (or $"+envCUETimeout+")")
	f.StringVar(&l.maxBytes, "max-config-bytes", "16MiB", "refuse configurations whose .cue files are larger (or $"+envMaxConfigBytes+")")
	f.IntVar(&l.maxDeltaPaths, "max-delta-paths", config.DefaultMaxDeltaPaths, "refuse configurations whose delta paths and policies make more (or $"+envMaxDeltaPaths+")")
}

// limits returns the flags' values, or the environment's for flags not
// given.
func (l *limitFlags) limits() (config.Limits, error) {
	var out config.Limits
	v, where := l.value("cue-timeout", envCUETimeout, l.timeout.String())
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return out, usageError{fmt.Errorf("%s %q: want a positive duration such as 2m", where, v)}
	}
	v, where = l.value("max-config-bytes", envMaxConfigBytes, l.maxBytes)
	n, err := units.ParseBytes(v)
	if err != nil || n <= 0 {
		return out, usageError{fmt.Errorf("%s %q: want a positive size such as 32MiB", where, v)}
	}
	v, where = l.value("max-delta-paths", envMaxDeltaPaths, strconv.Itoa(l.maxDeltaPaths))
	p, err := strconv.Atoi(v)
	if err != nil || p <= 0 {
		return out, usageError{fmt.Errorf("%s %q: want a positive whole number", where, v)}
	}
	return config.Limits{Timeout: d, MaxBytes: n, MaxDeltaPaths: p}, nil
}

// value is the flag's value when it is given or the variable is not set,
// else the variable's, and where it came from.
func (l *limitFlags) value(flag, env, v string) (string, string) {
	if e := os.Getenv(env); e != "" && !l.cmd.Flags().Changed(flag) {
		return e, "$" + env
	}
	return v, "--" + flag
}
