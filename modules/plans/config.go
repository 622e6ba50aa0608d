package plans

import (
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // windows name IANA zones; Windows hosts have no zoneinfo

	"cuelang.org/go/cue"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/kubereboot/kured/pkg/timewindow"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/relcue/release/modules/image"
	"github.com/relcue/release/pipeline/config"
)

// SectionName is the plans module's configuration section: rollout.
const SectionName = "plans"

// Section decodes and checks the rollout policies.
var Section = config.Section{Name: SectionName, Decode: decodeSection}

// Rollouts is the plans section: the rollout policies by name (nil when
// none), Names listing them in order.
type Rollouts struct {
	Policies map[string]*Rollout
	Names    []string
}

// RolloutsOf returns the rollout policies of m (none when m has none).
func RolloutsOf(m *config.Model) *Rollouts {
	if r := config.SectionOf[*Rollouts](m, SectionName); r != nil {
		return r
	}
	return &Rollouts{}
}

// decoder reads the rollout section through the loader's Decoder.
type decoder struct{ *config.Decoder }

func decodeSection(d *config.Decoder) any {
	// Upgrade images may be ones an OS target builds.
	d.Section(image.SectionName)
	var raw map[string]rawRollout
	d.Decode(config.At("rollout"), &raw)
	policies, names := decoder{d}.rollouts(raw, d.Model())
	return &Rollouts{Policies: policies, Names: names}
}

// Rollout engines.
const (
	EngineSUC    = "system-upgrade-controller"
	EngineKairos = "kairos"
)

// Default node selection: k3s's and K2s's control-plane label.
const ControlPlaneLabel = "node-role.kubernetes.io/control-plane"

// OSLabel is the kubelet's operating-system label. Every plan selects
// Linux nodes unless its selector names an OS itself: a K2s cluster has a
// Windows node, which must never get the Linux upgrade image nor hold up
// the agent plan's Jobs.
const OSLabel = "kubernetes.io/os"

// The raw types of rollout mirror cue/schema/rollout.cue, which documents them.
type rawRollout struct {
	Engine         string                     `json:"engine"`
	Namespace      *string                    `json:"namespace"`
	Releases       map[string]rawUpgradeImage `json:"releases"`
	Server         rawRolloutGroup            `json:"server"`
	Agent          *rawRolloutGroup           `json:"agent"`
	StopOnFailure  bool                       `json:"stopOnFailure"`
	Window         *Window                    `json:"window"`
	ServiceAccount *string                    `json:"serviceAccount"`
	Tolerations    []Toleration               `json:"tolerations"`
	Kairos         *KairosOptions             `json:"kairos"`
}

type rawUpgradeImage struct {
	Image   string   `json:"image"`
	OS      string   `json:"os"`
	Version *string  `json:"version"`
	Command []string `json:"command"`
	Args    []string `json:"args"`
}

type rawRolloutGroup struct {
	NodeSelector *LabelSelector `json:"nodeSelector"`
	Concurrency  *int           `json:"concurrency"`
	Members      *int           `json:"members"`
	Cordon       *bool          `json:"cordon"`
	Drain        *rawDrain      `json:"drain"`
	Canary       *Canary        `json:"canary"`
}

type rawDrain struct {
	Timeout            *string        `json:"timeout"`
	GracePeriod        *int           `json:"gracePeriod"`
	DeleteEmptydirData bool           `json:"deleteEmptydirData"`
	IgnoreDaemonSets   bool           `json:"ignoreDaemonSets"`
	Force              bool           `json:"force"`
	DisableEviction    bool           `json:"disableEviction"`
	PodSelector        *LabelSelector `json:"podSelector"`
}

// Rollout is a rollout policy: how releases reach running clusters. The
// JSON tags make it part of the plans target's spec (positions excluded,
// so that moving a line does not change a cache key).
type Rollout struct {
	Name      string `json:"name"`
	Engine    string `json:"engine"`
	Namespace string `json:"namespace"`
	// Releases maps each rolled-out version to its upgrade image;
	// Versions lists them in ascending order.
	Releases       map[string]*UpgradeImage `json:"releases"`
	Versions       []string                 `json:"versions"`
	Server         *RolloutGroup            `json:"server"`
	Agent          *RolloutGroup            `json:"agent,omitempty"`
	StopOnFailure  bool                     `json:"stopOnFailure"`
	Window         *Window                  `json:"window,omitempty"`
	ServiceAccount string                   `json:"serviceAccount,omitempty"`
	Tolerations    []Toleration             `json:"tolerations,omitempty"`
	Kairos         KairosOptions            `json:"kairos"`
	Pos            config.Pos               `json:"-"`
}

