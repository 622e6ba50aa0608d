package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/relcue/release/modules/apply"
	"github.com/relcue/release/modules/delta"
	"github.com/relcue/release/pipeline"
	"github.com/relcue/release/pipeline/config"
)

// layoutFlags are --profile and -C of install and verify --install-dir:
// how the product's installer lays a package out.
type layoutFlags struct {
	profile string
	dir     string
	// limits bound loading the configuration of -C.
	limits limitFlags
}

func (l *layoutFlags) bind(cmd *cobra.Command, profileDefault, profileHelp, dirHelp string) {
	f := cmd.Flags()
	f.StringVar(&l.profile, "profile", profileDefault, profileHelp)
	f.StringVarP(&l.dir, "dir", "C", ".", dirHelp)
	l.limits.bind(cmd)
}

// given reports whether either flag was set.
func (l *layoutFlags) given(cmd *cobra.Command) bool {
	return cmd.Flags().Changed("profile") || cmd.Flags().Changed("dir")
}

// load is the layout of --profile, or with -C the configuration's
// archives (deltas.nested) and its profile's skip rules.
func (l *layoutFlags) load(cmd *cobra.Command) (apply.Layout, error) {
	if !cmd.Flags().Changed("dir") {
		layout, err := apply.LayoutOf(l.profile)
		if err != nil {
			return apply.Layout{}, usageError{fmt.Errorf("--profile: %w", err)}
		}
		return layout, nil
	}
	if cmd.Flags().Changed("profile") {
		return apply.Layout{}, usageError{fmt.Errorf("give -C or --profile, not both: the configuration names its profile")}
	}
	limits, err := l.limits.limits()
	if err != nil {
		return apply.Layout{}, err
	}
	// Only the core model is needed: no inputs are read.
	m, err := config.Load(l.dir, config.LoadOptions{Limits: limits})
	if err != nil {
		return apply.Layout{}, &pipeline.ConfigError{Err: err}
	}
	layout, err := apply.LayoutOf(m.Product.Profile)
	if err != nil {
		return apply.Layout{}, &pipeline.ConfigError{Err: err}
	}
	layout.Nested = delta.NestedOf(m.DeltaLayout.Nested)
	return layout, nil
}
