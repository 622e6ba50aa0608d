package delta

import (
	"github.com/relcue/release/modules/codesign"
	"github.com/relcue/release/pipeline/step"
)

// Module registers the delta module (modules/all); key signs the
// Apply-Delta.ps1 of profile k2s deltas when the configuration signs
// PowerShell (nil signs nothing).
func Module(key *codesign.Key) step.Module {
	return step.Module{Steps: []step.Step{Step{Key: key}}, Targets: SignedTargets(key)}
}
