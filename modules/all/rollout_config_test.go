package all

import (
	"slices"
	"testing"
	"time"

	"github.com/relcue/release/modules/plans"
	"github.com/relcue/release/pipeline/config"
	"github.com/relcue/release/pipeline/config/configtest"
)

// rolloutValid is valid plus an external upgrade image per release, on
// lines 9 and 10; a case's own lines start at line 11.
const rolloutValid = configtest.Valid + `_u: image: "registry.example.com/k2s/upgrade:1.5.0"
_sel: matchLabels: role: "worker"
`

var rolloutErrorCases = []struct {
	name string
	src  string
	want []string
}{
	{
		name: "unknown engine",
		src:  rolloutValid + `rollout: r: {engine: "flux", releases: "1.5.0": _u}` + "\n",
		want: []string{`release.cue:11:22: rollout.r.engine: invalid value "flux" (want "system-upgrade-controller" | "kairos")`},
	},
	{
		name: "negative concurrency",
		src:  rolloutValid + `rollout: r: {engine: "kairos", releases: "1.5.0": _u, agent: concurrency: -2}` + "\n",
		want: []string{`release.cue:11:75: rollout.r.agent.concurrency: invalid value -2 (out of bound >=1)`},
	},
	{
		name: "undeclared release",
		src:  rolloutValid + `rollout: r: {engine: "kairos", releases: {"1.5.0": _u, "1.6.0": _u}}` + "\n",
		want: []string{`release.cue:11:56: rollout.r.releases."1.6.0": release "1.6.0" is not declared under releases (declared: 1.4.0, 1.5.0)`},
	},
	{
		name: "malformed window",
		src: rolloutValid + `rollout: r: {engine: "system-upgrade-controller", releases: "1.5.0": _u}
rollout: r: window: {days: ["saturday", "caturday"], start: "25:00", end: "5am", timeZone: "Mars/Olympus"}
rollout: s: {engine: "system-upgrade-controller", releases: "1.5.0": _u}
rollout: s: window: {days: [], start: "01:00", end: "01:00"}
`,
		want: []string{
			`release.cue:12:41: rollout.r.window.days[1]: "caturday" is not a day; write sunday..saturday, su..sa, sun..sat or 0..6`,
			`release.cue:12:92: rollout.r.window.timeZone: "Mars/Olympus" is not an IANA time zone such as "UTC" or "Europe/Berlin"`,
			`release.cue:14:22: rollout.s.window.days: empty; name at least one day, e.g. ["saturday", "sunday"]`,
			`release.cue:14:53: rollout.s.window.end: the window is empty: end equals start`,
		},
	},
	{
		name: "window times",
		src: rolloutValid + `rollout: r: {engine: "system-upgrade-controller", releases: "1.5.0": _u}
rollout: r: window: {days: ["sat"], start: "25:00", end: "half past five"}
`,
		want: []string{
			`release.cue:12:44: rollout.r.window.start: "25:00" is not a time of day; write it like "01:30" (24-hour) or "1:30 AM"`,
			`release.cue:12:58: rollout.r.window.end: "half past five" is not a time of day; write it like "01:30" (24-hour) or "1:30 AM"`,
		},
	},
	{
		name: "etcd quorum",
		src: rolloutValid + `rollout: a: {engine: "system-upgrade-controller", releases: "1.5.0": _u, server: concurrency: 2}
rollout: b: {engine: "system-upgrade-controller", releases: "1.5.0": _u, server: {concurrency: 2, members: 3}}
rollout: c: {engine: "system-upgrade-controller", releases: "1.5.0": _u, server: {concurrency: 2, members: 5}}
`,
		want: []string{
			`release.cue:11:95: rollout.a.server.concurrency: 2 servers at a time: etcd loses quorum when a majority of its members is down; set server.members to the number of etcd members, or use 1`,
			`release.cue:12:96: rollout.b.server.concurrency: 2 of 3 servers at a time would leave 1 up, fewer than the 2 etcd needs for quorum; use at most 1`,
		},
	},
	{
		name: "selectors and images",
		src: rolloutValid + `rollout: r: {engine: "system-upgrade-controller", releases: {
	"1.4.0": image: "upgrade:1.4.0"
	"1.5.0": {image: "registry.example.com/k2s/upgrade:1.5.0", os: "debian12"}
}}
rollout: r: agent: {nodeSelector: {}, drain: podSelector: matchExpressions: [{key: "a", operator: "In"}]}
rollout: r: agent: canary: label: "not a label"
`,
		want: []string{
			`release.cue:12:18: rollout.r.releases."1.4.0".image: "upgrade:1.4.0" is not a complete image reference (registry/repository:tag or @sha256:...): could not parse reference: upgrade:1.4.0`,
			`release.cue:13:65: rollout.r.releases."1.5.0".os: OS target "debian12" is not declared under os`,
			`release.cue:15:21: rollout.r.agent.nodeSelector: empty: it would select every node; give matchLabels or matchExpressions`,
			`release.cue:15:46: rollout.r.agent.drain.podSelector: invalid label selector: values: Invalid value: null: for 'in', 'notin' operators, values set can't be empty`,
			`release.cue:16:35: rollout.r.agent.canary.label: "not a label" is not a label key: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')`,
		},
	},
	{
		name: "engine mismatches",
		src: rolloutValid + `rollout: suc: {engine: "system-upgrade-controller", releases: "1.5.0": _u, stopOnFailure: false, kairos: force: true}
rollout: k: {engine: "kairos", releases: "1.5.0": _u, window: {days: ["sat"], start: "01:00", end: "02:00"}}
rollout: k: {serviceAccount: "sa", agent: {drain: {}, canary: label: "c"}}
`,
		want: []string{
			`release.cue:11:91: rollout.suc.stopOnFailure: system-upgrade-controller cannot go on past a failed node (its Job keeps the node's slot); remove stopOnFailure or use engine "kairos"`,
			`release.cue:11:98: rollout.suc.kairos: kairos options need engine "kairos"; remove them or change the engine`,
			`release.cue:12:55: rollout.k.window: the Kairos operator's NodeOpUpgrade has no window; remove it or use engine "system-upgrade-controller"`,
			`release.cue:13:30: rollout.k.serviceAccount: the Kairos operator's NodeOpUpgrade has no serviceAccount; remove it or use engine "system-upgrade-controller"`,
			`release.cue:13:44: rollout.k.agent.drain: the Kairos operator's NodeOpUpgrade has no agent.drain; remove it or use engine "system-upgrade-controller"`,
			`release.cue:13:55: rollout.k.agent.canary: the Kairos operator's NodeOpUpgrade has no agent.canary; remove it or use engine "system-upgrade-controller"`,
		},
	},
}

