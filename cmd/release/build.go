package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/relcue/release/pipeline"
	"github.com/relcue/release/pipeline/engine"
	"github.com/relcue/release/pipeline/progress"
)

const buildHelp = `build runs every selected target (all by default) and what it needs,
taking verified results from the cache and building the rest, at most -j
steps at a time. When every target succeeds, the artifacts of the selected
targets are copied into dist/; when any fails, dist/ is left as it was
(results that did build stay cached).

dist/ always tells the truth: artifacts.json and SHA256SUMS list every file
in it. A build of some targets (--target, --push) adds its artifacts to
those of earlier builds that are still current; artifacts of targets the
configuration no longer declares, or that a target no longer produces, are
removed, and so is a file changed since it was published. A dist/ holding
files release did not publish is refused before anything is built; --clean
removes them instead. A dist/ (or cache) inside an input directory is
refused: every build would package the previous one.

Pushes of addon artifacts (push/addon/...) run only with --push, on every
such build (never from the cache): blobs the registry has are skipped, and
each tag is set only after its whole artifact is uploaded. Credentials come
from the docker config file (~/.docker/config.json or $DOCKER_CONFIG).

--remote-cache oci://host/repo (or --cache-from / --cache-to) shares results
through a registry: a target missing from the local cache is pulled from it
(every file verified against its digest, then hashed again) before it is
built, and what is built is pushed. A registry that cannot be reached, or
that stops answering, only costs a warning: the build goes on locally.

Every network operation (URL inputs, pushes, the remote cache) is bounded
in time: a connection must open within --net-connect-timeout (30s, and as
long again for its TLS handshake), a server must start answering within
--net-timeout (60s), and a transfer must move at least --net-low-speed
(1KiB per second) over every --net-timeout window. A request that runs
out of time, whose connection breaks, or that gets 5xx or 429 is tried
--net-attempts times in all (3) with growing pauses; then the download or
push fails with an error that names the URL or registry, the limit that
expired and the flag (or RELEASE_NET_* variable) that raises it. Ctrl-C
ends any of them at once.`

const buildExamples = `  release build -C fixtures/sample
  release build -C fixtures/sample --target package/1.5.0 -j 4
  release build -C fixtures/sample --target 'delta/*' --keep-going --format json
  release build -C fixtures/sample --dist /tmp/out --cache /tmp/cache
  release build -C fixtures/sample --clean
  release build -C fixtures/sample --push --registry 127.0.0.1:5000 --plain-http
  release build -C fixtures/sample --push --target 'push/addon/metrics/*'
  _EXPERIMENTAL_DAGGER_RUNNER_HOST=tcp://dagger.ci:1234 release build -C fixtures/sample --engine dagger
  release build -C fixtures/sample --target 'delta/*' --remote-cache oci://ghcr.io/acme/release-cache
  release build -C fixtures/sample --net-timeout 5m --net-attempts 5          # a slow mirror
  RELEASE_NET_CONNECT_TIMEOUT=5s release build -C fixtures/sample --remote-cache oci://cache.internal/release`

func newBuild() *cobra.Command {
	var c common
	var o pipeline.BuildOptions
	var quiet bool
	var rc remoteFlags
	var nf netFlags
	cmd := &cobra.Command{
		Use:     "build",
		Short:   "Build the planned targets and publish their artifacts into dist/",
		Long:    buildHelp,
		Example: buildExamples,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(c.format); err != nil {
				return err
			}
			if o.StepBinary != "" && o.Engine != "dagger" && o.Engine != "process" {
				return usageError{fmt.Errorf("--step-binary is the binary the dagger and process engines run steps with; add --engine dagger")}
			}
			net, err := nf.config(cmd)
			if err != nil {
				return err
			}
			c.net, o.Net, rc.net = net, net, net
			return buildAndReport(cmd, &c, o, quiet, &rc)
		},
	}
	c.bind(cmd)
	c.bindRegistry(cmd)
	c.bindSigning(cmd)
	bindBuildFlags(cmd, &o, &quiet)
	rc.bind(cmd)
	nf.bind(cmd)
	return cmd
}

