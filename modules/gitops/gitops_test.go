package gitops

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	kustomizev1 "github.com/fluxcd/kustomize-controller/api/v1"
	sourcev1 "github.com/fluxcd/source-controller/api/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

func ingressNginx() Addon {
	return Addon{
		Name:           "ingress",
		Implementation: "nginx",
		Version:        "1.4.0",
		Registry:       "k2s.registry.local:30500",
		Insecure:       true,
	}
}

// docs splits the stream Flux writes; every document starts with "---\n".
func docs(t *testing.T, b []byte) []string {
	t.Helper()
	if !bytes.HasPrefix(b, []byte("---\n")) {
		t.Fatalf("stream does not start with a document marker:\n%s", b)
	}
	parts := strings.Split(string(b), "---\n")[1:]
	for i, p := range parts {
		if strings.TrimSpace(p) == "" {
			t.Fatalf("document %d is empty", i)
		}
	}
	return parts
}

func fluxObjects(t *testing.T, a Addon) (*sourcev1.OCIRepository, *kustomizev1.Kustomization, []string) {
	t.Helper()
	b, err := Flux(a)
	if err != nil {
		t.Fatal(err)
	}
	d := docs(t, b)
	if len(d) != 2 {
		t.Fatalf("want 2 documents, got %d", len(d))
	}
	var repo sourcev1.OCIRepository
	if err := yaml.UnmarshalStrict([]byte(d[0]), &repo); err != nil {
		t.Fatalf("OCIRepository does not decode strictly: %v\n%s", err, d[0])
	}
	var ks kustomizev1.Kustomization
	if err := yaml.UnmarshalStrict([]byte(d[1]), &ks); err != nil {
		t.Fatalf("Kustomization does not decode strictly: %v\n%s", err, d[1])
	}
	return &repo, &ks, d
}

func TestFluxGolden(t *testing.T) {
	repo, ks, d := fluxObjects(t, ingressNginx())

	check := func(what string, got, want any) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	check("repo apiVersion", repo.APIVersion, "source.toolkit.fluxcd.io/v1")
	check("repo kind", repo.Kind, "OCIRepository")
	check("repo name", repo.Name, "addon-sync-ingress-nginx")
	check("repo namespace", repo.Namespace, "flux-system")
	check("repo label k2s.io/addon", repo.Labels["k2s.io/addon"], "ingress-nginx")
	check("repo url", repo.Spec.URL, "oci://k2s.registry.local:30500/addons/ingress-nginx")
	check("repo ref.semver", repo.Spec.Reference.SemVer, ">=0.0.0-0")
	check("repo ref.tag", repo.Spec.Reference.Tag, "")
	check("repo layerSelector.mediaType", repo.Spec.LayerSelector.MediaType, "application/vnd.k2s.addon.manifests.v1.tar+gzip")
	check("repo layerSelector.operation", repo.Spec.LayerSelector.Operation, "extract")
	check("repo interval", repo.Spec.Interval.Duration, 5*time.Minute)
	check("repo insecure", repo.Spec.Insecure, true)

	check("ks apiVersion", ks.APIVersion, "kustomize.toolkit.fluxcd.io/v1")
	check("ks kind", ks.Kind, "Kustomization")
	check("ks name", ks.Name, "addon-sync-ingress-nginx")
	check("ks namespace", ks.Namespace, "flux-system")
	check("ks sourceRef", ks.Spec.SourceRef, kustomizev1.CrossNamespaceSourceReference{Kind: "OCIRepository", Name: repo.Name})
	check("ks path", ks.Spec.Path, "./gitops-sync")
	check("ks prune", ks.Spec.Prune, true)
	check("ks force", ks.Spec.Force, true)
	check("ks wait", ks.Spec.Wait, true)
	check("ks timeout", ks.Spec.Timeout.Duration, 10*time.Minute)
	check("ks interval", ks.Spec.Interval.Duration, 5*time.Minute)
	check("ks targetNamespace", ks.Spec.TargetNamespace, "k2s-addon-sync")

	for i, doc := range d {
		for _, noise := range []string{"status:", "creationTimestamp"} {
			if strings.Contains(doc, noise) {
				t.Errorf("document %d contains %q:\n%s", i, noise, doc)
			}
		}
	}
}

