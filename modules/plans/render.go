package plans

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	upgradev1 "github.com/rancher/system-upgrade-controller/pkg/apis/upgrade.cattle.io/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/relcue/release/modules/plans/kairos"
)

// VersionLabel is the node label system-upgrade-controller sets when a node
// has upgraded (postCompleteLabels); plans that upgrade through a delta
// select the nodes whose label names the delta's base.
const VersionLabel = "release.relcue.dev/version"

// DigestAnnotation and DigestFields make system-upgrade-controller include
// the upgrade image (pinned by digest) and the package's env (file and
// sha256) in the hash that decides whether a node must run a plan again.
const (
	DigestAnnotation = "upgrade.cattle.io/digest"
	DigestFields     = "spec.upgrade.image,spec.upgrade.envs"
)

// Environment of the upgrade container: what it installs, pinned.
const (
	EnvProduct       = "RELEASE_PRODUCT"
	EnvVersion       = "RELEASE_VERSION"
	EnvFrom          = "RELEASE_FROM"
	EnvPackage       = "RELEASE_PACKAGE"
	EnvPackageSHA256 = "RELEASE_PACKAGE_SHA256"
)

// Pinned is a released file by name and digest.
type Pinned struct {
	File   string `json:"file"`
	SHA256 string `json:"sha256"`
}

// Pins are the facts about built artifacts the plans are pinned to.
type Pins struct {
	Package Pinned
	// Deltas by base version.
	Deltas map[string]Pinned
	// Images maps a policy to its upgrade image reference, by digest when
	// the pipeline built it.
	Images map[string]string
}

// Render renders every file of the spec, by output path.
func Render(s *Spec, pins Pins) (map[string][]byte, error) {
	out := map[string][]byte{}
	for i := range s.Policies {
		p := &s.Policies[i]
		img, ok := pins.Images[p.Name]
		if !ok {
			return nil, fmt.Errorf("plans %s: no upgrade image for policy %s", s.Version, p.Name)
		}
		data, err := renderPolicy(s, p, img, pins.Package, "")
		if err != nil {
			return nil, err
		}
		out[OutputPath(s.Version, "", p.Name)] = data
		if p.Engine != EngineSUC {
			continue // Kairos upgrades to a whole OS image; it has no deltas
		}
		for _, d := range s.Deltas {
			pin, ok := pins.Deltas[d.From]
			if !ok {
				return nil, fmt.Errorf("plans %s: no delta from %s", s.Version, d.From)
			}
			data, err := renderPolicy(s, p, img, pin, d.From)
			if err != nil {
				return nil, err
			}
			out[OutputPath(s.Version, d.From, p.Name)] = data
		}
	}
	return out, nil
}

func renderPolicy(s *Spec, p *Policy, img string, pkg Pinned, from string) ([]byte, error) {
	var objs []any
	switch p.Engine {
	case EngineSUC:
		for _, pl := range sucPlans(s, p, img, pkg, from) {
			objs = append(objs, pl)
		}
	case EngineKairos:
		for _, n := range kairosUpgrades(s, p, img) {
			objs = append(objs, n)
		}
	default:
		return nil, fmt.Errorf("plans %s: policy %s: unknown engine %q", s.Version, p.Name, p.Engine)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# %s %s: rollout policy %s (%s), rendered by release.\n", s.Product, s.Version, p.Name, p.Engine)
	if from != "" {
		fmt.Fprintf(&b, "# Upgrades nodes labelled %s=%s through %s.\n", VersionLabel, labelValue(from), pkg.File)
	} else {
		fmt.Fprintf(&b, "# Installs %s.\n", pkg.File)
	}
	fmt.Fprintf(&b, "# %s sha256:%s\n# upgrade image %s\n", pkg.File, pkg.SHA256, img)
	for _, o := range objs {
		y, err := toYAML(o)
		if err != nil {
			return nil, fmt.Errorf("plans %s: policy %s: %w", s.Version, p.Name, err)
		}
		b.WriteString("---\n")
		b.Write(y)
	}
	return b.Bytes(), nil
}

// toYAML writes an API object without the fields that only a server
// fills in (status, metadata.creationTimestamp), which the upstream types
// would otherwise write as {} and null.
func toYAML(obj any) ([]byte, error) {
	j, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	delete(m, "status")
	if md, ok := m["metadata"].(map[string]any); ok {
		delete(md, "creationTimestamp")
	}
	if j, err = json.Marshal(m); err != nil {
		return nil, err
	}
	return yaml.JSONToYAML(j)
}

func objectMeta(s *Spec, p *Policy, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:      name,
		Namespace: p.Namespace,
		Labels: map[string]string{
			"app.kubernetes.io/name":       s.Product,
			"app.kubernetes.io/version":    labelValue(s.Version),
			"app.kubernetes.io/managed-by": "release",
			"release.relcue.dev/policy":    p.Name,
		},
	}
}

