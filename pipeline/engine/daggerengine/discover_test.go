package daggerengine

import (
	"errors"
	"strings"
	"testing"
)

func TestDiscover(t *testing.T) {
	for _, tc := range []struct {
		name   string
		env    map[string]string
		onPath []string
		want   Endpoint
		err    string
	}{
		{name: "nothing", err: "no Dagger engine found: tried DAGGER_SESSION_PORT (unset), _EXPERIMENTAL_DAGGER_CLI_BIN (unset), _EXPERIMENTAL_DAGGER_RUNNER_HOST (unset), the dagger CLI on PATH (not found) and docker on PATH (not found)"},
		{name: "session", env: map[string]string{EnvSessionPort: "4321", EnvSessionToken: "t"}, onPath: []string{"dagger"},
			want: Endpoint{Via: "DAGGER_SESSION_PORT=4321 (inside dagger run)"}},
		{name: "session without token", env: map[string]string{EnvSessionPort: "4321"}, err: "DAGGER_SESSION_PORT is set but DAGGER_SESSION_TOKEN is not"},
		{name: "cli bin with runner", env: map[string]string{EnvCLIBin: "dagger-0.21.8", EnvRunnerHost: "tcp://engine:1234"}, onPath: []string{"dagger-0.21.8", "dagger"},
			want: Endpoint{Via: "_EXPERIMENTAL_DAGGER_CLI_BIN=dagger-0.21.8", CLI: "/bin/dagger-0.21.8", RunnerHost: "tcp://engine:1234"}},
		{name: "cli bin missing", env: map[string]string{EnvCLIBin: "/opt/nope/dagger"}, onPath: []string{"dagger"}, err: "_EXPERIMENTAL_DAGGER_CLI_BIN=/opt/nope/dagger: not found; point it at the dagger CLI or unset it"},
		{name: "dagger on PATH", onPath: []string{"dagger", "docker"}, want: Endpoint{Via: "dagger on PATH (/bin/dagger)", CLI: "/bin/dagger"}},
		{name: "runner host only", env: map[string]string{EnvRunnerHost: "kube-pod://dagger-engine-0?namespace=dagger"},
			want: Endpoint{Via: "_EXPERIMENTAL_DAGGER_RUNNER_HOST=kube-pod://dagger-engine-0?namespace=dagger", RunnerHost: "kube-pod://dagger-engine-0?namespace=dagger"}},
		{name: "docker only", onPath: []string{"docker"}, want: Endpoint{Via: "docker on PATH (/bin/docker): the dagger CLI starts an engine container"}},
		{name: "bad runner host", env: map[string]string{EnvRunnerHost: "engine:1234"}, onPath: []string{"dagger"}, err: `_EXPERIMENTAL_DAGGER_RUNNER_HOST="engine:1234" is not an engine address`},
		{name: "unix runner host", env: map[string]string{EnvRunnerHost: "unix:///run/dagger/engine.sock"},
			want: Endpoint{Via: "_EXPERIMENTAL_DAGGER_RUNNER_HOST=unix:///run/dagger/engine.sock", RunnerHost: "unix:///run/dagger/engine.sock"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := func(k string) string { return tc.env[k] }
			look := func(name string) (string, error) {
				for _, p := range tc.onPath {
					if p == name {
						return "/bin/" + name, nil
					}
				}
				return "", errors.New("not found")
			}
			got, err := Discover(env, look)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}
