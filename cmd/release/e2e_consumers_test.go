package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/relcue/release/internal/peers"
	"github.com/relcue/release/modules/gitops"
)

// The programs that consume what release writes are the judges here: a
// real kube-apiserver validates our Plans and NodeOpUpgrades against the
// upstream CRDs (server-side, strict field validation), and Flux's own
// controllers pull, extract and apply our addon artifacts.

// yamlDocs splits a multi-document YAML file into its objects.
func yamlDocs(t *testing.T, path string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, doc := range bytes.Split(data, []byte("\n---")) {
		if len(bytes.TrimSpace(bytes.TrimPrefix(bytes.TrimSpace(doc), []byte("---")))) == 0 {
			continue
		}
		var m map[string]any
		if err := yaml.Unmarshal(doc, &m); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if m != nil {
			out = append(out, m)
		}
	}
	return out
}

// missingIn reports the first value of want (a decoded JSON tree) that got
// lacks or holds differently; the server may add defaults, never drop or
// change what we wrote.
func missingIn(want, got any, at string) string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Sprintf("%s: want an object, server has %v", at, got)
		}
		keys := make([]string, 0, len(w))
		for k := range w {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			gv, ok := g[k]
			if !ok {
				return fmt.Sprintf("%s.%s: dropped by the server (we wrote %v)", at, k, w[k])
			}
			if d := missingIn(w[k], gv, at+"."+k); d != "" {
				return d
			}
		}
		return ""
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return fmt.Sprintf("%s: want %v, server has %v", at, w, got)
		}
		for i := range w {
			if d := missingIn(w[i], g[i], fmt.Sprintf("%s[%d]", at, i)); d != "" {
				return d
			}
		}
		return ""
	default:
		// JSON numbers: YAML decodes 2 as float64, so does the server's JSON.
		if !reflect.DeepEqual(want, got) {
			return fmt.Sprintf("%s: want %v (%T), server has %v (%T)", at, want, want, got, got)
		}
		return ""
	}
}

// TestSamplePlansAcceptedByAPIServer applies every Plan and NodeOpUpgrade
// of the sample's dist/plans/ to a real apiserver that has
// system-upgrade-controller's and the Kairos operator's CRDs installed.
// Strict server-side field validation rejects an unknown or duplicate
// field; the read-back proves the structural schema pruned nothing.
func TestSamplePlansAcceptedByAPIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and kube-apiserver")
	}
	cp := peers.StartControlPlane(t)
	cp.ApplyCRDs(t,
		filepath.Join(peers.Share(t, "system-upgrade-controller", "crds"), "upgrade.cattle.io_plans.yaml"),
		peers.VendoredCRD(t, "operator.kairos.io_nodeopupgrades.yaml"))

	dir := copySample(t)
	mustRun(t, "build", "-q", "-C", dir, "--cache", filepath.Join(t.TempDir(), "cache"), "--target", "plans/*")
	var files []string
	err := filepath.WalkDir(filepath.Join(dir, "dist", "plans"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".yaml") {
			files = append(files, p)
		}
		return err
	})
	if err != nil || len(files) == 0 {
		t.Fatalf("no plans in dist/plans (%v)", err)
	}

	namespaces := map[string]bool{}
	kinds := map[string]int{}
	for _, f := range files {
		for _, obj := range yamlDocs(t, f) {
			meta, _ := obj["metadata"].(map[string]any)
			if ns, _ := meta["namespace"].(string); ns != "" && !namespaces[ns] {
				if _, err := cp.TryKubectl(nil, "get", "namespace", ns); err != nil {
					cp.Kubectl(t, nil, "create", "namespace", ns)
				}
				namespaces[ns] = true
			}
		}
	}
	for _, f := range files {
		rel, _ := filepath.Rel(filepath.Join(dir, "dist"), f)
		if out, err := cp.TryKubectl(nil, "apply", "--server-side", "--field-manager=release-test", "--validate=strict", "-f", f); err != nil {
			t.Fatalf("the apiserver rejects %s: %v\n%s", rel, err, out)
		}
		for _, obj := range yamlDocs(t, f) {
			kind, _ := obj["kind"].(string)
			meta, _ := obj["metadata"].(map[string]any)
			name, _ := meta["name"].(string)
			ns, _ := meta["namespace"].(string)
			kinds[kind]++
			resource := map[string]string{"Plan": "plans.upgrade.cattle.io", "NodeOpUpgrade": "nodeopupgrades.operator.kairos.io"}[kind]
			if resource == "" {
				t.Fatalf("%s: unexpected kind %q", rel, kind)
			}
			raw := cp.Kubectl(t, nil, "get", resource, name, "-n", ns, "-o", "json")
			var got map[string]any
			if err := json.Unmarshal([]byte(raw), &got); err != nil {
				t.Fatal(err)
			}
			if d := missingIn(obj["spec"], got["spec"], kind+" "+ns+"/"+name+" spec"); d != "" {
				t.Errorf("%s: %s", rel, d)
			}
		}
	}
	if kinds["Plan"] == 0 || kinds["NodeOpUpgrade"] == 0 {
		t.Fatalf("the sample should render both kinds; applied %v", kinds)
	}
	t.Logf("applied %d files: %v", len(files), kinds)

	checkPlanSelection(t, cp, dir, files)

	// The judge can say no: the same schema rejects a misspelt field and a
	// wrong type, so acceptance above means something.
	for _, bad := range []struct{ name, doc string }{
		{"unknown field", "spec:\n  concurency: 1\n"},
		{"wrong type", "spec:\n  concurrency: two\n"},
	} {
		doc := fmt.Sprintf("apiVersion: upgrade.cattle.io/v1\nkind: Plan\nmetadata:\n  name: bad\n  namespace: default\n%s  serviceAccountName: x\n  upgrade:\n    image: example.com/u:1\n", bad.doc)
		if _, err := cp.TryKubectl([]byte(doc), "apply", "--server-side", "--field-manager=release-test", "--validate=strict", "-f", "-"); err == nil {
			t.Errorf("%s: the apiserver accepted a Plan with %s; the CRD is not the judge it should be", bad.name, bad.name)
		}
	}
}

