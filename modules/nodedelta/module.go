package nodedelta

import "github.com/relcue/release/pipeline/step"

// Module registers the nodedelta module (modules/all).
var Module = step.Module{Steps: []step.Step{Step{}}, Targets: Targets}
