package plans_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	upgradev1 "github.com/rancher/system-upgrade-controller/pkg/apis/upgrade.cattle.io/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/relcue/release/internal/k8sschema"
	"github.com/relcue/release/internal/peers"
	"github.com/relcue/release/modules/all"
	"github.com/relcue/release/modules/image"
	"github.com/relcue/release/modules/plans"
	"github.com/relcue/release/modules/plans/kairos"
	"github.com/relcue/release/pipeline"
)

var update = flag.Bool("update", false, "rewrite testdata/golden from the sample")

const sample = "../../fixtures/sample"

// build builds the selected targets of the configuration in dir with an
// empty cache and returns dist/'s files by path.
func build(t *testing.T, dir string, targets ...string) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	s, err := pipeline.Open(ctx, all.Modules(all.Keys{}), pipeline.Options{Dir: dir, CacheDir: t.TempDir(), Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	dist := t.TempDir()
	rep, err := s.Build(ctx, pipeline.BuildOptions{Dist: dist, Targets: targets})
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	out := map[string][]byte{}
	for _, a := range rep.Artifacts {
		data, err := os.ReadFile(filepath.Join(dist, filepath.FromSlash(a.Path)))
		if err != nil {
			t.Fatal(err)
		}
		out[a.Path] = data
	}
	return out
}

func planFiles(files map[string][]byte) map[string][]byte {
	out := map[string][]byte{}
	for p, d := range files {
		if strings.HasPrefix(p, "plans/") {
			out[p] = d
		}
	}
	return out
}

// TestSampleGolden renders the sample's plans and compares them with the
// reviewed files in testdata/golden (go test -run Golden -update rewrites
// them).
func TestSampleGolden(t *testing.T) {
	got := planFiles(build(t, sample, "plans/*"))
	want := []string{
		"plans/1.4.0/cluster.yaml",
		"plans/1.4.1/cluster.yaml",
		"plans/1.5.0/cluster.yaml",
		"plans/1.5.0/edge.yaml",
		"plans/1.5.0/from-1.4.0/cluster.yaml",
		"plans/1.5.0/from-1.4.1/cluster.yaml",
	}
	if keys := sortedKeys(got); !slices.Equal(keys, want) {
		t.Fatalf("plan files %v, want %v", keys, want)
	}
	golden := filepath.Join("testdata", "golden")
	if *update {
		os.RemoveAll(golden)
		for p, d := range got {
			dst := filepath.Join(golden, filepath.FromSlash(p))
			os.MkdirAll(filepath.Dir(dst), 0o755)
			if err := os.WriteFile(dst, d, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
	for _, p := range want {
		w, err := os.ReadFile(filepath.Join(golden, filepath.FromSlash(p)))
		if err != nil {
			t.Fatalf("%v (run go test -run Golden -update to create it)", err)
		}
		if !bytes.Equal(got[p], w) {
			t.Errorf("%s differs from the golden file (go test -run Golden -update, then review the diff):\n%s", p, got[p])
		}
	}
	// A second build from an empty cache gives the same bytes.
	again := planFiles(build(t, sample, "plans/*"))
	for p, d := range got {
		if !bytes.Equal(again[p], d) {
			t.Errorf("%s differs between two builds", p)
		}
	}
}

// docs splits a multi-document YAML file.
func docs(t *testing.T, data []byte) [][]byte {
	t.Helper()
	var out [][]byte
	for _, d := range bytes.Split(data, []byte("\n---\n")) {
		if len(bytes.TrimSpace(d)) == 0 || bytes.HasPrefix(d, []byte("#")) && !bytes.Contains(d, []byte("apiVersion:")) {
			continue
		}
		out = append(out, d)
	}
	return out
}

func decodePlans(t *testing.T, path string, data []byte) []upgradev1.Plan {
	t.Helper()
	var out []upgradev1.Plan
	for _, d := range docs(t, data) {
		var p upgradev1.Plan
		if err := yaml.UnmarshalStrict(d, &p); err != nil {
			t.Fatalf("%s: does not decode strictly into upgrade.cattle.io/v1 Plan: %v\n%s", path, err, d)
		}
		if p.APIVersion != "upgrade.cattle.io/v1" || p.Kind != "Plan" {
			t.Fatalf("%s: %s %s", path, p.APIVersion, p.Kind)
		}
		out = append(out, p)
	}
	return out
}

// TestPlansDecodeStrictly decodes every rendered document into its
// upstream type with unknown fields as errors, and checks what the
// sample's policies say: servers first, one at a time, cordoned; the
// canary after the servers; the other agents after the canary; every
// plan pinned to the image the pipeline built and to the package's hash.
func TestPlansDecodeStrictly(t *testing.T) {
	files := build(t, sample, "plans/1.5.0", "image/debian12/ghcr.io_example_k2s-upgrade__1.5.0", "package/1.5.0", "delta/1.4.1..1.5.0")
	info, err := image.Inspect(writeTemp(t, files["images/debian12/ghcr.io_example_k2s-upgrade__1.5.0.tar"]))
	if err != nil {
		t.Fatal(err)
	}
	wantImage := "ghcr.io/example/k2s-upgrade@" + info.Digest

	full := decodePlans(t, "cluster.yaml", files["plans/1.5.0/cluster.yaml"])
	if len(full) != 3 {
		t.Fatalf("%d plans, want server, canary, agent", len(full))
	}
	server, canary, agent := full[0], full[1], full[2]
	if server.Name != "k2s-cluster-server" || canary.Name != "k2s-cluster-agent-canary" || agent.Name != "k2s-cluster-agent" {
		t.Fatalf("names %s %s %s", server.Name, canary.Name, agent.Name)
	}
	if server.Spec.Concurrency != 1 || !server.Spec.Cordon || server.Spec.Prepare != nil ||
		server.Spec.NodeSelector.MatchExpressions[0].Key != "node-role.kubernetes.io/control-plane" {
		t.Errorf("server plan: %+v", server.Spec)
	}
	if canary.Spec.Concurrency != 1 || canary.Spec.Prepare == nil || !slices.Equal(canary.Spec.Prepare.Args, []string{"prepare", "k2s-cluster-server"}) {
		t.Errorf("canary plan: %+v", canary.Spec)
	}
	if agent.Spec.Concurrency != 2 || agent.Spec.Prepare == nil || !slices.Equal(agent.Spec.Prepare.Args, []string{"prepare", "k2s-cluster-agent-canary"}) {
		t.Errorf("agent plan: %+v", agent.Spec)
	}
	if d := agent.Spec.Drain; d == nil || d.Timeout == nil || d.Timeout.String() != "15m0s" || *d.GracePeriod != 60 || !*d.IgnoreDaemonSets {
		t.Errorf("agent drain: %+v", agent.Spec.Drain)
	}
	if w := agent.Spec.Window; w == nil || w.TimeZone != "Europe/Berlin" || w.StartTime != "01:00" || len(w.Days) != 2 {
		t.Errorf("window: %+v", agent.Spec.Window)
	}
	pkgSum := sha256Hex(files["packages/k2s-1.5.0.zip"])
	for _, p := range full {
		if p.Spec.Upgrade.Image != wantImage || p.Spec.Version != "1.5.0" {
			t.Errorf("%s: upgrade image %s version %s, want %s", p.Name, p.Spec.Upgrade.Image, p.Spec.Version, wantImage)
		}
		if p.Spec.Prepare != nil && p.Spec.Prepare.Image != wantImage {
			t.Errorf("%s: prepare image %s", p.Name, p.Spec.Prepare.Image)
		}
		if env(p, plans.EnvPackageSHA256) != pkgSum || env(p, plans.EnvPackage) != "k2s-1.5.0.zip" {
			t.Errorf("%s: package %s sha256 %s, want k2s-1.5.0.zip %s", p.Name, env(p, plans.EnvPackage), env(p, plans.EnvPackageSHA256), pkgSum)
		}
		if p.Spec.PostCompleteLabels[plans.VersionLabel] != "1.5.0" {
			t.Errorf("%s: postCompleteLabels %v", p.Name, p.Spec.PostCompleteLabels)
		}
	}

	// The upgrade from 1.4.1 installs the delta and only touches nodes at 1.4.1.
	fromPlans := decodePlans(t, "from-1.4.1/cluster.yaml", files["plans/1.5.0/from-1.4.1/cluster.yaml"])
	deltaSum := sha256Hex(files["deltas/k2s-delta-1.4.1-to-1.5.0.zip"])
	for _, p := range fromPlans {
		if env(p, plans.EnvPackageSHA256) != deltaSum || env(p, plans.EnvFrom) != "1.4.1" {
			t.Errorf("%s (from 1.4.1): package sha256 %s from %s", p.Name, env(p, plans.EnvPackageSHA256), env(p, plans.EnvFrom))
		}
		found := false
		for _, e := range p.Spec.NodeSelector.MatchExpressions {
			found = found || e.Key == plans.VersionLabel && slices.Equal(e.Values, []string{"1.4.1"})
		}
		if !found {
			t.Errorf("%s (from 1.4.1) selects nodes of any version: %+v", p.Name, p.Spec.NodeSelector)
		}
	}

	edge := docs(t, files["plans/1.5.0/edge.yaml"])
	if len(edge) != 2 {
		t.Fatalf("edge: %d documents", len(edge))
	}
	for _, d := range edge {
		var n kairos.NodeOpUpgrade
		if err := yaml.UnmarshalStrict(d, &n); err != nil {
			t.Fatalf("edge.yaml does not decode strictly into NodeOpUpgrade: %v", err)
		}
		if n.APIVersion != kairos.APIVersion || n.Kind != kairos.Kind || !strings.HasPrefix(n.Spec.Image, "quay.io/kairos/") ||
			!*n.Spec.StopOnFailure || !*n.Spec.UpgradeRecovery || !*n.Spec.UpgradeActive || *n.Spec.Force {
			t.Errorf("edge: %+v", n)
		}
	}
}

func env(p upgradev1.Plan, name string) string {
	for _, e := range p.Spec.Upgrade.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

// TestKubeconform validates every sample plan with kubeconform against
// schemas derived from the upstream types, in strict mode (no field the
// type lacks), without a network.
func TestKubeconform(t *testing.T) {
	kc := peers.Tool(t, "kubeconform")
	schemas := t.TempDir()
	if err := k8sschema.WriteDir(schemas,
		k8sschema.Kind{APIVersion: "upgrade.cattle.io/v1", Kind: "Plan", Type: upgradev1.Plan{}},
		k8sschema.Kind{APIVersion: kairos.APIVersion, Kind: kairos.Kind, Type: kairos.NodeOpUpgrade{}},
	); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files := planFiles(build(t, sample, "plans/*"))
	var paths []string
	for p, d := range files {
		dst := filepath.Join(dir, filepath.FromSlash(p))
		os.MkdirAll(filepath.Dir(dst), 0o755)
		os.WriteFile(dst, d, 0o644)
		paths = append(paths, dst)
	}
	slices.Sort(paths)
	run := func(args ...string) (string, error) {
		cmd := exec.Command(kc, append([]string{"-strict", "-summary", "-output", "text",
			"-schema-location", filepath.Join(schemas, k8sschema.Template)}, args...)...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run(paths...)
	if err != nil || !strings.Contains(out, "Invalid: 0, Errors: 0") || strings.Contains(out, "Valid: 0,") {
		t.Fatalf("kubeconform: %v\n%s", err, out)
	}
	// The schemas are strict: a field the type lacks, or a wrong type,
	// fails (so the check above can fail).
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, bytes.Replace(files["plans/1.5.0/cluster.yaml"], []byte("  concurrency: 1\n"), []byte("  concurrency: 1\n  parallelism: 3\n"), 1), 0o644)
	if out, err := run(bad); err == nil || !strings.Contains(out, "parallelism") {
		t.Errorf("kubeconform accepted an unknown field: %v\n%s", err, out)
	}
	os.WriteFile(bad, bytes.Replace(files["plans/1.5.0/edge.yaml"], []byte("concurrency: 2"), []byte("concurrency: two"), 1), 0o644)
	if out, err := run(bad); err == nil {
		t.Errorf("kubeconform accepted a string concurrency:\n%s", out)
	}
}

// TestImageChangeChangesPlanDigest: a plan can never point at bytes other
// than those released. Changing one file of the upgrade image changes the
// digest the plan references, and it is the new archive's.
func TestImageChangeChangesPlanDigest(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(sample)); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(filepath.Join(dir, "dist"))
	const img = "image/debian12/ghcr.io_example_k2s-upgrade__1.5.0"
	const archive = "images/debian12/ghcr.io_example_k2s-upgrade__1.5.0.tar"
	before := build(t, dir, "plans/1.5.0", img)
	script := filepath.Join(dir, "node", "images", "upgrade", "upgrade.sh")
	data, err := os.ReadFile(script)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(script, append(data, "# patched\n"...), 0o755); err != nil {
		t.Fatal(err)
	}
	after := build(t, dir, "plans/1.5.0", img)

	ref := func(files map[string][]byte) (string, string) {
		info, err := image.Inspect(writeTemp(t, files[archive]))
		if err != nil {
			t.Fatal(err)
		}
		p := decodePlans(t, "cluster.yaml", files["plans/1.5.0/cluster.yaml"])[0]
		return p.Spec.Upgrade.Image, "ghcr.io/example/k2s-upgrade@" + info.Digest
	}
	b, bWant := ref(before)
	a, aWant := ref(after)
	if b != bWant || a != aWant {
		t.Fatalf("plans reference %s and %s, the archives are %s and %s", b, a, bWant, aWant)
	}
	if a == b {
		t.Fatalf("the upgrade image changed but the plan still references %s", a)
	}
	// The version stays 1.5.0, so only the digest annotation makes SUC
	// run the plan again on nodes it already upgraded: the hash input it
	// adds must change with the image.
	pb := decodePlans(t, "cluster.yaml", before["plans/1.5.0/cluster.yaml"])
	pa := decodePlans(t, "cluster.yaml", after["plans/1.5.0/cluster.yaml"])
	for i := range pb {
		ib, ia := sucDigestInput(t, pb[i]), sucDigestInput(t, pa[i])
		if pb[i].Spec.Version != pa[i].Spec.Version || ib == ia {
			t.Errorf("%s: SUC's hash input is the same after the image changed:\n%s", pb[i].Name, ib)
		}
	}
	// External images are referenced as written; the edge plan is unchanged.
	if !bytes.Equal(before["plans/1.5.0/edge.yaml"], after["plans/1.5.0/edge.yaml"]) {
		t.Error("edge.yaml changed with an image it does not use")
	}
}

// TestKairosTypeMatchesUpstream pins the JSON fields of the project's
// NodeOpUpgrade to those of the Kairos operator's v1alpha1 API, which
// cannot be imported here.
func TestKairosTypeMatchesUpstream(t *testing.T) {
	want := []string{"concurrency", "debug", "force", "image", "imagePullSecrets", "nodeSelector",
		"stopOnFailure", "uncordonOnFailure", "upgradeActive", "upgradeRecovery"}
	var got []string
	ty := reflect.TypeOf(kairos.NodeOpUpgradeSpec{})
	for i := range ty.NumField() {
		name, _, _ := strings.Cut(ty.Field(i).Tag.Get("json"), ",")
		got = append(got, name)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("NodeOpUpgradeSpec fields %v, upstream has %v", got, want)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func writeTemp(t *testing.T, data []byte) string {
	t.Helper()
	if data == nil {
		t.Fatal("artifact missing from dist")
	}
	p := filepath.Join(t.TempDir(), "a")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestPlansSelectTheRightNodes matches the rendered plans' selectors
// against a K2s-like fleet the way system-upgrade-controller does
// (pkg/upgrade/plan/plan.go, SelectConcurrentNodeNames:
// metav1.LabelSelectorAsSelector(plan.Spec.NodeSelector), then List):
// a k3s server ("true") and a kubeadm server (empty value) by the server
// plan, the canary by the canary plan, the other Linux agents by the agent
// plan, and the Windows node by none, so it neither gets the Linux image
// nor holds up the agent plan's Jobs.
func TestPlansSelectTheRightNodes(t *testing.T) {
	const path = "plans/1.5.0/from-1.4.1/cluster.yaml"
	got := planFiles(build(t, sample, "plans/1.5.0"))
	pls := decodePlans(t, path, got[path])
	base := map[string]string{plans.VersionLabel: "1.4.1"}
	node := func(extra ...string) labels.Set {
		l := labels.Set{}
		for k, v := range base {
			l[k] = v
		}
		for i := 0; i < len(extra); i += 2 {
			l[extra[i]] = extra[i+1]
		}
		return l
	}
	linux, cp := "kubernetes.io/os", plans.ControlPlaneLabel
	fleet := map[string]struct {
		labels labels.Set
		plan   string // suffix of the one plan that must select it; "" none
	}{
		"k3s-server":     {node(linux, "linux", cp, "true"), "-server"},
		"kubeadm-server": {node(linux, "linux", cp, ""), "-server"},
		"canary":         {node(linux, "linux", "release.relcue.dev/canary", "true"), "-agent-canary"},
		"agent":          {node(linux, "linux"), "-agent"},
		"windows":        {node(linux, "windows"), ""},
		"other-base":     {labels.Set{linux: "linux", plans.VersionLabel: "1.4.0"}, ""},
	}
	for name, n := range fleet {
		var selected []string
		for _, pl := range pls {
			sel, err := metav1.LabelSelectorAsSelector(pl.Spec.NodeSelector)
			if err != nil {
				t.Fatalf("%s: %v", pl.Name, err)
			}
			if sel.Matches(n.labels) {
				selected = append(selected, pl.Name)
			}
		}
		switch {
		case n.plan == "" && len(selected) != 0:
			t.Errorf("node %s is selected by %v, want none", name, selected)
		case n.plan != "" && (len(selected) != 1 || !strings.HasSuffix(selected[0], n.plan)):
			t.Errorf("node %s is selected by %v, want exactly the *%s plan", name, selected, n.plan)
		}
	}
}

// sucDigestInput is what system-upgrade-controller adds to a plan's hash
// for its upgrade.cattle.io/digest annotation (pkg/upgrade/plan/plan.go,
// addToHashFromAnnotation): the plan converted to a generic map, and for
// each comma-separated entry the value at its dotted path, as a string.
// Every entry must name a field the plan has.
func sucDigestInput(t *testing.T, pl upgradev1.Plan) string {
	t.Helper()
	fields := pl.Annotations[plans.DigestAnnotation]
	if fields == "" {
		t.Fatalf("%s has no %s annotation", pl.Name, plans.DigestAnnotation)
	}
	raw, err := json.Marshal(pl)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, entry := range strings.Split(fields, ",") {
		var v any = m
		for _, k := range strings.Split(entry, ".") {
			obj, _ := v.(map[string]any)
			v = obj[k]
		}
		if v == nil {
			t.Fatalf("%s: %s names %s, which the plan does not have", pl.Name, plans.DigestAnnotation, entry)
		}
		fmt.Fprint(&b, v)
		b.WriteString("\n")
	}
	return b.String()
}