func TestFluxOptions(t *testing.T) {
	a := Addon{
		Name: "metrics", Implementation: "metrics", Version: "2.0.0-rc.1",
		Registry: "registry.example.com", Repository: "k2s/addons/metrics",
		Interval: time.Minute, Timeout: 90 * time.Second,
		Namespace: "k2s-addon-sync", TargetNamespace: "addon-jobs",
	}
	repo, ks, _ := fluxObjects(t, a)
	if repo.Name != "addon-sync-metrics" || ks.Spec.SourceRef.Name != "addon-sync-metrics" {
		t.Errorf("single implementation must not repeat its name: %q, %q", repo.Name, ks.Spec.SourceRef.Name)
	}
	if repo.Spec.URL != "oci://registry.example.com/k2s/addons/metrics" {
		t.Errorf("url = %q", repo.Spec.URL)
	}
	if repo.Spec.Insecure {
		t.Error("insecure set although not asked for")
	}
	if repo.Namespace != "k2s-addon-sync" || ks.Namespace != "k2s-addon-sync" {
		t.Errorf("namespace = %q, %q", repo.Namespace, ks.Namespace)
	}
	if ks.Spec.TargetNamespace != "addon-jobs" || ks.Spec.Timeout.Duration != 90*time.Second || repo.Spec.Interval.Duration != time.Minute {
		t.Errorf("options not applied: %+v", ks.Spec)
	}
}

// The strict decoders must actually be strict, or the tests above prove
// nothing.
func TestStrictDecodingRejectsMisspeltFields(t *testing.T) {
	_, _, d := fluxObjects(t, ingressNginx())
	cases := []struct {
		name, doc, from, to string
		into                any
	}{
		{"OCIRepository", d[0], "layerSelector:", "layerSelecter:", &sourcev1.OCIRepository{}},
		{"Kustomization", d[1], "targetNamespace:", "targetNamspace:", &kustomizev1.Kustomization{}},
	}
	for _, c := range cases {
		bad := strings.Replace(c.doc, c.from, c.to, 1)
		if bad == c.doc {
			t.Fatalf("%s: %q not found", c.name, c.from)
		}
		if err := yaml.UnmarshalStrict([]byte(bad), c.into); err == nil {
			t.Errorf("%s: misspelt %q accepted", c.name, c.to)
		}
	}

	files := syncFiles(t, ingressNginx())
	bad := bytes.Replace(files["gitops-sync/kustomization.yaml"], []byte("resources:"), []byte("resource:"), 1)
	if err := decodeKustomizeStrict(bad, &kustomizeFile{}); err == nil {
		t.Error("kustomization: misspelt resources accepted")
	}

	job := files["gitops-sync/sync-job.yaml"]
	for _, c := range [][2]string{
		{"restartPolicy:", "restartPolicyy:"},
		{"hostProcess: true", `hostProcess: "true"`},
		{"backoffLimit: 3", "backoffLimit: three"},
	} {
		bad := bytes.Replace(job, []byte(c[0]), []byte(c[1]), 1)
		if bytes.Equal(bad, job) {
			t.Fatalf("job: %q not found", c[0])
		}
		if err := checkJob(bad); err == nil {
			t.Errorf("job: %q accepted", c[1])
		}
	}
}

func TestDeterministic(t *testing.T) {
	a := ingressNginx()
	f1, err := Flux(a)
	if err != nil {
		t.Fatal(err)
	}
	s1, err := SyncFolder(a)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		f2, _ := Flux(a)
		s2, _ := SyncFolder(a)
		if !bytes.Equal(f1, f2) {
			t.Fatalf("Flux output differs between calls:\n%s\n---- vs ----\n%s", f1, f2)
		}
		if len(s1) != len(s2) {
			t.Fatal("SyncFolder file count differs")
		}
		for j := range s1 {
			if s1[j].Path != s2[j].Path || s1[j].Mode != s2[j].Mode || !bytes.Equal(s1[j].Data, s2[j].Data) {
				t.Fatalf("SyncFolder file %s differs between calls", s1[j].Path)
			}
		}
	}
}

