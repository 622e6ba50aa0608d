package addonpush

import (
	"github.com/relcue/release/modules/addonsign"
	"github.com/relcue/release/pipeline/step"
)

// Module registers the addonpush module (modules/all); key signs the
// pushes (nil signs nothing).
func Module(key *addonsign.Key) step.Module {
	return step.Module{Steps: []step.Step{Step{Cosign: key}}, Targets: SignedTargets(key)}
}
