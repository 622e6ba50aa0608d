package addonpush

import (
	"github.com/relcue/release/internal/netx"
	"github.com/relcue/release/modules/addonsign"
	"github.com/relcue/release/pipeline/step"
)

// Module registers the addonpush module (modules/all); key signs the
// pushes (nil signs nothing), net bounds their requests in time.
func Module(key *addonsign.Key, net netx.Config) step.Module {
	return step.Module{Steps: []step.Step{Step{Cosign: key, Net: net}}, Targets: SignedTargets(key)}
}