// UpgradeImage is the image that upgrades nodes to one release. With OS
// set, it is an image the pipeline builds for that OS target's release,
// and plans reference it by digest.
type UpgradeImage struct {
	Image string `json:"image"`
	OS    string `json:"os,omitempty"`
	// Version is the plan's version (system-upgrade-controller): the
	// release version with "+" replaced by "-" unless set.
	Version string     `json:"version"`
	Command []string   `json:"command,omitempty"`
	Args    []string   `json:"args,omitempty"`
	Pos     config.Pos `json:"-"`
}

// RolloutGroup is a set of nodes upgraded together.
type RolloutGroup struct {
	NodeSelector LabelSelector `json:"nodeSelector"`
	Concurrency  int           `json:"concurrency"`
	Cordon       bool          `json:"cordon"`
	Drain        *Drain        `json:"drain,omitempty"`
	Canary       *Canary       `json:"canary,omitempty"`
}

// LabelSelector is a Kubernetes label selector.
type LabelSelector struct {
	MatchLabels      map[string]string  `json:"matchLabels,omitempty"`
	MatchExpressions []LabelRequirement `json:"matchExpressions,omitempty"`
}

// LabelRequirement is one matchExpressions entry.
type LabelRequirement struct {
	Key      string   `json:"key"`
	Operator string   `json:"operator"`
	Values   []string `json:"values,omitempty"`
}

// Drain is kubectl drain's options. Timeout 0 means none.
type Drain struct {
	Timeout            time.Duration  `json:"timeout,omitempty"`
	GracePeriod        *int           `json:"gracePeriod,omitempty"`
	DeleteEmptydirData bool           `json:"deleteEmptydirData"`
	IgnoreDaemonSets   bool           `json:"ignoreDaemonSets"`
	Force              bool           `json:"force"`
	DisableEviction    bool           `json:"disableEviction"`
	PodSelector        *LabelSelector `json:"podSelector,omitempty"`
}

// Canary names the label of the nodes that upgrade first, one at a time.
type Canary struct {
	Label string `json:"label"`
	Value string `json:"value"`
}

// Window is a maintenance window (system-upgrade-controller's).
type Window struct {
	Days     []string `json:"days"`
	Start    string   `json:"start"`
	End      string   `json:"end"`
	TimeZone string   `json:"timeZone"`
}

// Toleration is a Kubernetes toleration.
type Toleration struct {
	Key               string `json:"key,omitempty"`
	Operator          string `json:"operator"`
	Value             string `json:"value,omitempty"`
	Effect            string `json:"effect,omitempty"`
	TolerationSeconds *int64 `json:"tolerationSeconds,omitempty"`
}

// KairosOptions are NodeOpUpgrade's own fields.
type KairosOptions struct {
	UpgradeActive   bool `json:"upgradeActive"`
	UpgradeRecovery bool `json:"upgradeRecovery"`
	Force           bool `json:"force"`
}

