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
the graph, which hashes every local input. Errors name file:line:col.`,
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
