// Package gitops writes the GitOps resources that let a cluster follow an
// addon OCI artifact, in the shape K2s's rollout addon expects, so that an
// artifact built by release can replace one exported by K2s without touching
// the cluster's addon-sync set-up.
//
// K2s delivers an addon in two planes. FluxCD (or the ArgoCD poller) only
// notices that a new artifact version exists; the real work - copying the
// addon's manifests, charts and scripts onto the Windows host - is done by a
// HostProcess Job that the artifact carries in the gitops-sync/ folder of its
// manifests layer. Flux therefore extracts just that layer and applies
// ./gitops-sync, never the addon's own manifests. Flux returns the Flux
// objects and SyncFolder the gitops-sync/ files.
//
// Everything here is byte-for-byte deterministic: K2s stamps export times
// into these files, release must not, because reproducible artifacts are
// the point of release.
package gitops

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"golang.org/x/mod/semver"
	"k8s.io/apimachinery/pkg/util/validation"
)

// ManifestsMediaType is the media type of layer 1 (manifests.tar.gz) of a K2s
// addon artifact; the OCIRepository selects it, so the exporter must use
// exactly this value for the layer that contains SyncDir.
const ManifestsMediaType = "application/vnd.k2s.addon.manifests.v1.tar+gzip"

// SyncDir is the folder at the root of the manifests layer that the Flux
// Kustomization applies.
const SyncDir = "gitops-sync"

// Defaults, all taken from K2s's per-addon templates except Namespace.
const (
	DefaultNamespace       = "flux-system"
	DefaultTargetNamespace = "k2s-addon-sync"
	DefaultInterval        = 5 * time.Minute
	DefaultTimeout         = 10 * time.Minute
	// DefaultSyncImage is the Windows pause image K2s preloads on every
	// Windows node; a HostProcess container only needs some image to start,
	// and this one never has to be pulled or exported.
	DefaultSyncImage = "shsk2s.azurecr.io/pause-win:v1.8.0"
)

// Addon identifies one implementation of an addon in a registry and how the
// cluster should follow it. Zero values of optional fields take the
// defaults above.
type Addon struct {
	// Name is metadata.name of addon.manifest.yaml, e.g. "ingress".
	Name string
	// Version is the artifact version without "v" (the registry tag is
	// "v"+Version), e.g. "1.4.0". It goes into the sync Job's pod template,
	// so that every new version replaces the Job and runs it again.
	Version string
	// Implementation is spec.implementations[].name, e.g. "nginx". Empty, or
	// equal to Name, for single-implementation addons.
	Implementation string
	// Registry is the registry as host[:port], without scheme or path.
	Registry string
	// Repository is the repository inside Registry. Empty means
	// "addons/"+ExportName(), K2s's layout. The sync Job always pulls
	// <REGISTRY_URL>/addons/<ExportName()>, so a non-empty value must end
	// in that; anything before it belongs in the cluster's REGISTRY_URL.
	Repository string
	// Insecure lets Flux use plain HTTP or unverified TLS to the registry.
	Insecure bool
	// Interval is how often Flux polls the registry and re-applies.
	Interval time.Duration
	// Timeout bounds one apply of the Kustomization, including waiting for
	// the sync Job.
	Timeout time.Duration
	// Namespace is where the OCIRepository and Kustomization live.
	Namespace string
	// TargetNamespace is where the sync Job runs. It must hold what
	// `k2s addons enable rollout` installs: ConfigMaps addon-sync-config
	// and addon-sync-script and ServiceAccount addon-sync-processor.
	TargetNamespace string
	// SyncImage is the sync Job's container image.
	SyncImage string
}

// ExportName is the name K2s gives one implementation of an addon: the
// artifact title, the repository under addons/ and the suffix of every
// object name, e.g. "ingress-nginx" or "metrics".
func (a Addon) ExportName() string {
	if a.Implementation == "" || a.Implementation == a.Name {
		return a.Name
	}
	return a.Name + "-" + a.Implementation
}

// objectName is the name K2s uses for the per-addon OCIRepository,
// Kustomization and Job, so that objects written by release and by K2s for
// the same addon are the same objects, not rivals.
func (a Addon) objectName() string { return "addon-sync-" + a.ExportName() }

