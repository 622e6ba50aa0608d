package step

import "github.com/relcue/release/pipeline/config"

// Module is one artifact kind as the pipeline sees it: the steps that
// build it, the targets a configuration asks of it, and the part of the
// configuration it owns. A module is registered by adding its one Module
// value to the list in modules/all.
type Module struct {
	// Steps run the module's targets (and any targets of other modules
	// that name their kinds).
	Steps []Step
	// Targets plans what the configuration asks of the module; nil for
	// a module that only contributes steps.
	Targets func(*config.Model) ([]Target, error)
	// Config is the module's configuration section; nil when the module
	// reads only the core model.
	Config *config.Section
}

// Sections lists the configuration sections of mods, for config.Load.
func Sections(mods []Module) []config.Section {
	var out []config.Section
	for _, m := range mods {
		if m.Config != nil {
			out = append(out, *m.Config)
		}
	}
	return out
}

// Steps lists the steps of mods.
func Steps(mods []Module) []Step {
	var out []Step
	for _, m := range mods {
		out = append(out, m.Steps...)
	}
	return out
}
