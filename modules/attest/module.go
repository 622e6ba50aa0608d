package attest

import (
	"github.com/relcue/release/pipeline/config"
	"github.com/relcue/release/pipeline/step"
)

// Module registers the attestation steps (modules/all); their targets
// come from the modules Attested wraps.
var Module = step.Module{Steps: []step.Step{SBOMStep{}, ProvenanceStep{}}}

// Attested is mod with an SBOM and a provenance target for each of its
// sub targets.
func Attested(mod step.Module, sub Subject) step.Module {
	targets := mod.Targets
	mod.Targets = func(m *config.Model) ([]step.Target, error) {
		ts, err := targets(m)
		if err != nil {
			return nil, err
		}
		as, err := For(m, sub, ts)
		if err != nil {
			return nil, err
		}
		return append(ts, as...), nil
	}
	return mod
}
