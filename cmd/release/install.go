package main

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/relcue/release/modules/apply"
	"github.com/relcue/release/modules/pkgzip"
	"github.com/relcue/release/pipeline/config"
)

func newInstall() *cobra.Command {
	var o apply.InstallOptions
	var dir, format string
	var quiet bool
	var lf layoutFlags
	cmd := &cobra.Command{
		Use:   "install PACKAGE.zip --install-dir DIR",
		Short: "Lay out a full package as the product's installer does, to apply deltas to",
		Long: `install writes a full package into a new (or empty) directory the way the
product's installer lays it out: every file of the package, each checked
against its package-manifest.json as it is written, and the archives the
installer unpacks (K2s: bin/WindowsNodeArtifacts.zip into bin/kube, bin/cni,
...) unpacked where it puts them, since deltas update those files in place.
The archives come from --profile (k2s: K2s's own mapping), or from the
configuration's deltas.nested with -C. The installation appears complete or
not at all; 'release apply' then takes it from version to version.

The installation keeps a record of every file written (.release-installed.json
at its root, with the profile's skip rules), which every 'release apply'
updates and 'release verify --install-dir DIR' checks it against.`,
		Example: `  release install dist/packages/k2s-1.4.0.zip --install-dir /tmp/k2s --profile k2s
  release install dist/packages/k2s-1.4.0.zip --install-dir /tmp/k2s -C fixtures/sample
  release install k2s-1.4.0.zip --install-dir /tmp/k2s --format json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			if dir == "" {
				return usageError{fmt.Errorf("--install-dir is required")}
			}
			if _, err := pkgzip.ParsePathPolicy(string(o.Paths)); err != nil {
				return usageError{fmt.Errorf("--paths: %w", err)}
			}
			layout, err := lf.load(cmd)
			if err != nil {
				return err
			}
			o.Nested, o.Skip, o.SkipNames = layout.Nested, layout.Skip, layout.SkipNames
			if o.Workers <= 0 {
				o.Workers = runtime.NumCPU()
			}
			rep := reporter(quiet)
			t := rep.Start(dir, "install")
			o.Progress = t.Add
			o.Log = t.Log()
			r, err := apply.Install(cmd.Context(), args[0], dir, o)
			t.Done("installed", err)
			rep.Close()
			if err != nil {
				return err
			}
			if format == "json" {
				return writeJSON(cmd.OutOrStdout(), r)
			}
			fmt.Fprintln(cmd.OutOrStdout(), r)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "install-dir", "", "the new installation (must not exist, or be empty)")
	lf.bind(cmd, config.ProfileGeneric, "generic: the package's files only; k2s: also bin/WindowsNodeArtifacts.zip unpacked as K2s's installer does",
		"take the archives to unpack from this configuration's deltas.nested")
	f.IntVarP(&o.Workers, "jobs", "j", 0, "parallel writers (default: number of CPUs)")
	f.StringVar((*string)(&o.Paths), "paths", string(pkgzip.PathsWindows), pathsHelp)
	f.BoolVarP(&quiet, "quiet", "q", false, "no progress output")
	addFormat(cmd, &format)
	return cmd
}