func TestRolloutErrors(t *testing.T) {
	for _, tc := range rolloutErrorCases {
		t.Run(tc.name, func(t *testing.T) {
			configtest.CheckErrors(t, tc.src, "", tc.want, Sections())
		})
	}
}

// An upgrade image the pipeline builds must be one its OS release builds.
func TestRolloutBuiltImage(t *testing.T) {
	src := osValid + `os: debian12: {distro: "debian", codename: "bookworm", releases: "1.5.0": images: [_img]}
rollout: r: {engine: "system-upgrade-controller", releases: {
	"1.4.0": {image: "registry.k8s.io/pause:3.10", os: "debian12"}
	"1.5.0": {image: "registry.k8s.io/pause:3.9", os: "debian12"}
}}
`
	configtest.CheckErrors(t, src, "", []string{
		`release.cue:13:53: rollout.r.releases."1.4.0".os: os debian12 has no node content for release 1.4.0, so it builds no upgrade image for it`,
		`release.cue:14:19: rollout.r.releases."1.5.0".image: os debian12 release 1.5.0 builds no image registry.k8s.io/pause:3.9; add it to os.debian12.releases."1.5.0".images, or drop os to use an external image`,
	}, Sections())
}

// Defaults: servers one at a time on control-plane nodes, agents on the
// others, cordoned; engine-specific namespace and service account.
func TestRolloutDefaults(t *testing.T) {
	dir := configtest.Write(t, rolloutValid+`rollout: suc: {engine: "system-upgrade-controller", releases: "1.5.0": _u, agent: {}}
rollout: k: {engine: "kairos", releases: {"1.5.0": _u, "1.4.0": {image: "registry.example.com/os:1.4.0-k3s1", version: "v1.4.0"}}}
rollout: suc: agent: drain: timeout: "90s"
rollout: suc: window: {days: ["Saturday"], start: "22:00", end: "04:00"}
`)
	m, err := config.Load(dir, config.LoadOptions{Env: configtest.NoEnv, Sections: Sections()})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(plans.RolloutsOf(m).Names, []string{"k", "suc"}) {
		t.Fatalf("names %v", plans.RolloutsOf(m).Names)
	}
	s, k := plans.RolloutsOf(m).Policies["suc"], plans.RolloutsOf(m).Policies["k"]
	if s.Namespace != "system-upgrade" || s.ServiceAccount != "system-upgrade" || !s.StopOnFailure ||
		k.Namespace != "default" || k.ServiceAccount != "" || !k.Kairos.UpgradeActive || k.Kairos.UpgradeRecovery {
		t.Errorf("defaults: %+v / %+v", s, k)
	}
	if g := s.Server; g.Concurrency != 1 || !g.Cordon || g.NodeSelector.MatchExpressions[0].Key != plans.ControlPlaneLabel || g.NodeSelector.MatchExpressions[0].Operator != "Exists" {
		t.Errorf("server: %+v", g)
	}
	if g := s.Agent; g.Concurrency != 1 || g.NodeSelector.MatchExpressions[0].Operator != "DoesNotExist" || g.Drain.Timeout != 90*time.Second || !g.Drain.IgnoreDaemonSets || !g.Drain.DeleteEmptydirData {
		t.Errorf("agent: %+v %+v", g, g.Drain)
	}
	if s.Window.TimeZone != "UTC" {
		t.Errorf("window %+v", s.Window)
	}
	if !slices.Equal(k.Versions, []string{"1.4.0", "1.5.0"}) || k.Releases["1.5.0"].Version != "1.5.0" || k.Releases["1.4.0"].Version != "v1.4.0" {
		t.Errorf("kairos releases %v %+v", k.Versions, k.Releases)
	}
}
