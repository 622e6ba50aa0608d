package delta

import "github.com/relcue/release/pipeline/step"

// Module registers the delta module (modules/all).
var Module = step.Module{Steps: []step.Step{Step{}}, Targets: Targets}
