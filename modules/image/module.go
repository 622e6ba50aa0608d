package image

import "github.com/relcue/release/pipeline/step"

// Module registers the image module (modules/all).
var Module = step.Module{Steps: []step.Step{Step{}}, Targets: Targets, Config: &Section}