func TestValidation(t *testing.T) {
	cases := []struct {
		field string
		edit  func(*Addon)
	}{
		{"Name", func(a *Addon) { a.Name = "" }},
		{"Name", func(a *Addon) { a.Name = "Ingress" }},
		{"Name", func(a *Addon) { a.Name = "ingress_x" }},
		{"Implementation", func(a *Addon) { a.Implementation = "nginx.gw" }},
		{"Implementation", func(a *Addon) { a.Implementation = strings.Repeat("n", 45) }}, // addon-sync-ingress-nnn… > 63
		{"Name", func(a *Addon) { a.Name, a.Implementation = strings.Repeat("m", 53), "" }},
		{"Version", func(a *Addon) { a.Version = "" }},
		{"Version", func(a *Addon) { a.Version = "v1.4.0" }},
		{"Version", func(a *Addon) { a.Version = "1.4" }},
		{"Version", func(a *Addon) { a.Version = "1.4.0+build.1" }},
		{"Registry", func(a *Addon) { a.Registry = "https://k2s.registry.local" }},
		{"Registry", func(a *Addon) { a.Registry = "k2s.registry.local/addons" }},
		{"Repository", func(a *Addon) { a.Repository = "addons/ingress" }},
		{"Repository", func(a *Addon) { a.Repository = "Addons/ingress-nginx" }},
		{"Interval", func(a *Addon) { a.Interval = -time.Second }},
		{"Timeout", func(a *Addon) { a.Timeout = -time.Second }},
		{"Namespace", func(a *Addon) { a.Namespace = "flux_system" }},
		{"TargetNamespace", func(a *Addon) { a.TargetNamespace = "K2S" }},
		{"SyncImage", func(a *Addon) { a.SyncImage = "pause win" }},
	}
	for _, c := range cases {
		a := ingressNginx()
		c.edit(&a)
		_, ferr := Flux(a)
		_, serr := SyncFolder(a)
		for fn, err := range map[string]error{"Flux": ferr, "SyncFolder": serr} {
			if err == nil {
				t.Errorf("%s accepted bad %s in %+v", fn, c.field, a)
			} else if !strings.Contains(err.Error(), "Addon."+c.field+" ") {
				t.Errorf("%s error for bad %s does not name it: %v", fn, c.field, err)
			}
		}
	}

	// The sync Job takes the registry from the cluster, so only Flux
	// needs one.
	noReg := ingressNginx()
	noReg.Registry = ""
	if _, err := SyncFolder(noReg); err != nil {
		t.Errorf("SyncFolder without a registry: %v", err)
	}
	if _, err := Flux(noReg); err == nil || !strings.Contains(err.Error(), "Addon.Registry is empty") {
		t.Errorf("Flux without a registry: err = %v", err)
	}

	a := ingressNginx()
	a.Name, a.Version = "Bad", ""
	_, err := Flux(a)
	if err == nil || !strings.Contains(err.Error(), "Addon.Name ") || !strings.Contains(err.Error(), "Addon.Version ") {
		t.Errorf("want every problem reported, got %v", err)
	}
}

func TestExportName(t *testing.T) {
	for _, c := range []struct{ name, impl, want string }{
		{"metrics", "", "metrics"},
		{"metrics", "metrics", "metrics"},
		{"ingress", "nginx", "ingress-nginx"},
		{"ingress", "nginx-gw", "ingress-nginx-gw"},
	} {
		if got := (Addon{Name: c.name, Implementation: c.impl}).ExportName(); got != c.want {
			t.Errorf("ExportName(%q, %q) = %q, want %q", c.name, c.impl, got, c.want)
		}
	}
}

func syncFiles(t *testing.T, a Addon) map[string][]byte {
	t.Helper()
	fs, err := SyncFolder(a)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string][]byte{}
	var order []string
	for _, f := range fs {
		if f.Mode != 0o644 {
			t.Errorf("%s: mode %o, want 644", f.Path, f.Mode)
		}
		m[f.Path] = f.Data
		order = append(order, f.Path)
	}
	want := []string{"gitops-sync/kustomization.yaml", "gitops-sync/sync-job.yaml"}
	if fmt.Sprint(order) != fmt.Sprint(want) {
		t.Fatalf("files = %v, want %v", order, want)
	}
	return m
}

func decodeKustomizeStrict(b []byte, into any) error {
	j, err := yaml.YAMLToJSON(b)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	return nil
}

func TestSyncKustomization(t *testing.T) {
	b := syncFiles(t, ingressNginx())["gitops-sync/kustomization.yaml"]
	var k kustomizeFile
	if err := decodeKustomizeStrict(b, &k); err != nil {
		t.Fatalf("kustomization does not decode strictly: %v\n%s", err, b)
	}
	want := kustomizeFile{APIVersion: "kustomize.config.k8s.io/v1beta1", Kind: "Kustomization", Resources: []string{"sync-job.yaml"}}
	if fmt.Sprint(k) != fmt.Sprint(want) {
		t.Errorf("kustomization = %+v, want %+v", k, want)
	}
}

