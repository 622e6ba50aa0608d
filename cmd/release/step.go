package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/relcue/release/internal/strictjson"
	"github.com/relcue/release/modules/all"
	"github.com/relcue/release/pipeline/engine"
	"github.com/relcue/release/pipeline/step"
)

// newStep is the hidden command engines run a step with, in a container
// or another process: the same step code the local engine calls.
func newStep() *cobra.Command {
	var reqPath, out string
	cmd := &cobra.Command{
		Use:     "step --request FILE --out DIR",
		Short:   "Run one build step from an engine's request (used by --engine dagger and process)",
		Hidden:  true,
		Example: `  release step --request /in/request.json --out /out`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if reqPath == "" || out == "" {
				return usageError{fmt.Errorf("--request and --out are required")}
			}
			data, err := os.ReadFile(reqPath)
			if err != nil {
				return usageError{err}
			}
			var req engine.Request
			if err := strictjson.Unmarshal(data, &req); err != nil {
				return usageError{fmt.Errorf("%s: %w", reqPath, err)}
			}
			// Signing steps never come here (they run in the release
			// process), so a step process holds no keys.
			steps, err := engine.Registry(step.Steps(all.Modules(all.Keys{}))...)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			return engine.RunRequest(cmd.Context(), steps, &req, out, cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVar(&reqPath, "request", "", "the step request (JSON) written by the engine")
	cmd.Flags().StringVar(&out, "out", "", "directory the step writes its outputs into")
	return cmd
}