// checkPlanSelection registers Nodes shaped like a small K2s fleet and
// asks the apiserver which of them each rendered Plan's nodeSelector
// selects: the control plane only for the server plans, the canary only
// for the canary plans, the other workers for the agent plans, and for a
// from-<base> plan only the nodes still labelled with that base version.
// (system-upgrade-controller itself is not served by the Go proxy, so the
// selection is judged by the apiserver's own label selector.) Every node
// carries kubernetes.io/os, as the kubelet labels it; server-2 is a kubeadm
// control plane (the label's value is empty) and win-1 a K2s Windows node,
// which no plan may select.
func checkPlanSelection(t *testing.T, cp *peers.ControlPlane, dir string, files []string) {
	t.Helper()
	const cpLabel, canary, version, osLabel = "node-role.kubernetes.io/control-plane", "release.relcue.dev/canary", "release.relcue.dev/version", "kubernetes.io/os"
	nodes := map[string]map[string]string{
		"server-1": {cpLabel: "true", version: "1.4.0", osLabel: "linux"},
		"server-2": {cpLabel: "", version: "1.4.0", osLabel: "linux"},
		"canary-1": {canary: "true", version: "1.4.0", osLabel: "linux"},
		"agent-1":  {version: "1.4.0", osLabel: "linux"},
		"agent-2":  {version: "1.4.1", osLabel: "linux"},
		"agent-3":  {canary: "false", version: "1.4.1", osLabel: "linux"},
		"edge-1":   {"kairos.io/managed": "true", osLabel: "linux"},
		"win-1":    {version: "1.4.0", osLabel: "windows"},
	}
	for name, labels := range nodes {
		l, _ := json.Marshal(labels)
		cp.Kubectl(t, []byte(fmt.Sprintf(`{"apiVersion":"v1","kind":"Node","metadata":{"name":%q,"labels":%s}}`, name, l)), "create", "-f", "-")
	}
	agents := "agent-1 agent-2 agent-3 edge-1"
	want := map[string]string{
		"1.4.0/cluster.yaml k2s-cluster-server":                  "server-1 server-2",
		"1.4.0/cluster.yaml k2s-cluster-agent-canary":            "canary-1",
		"1.4.0/cluster.yaml k2s-cluster-agent":                   agents,
		"1.4.1/cluster.yaml k2s-cluster-server":                  "server-1 server-2",
		"1.4.1/cluster.yaml k2s-cluster-agent-canary":            "canary-1",
		"1.4.1/cluster.yaml k2s-cluster-agent":                   agents,
		"1.5.0/cluster.yaml k2s-cluster-server":                  "server-1 server-2",
		"1.5.0/cluster.yaml k2s-cluster-agent-canary":            "canary-1",
		"1.5.0/cluster.yaml k2s-cluster-agent":                   agents,
		"1.5.0/from-1.4.0/cluster.yaml k2s-cluster-server":       "server-1 server-2",
		"1.5.0/from-1.4.0/cluster.yaml k2s-cluster-agent-canary": "canary-1",
		"1.5.0/from-1.4.0/cluster.yaml k2s-cluster-agent":        "agent-1",
		"1.5.0/from-1.4.1/cluster.yaml k2s-cluster-server":       "",
		"1.5.0/from-1.4.1/cluster.yaml k2s-cluster-agent-canary": "",
		"1.5.0/from-1.4.1/cluster.yaml k2s-cluster-agent":        "agent-2 agent-3",
		"1.5.0/edge.yaml k2s-edge-server":                        "server-1 server-2",
		"1.5.0/edge.yaml k2s-edge-agent":                         "edge-1",
	}
	seen := map[string]bool{}
	for _, f := range files {
		rel, _ := filepath.Rel(filepath.Join(dir, "dist", "plans"), f)
		rel = filepath.ToSlash(rel)
		for _, obj := range yamlDocs(t, f) {
			name, _ := field(obj, "metadata", "name").(string)
			raw, err := json.Marshal(field(obj, "spec", "nodeSelector"))
			if err != nil {
				t.Fatal(err)
			}
			var ls metav1.LabelSelector
			if err := json.Unmarshal(raw, &ls); err != nil {
				t.Fatalf("%s %s: nodeSelector: %v", rel, name, err)
			}
			sel, err := metav1.LabelSelectorAsSelector(&ls)
			if err != nil {
				t.Fatalf("%s %s: nodeSelector: %v", rel, name, err)
			}
			out := cp.Kubectl(t, nil, "get", "nodes", "-l", sel.String(), "-o", "jsonpath={.items[*].metadata.name}")
			got := strings.Fields(out)
			sort.Strings(got)
			key := rel + " " + name
			seen[key] = true
			w, ok := want[key]
			if !ok {
				t.Errorf("%s: no expectation for this plan (selects %v)", key, got)
				continue
			}
			if strings.Join(got, " ") != w {
				t.Errorf("%s: selector %q selects %v, want [%s]", key, sel, got, w)
			}
		}
	}
	for key := range want {
		if !seen[key] {
			t.Errorf("%s: not rendered", key)
		}
	}
}