// jobFields lists every batch/v1 Job field path the sync Job may use and
// its JSON type. k8s.io/api is not a dependency of the module, so this
// stands in for strict decoding into batchv1.Job: unknown or mistyped
// fields fail. Paths ending in ".*" are free-form string maps.
var jobFields = map[string]string{
	"apiVersion":                                                           "string",
	"kind":                                                                 "string",
	"metadata.name":                                                        "string",
	"metadata.namespace":                                                   "string",
	"metadata.labels.*":                                                    "string",
	"metadata.annotations.*":                                               "string",
	"spec.ttlSecondsAfterFinished":                                         "number",
	"spec.activeDeadlineSeconds":                                           "number",
	"spec.backoffLimit":                                                    "number",
	"spec.template.metadata.labels.*":                                      "string",
	"spec.template.metadata.annotations.*":                                 "string",
	"spec.template.spec.restartPolicy":                                     "string",
	"spec.template.spec.serviceAccountName":                                "string",
	"spec.template.spec.nodeSelector.*":                                    "string",
	"spec.template.spec.tolerations[].key":                                 "string",
	"spec.template.spec.tolerations[].operator":                            "string",
	"spec.template.spec.tolerations[].value":                               "string",
	"spec.template.spec.tolerations[].effect":                              "string",
	"spec.template.spec.hostNetwork":                                       "bool",
	"spec.template.spec.hostPID":                                           "bool",
	"spec.template.spec.securityContext.windowsOptions.hostProcess":        "bool",
	"spec.template.spec.securityContext.windowsOptions.runAsUserName":      "string",
	"spec.template.spec.containers[].name":                                 "string",
	"spec.template.spec.containers[].image":                                "string",
	"spec.template.spec.containers[].imagePullPolicy":                      "string",
	"spec.template.spec.containers[].command[]":                            "string",
	"spec.template.spec.containers[].resources.requests.*":                 "string",
	"spec.template.spec.containers[].resources.limits.*":                   "string",
	"spec.template.spec.containers[].env[].name":                           "string",
	"spec.template.spec.containers[].env[].value":                          "string",
	"spec.template.spec.containers[].env[].valueFrom.configMapKeyRef.name": "string",
	"spec.template.spec.containers[].env[].valueFrom.configMapKeyRef.key":  "string",
	"spec.template.spec.containers[].volumeMounts[].name":                  "string",
	"spec.template.spec.containers[].volumeMounts[].mountPath":             "string",
	"spec.template.spec.containers[].volumeMounts[].readOnly":              "bool",
	"spec.template.spec.volumes[].name":                                    "string",
	"spec.template.spec.volumes[].configMap.name":                          "string",
}

func checkJob(b []byte) error {
	j, err := yaml.YAMLToJSON(b)
	if err != nil {
		return err
	}
	var m map[string]any
	if err := json.Unmarshal(j, &m); err != nil {
		return err
	}
	var errs []error
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if want, ok := jobFields[path+".*"]; ok {
				for k, x := range v {
					if jsonType(x) != want {
						errs = append(errs, fmt.Errorf("%s.%s: %s, want %s", path, k, jsonType(x), want))
					}
				}
				return
			}
			for k, x := range v {
				p := k
				if path != "" {
					p = path + "." + k
				}
				walk(p, x)
			}
		case []any:
			for _, x := range v {
				walk(path+"[]", x)
			}
		default:
			want, ok := jobFields[path]
			switch {
			case !ok:
				errs = append(errs, fmt.Errorf("unknown field %s", path))
			case jsonType(v) != want:
				errs = append(errs, fmt.Errorf("%s: %s, want %s", path, jsonType(v), want))
			}
		}
	}
	walk("", m)
	u := unstructured.Unstructured{Object: m}
	if u.GetAPIVersion() != "batch/v1" || u.GetKind() != "Job" {
		errs = append(errs, fmt.Errorf("not a batch/v1 Job: %s %s", u.GetAPIVersion(), u.GetKind()))
	}
	return errors.Join(errs...)
}

func jsonType(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "bool"
	}
	return fmt.Sprintf("%T", v)
}