// labelValue writes a version as a label value, which cannot hold "+".
func labelValue(v string) string { return strings.ReplaceAll(v, "+", "_") }

// sucPlans are the Plans of one policy, in the order they run: the server
// plan, then (when the policy has agents) the canary plan and the agent
// plan, each waiting in its prepare step for the plan before it, as k3s
// upgrades are run.
func sucPlans(s *Spec, p *Policy, img string, pkg Pinned, from string) []*upgradev1.Plan {
	prefix := ObjectPrefix(s.Product, p.Name)
	envs := []corev1.EnvVar{
		{Name: EnvProduct, Value: s.Product},
		{Name: EnvVersion, Value: s.Version},
	}
	if from != "" {
		envs = append(envs, corev1.EnvVar{Name: EnvFrom, Value: from})
	}
	envs = append(envs, corev1.EnvVar{Name: EnvPackage, Value: pkg.File}, corev1.EnvVar{Name: EnvPackageSHA256, Value: pkg.SHA256})
	upgrade := func() *upgradev1.ContainerSpec {
		return &upgradev1.ContainerSpec{Image: img, Command: p.Upgrade.Command, Args: p.Upgrade.Args, Env: envs}
	}
	plan := func(name string, g *RolloutGroup, sel metav1.LabelSelector, concurrency int, waitFor string) *upgradev1.Plan {
		pl := &upgradev1.Plan{
			TypeMeta:   metav1.TypeMeta{APIVersion: "upgrade.cattle.io/v1", Kind: "Plan"},
			ObjectMeta: objectMeta(s, p, name),
			Spec: upgradev1.PlanSpec{
				Concurrency:        int64(concurrency),
				NodeSelector:       &sel,
				ServiceAccountName: p.ServiceAccount,
				Version:            p.Upgrade.Version,
				Tolerations:        tolerations(p.Tolerations),
				Window:             window(p.Window),
				Upgrade:            upgrade(),
				Cordon:             g.Cordon,
				Drain:              drain(g.Drain),
				PostCompleteLabels: map[string]string{VersionLabel: labelValue(s.Version)},
			},
		}
		if waitFor != "" {
			pl.Spec.Prepare = &upgradev1.ContainerSpec{Image: img, Args: []string{"prepare", waitFor}}
		}
		// SUC re-runs a plan on a node only when the plan's hash changes,
		// and hashes the version, not the image: a rebuilt upgrade image
		// (or another package) under the same version would never reach
		// nodes already upgraded. The annotation adds these fields to the
		// hash (pkg/upgrade/plan/plan.go, addToHashFromAnnotation).
		pl.Annotations = map[string]string{DigestAnnotation: DigestFields}
		return pl
	}
	baseSel := func(g *RolloutGroup) metav1.LabelSelector {
		sel := selector(g.NodeSelector)
		if !namesOS(sel) {
			sel.MatchExpressions = append(sel.MatchExpressions, metav1.LabelSelectorRequirement{
				Key: OSLabel, Operator: metav1.LabelSelectorOpIn, Values: []string{"linux"}})
		}
		if from != "" {
			sel.MatchExpressions = append(sel.MatchExpressions, metav1.LabelSelectorRequirement{
				Key: VersionLabel, Operator: metav1.LabelSelectorOpIn, Values: []string{labelValue(from)}})
		}
		return sel
	}
	server := prefix + "-server"
	out := []*upgradev1.Plan{plan(server, &p.Server, baseSel(&p.Server), p.Server.Concurrency, "")}
	a := p.Agent
	if a == nil {
		return out
	}
	waitFor := server
	rest := baseSel(a)
	if c := a.Canary; c != nil {
		canary := prefix + "-agent-canary"
		sel := baseSel(a)
		sel.MatchExpressions = append(sel.MatchExpressions, metav1.LabelSelectorRequirement{
			Key: c.Label, Operator: metav1.LabelSelectorOpIn, Values: []string{c.Value}})
		out = append(out, plan(canary, a, sel, 1, server))
		rest.MatchExpressions = append(rest.MatchExpressions, metav1.LabelSelectorRequirement{
			Key: c.Label, Operator: metav1.LabelSelectorOpNotIn, Values: []string{c.Value}})
		waitFor = canary
	}
	return append(out, plan(prefix+"-agent", a, rest, a.Concurrency, waitFor))
}