// sucVersionRE is what system-upgrade-controller accepts as a version: it
// becomes an image tag and a label value.
var sucVersionRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$`)

func (b decoder) rollouts(raw map[string]rawRollout, m *config.Model) (map[string]*Rollout, []string) {
	if len(raw) == 0 {
		return nil, nil
	}
	out := map[string]*Rollout{}
	names := slices.Sorted(maps.Keys(raw))
	for _, n := range names {
		r := raw[n]
		out[n] = b.rollout(n, &r, m)
	}
	return out, names
}

func (b decoder) rollout(policy string, raw *rawRollout, m *config.Model) *Rollout {
	rp := config.At("rollout", policy)
	r := &Rollout{Name: policy, Engine: raw.Engine, StopOnFailure: raw.StopOnFailure, Pos: b.Pos(rp),
		Releases: map[string]*UpgradeImage{}, Tolerations: raw.Tolerations}
	// The longest object name is <product>-<policy>-agent-canary.
	if !config.ValidDNSLabel(policy) {
		b.Problem(rp, "%q cannot name a rollout policy, which becomes part of Kubernetes object names; use lower-case letters, digits and \"-\"", policy)
	} else if n := len(ObjectPrefix(m.Product.Name, policy)) + len("-agent-canary"); n > 63 {
		b.Problem(rp, "rollout policy name %q is too long: object names such as %s-agent-canary would have %d characters, Kubernetes allows 63", policy, ObjectPrefix(m.Product.Name, policy), n)
	}
	suc := raw.Engine == EngineSUC
	r.Namespace = b.namespace(rp, raw, suc)
	b.releases(rp, raw, m, r)
	b.groups(rp, raw, suc, r)
	if raw.Window != nil {
		r.Window = b.window(config.Join(rp, "window"), raw.Window)
	}
	if raw.ServiceAccount != nil {
		r.ServiceAccount = *raw.ServiceAccount
		if validation.IsDNS1123Subdomain(r.ServiceAccount) != nil {
			b.Problem(config.Join(rp, "serviceAccount"), "%q is not a service account name (lower-case letters, digits, \"-\" and \".\")", r.ServiceAccount)
		}
	} else if suc {
		r.ServiceAccount = "system-upgrade"
	}
	for i, t := range raw.Tolerations {
		b.toleration(config.Join(rp, "tolerations", i), t)
	}
	if raw.Kairos != nil {
		r.Kairos = *raw.Kairos
	} else {
		r.Kairos = KairosOptions{UpgradeActive: true}
	}
	b.engineFields(rp, raw, suc)
	return r
}

// namespace is where the policy's objects go (by default the engine's).
func (b decoder) namespace(rp cue.Path, raw *rawRollout, suc bool) string {
	var ns string
	switch {
	case raw.Namespace != nil:
		ns = *raw.Namespace
		if !config.ValidDNSLabel(ns) {
			b.Problem(config.Join(rp, "namespace"), "%q is not a Kubernetes namespace name (lower-case letters, digits and \"-\")", ns)
		}
	case suc:
		ns = "system-upgrade"
	default:
		ns = "default"
	}
	return ns
}

// releases maps the policy's releases, declared ones in version order.
func (b decoder) releases(rp cue.Path, raw *rawRollout, m *config.Model, r *Rollout) {
	if len(raw.Releases) == 0 {
		b.Problem(config.Join(rp, "releases"), "empty; map at least one release to its upgrade image, e.g. \"1.5.0\": {image: \"registry.example.com/upgrade:1.5.0\"}")
	}
	for _, v := range m.Versions {
		ri, ok := raw.Releases[v]
		if !ok {
			continue
		}
		r.Versions = append(r.Versions, v)
		r.Releases[v] = b.upgradeImage(config.Join(rp, "releases", v), v, &ri, m)
	}
	for _, v := range slices.Sorted(maps.Keys(raw.Releases)) {
		if _, ok := m.Releases[v]; !ok {
			b.Problem(config.Join(rp, "releases", v), "release %q is not declared under releases (declared: %s)", v, strings.Join(m.Versions, ", "))
		}
	}

}

// groups reads the server and agent groups; servers keep etcd's quorum.
func (b decoder) groups(rp cue.Path, raw *rawRollout, suc bool, r *Rollout) {
	gp := config.Join(rp, "server")
	r.Server = b.rolloutGroup(gp, &raw.Server, true, suc)
	if c := r.Server.Concurrency; c > 1 {
		members := raw.Server.Members
		switch {
		case members == nil:
			b.Problem(config.Join(gp, "concurrency"), "%d servers at a time: etcd loses quorum when a majority of its members is down; set server.members to the number of etcd members, or use 1", c)
		case c > (*members-1)/2:
			b.Problem(config.Join(gp, "concurrency"), "%d of %d servers at a time would leave %d up, fewer than the %d etcd needs for quorum; use at most %d", c, *members, *members-c, *members/2+1, max(1, (*members-1)/2))
		}
	}
	if raw.Agent != nil {
		r.Agent = b.rolloutGroup(config.Join(rp, "agent"), raw.Agent, false, suc)
	}
	if raw.Server.Canary != nil {
		b.Problem(config.Join(gp, "canary"), "canaries are for agents; servers already upgrade one at a time unless server.concurrency says otherwise")
	}

}

// engineFields refuses what the engine cannot honour: an error, never
// silently dropped.
func (b decoder) engineFields(rp cue.Path, raw *rawRollout, suc bool) {
	if suc {
		if raw.Kairos != nil {
			b.Problem(config.Join(rp, "kairos"), "kairos options need engine \"kairos\"; remove them or change the engine")
		}
		if !raw.StopOnFailure {
			b.Problem(config.Join(rp, "stopOnFailure"), "system-upgrade-controller cannot go on past a failed node (its Job keeps the node's slot); remove stopOnFailure or use engine \"kairos\"")
		}
		return
	}
	for _, f := range []struct {
		field string
		set   bool
	}{
		{"window", raw.Window != nil}, {"serviceAccount", raw.ServiceAccount != nil}, {"tolerations", raw.Tolerations != nil},
		{"server.cordon", raw.Server.Cordon != nil}, {"server.drain", raw.Server.Drain != nil},
		{"agent.cordon", raw.Agent != nil && raw.Agent.Cordon != nil}, {"agent.drain", raw.Agent != nil && raw.Agent.Drain != nil},
		{"agent.canary", raw.Agent != nil && raw.Agent.Canary != nil},
	} {
		if f.set {
			p := rp
			for _, s := range strings.Split(f.field, ".") {
				p = config.Join(p, s)
			}
			b.Problem(p, "the Kairos operator's NodeOpUpgrade has no %s; remove it or use engine %q", f.field, EngineSUC)
		}
	}
}

// ObjectPrefix starts the name of every object a policy renders. Product
// names may hold "_" and ".", which object names cannot.
func ObjectPrefix(product, policy string) string {
	return strings.NewReplacer("_", "-", ".", "-").Replace(product) + "-" + policy
}

func (b decoder) upgradeImage(p cue.Path, version string, raw *rawUpgradeImage, m *config.Model) *UpgradeImage {
	u := &UpgradeImage{Image: raw.Image, OS: raw.OS, Command: raw.Command, Args: raw.Args, Pos: b.Pos(p)}
	ref, err := name.ParseReference(raw.Image, name.StrictValidation)
	switch {
	case err != nil:
		b.Problem(config.Join(p, "image"), "%q is not a complete image reference (registry/repository:tag or @sha256:...): %v", raw.Image, err)
	case raw.OS != "":
		if _, isTag := ref.(name.Tag); !isTag {
			b.Problem(config.Join(p, "image"), "an image the pipeline builds is named by tag; the plans add its digest")
		}
		t, ok := m.OS[raw.OS]
		switch {
		case !ok:
			b.Problem(config.Join(p, "os"), "OS target %q is not declared under os", raw.OS)
		case t.Releases[version] == nil:
			b.Problem(config.Join(p, "os"), "os %s has no node content for release %s, so it builds no upgrade image for it", raw.OS, version)
		default:
			found := false
			for _, im := range image.NodeImages(m, raw.OS, version) {
				found = found || im.Ref == raw.Image
			}
			if !found {
				b.Problem(config.Join(p, "image"), "os %s release %s builds no image %s; add it to os.%s.releases.%q.images, or drop os to use an external image", raw.OS, version, raw.Image, raw.OS, version)
			}
		}
	}
	u.Version = strings.ReplaceAll(version, "+", "-")
	if raw.Version != nil {
		u.Version = *raw.Version
	}
	if !sucVersionRE.MatchString(u.Version) {
		b.Problem(config.Join(p, "version"), "%q cannot be a plan version, which becomes an image tag and a label value: letters, digits, \"_\", \".\" and \"-\", at most 63", u.Version)
	}
	return u
}

func (b decoder) rolloutGroup(p cue.Path, raw *rawRolloutGroup, server, suc bool) *RolloutGroup {
	g := &RolloutGroup{Concurrency: 1, Cordon: true}
	if raw.Concurrency != nil {
		g.Concurrency = *raw.Concurrency
	}
	if raw.Cordon != nil {
		g.Cordon = *raw.Cordon
	}
	switch {
	case raw.NodeSelector != nil:
		g.NodeSelector = *raw.NodeSelector
		b.selector(config.Join(p, "nodeSelector"), &g.NodeSelector)
	case server:
		// Exists, not In (true): kubeadm labels its control planes with
		// an empty value (k3s writes "true"), and a selector that missed
		// them would leave the servers alone while the plan reports
		// Complete.
		g.NodeSelector = LabelSelector{MatchExpressions: []LabelRequirement{{Key: ControlPlaneLabel, Operator: "Exists"}}}
	default:
		g.NodeSelector = LabelSelector{MatchExpressions: []LabelRequirement{{Key: ControlPlaneLabel, Operator: "DoesNotExist"}}}
	}
	if d := raw.Drain; d != nil {
		g.Drain = &Drain{GracePeriod: d.GracePeriod, DeleteEmptydirData: d.DeleteEmptydirData, IgnoreDaemonSets: d.IgnoreDaemonSets,
			Force: d.Force, DisableEviction: d.DisableEviction, PodSelector: d.PodSelector}
		if d.Timeout != nil {
			t, err := time.ParseDuration(*d.Timeout)
			if err != nil || t <= 0 {
				b.Problem(config.Join(p, "drain", "timeout"), "%q is not a positive duration like \"10m\" or \"1h30m\"", *d.Timeout)
			}
			g.Drain.Timeout = t
		}
		if d.PodSelector != nil {
			b.selector(config.Join(p, "drain", "podSelector"), d.PodSelector)
		}
	}
	if c := raw.Canary; c != nil && !server {
		g.Canary = c
		for _, e := range validation.IsQualifiedName(c.Label) {
			b.Problem(config.Join(p, "canary", "label"), "%q is not a label key: %s", c.Label, e)
		}
		for _, e := range validation.IsValidLabelValue(c.Value) {
			b.Problem(config.Join(p, "canary", "value"), "%q is not a label value: %s", c.Value, e)
		}
	}
	return g
}

// selector checks a label selector the way the API server will, and
// refuses an empty one: it would select every node.
func (b decoder) selector(p cue.Path, s *LabelSelector) {
	if len(s.MatchLabels) == 0 && len(s.MatchExpressions) == 0 {
		b.Problem(p, "empty: it would select every node; give matchLabels or matchExpressions")
		return
	}
	ls := &metav1.LabelSelector{MatchLabels: s.MatchLabels}
	for _, e := range s.MatchExpressions {
		ls.MatchExpressions = append(ls.MatchExpressions, metav1.LabelSelectorRequirement{
			Key: e.Key, Operator: metav1.LabelSelectorOperator(e.Operator), Values: e.Values})
	}
	if _, err := metav1.LabelSelectorAsSelector(ls); err != nil {
		b.Problem(p, "invalid label selector: %v", err)
	}
}

// window checks a maintenance window with the parser the controller
// itself uses (kured's timewindow), so a window that loads here is one
// system-upgrade-controller accepts.
func (b decoder) window(p cue.Path, w *Window) *Window {
	if len(w.Days) == 0 {
		b.Problem(config.Join(p, "days"), "empty; name at least one day, e.g. [\"saturday\", \"sunday\"]")
	}
	for i, d := range w.Days {
		if !validDay(d) {
			b.Problem(config.Join(p, "days", i), "%q is not a day; write sunday..saturday, su..sa, sun..sat or 0..6", d)
		}
	}
	if _, err := time.LoadLocation(w.TimeZone); err != nil {
		b.Problem(config.Join(p, "timeZone"), "%q is not an IANA time zone such as \"UTC\" or \"Europe/Berlin\"", w.TimeZone)
		return w
	}
	for _, f := range []struct{ field, v string }{{"start", w.Start}, {"end", w.End}} {
		if _, err := timewindow.New([]string{"sunday"}, f.v, f.v, w.TimeZone); err != nil {
			b.Problem(config.Join(p, f.field), "%q is not a time of day; write it like \"01:30\" (24-hour) or \"1:30 AM\"", f.v)
		}
	}
	if w.Start == w.End {
		b.Problem(config.Join(p, "end"), "the window is empty: end equals start")
	}
	return w
}

func validDay(d string) bool {
	switch strings.ToLower(d) {
	case "0", "su", "sun", "sunday", "1", "mo", "mon", "monday", "2", "tu", "tue", "tuesday",
		"3", "we", "wed", "wednesday", "4", "th", "thu", "thursday", "5", "fr", "fri", "friday",
		"6", "sa", "sat", "saturday":
		return true
	}
	return false
}

func (b decoder) toleration(p cue.Path, t Toleration) {
	if t.Key != "" {
		for _, e := range validation.IsQualifiedName(t.Key) {
			b.Problem(config.Join(p, "key"), "%q is not a taint key: %s", t.Key, e)
		}
	}
	switch {
	case t.Operator == "Exists" && t.Value != "":
		b.Problem(config.Join(p, "value"), "operator Exists matches any value; remove value or use operator Equal")
	case t.Operator == "Equal" && t.Key == "":
		b.Problem(p, "operator Equal needs a key")
	}
	if t.TolerationSeconds != nil && t.Effect != "NoExecute" {
		b.Problem(config.Join(p, "tolerationSeconds"), "only NoExecute tolerations have tolerationSeconds (effect is %q)", t.Effect)
	}
}