func bindBuildFlags(cmd *cobra.Command, o *pipeline.BuildOptions, quiet *bool) {
	cmd.Flags().BoolVar(&o.Effects, "push", false, "also push addon artifacts to the registry (push/... targets); a plain build never pushes")
	cmd.Flags().StringArrayVarP(&o.Targets, "target", "t", nil, "build only matching targets and what they need (glob over target IDs, also matching ID prefixes: deb/* selects deb/debian12/...; repeatable)")
	cmd.Flags().BoolVarP(&o.KeepGoing, "keep-going", "k", false, "keep building independent targets after a failure")
	cmd.Flags().StringVar(&o.Engine, "engine", "local", "where steps run: "+strings.Join(engine.Names(), " | ")+" (dagger: each step in a container on a Dagger engine)")
	cmd.Flags().StringVar(&o.StepBinary, "step-binary", "", "static Linux release binary the dagger engine runs steps with (default: this executable, when it is one; build it with CGO_ENABLED=0 GOOS=linux go build ./cmd/release)")
	cmd.Flags().StringVar(&o.Dist, "dist", "", "output directory (default: build.dist from the configuration)")
	cmd.Flags().BoolVar(&o.Clean, "clean", false, "remove files of the output directory that release did not publish, instead of refusing it")
	cmd.Flags().BoolVarP(quiet, "quiet", "q", false, "no progress output")
}

// buildAndReport builds with progress on stderr (unless quiet), then
// writes the report, and a job summary when running in GitHub Actions.
// The report is written even when the build failed, once there is one.
func buildAndReport(cmd *cobra.Command, c *common, o pipeline.BuildOptions, quiet bool, rc *remoteFlags) error {
	c.dist = o.Dist
	s, err := c.open(cmd.Context())
	if err != nil {
		return err
	}
	rep := reporter(quiet)
	o.Progress = rep
	o.EngineLog = progress.Lines(rep)
	remote, err := rc.open(rep.Printf)
	if err != nil {
		rep.Close()
		return err
	}
	if remote != nil {
		o.Remote = remote
	}
	report, err := s.Build(cmd.Context(), o)
	stats := remote.summary()
	if stats != "" {
		rep.Printf("remote cache: %s", stats)
	}
	rep.Close()
	if report != nil {
		if werr := writeBuildReport(cmd.OutOrStdout(), c.format, report); werr != nil && err == nil {
			err = werr
		}
		if inGitHub() {
			if werr := buildToGitHub(report, stats); werr != nil && err == nil {
				err = werr
			}
		}
	}
	return err
}

func writeBuildReport(w io.Writer, format string, r *pipeline.BuildReport) error {
	if format == "json" {
		return writeJSON(w, r)
	}
	fmt.Fprintln(w, r.Summary)
	for _, a := range r.Artifacts {
		fmt.Fprintf(w, "  %-48s %10s  %s\n", a.Path, progress.Bytes(a.Size), a.SHA256[:16])
	}
	if len(r.Artifacts) > 0 {
		fmt.Fprintf(w, "%d artifacts in %s: %d written (%s), %d already in place", len(r.Artifacts), r.Dist, r.Publish.Written, progress.Bytes(r.Publish.WrittenSize), r.Publish.Kept)
		if r.Publish.Carried > 0 {
			fmt.Fprintf(w, ", %d kept from earlier builds", r.Publish.Carried)
		}
		if n := len(r.Publish.Removed); n > 0 {
			fmt.Fprintf(w, ", %d removed", n)
		}
		fmt.Fprintf(w, "; artifacts.json and SHA256SUMS list %d\n", r.Listed)
		for _, p := range r.Publish.Removed {
			fmt.Fprintf(w, "  removed %s\n", p)
		}
	}
	return nil
}
