package main

import (
	"encoding/json"
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/relcue/release/modules/apply"
)

func newApply() *cobra.Command {
	var o apply.Options
	var dir, format string
	var quiet, recover bool
	cmd := &cobra.Command{
		Use:   "apply DELTA.zip --install-dir DIR | apply --recover --install-dir DIR",
		Short: "Apply a delta package to an installation, verified and atomic",
		Long: `apply upgrades an installation in place with a delta package. It refuses
an installation whose VERSION is not the delta's base (unless --force),
checks the hash of every file before touching anything, stages the new files,
commits them under a journal, and verifies every target hash. If the process
dies part-way, the next apply (or any apply) finishes or rolls back the
interrupted one first: the installation is always the old or the new version.
--recover does only that recovery, without a delta.`,
		Example: `  release apply k2s-delta-1.4.0-to-1.5.0.zip --install-dir /opt/k2s --dry-run
  release apply k2s-delta-1.4.0-to-1.5.0.zip --install-dir /opt/k2s
  release apply d.zip --install-dir /opt/k2s --format json
  release apply --recover --install-dir /opt/k2s`,
		Args: func(cmd *cobra.Command, args []string) error {
			if recover {
				return cobra.NoArgs(cmd, args)
			}
			return cobra.ExactArgs(1)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			if dir == "" {
				return usageError{fmt.Errorf("--install-dir is required")}
			}
			if o.Workers <= 0 {
				o.Workers = runtime.NumCPU()
			}
			rep := reporter(quiet)
			t := rep.Start(dir, "apply")
			o.Progress = t.Add
			o.Log = t.Log()
			var r *apply.Report
			var err error
			if recover {
				r, err = apply.Recover(cmd.Context(), dir)
			} else {
				r, err = apply.Apply(cmd.Context(), args[0], dir, o)
			}
			t.Done("done", err)
			rep.Close()
			if err != nil {
				return err
			}
			if format == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(r)
			}
			fmt.Fprintln(cmd.OutOrStdout(), r)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "install-dir", "", "the installation to upgrade")
	f.BoolVar(&o.DryRun, "dry-run", false, "check everything and report what would change; touch nothing")
	f.BoolVar(&o.Force, "force", false, "apply even if the installed VERSION or installed files do not match the delta's base (mismatches become warnings)")
	f.BoolVar(&recover, "recover", false, "only finish or roll back an interrupted apply")
	f.IntVarP(&o.Workers, "jobs", "j", 0, "parallel hashing workers (default: number of CPUs)")
	f.BoolVarP(&quiet, "quiet", "q", false, "no progress output")
	addFormat(cmd, &format)
	return cmd
}

func newVerify() *cobra.Command {
	var format string
	var jobs int
	cmd := &cobra.Command{
		Use:   "verify FILE.zip...",
		Short: "Check full or delta packages against their manifests",
		Long: `verify reads each package streaming and checks every entry: a full package
against its package-manifest.json, a delta package against the target hashes
in its delta-manifest.json; zip CRCs are checked too. Exit code 1 if any
package fails.`,
		Example: `  release verify dist/packages/k2s-1.5.0.zip
  release verify dist/deltas/*.zip --format json`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			if jobs <= 0 {
				jobs = runtime.NumCPU()
			}
			var reports []any
			failed := 0
			for _, p := range args {
				r, err := apply.Verify(cmd.Context(), p, jobs)
				if err != nil {
					failed++
					reports = append(reports, map[string]any{"path": p, "ok": false, "error": err.Error()})
					if format != "json" {
						fmt.Fprintf(cmd.ErrOrStderr(), "release: %s: %v\n", p, err)
					}
					continue
				}
				reports = append(reports, r)
				if format != "json" {
					fmt.Fprintln(cmd.OutOrStdout(), r)
				}
			}
			if format == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if err := enc.Encode(reports); err != nil {
					return err
				}
			}
			if failed > 0 {
				return &silentError{code: exitFailure}
			}
			return nil
		},
	}
	cmd.Flags().IntVarP(&jobs, "jobs", "j", 0, "parallel hashing workers (default: number of CPUs)")
	addFormat(cmd, &format)
	return cmd
}