// setSampleText replaces one exact string in a file of the sample copy.
func setSampleText(t *testing.T, dir, file, old, new string) {
	t.Helper()
	p := filepath.Join(dir, file)
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Count(data, []byte(old)) != 1 {
		t.Fatalf("%s: want exactly one %q to replace", file, old)
	}
	if err := os.WriteFile(p, bytes.Replace(data, []byte(old), []byte(new), 1), 0o644); err != nil {
		t.Fatal(err)
	}
}

// kubeJSON gets one object as decoded JSON.
func kubeJSON(t *testing.T, cp *peers.ControlPlane, args ...string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(cp.Kubectl(t, nil, append(append([]string{"get"}, args...), "-o", "json")...)), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// field walks a decoded JSON object by keys.
func field(m map[string]any, keys ...string) any {
	var cur any = m
	for _, k := range keys {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[k]
	}
	return cur
}

// eventually polls cond every 250 ms until it returns "" or timeout
// passes, then fails with cond's last word and the controllers' logs.
func eventually(t *testing.T, timeout time.Duration, what string, logs func() string, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		if last = cond(); last == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s: %s\n%s", what, timeout, last, logs())
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// condition returns the status and message of a condition in status.conditions.
func condition(obj map[string]any, typ string) (status, message string) {
	conds, _ := field(obj, "status", "conditions").([]any)
	for _, c := range conds {
		cm, _ := c.(map[string]any)
		if cm["type"] == typ {
			s, _ := cm["status"].(string)
			msg, _ := cm["message"].(string)
			return s, msg
		}
	}
	return "", "no " + typ + " condition yet"
}

// httpGet fetches a URL on loopback with optional Accept.
func httpGet(t *testing.T, url, accept string) ([]byte, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: nil}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v", url, resp.Status, err)
	}
	return body, resp.Header
}

// tarFiles lists the regular files of a (gzipped) tar stream.
func tarFiles(t *testing.T, data []byte) []string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for name := range readTar(t, zr) {
		files = append(files, strings.TrimPrefix(path.Clean(name), "./"))
	}
	sort.Strings(files)
	return files
}

