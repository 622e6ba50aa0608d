// Package all lists the artifact modules the release binary ships.
package all

import (
	"github.com/relcue/release/modules/addon"
	"github.com/relcue/release/modules/addonpush"
	"github.com/relcue/release/modules/addonsign"
	"github.com/relcue/release/modules/attest"
	"github.com/relcue/release/modules/codesign"
	"github.com/relcue/release/modules/deb"
	"github.com/relcue/release/modules/delta"
	"github.com/relcue/release/modules/fullpkg"
	"github.com/relcue/release/modules/image"
	"github.com/relcue/release/modules/nodedelta"
	"github.com/relcue/release/modules/nodepkg"
	"github.com/relcue/release/modules/plans"
	"github.com/relcue/release/pipeline"
	"github.com/relcue/release/pipeline/config"
	"github.com/relcue/release/pipeline/step"
)

// Keys are the signing credentials the CLI loaded from the environment;
// nil ones sign nothing (and a configuration that asks for them fails).
type Keys struct {
	Authenticode *codesign.Key
	Cosign       *addonsign.Key
}

// Modules returns every step and target source.
func Modules(keys Keys) pipeline.Modules {
	return pipeline.Modules{
		Steps: []step.Step{fullpkg.Step{Key: keys.Authenticode}, delta.Step{}, deb.Step{}, image.Step{}, nodepkg.Step{}, nodedelta.Step{}, addon.Step{}, addonpush.Step{Cosign: keys.Cosign}, plans.Step{}, attest.SBOMStep{}, attest.ProvenanceStep{}},
		Targets: []func(*config.Model) ([]step.Target, error){
			attested(fullpkg.SignedTargets(keys.Authenticode), attest.Subject{Kind: fullpkg.Kind, ArtifactKind: fullpkg.ArtifactKind, Format: attest.Package}),
			delta.Targets, deb.Targets, image.Targets,
			attested(nodepkg.Targets, attest.Subject{Kind: nodepkg.Kind, ArtifactKind: nodepkg.ArtifactKind, Format: attest.NodePackage}),
			nodedelta.Targets,
			attested(addon.Targets, attest.Subject{Kind: addon.Kind, ArtifactKind: addon.ArchiveKind, Format: attest.Addon}),
			addonpush.SignedTargets(keys.Cosign), plans.Targets,
		},
	}
}

// attested adds an SBOM and a provenance target for each of targets'
// sub targets.
func attested(targets func(*config.Model) ([]step.Target, error), sub attest.Subject) func(*config.Model) ([]step.Target, error) {
	return func(m *config.Model) ([]step.Target, error) {
		ts, err := targets(m)
		if err != nil {
			return nil, err
		}
		as, err := attest.For(m, sub, ts)
		if err != nil {
			return nil, err
		}
		return append(ts, as...), nil
	}
}