func TestSyncJob(t *testing.T) {
	b := syncFiles(t, ingressNginx())["gitops-sync/sync-job.yaml"]
	if !bytes.HasPrefix(b, []byte("## exclude-from-export\n")) {
		t.Error("sync-job.yaml lacks K2s's exclude-from-export marker")
	}
	if err := checkJob(b); err != nil {
		t.Fatalf("sync Job is not a valid batch/v1 Job: %v\n%s", err, b)
	}
	var u unstructured.Unstructured
	if err := yaml.Unmarshal(b, &u.Object); err != nil {
		t.Fatal(err)
	}
	str := func(path ...string) string {
		t.Helper()
		s, ok, err := unstructured.NestedString(u.Object, path...)
		if !ok || err != nil {
			t.Fatalf("%v: missing (%v)", path, err)
		}
		return s
	}
	num := func(path ...string) int64 {
		t.Helper()
		v, ok, err := unstructured.NestedFieldNoCopy(u.Object, path...)
		f, isNum := v.(float64)
		if !ok || err != nil || !isNum {
			t.Fatalf("%v: %v (%v)", path, v, err)
		}
		return int64(f)
	}
	boolean := func(path ...string) bool {
		t.Helper()
		v, ok, err := unstructured.NestedBool(u.Object, path...)
		if !ok || err != nil {
			t.Fatalf("%v: missing (%v)", path, err)
		}
		return v
	}
	eq := func(what string, got, want any) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	eq("name", u.GetName(), "addon-sync-ingress-nginx")
	eq("namespace", u.GetNamespace(), "k2s-addon-sync")
	eq("version annotation", u.GetAnnotations()["k2s.io/addon-version"], "1.4.0")
	eq("template version annotation", str("spec", "template", "metadata", "annotations", "k2s.io/addon-version"), "1.4.0")
	eq("ttl", num("spec", "ttlSecondsAfterFinished"), 300)
	eq("deadline", num("spec", "activeDeadlineSeconds"), 300)
	eq("backoffLimit", num("spec", "backoffLimit"), 3)
	pod := []string{"spec", "template", "spec"}
	at := func(p ...string) []string { return append(append([]string{}, pod...), p...) }
	eq("restartPolicy", str(at("restartPolicy")...), "OnFailure")
	eq("serviceAccountName", str(at("serviceAccountName")...), "addon-sync-processor")
	eq("nodeSelector", str(at("nodeSelector", "kubernetes.io/os")...), "windows")
	eq("hostNetwork", boolean(at("hostNetwork")...), true)
	eq("hostPID", boolean(at("hostPID")...), true)
	eq("hostProcess", boolean(at("securityContext", "windowsOptions", "hostProcess")...), true)
	eq("runAsUserName", str(at("securityContext", "windowsOptions", "runAsUserName")...), `NT AUTHORITY\SYSTEM`)

	containers, _, _ := unstructured.NestedSlice(u.Object, at("containers")...)
	if len(containers) != 1 {
		t.Fatalf("want 1 container, got %d", len(containers))
	}
	c := containers[0].(map[string]any)
	eq("image", c["image"], DefaultSyncImage)
	cmd, _, _ := unstructured.NestedStringSlice(c, "command")
	eq("command", strings.Join(cmd, " "), `powershell.exe -ExecutionPolicy Bypass -NonInteractive -File C:\scripts\Sync-Addons.ps1 `+
		`-RegistryUrl $(REGISTRY_URL) -K2sInstallDir $(K2S_INSTALL_DIR) -OrasExe $(K2S_INSTALL_DIR)\bin\oras.exe `+
		`-Insecure $(INSECURE) -AddonName ingress-nginx`)
	env, _, _ := unstructured.NestedSlice(c, "env")
	var envs []string
	for _, e := range env {
		e := e.(map[string]any)
		if v, ok := e["value"]; ok {
			envs = append(envs, fmt.Sprintf("%s=%v", e["name"], v))
			continue
		}
		cm, _, _ := unstructured.NestedString(e, "valueFrom", "configMapKeyRef", "name")
		key, _, _ := unstructured.NestedString(e, "valueFrom", "configMapKeyRef", "key")
		envs = append(envs, fmt.Sprintf("%s<-%s/%s", e["name"], cm, key))
	}
	sort.Strings(envs)
	eq("env", envs, []string{`CONTAINER_SANDBOX_MOUNT_POINT=C:\`, "INSECURE<-addon-sync-config/INSECURE",
		"K2S_INSTALL_DIR<-addon-sync-config/K2S_INSTALL_DIR", "REGISTRY_URL<-addon-sync-config/REGISTRY_URL"})
	vols, _, _ := unstructured.NestedSlice(u.Object, at("volumes")...)
	eq("volumes", vols, []any{map[string]any{"name": "sync-script", "configMap": map[string]any{"name": "addon-sync-script"}}})
}

func TestSyncJobFollowsTargetNamespaceAndImage(t *testing.T) {
	a := ingressNginx()
	a.TargetNamespace, a.SyncImage = "jobs", "mcr.microsoft.com/windows/servercore:ltsc2022"
	b := syncFiles(t, a)["gitops-sync/sync-job.yaml"]
	if err := checkJob(b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("namespace: jobs\n")) || !bytes.Contains(b, []byte("image: mcr.microsoft.com/windows/servercore:ltsc2022\n")) {
		t.Errorf("options not applied:\n%s", b)
	}
}
