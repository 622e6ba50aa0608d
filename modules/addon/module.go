package addon

import "github.com/relcue/release/pipeline/step"

// Module registers the addon module (modules/all).
var Module = step.Module{Steps: []step.Step{Step{}}, Targets: Targets, Config: &Section}
