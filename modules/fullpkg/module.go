package fullpkg

import (
	"github.com/relcue/release/modules/codesign"
	"github.com/relcue/release/pipeline/step"
)

// Module registers the fullpkg module (modules/all); key signs the Windows
// content of assembled packages (nil signs nothing).
func Module(key *codesign.Key) step.Module {
	return step.Module{Steps: []step.Step{Step{Key: key}}, Targets: SignedTargets(key)}
}