// resolved returns a with defaults filled in, or every problem found.
func (a Addon) resolved() (Addon, error) {
	a = a.withDefaults()
	var p problems
	a.checkIdentity(&p)
	a.checkDelivery(&p)
	return a, errors.Join(p...)
}

func (a Addon) withDefaults() Addon {
	if a.Namespace == "" {
		a.Namespace = DefaultNamespace
	}
	if a.TargetNamespace == "" {
		a.TargetNamespace = DefaultTargetNamespace
	}
	if a.Interval == 0 {
		a.Interval = DefaultInterval
	}
	if a.Timeout == 0 {
		a.Timeout = DefaultTimeout
	}
	if a.SyncImage == "" {
		a.SyncImage = DefaultSyncImage
	}
	if a.Repository == "" && a.Name != "" {
		a.Repository = "addons/" + a.ExportName()
	}
	return a
}

// problems collects every problem of an Addon, so that one error names
// them all.
type problems []error

func (p *problems) bad(field, value, why string) {
	*p = append(*p, fmt.Errorf("gitops: Addon.%s %q: %s", field, value, why))
}

func (p *problems) label(field, value string) {
	if msgs := validation.IsDNS1123Label(value); len(msgs) > 0 {
		p.bad(field, value, "not a DNS-1123 label: "+strings.Join(msgs, "; "))
	}
}

// checkIdentity checks what names the addon: its name, implementation
// and version. It runs first: the object name is checked only once the
// names it is made of are good.
func (a Addon) checkIdentity(p *problems) {
	p.label("Name", a.Name)
	if a.Implementation != "" {
		p.label("Implementation", a.Implementation)
	}
	// The Job's name also becomes a pod label value, so it has to stay a
	// label (63 characters) as a whole.
	if len(*p) == 0 {
		if msgs := validation.IsDNS1123Label(a.objectName()); len(msgs) > 0 {
			field, value := "Implementation", a.Implementation
			if a.ExportName() == a.Name {
				field, value = "Name", a.Name
			}
			p.bad(field, value, fmt.Sprintf("object name %q too long: %s", a.objectName(), strings.Join(msgs, "; ")))
		}
	}
	if a.Version == "" || semver.Canonical("v"+a.Version) != "v"+a.Version {
		p.bad("Version", a.Version, `want semantic version MAJOR.MINOR.PATCH[-PRERELEASE] without "v" or "+build"`)
	}
}

// checkDelivery checks where the artifact is pulled from and how the
// cluster follows it.
func (a Addon) checkDelivery(p *problems) {
	// The sync Job reads the registry from the cluster's ConfigMap, so only
	// Flux needs it; Flux checks that it is set.
	if a.Registry != "" && !registryRE.MatchString(a.Registry) {
		p.bad("Registry", a.Registry, "want host[:port] without scheme or path")
	}
	if a.Name != "" && !validRepository(a.Repository, a.ExportName()) {
		p.bad("Repository", a.Repository, fmt.Sprintf("want lower-case OCI repository path ending in addons/%s, where the sync Job looks", a.ExportName()))
	}
	if a.Interval < 0 {
		p.bad("Interval", a.Interval.String(), "must be positive")
	}
	if a.Timeout < 0 {
		p.bad("Timeout", a.Timeout.String(), "must be positive")
	}
	p.label("Namespace", a.Namespace)
	p.label("TargetNamespace", a.TargetNamespace)
	if strings.ContainsAny(a.SyncImage, " \t\r\n") {
		p.bad("SyncImage", a.SyncImage, "contains white space")
	}
}

var (
	registryRE = regexp.MustCompile(`^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$`)
	repoPartRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$`)
)

// maxRepoPath is the limit many registry clients put on a repository
// reference, as the OCI distribution spec warns.
const maxRepoPath = 255

func validRepository(repo, export string) bool {
	if len(repo) > maxRepoPath || (repo != "addons/"+export && !strings.HasSuffix(repo, "/addons/"+export)) {
		return false
	}
	for _, part := range strings.Split(repo, "/") {
		if !repoPartRE.MatchString(part) {
			return false
		}
	}
	return true
}
