package main

import (
	"github.com/spf13/cobra"

	"github.com/relcue/release/pipeline/plan"
)

func newPlan() *cobra.Command {
	var c common
	var targets []string
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Show the targets a build would make and which are already cached",
		Long: `plan loads the configuration, expands delta policies, hashes every input
and prints the build graph: each target with its kind, dependencies, cache
key and whether its result is already cached. Nothing is built.

--format github-matrix prints {"include": [...]} for strategy.matrix: one
entry per root target (one that nothing else needs), whose job builds it and
what it needs. In GitHub Actions (GITHUB_ACTIONS=true) the plan also goes to
the job summary as a table and a Mermaid graph, and the step outputs get
matrix, targets and to-build.`,
		Example: `  release plan -C fixtures/sample
  release plan -C fixtures/sample --format json
  release plan -C fixtures/sample --format mermaid >> "$GITHUB_STEP_SUMMARY"
  release plan -C fixtures/sample --format github-matrix --target 'delta/*'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(c.format, plan.Formats...); err != nil {
				return err
			}
			s, err := c.open(cmd.Context())
			if err != nil {
				return err
			}
			views, err := s.Plan(targets)
			if err != nil {
				return err
			}
			if err := plan.Render(cmd.OutOrStdout(), c.format, views); err != nil {
				return err
			}
			if inGitHub() {
				return planToGitHub(views)
			}
			return nil
		},
	}
	c.bind(cmd, plan.Formats...)
	c.bindRegistry(cmd)
	c.bindSigning(cmd)
	cmd.Flags().StringArrayVarP(&targets, "target", "t", nil, "only this target and what it needs (glob over target IDs; repeatable)")
	return cmd
}
