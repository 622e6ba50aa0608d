package plans

import "github.com/relcue/release/pipeline/step"

// Module registers the plans module (modules/all).
var Module = step.Module{Steps: []step.Step{Step{}}, Targets: Targets, Config: &Section}
