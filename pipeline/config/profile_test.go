package config

import (
	"slices"
	"strings"
	"testing"
)

// TestDefaultsOf reads both profiles' defaults from the embedded schema.
func TestDefaultsOf(t *testing.T) {
	g, err := DefaultsOf(ProfileGeneric)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(g.WholeDirectories, []string{"bin/cni"}) {
		t.Errorf("generic wholeDirectories = %v", g.WholeDirectories)
	}
	if !slices.Contains(g.Skip, "etc/kubernetes/pki/**") || !slices.Contains(g.Skip, "var/lib/kubelet/pki/**") {
		t.Errorf("generic skip = %v", g.Skip)
	}
	if len(g.SkipNames)+len(g.Always)+len(g.Nested) != 0 || g.ApplyScript != nil {
		t.Errorf("generic has k2s defaults: %+v", g)
	}

	k, err := DefaultsOf(ProfileK2s)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"k2s.exe", "VERSION", "lib/modules/k2s/k2s.cluster.module/update/update.module.psm1",
		"lib/scripts/k2s/system/upgrade/Start-ClusterUpgrade.ps1", "lib/scripts/k2s/system/update/Start-ClusterUpdate.ps1"} {
		if !slices.Contains(k.Always, want) {
			t.Errorf("k2s always lacks %s: %v", want, k.Always)
		}
	}
	if !slices.Contains(k.Skip, "(?i)addons/**") || !slices.Contains(k.SkipNames, "WindowsNodeArtifacts.zip") || !slices.Contains(k.SkipNames, "config") {
		t.Errorf("k2s skip = %v, skipNames = %v", k.Skip, k.SkipNames)
	}
	if len(k.Nested) != 1 || k.Nested[0].Archive != "bin/WindowsNodeArtifacts.zip" || k.Nested[0].WindowsImages != "images" {
		t.Fatalf("k2s nested = %+v", k.Nested)
	}
	var kube, bin, flannel *NestedFolder
	for i, f := range k.Nested[0].Folders {
		switch f.From {
		case "kubetools":
			kube = &k.Nested[0].Folders[i]
		case "nssm":
			bin = &k.Nested[0].Folders[i]
		case "cni_flannel":
			flannel = &k.Nested[0].Folders[i]
		}
	}
	if kube == nil || kube.To != "bin/kube" || !kube.Whole || bin == nil || bin.To != "bin" || bin.Whole ||
		flannel == nil || flannel.Rename["flannel-amd64.exe"] != "flannel.exe" {
		t.Errorf("k2s folders = %+v", k.Nested[0].Folders)
	}
	if k.ApplyScript == nil || k.ApplyScript.Function != "PerformClusterUpdate" || len(k.ApplyScript.Preload) != 3 {
		t.Errorf("k2s applyScript = %+v", k.ApplyScript)
	}
	// Copies: changing one result changes nothing the next call returns.
	k.Always[0] = "x"
	k.Nested[0].Folders[0].To = "x"
	again, _ := DefaultsOf(ProfileK2s)
	if again.Always[0] == "x" || again.Nested[0].Folders[0].To == "x" {
		t.Error("DefaultsOf returns shared lists")
	}
	if _, err := DefaultsOf("k3s"); err == nil {
		t.Error("DefaultsOf(k3s) succeeded")
	}
}

