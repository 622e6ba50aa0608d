// Package all lists the artifact modules the release binary ships: adding
// a kind is adding its one Module value here.
package all

import (
	"github.com/relcue/release/internal/netx"
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
	"github.com/relcue/release/pipeline/step"
)

// Keys are what the CLI hands the modules: the signing credentials it
// loaded from the environment (nil ones sign nothing, and a configuration
// that asks for them fails), and the time limits of the steps that talk
// to a registry (zero: the defaults).
type Keys struct {
	Authenticode *codesign.Key
	Cosign       *addonsign.Key
	Net          netx.Config
}

// Modules returns every module, in the order their targets are planned.
func Modules(keys Keys) []step.Module {
	return []step.Module{
		attest.Attested(fullpkg.Module(keys.Authenticode), attest.Subject{Kind: fullpkg.Kind, ArtifactKind: fullpkg.ArtifactKind, Format: attest.Package}),
		delta.Module(keys.Authenticode),
		deb.Module,
		image.Module,
		attest.Attested(nodepkg.Module, attest.Subject{Kind: nodepkg.Kind, ArtifactKind: nodepkg.ArtifactKind, Format: attest.NodePackage}),
		nodedelta.Module,
		attest.Attested(addon.Module, attest.Subject{Kind: addon.Kind, ArtifactKind: addon.ArchiveKind, Format: attest.Addon}),
		addonpush.Module(keys.Cosign, keys.Net),
		plans.Module,
		attest.Module,
	}
}
