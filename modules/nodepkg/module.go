package nodepkg

import "github.com/relcue/release/pipeline/step"

// Module registers the nodepkg module (modules/all).
var Module = step.Module{Steps: []step.Step{Step{}}, Targets: Targets}