// TestK2sProfileDefaults: profile k2s applies K2s's skip rules, skip
// names, mandatory files, nested archive and apply script; what the
// configuration sets wins.
func TestK2sProfileDefaults(t *testing.T) {
	dir := writeConfig(t, `
product: {name: "k2s", profile: "k2s"}
build: sourceDateEpoch: 0
releases: {
	"1.4.0": zip: path: "a.zip"
	"1.4.1": zip: path: "b.zip"
	"1.5.0": zip: path: "c.zip"
}
deltas: paths: [
	{from: "1.4.0", to: "1.5.0"},
	{from: "1.4.1", to: "1.5.0", skip: ["x/**"], skipNames: []},
]
`)
	m, err := Load(dir, LoadOptions{Env: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	k, _ := DefaultsOf(ProfileK2s)
	if m.Product.Profile != ProfileK2s {
		t.Errorf("profile %q", m.Product.Profile)
	}
	d0, d1 := m.Deltas[0], m.Deltas[1]
	equal(t, []any{d0.Skip, d0.SkipNames}, []any{k.Skip, k.SkipNames})
	equal(t, []any{d1.Skip, d1.SkipNames}, []any{[]string{"x/**"}, []string{}})
	equal(t, m.DeltaLayout, DeltaLayout{Always: k.Always, Nested: k.Nested, ApplyScript: k.ApplyScript})

	// Set in the configuration, they replace the defaults.
	dir = writeConfig(t, `
product: {name: "k2s", profile: "k2s"}
build: sourceDateEpoch: 0
releases: {
	"1.4.0": zip: path: "a.zip"
	"1.5.0": zip: path: "c.zip"
}
deltas: {
	always: ["k2s.exe", "VERSION"]
	nested: [{archive: "bin/tools.zip", folders: [{from: "kube", to: "bin/kube"}]}]
	applyScript: {module: "lib/update.psm1", function: "Update-Product"}
}
`)
	if m, err = Load(dir, LoadOptions{Env: noEnv}); err != nil {
		t.Fatal(err)
	}
	nestedPos := Pos{File: m.DeltaLayout.Nested[0].Pos.File, Line: 11, Col: 11}
	equal(t, m.DeltaLayout, DeltaLayout{
		Always:      []string{"VERSION", "k2s.exe"},
		Nested:      []NestedArchive{{Archive: "bin/tools.zip", Folders: []NestedFolder{{From: "kube", To: "bin/kube", Whole: true}}, Pos: nestedPos}},
		ApplyScript: &ApplyScript{Module: "lib/update.psm1", Function: "Update-Product", Preload: []string{}},
	})
}

// TestK2sPoliciesFollowK2sVersionRules: with profile k2s, policies expand
// over X.Y.Z releases only and never across a major; generic keeps them.
func TestK2sPoliciesFollowK2sVersionRules(t *testing.T) {
	src := func(profile string) string {
		return `
product: {name: "k2s", profile: "` + profile + `"}
build: sourceDateEpoch: 0
releases: {
	"1.9.0": zip: path: "a.zip"
	"1.9.1": zip: path: "b.zip"
	"2.0.0-rc.1": zip: path: "c.zip"
	"2.0.0": zip: path: "d.zip"
	"2.1.0": zip: path: "e.zip"
	"2.1.1-rc.1": zip: path: "f.zip"
}
deltas: policies: [{from: "all-earlier", to: "newest-per-minor"}]
`
	}
	paths := func(m *Model) string {
		var s []string
		for _, d := range m.Deltas {
			s = append(s, d.From+".."+d.To)
		}
		return strings.Join(s, " ")
	}
	m, err := Load(writeConfig(t, src(ProfileK2s)), LoadOptions{Env: noEnv})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := paths(m), "1.9.0..1.9.1 2.0.0..2.1.0"; got != want {
		t.Errorf("k2s: %s, want %s", got, want)
	}
	if m, err = Load(writeConfig(t, src(ProfileGeneric)), LoadOptions{Env: noEnv}); err != nil {
		t.Fatal(err)
	}
	if got := paths(m); !strings.Contains(got, "1.9.0..2.0.0") || !strings.Contains(got, "2.1.0..2.1.1-rc.1") || !strings.Contains(got, "2.0.0-rc.1..2.0.0") {
		t.Errorf("generic: %s", got)
	}
}

// TestK2sProfileErrors: what K2s's apply refuses is refused at load time,
// at the field that asks for it, with what to do.
func TestK2sProfileErrors(t *testing.T) {
	const head = `
product: {name: "k2s", profile: "k2s"}
build: sourceDateEpoch: 0
releases: {
	"1.9.3": zip: path: "a.zip"
	"2.0.0-rc.1": zip: path: "b.zip"
	"2.0.0": zip: path: "c.zip"
	"2.0.1+build.5": zip: path: "d.zip"
}
`
	why := "K2s's apply accepts only X.Y.Z to a greater X.Y.Z of the same major (update.module.psm1, Test-DeltaUpgradeVersionIsValid)"
	binary := `mode "binary" cannot be used with profile k2s: K2s's apply copies every file listed in Changed from the delta and only warns "Source missing in delta" for one shipped as a patch (update.module.psm1, PerformClusterUpdate), so it would keep the old binary and still report success; use mode "file", or profile "generic" and release apply`
	checkErrorCase(t, head+`deltas: {
	defaults: mode: "binary"
	paths: [
		{from: "1.9.3", to: "2.0.0"},
		{from: "1.9.3", to: "2.0.0-rc.1"},
		{from: "2.0.0", to: "2.0.1+build.5", mode: "binary"},
	]
	policies: [{from: "same-minor", mode: "binary"}]
}
`, "", []string{
		"release.cue:12:18: deltas.defaults.mode: " + binary,
		"release.cue:14:3: deltas.paths[0]: delta 1.9.3..2.0.0: profile k2s: 1.9.3 and 2.0.0 are of different majors; " + why + ", so upgrade across majors with the full package of 2.0.0, or remove the path",
		"release.cue:15:3: deltas.paths[1]: delta 1.9.3..2.0.0-rc.1: profile k2s: 2.0.0-rc.1 is not a plain X.Y.Z version; " + why + ", so ship 2.0.0-rc.1 as a full package, or remove the path",
		"release.cue:16:3: deltas.paths[2]: delta 2.0.0..2.0.1+build.5: profile k2s: 2.0.1+build.5 is not a plain X.Y.Z version; " + why + ", so ship 2.0.1+build.5 as a full package, or remove the path",
		"release.cue:16:46: deltas.paths[2].mode: " + binary,
		"release.cue:18:40: deltas.policies[0].mode: " + binary,
	})

	checkErrorCase(t, `
product: name: "k2s"
build: sourceDateEpoch: 0
releases: "1.0.0": zip: path: "a.zip"
deltas: {
	applyScript: {module: "../x.psm1", function: "Go", preload: ["C:/k/a.psm1"]}
	always: ["k2s.exe", "/VERSION", "k2s.exe"]
	defaults: skipNames: ["", "bin/trivy.exe"]
	nested: [
		{archive: "bin/a.zip", folders: []},
		{archive: "bin/a.zip", folders: [{from: "k", to: "bin/kube"}, {from: "d", to: "bin/kube", whole: false, rename: "a/b": "c"}], windowsImages: "../images"},
	]
}
`, "", []string{
		`release.cue:7:2: deltas.applyScript: Apply-Delta.ps1 is written with profile k2s only; set product: profile: "k2s", or remove applyScript`,
		`release.cue:7:24: deltas.applyScript.module: "../x.psm1" contains ".."; paths must stay inside the tree`,
		`release.cue:7:63: deltas.applyScript.preload[0]: "C:/k/a.psm1" is absolute; write it relative to the tree root`,
		`release.cue:8:22: deltas.always[1]: "/VERSION" is absolute; write it relative to the tree root`,
		`release.cue:8:34: deltas.always[2]: k2s.exe is listed twice (also at index 0); remove one`,
		`release.cue:9:24: deltas.defaults.skipNames[0]: empty name; name a file, e.g. "trivy.exe" (skipNames match in every directory)`,
		`release.cue:9:28: deltas.defaults.skipNames[1]: "bin/trivy.exe" is a path; name a file (skipNames match in every directory)`,
		`release.cue:11:26: deltas.nested[0].folders: is empty; map at least one folder of bin/a.zip to an installation directory`,
		`release.cue:12:13: deltas.nested[1].archive: bin/a.zip is described twice under deltas.nested; merge the two`,
		`release.cue:12:100: deltas.nested[1].folders[1].whole: bin/kube is whole for one folder and not for another; a directory is either replaced as a unit or not`,
		`release.cue:12:122: deltas.nested[1].folders[1].rename."a/b": "a/b" is a path; name a file`,
		`release.cue:12:144: deltas.nested[1].windowsImages: "../images" contains ".."; paths must stay inside the tree`,
	})
}