// namesOS reports whether a selector already says which operating system
// it selects.
func namesOS(sel metav1.LabelSelector) bool {
	if _, ok := sel.MatchLabels[OSLabel]; ok {
		return true
	}
	for _, e := range sel.MatchExpressions {
		if e.Key == OSLabel {
			return true
		}
	}
	return false
}

// kairosUpgrades are the NodeOpUpgrades of one policy: servers, then
// agents. The operator has no way to order two of them, so the file lists
// the server's first and docs/rollout.md says to wait for it.
func kairosUpgrades(s *Spec, p *Policy, img string) []*kairos.NodeOpUpgrade {
	prefix := ObjectPrefix(s.Product, p.Name)
	one := func(name string, g *RolloutGroup) *kairos.NodeOpUpgrade {
		sel := selector(g.NodeSelector)
		return &kairos.NodeOpUpgrade{
			TypeMeta:   metav1.TypeMeta{APIVersion: kairos.APIVersion, Kind: kairos.Kind},
			ObjectMeta: objectMeta(s, p, name),
			Spec: kairos.NodeOpUpgradeSpec{
				NodeSelector:    &sel,
				Image:           img,
				Concurrency:     int32(g.Concurrency),
				StopOnFailure:   ptr(p.StopOnFailure),
				UpgradeActive:   ptr(p.Kairos.UpgradeActive),
				UpgradeRecovery: ptr(p.Kairos.UpgradeRecovery),
				Force:           ptr(p.Kairos.Force),
			},
		}
	}
	out := []*kairos.NodeOpUpgrade{one(prefix+"-server", &p.Server)}
	if p.Agent != nil {
		out = append(out, one(prefix+"-agent", p.Agent))
	}
	return out
}

func ptr[T any](v T) *T { return &v }

func selector(s LabelSelector) metav1.LabelSelector {
	out := metav1.LabelSelector{MatchLabels: s.MatchLabels}
	for _, e := range s.MatchExpressions {
		out.MatchExpressions = append(out.MatchExpressions, metav1.LabelSelectorRequirement{
			Key: e.Key, Operator: metav1.LabelSelectorOperator(e.Operator), Values: e.Values})
	}
	return out
}

func drain(d *Drain) *upgradev1.DrainSpec {
	if d == nil {
		return nil
	}
	out := &upgradev1.DrainSpec{
		DeleteEmptydirData: ptr(d.DeleteEmptydirData),
		IgnoreDaemonSets:   ptr(d.IgnoreDaemonSets),
		Force:              d.Force,
		DisableEviction:    d.DisableEviction,
	}
	if d.Timeout > 0 {
		t := intstr.FromString(d.Timeout.String())
		out.Timeout = &t
	}
	if d.GracePeriod != nil {
		out.GracePeriod = ptr(int32(*d.GracePeriod))
	}
	if d.PodSelector != nil {
		sel := selector(*d.PodSelector)
		out.PodSelector = &sel
	}
	return out
}

func window(w *Window) *upgradev1.TimeWindowSpec {
	if w == nil {
		return nil
	}
	out := &upgradev1.TimeWindowSpec{StartTime: w.Start, EndTime: w.End, TimeZone: w.TimeZone}
	for _, d := range w.Days {
		out.Days = append(out.Days, upgradev1.Day(strings.ToLower(d)))
	}
	return out
}

func tolerations(ts []Toleration) []corev1.Toleration {
	var out []corev1.Toleration
	for _, t := range ts {
		out = append(out, corev1.Toleration{Key: t.Key, Operator: corev1.TolerationOperator(t.Operator), Value: t.Value,
			Effect: corev1.TaintEffect(t.Effect), TolerationSeconds: t.TolerationSeconds})
	}
	return out
}
