package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"
)

func newVet() *cobra.Command {
	var c common
	cmd := &cobra.Command{
		Use:   "vet",
		Short: "Validate the configuration and its inputs without building",
		Long: `vet loads the CUE configuration against the embedded schema, checks every
semantic rule (declared versions, forward delta paths, safe paths), and plans
the graph, which hashes every local input: a local file's declared sha256 must
match, inputs must be regular files or directories (not pipes or devices), and
the files of a release's inputs must make one installation tree (no path given
by two inputs, no name the package cannot hold). Errors name file:line:col and
exit 2, as build's do for the same mistakes.

Downloads (url:) are not fetched: their sha256 is checked when build downloads
them, and what a step finds only in a file's content (a corrupt zip, a VERSION
that names another release) is found by build.

Loading is bounded: --cue-timeout, --max-config-bytes and --max-delta-paths
(or RELEASE_CUE_TIMEOUT, RELEASE_MAX_CONFIG_BYTES, RELEASE_MAX_DELTA_PATHS)
refuse a configuration that would evaluate for too long or expand too far.`,
		Example: `  release vet -C fixtures/sample
  release vet -C fixtures/sample --format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(c.format); err != nil {
				return err
			}
			s, err := c.open(cmd.Context())
			if err != nil {
				if c.format == "json" {
					json.NewEncoder(cmd.OutOrStdout()).Encode(map[string]any{"ok": false, "error": err.Error()})
				}
				return err
			}
			out := map[string]any{
				"ok": true, "product": s.Model.Product.Name, "releases": len(s.Model.Versions),
				"deltas": len(s.Model.Deltas), "targets": len(s.Graph.Order),
			}
			if c.format == "json" {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(out)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ok: %s: %d releases, %d delta paths, %d targets\n",
				s.Model.Product.Name, len(s.Model.Versions), len(s.Model.Deltas), len(s.Graph.Order))
			return nil
		},
	}
	c.bind(cmd)
	c.bindSigning(cmd)
	return cmd
}
