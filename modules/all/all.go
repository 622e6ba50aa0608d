// Package all lists the artifact modules the release binary ships.
package all

import (
	"github.com/relcue/release/modules/addon"
	"github.com/relcue/release/modules/addonpush"
	"github.com/relcue/release/modules/deb"
	"github.com/relcue/release/modules/delta"
	"github.com/relcue/release/modules/fullpkg"
	"github.com/relcue/release/modules/image"
	"github.com/relcue/release/modules/nodedelta"
	"github.com/relcue/release/modules/nodepkg"
	"github.com/relcue/release/modules/plans"
	"github.com/relcue/release/pipeline"
	"github.com/relcue/release/pipeline/config"
	"github.com/relcue/release/pipeline/step"
)

// Modules returns every step and target source.
func Modules() pipeline.Modules {
	return pipeline.Modules{
		Steps: []step.Step{fullpkg.Step{}, delta.Step{}, deb.Step{}, image.Step{}, nodepkg.Step{}, nodedelta.Step{}, addon.Step{}, addonpush.Step{}, plans.Step{}},
		Targets: []func(*config.Model) ([]step.Target, error){
			fullpkg.Targets, delta.Targets, deb.Targets, image.Targets, nodepkg.Targets, nodedelta.Targets, addon.Targets, addonpush.Targets, plans.Targets,
		},
	}
}
