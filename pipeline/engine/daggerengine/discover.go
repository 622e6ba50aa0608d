// Package daggerengine runs each step in its own container on a Dagger
// engine: the container is an image assembled here from the static
// release binary (nothing is pulled), the step's inputs are mounted into
// it, it runs `release step`, the same step code the local engine calls,
// and its outputs are exported back for the cache. Output bytes are the
// local engine's, because the code and the inputs are.
package daggerengine

import (
	"fmt"
	"net/url"
	"strings"
)

// Environment variables of the standard Dagger engine discovery.
const (
	EnvRunnerHost   = "_EXPERIMENTAL_DAGGER_RUNNER_HOST"
	EnvCLIBin       = "_EXPERIMENTAL_DAGGER_CLI_BIN"
	EnvSessionPort  = "DAGGER_SESSION_PORT"
	EnvSessionToken = "DAGGER_SESSION_TOKEN"
)

// runnerSchemes are the engine addresses the Dagger CLI understands.
var runnerSchemes = []string{"unix", "tcp", "docker-container", "docker-image", "podman-container", "kube-pod", "ssh"}

// Endpoint is how the SDK will reach an engine, found the standard
// Dagger way.
type Endpoint struct {
	// Via says which of the discovery rules matched, for messages.
	Via string
	// CLI is the dagger CLI to run ("" = the SDK's session variables, or
	// the CLI the SDK provisions for RunnerHost or docker).
	CLI string
	// RunnerHost is the engine the CLI connects to ("" = the CLI's own
	// default: an engine container in docker).
	RunnerHost string
}

// Discover finds a Dagger engine in this order: an enclosing `dagger run`
// session (DAGGER_SESSION_PORT), an explicit CLI (_EXPERIMENTAL_DAGGER_CLI_BIN),
// a dagger CLI on PATH, an explicit engine (_EXPERIMENTAL_DAGGER_RUNNER_HOST,
// which the SDK reaches with the CLI it provisions), docker on PATH (where
// the CLI starts an engine). With none of them it fails, saying what it
// tried: a build never falls back to the local engine silently.
func Discover(env func(string) string, lookPath func(string) (string, error)) (Endpoint, error) {
	runner := env(EnvRunnerHost)
	if runner != "" {
		if err := checkRunnerHost(runner); err != nil {
			return Endpoint{}, err
		}
	}
	if port := env(EnvSessionPort); port != "" {
		if env(EnvSessionToken) == "" {
			return Endpoint{}, fmt.Errorf("%s is set but %s is not; run inside `dagger run` or unset %s", EnvSessionPort, EnvSessionToken, EnvSessionPort)
		}
		return Endpoint{Via: EnvSessionPort + "=" + port + " (inside dagger run)"}, nil
	}
	if bin := env(EnvCLIBin); bin != "" {
		p, err := lookPath(bin)
		if err != nil {
			return Endpoint{}, fmt.Errorf("%s=%s: %v; point it at the dagger CLI or unset it", EnvCLIBin, bin, err)
		}
		return Endpoint{Via: EnvCLIBin + "=" + bin, CLI: p, RunnerHost: runner}, nil
	}
	if p, err := lookPath("dagger"); err == nil {
		return Endpoint{Via: "dagger on PATH (" + p + ")", CLI: p, RunnerHost: runner}, nil
	}
	if runner != "" {
		return Endpoint{Via: EnvRunnerHost + "=" + runner, RunnerHost: runner}, nil
	}
	if p, err := lookPath("docker"); err == nil {
		return Endpoint{Via: "docker on PATH (" + p + "): the dagger CLI starts an engine container"}, nil
	}
	return Endpoint{}, fmt.Errorf("no Dagger engine found: tried %s (unset), %s (unset), %s (unset), "+
		"the dagger CLI on PATH (not found) and docker on PATH (not found); "+
		"point %s at an engine (e.g. tcp://dagger-engine:1234 or kube-pod://dagger-engine-0?namespace=dagger), "+
		"or build with --engine local",
		EnvSessionPort, EnvCLIBin, EnvRunnerHost, EnvRunnerHost)
}

func checkRunnerHost(s string) error {
	u, err := url.Parse(s)
	if err == nil {
		for _, sch := range runnerSchemes {
			if u.Scheme == sch {
				return nil
			}
		}
	}
	return fmt.Errorf("%s=%q is not an engine address; use one of %s://…", EnvRunnerHost, s, strings.Join(runnerSchemes, "://…, "))
}