// pushedAddon is what the registry holds for one tag of an addon.
type pushedAddon struct {
	digest        string   // manifest digest
	manifestFiles []string // files of the manifests layer
	otherLayers   int      // layers besides it
}

func registryAddon(t *testing.T, reg *peers.Registry, repo, tag string) pushedAddon {
	t.Helper()
	body, hdr := httpGet(t, reg.URL()+"/v2/"+repo+"/manifests/"+tag, "application/vnd.oci.image.manifest.v1+json")
	var m struct {
		Layers []struct {
			MediaType string `json:"mediaType"`
			Digest    string `json:"digest"`
		} `json:"layers"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	p := pushedAddon{digest: hdr.Get("Docker-Content-Digest")}
	for _, l := range m.Layers {
		if l.MediaType != gitops.ManifestsMediaType {
			p.otherLayers++
			continue
		}
		blob, _ := httpGet(t, reg.URL()+"/v2/"+repo+"/blobs/"+l.Digest, "")
		p.manifestFiles = tarFiles(t, blob)
	}
	if p.manifestFiles == nil {
		t.Fatalf("%s:%s has no %s layer", repo, tag, gitops.ManifestsMediaType)
	}
	return p
}

// TestFluxDeploysPushedAddons pushes the sample's metrics addon, applies
// the OCIRepository and Kustomization release generated for it to a real
// apiserver, and lets Flux's source-controller and kustomize-controller
// do the rest: pick the highest semver tag (not the latest push), extract
// only the manifests layer, apply ./gitops-sync and so create the sync
// Job; then a newer version is pushed and Flux must move to it and
// recreate the Job.
func TestFluxDeploysPushedAddons(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd, kube-apiserver and Flux's controllers")
	}
	cp := peers.StartControlPlane(t)
	flux := peers.StartFlux(t, cp)
	reg := peers.StartRegistry(t)
	logs := func() string { return flux.Logs() + "\n" + cp.Logs() }

	dir := copySample(t)
	cache := filepath.Join(t.TempDir(), "cache")
	// The cluster pulls from the test registry (plain HTTP, from the
	// sample's registry settings).
	setSampleText(t, dir, "addons.cue", `gitops: registry: "k2s.registry.local:30500"`, fmt.Sprintf("gitops: registry: %q", reg.Host))
	push := func() {
		t.Helper()
		mustRun(t, "build", "-q", "-C", dir, "--cache", cache, "--push", "--registry", reg.Host,
			"--target", "addon/metrics/*", "--target", "push/addon/metrics/*")
	}
	const repo = "addons/metrics"
	push()
	// A lower version pushed last: Flux must follow semver, not time.
	setSampleText(t, dir, "addons.cue", `version: "0.7.2"`, `version: "0.7.1"`)
	push()
	want := registryAddon(t, reg, repo, "v0.7.2")
	if want.otherLayers == 0 {
		t.Fatal("the metrics addon should carry more than its manifests layer, or extracting only that layer proves nothing")
	}

	fluxYAML := filepath.Join(dir, "dist", "addons", "metrics-0.7.1.flux.yaml")
	var name, fluxNS, jobNS string
	for _, obj := range yamlDocs(t, fluxYAML) {
		switch obj["kind"] {
		case "OCIRepository":
			name, _ = field(obj, "metadata", "name").(string)
			fluxNS, _ = field(obj, "metadata", "namespace").(string)
		case "Kustomization":
			jobNS, _ = field(obj, "spec", "targetNamespace").(string)
		}
	}
	if name == "" || fluxNS == "" || jobNS == "" {
		t.Fatalf("%s: want an OCIRepository with a namespace and a Kustomization with a targetNamespace", fluxYAML)
	}
	for _, ns := range []string{fluxNS, jobNS} {
		if _, err := cp.TryKubectl(nil, "get", "namespace", ns); err != nil {
			cp.Kubectl(t, nil, "create", "namespace", ns)
		}
	}
	cp.Kubectl(t, nil, "apply", "--server-side", "--field-manager=release-test", "--validate=strict", "-f", fluxYAML)

	// source-controller: highest tag, the pushed digest, only the manifests layer.
	sourceAt := func(tag string, p pushedAddon) {
		t.Helper()
		var repoObj map[string]any
		eventually(t, 2*time.Minute, "OCIRepository "+name+" at "+tag, logs, func() string {
			repoObj = kubeJSON(t, cp, "ocirepository", name, "-n", fluxNS)
			rev, _ := field(repoObj, "status", "artifact", "revision").(string)
			if rev != tag+"@"+p.digest {
				s, msg := condition(repoObj, "Ready")
				return fmt.Sprintf("revision %q, Ready=%s: %s", rev, s, msg)
			}
			return ""
		})
		url, _ := field(repoObj, "status", "artifact", "url").(string)
		artifact, _ := httpGet(t, url, "")
		if got := tarFiles(t, artifact); !reflect.DeepEqual(got, p.manifestFiles) {
			t.Fatalf("Flux's artifact for %s holds %v, want exactly the manifests layer's files %v", tag, got, p.manifestFiles)
		}
	}
	sourceAt("v0.7.2", want)

	// kustomize-controller applies ./gitops-sync: the sync Job appears.
	jobAt := func(version string) string {
		t.Helper()
		var uid string
		eventually(t, 2*time.Minute, "sync Job at "+version, logs, func() string {
			job, err := cp.TryKubectl(nil, "get", "job", "-n", jobNS, "-l", "app.kubernetes.io/name=addon-sync", "-o", "json")
			if err != nil {
				return err.Error()
			}
			var list struct {
				Items []map[string]any `json:"items"`
			}
			if err := json.Unmarshal([]byte(job), &list); err != nil {
				return err.Error()
			}
			if len(list.Items) != 1 {
				ks, _ := cp.TryKubectl(nil, "get", "kustomization", "-n", fluxNS, "-o", "jsonpath={.items[*].status.conditions}")
				return fmt.Sprintf("%d sync Jobs; kustomizations: %s", len(list.Items), ks)
			}
			j := list.Items[0]
			if v := field(j, "metadata", "annotations", "k2s.io/addon-version"); v != version {
				return fmt.Sprintf("Job annotated with version %v", v)
			}
			uid, _ = field(j, "metadata", "uid").(string)
			return ""
		})
		return uid
	}
	firstJob := jobAt("0.7.2")

	// No kubelet runs the Job: finish it as the Job controller would, so
	// the Kustomization's health check (wait: true) passes.
	completeJob(t, cp, jobNS)
	eventually(t, 2*time.Minute, "Kustomization Ready at v0.7.2", logs, func() string {
		ks := kubeJSON(t, cp, "kustomization", name, "-n", fluxNS)
		if s, msg := condition(ks, "Ready"); s != "True" {
			return "Ready=" + s + ": " + msg
		}
		if rev, _ := field(ks, "status", "lastAppliedRevision").(string); rev != "v0.7.2@"+want.digest {
			return "lastAppliedRevision " + rev
		}
		return ""
	})

	// A newer version: Flux moves to it and the Job is recreated.
	setSampleText(t, dir, "addons.cue", `version: "0.7.1"`, `version: "0.8.0"`)
	push()
	next := registryAddon(t, reg, repo, "v0.8.0")
	now := time.Now().UTC().Format(time.RFC3339Nano)
	cp.Kubectl(t, nil, "annotate", "--overwrite", "-n", fluxNS, "ocirepository/"+name, "reconcile.fluxcd.io/requestedAt="+now)
	sourceAt("v0.8.0", next)
	cp.Kubectl(t, nil, "annotate", "--overwrite", "-n", fluxNS, "kustomization/"+name, "reconcile.fluxcd.io/requestedAt="+now)
	if secondJob := jobAt("0.8.0"); secondJob == firstJob {
		t.Fatalf("the sync Job was patched in place (uid %s), not recreated for the new version", firstJob)
	}
}

// completeJob marks the one Job in ns as succeeded through the status
// subresource, with the conditions the Job API requires of a finished Job.
func completeJob(t *testing.T, cp *peers.ControlPlane, ns string) {
	t.Helper()
	name := strings.TrimPrefix(strings.TrimSpace(cp.Kubectl(t, nil, "get", "job", "-n", ns, "-o", "name")), "job.batch/")
	now := time.Now().UTC().Format(time.RFC3339)
	patch := fmt.Sprintf(`{"status":{"startTime":%[1]q,"completionTime":%[1]q,"succeeded":1,"conditions":[
		{"type":"SuccessCriteriaMet","status":"True","lastProbeTime":%[1]q,"lastTransitionTime":%[1]q},
		{"type":"Complete","status":"True","lastProbeTime":%[1]q,"lastTransitionTime":%[1]q}]}}`, now)
	cp.Kubectl(t, nil, "patch", "job", name, "-n", ns, "--subresource=status", "--type=merge", "-p", patch)
}
