// Package plans renders rollout policies into upgrade Plans: Plan objects
// of Rancher's system-upgrade-controller (upgrade.cattle.io/v1, written
// with the upstream Go types) and NodeOpUpgrade objects of the Kairos
// operator. A plan is pinned to what was released: an upgrade image the
// pipeline built is referenced by digest, and the package it installs is
// named with its SHA-256.
package plans

import (
	"fmt"
	"path"
	"slices"

	"github.com/relcue/release/modules/delta"
	"github.com/relcue/release/modules/fullpkg"
	"github.com/relcue/release/modules/image"
	"github.com/relcue/release/pipeline/config"
	"github.com/relcue/release/pipeline/step"
)

const (
	// Kind is the step kind; ArtifactKind the kind of every plan file.
	Kind         = "plans"
	ArtifactKind = "plans"
	// StepVersion changes whenever Run's bytes could change for the same
	// spec and inputs. 2: every SUC plan selects Linux nodes and carries
	// the upgrade.cattle.io/digest annotation.
	StepVersion = "2"
)

// TargetID is the ID of the plans of one release.
func TargetID(version string) string { return "plans/" + version }

// Dir is where a release's plans go, relative to dist/.
func Dir(version string) string { return "plans/" + version }

// OutputPath is the file of one policy: the full upgrade to version when
// from is "", else the upgrade from release from through its delta.
func OutputPath(version, from, policy string) string {
	if from == "" {
		return path.Join(Dir(version), policy+".yaml")
	}
	return path.Join(Dir(version), "from-"+from, policy+".yaml")
}

// Spec is the canonical JSON spec of a plans target.
type Spec struct {
	Product string `json:"product"`
	Version string `json:"version"`
	// Package is the release's full package; Deltas the delta packages
	// into it (one from-<base> plan set each, for engines that use them).
	Package  Artifact     `json:"package"`
	Deltas   []DeltaInput `json:"deltas,omitempty"`
	Policies []Policy     `json:"policies"`
}

// Artifact is a dependency's artifact the plans name and pin.
type Artifact struct {
	Target string `json:"target"`
	Kind   string `json:"kind"`
}

// DeltaInput is a delta package from From into the release.
type DeltaInput struct {
	From string `json:"from"`
	Artifact
}

// Policy is one rollout policy as it applies to this release.
type Policy struct {
	Name      string       `json:"name"`
	Engine    string       `json:"engine"`
	Namespace string       `json:"namespace"`
	Upgrade   UpgradeImage `json:"upgrade"`
	// ImageTarget builds the upgrade image ("" = external image).
	ImageTarget    string        `json:"imageTarget,omitempty"`
	Server         RolloutGroup  `json:"server"`
	Agent          *RolloutGroup `json:"agent,omitempty"`
	StopOnFailure  bool          `json:"stopOnFailure"`
	Window         *Window       `json:"window,omitempty"`
	ServiceAccount string        `json:"serviceAccount,omitempty"`
	Tolerations    []Toleration  `json:"tolerations,omitempty"`
	Kairos         KairosOptions `json:"kairos"`
}

// Targets plans one target per release that some rollout policy rolls
// out. It depends on the release's full package, on every delta into the
// release and on the upgrade images the pipeline builds.
func Targets(m *config.Model) ([]step.Target, error) {
	var out []step.Target
	for _, v := range m.Versions {
		s := Spec{Product: m.Product.Name, Version: v,
			Package: Artifact{Target: fullpkg.TargetID(v), Kind: fullpkg.ArtifactKind}}
		deps := []string{s.Package.Target}
		pos := ""
		rs := RolloutsOf(m)
		for _, name := range rs.Names {
			r := rs.Policies[name]
			u, ok := r.Releases[v]
			if !ok {
				continue
			}
			if pos == "" {
				pos = u.Pos.String()
			}
			p := Policy{Name: r.Name, Engine: r.Engine, Namespace: r.Namespace, Upgrade: *u, Server: *r.Server, Agent: r.Agent,
				StopOnFailure: r.StopOnFailure, Window: r.Window, ServiceAccount: r.ServiceAccount, Tolerations: r.Tolerations, Kairos: r.Kairos}
			if u.OS != "" {
				p.ImageTarget = image.TargetID(u.OS, u.Image)
				if !slices.Contains(deps, p.ImageTarget) {
					deps = append(deps, p.ImageTarget)
				}
			}
			s.Policies = append(s.Policies, p)
		}
		if len(s.Policies) == 0 {
			continue
		}
		for _, d := range m.Deltas {
			if d.To != v {
				continue
			}
			di := DeltaInput{From: d.From, Artifact: Artifact{Target: delta.TargetID(d.From, d.To), Kind: delta.ArtifactKind}}
			s.Deltas = append(s.Deltas, di)
			deps = append(deps, di.Target)
		}
		outs, err := s.outputs()
		if err != nil {
			return nil, err
		}
		out = append(out, step.Target{ID: TargetID(v), Kind: Kind, Spec: s, Deps: deps, Pos: pos, Outputs: outs})
	}
	return out, nil
}

// outputs lists the files the target writes, in order.
func (s *Spec) outputs() ([]string, error) {
	var out []string
	for _, p := range s.Policies {
		out = append(out, OutputPath(s.Version, "", p.Name))
	}
	for _, d := range s.Deltas {
		for _, p := range s.Policies {
			if p.Engine == EngineSUC {
				out = append(out, OutputPath(s.Version, d.From, p.Name))
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("plans %s: no policy", s.Version)
	}
	return out, nil
}
