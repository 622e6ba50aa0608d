package peers

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Flux is Flux's source-controller and kustomize-controller (built by
// .ci/tools) running out of cluster against a ControlPlane, with their
// CRDs installed from the controllers' module sources.
type Flux struct {
	// StorageAddr is where source-controller serves the artifacts it
	// fetched; kustomize-controller downloads them from there.
	StorageAddr string
	Source      *Process
	Kustomize   *Process
}

// StartFlux installs Flux's CRDs into cp, creates the flux-system
// namespace and starts both controllers, waiting until their readiness
// endpoints answer. They are stopped when the test ends.
func StartFlux(t testing.TB, cp *ControlPlane) *Flux {
	t.Helper()
	srcBin := Tool(t, "source-controller")
	ksBin := Tool(t, "kustomize-controller")
	var crds []string
	for _, tool := range []string{"source-controller", "kustomize-controller"} {
		files, err := filepath.Glob(filepath.Join(Share(t, tool, "config/crd/bases"), "*.yaml"))
		if err != nil || len(files) == 0 {
			t.Fatalf("peers: no CRDs kept from %s's module source (%v)", tool, err)
		}
		crds = append(crds, files...)
	}
	cp.ApplyCRDs(t, crds...)
	if _, err := cp.TryKubectl(nil, "get", "namespace", "flux-system"); err != nil {
		cp.Kubectl(t, nil, "create", "namespace", "flux-system")
	}

	ports := make([]int, 3)
	for i := range ports {
		p, err := freePort()
		if err != nil {
			t.Fatalf("peers: no free port on 127.0.0.1: %v", err)
		}
		ports[i] = p
	}
	f := &Flux{StorageAddr: fmt.Sprintf("127.0.0.1:%d", ports[0])}
	env := append(cp.Env(), "RUNTIME_NAMESPACE=flux-system")
	dir := t.TempDir()
	storage := filepath.Join(dir, "storage")
	// source-controller refuses a storage path that does not exist yet.
	if err := os.Mkdir(storage, 0o755); err != nil {
		t.Fatal(err)
	}
	common := []string{
		// Metrics are not looked at; "0" turns controller-runtime's
		// metrics server off, so the two controllers cannot collide.
		"--metrics-addr=0", "--events-addr=", "--log-level=debug", "--log-encoding=console",
		"--enable-leader-election=false", "--watch-all-namespaces=true",
	}
	f.Source = StartProcess(t, "source-controller", dir, env, srcBin, append(common,
		fmt.Sprintf("--health-addr=127.0.0.1:%d", ports[1]),
		"--storage-path="+storage,
		"--storage-addr="+f.StorageAddr, "--storage-adv-addr="+f.StorageAddr)...)
	f.Kustomize = StartProcess(t, "kustomize-controller", dir, env, ksBin, append(common,
		fmt.Sprintf("--health-addr=127.0.0.1:%d", ports[2]))...)

	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	for i, p := range []*Process{f.Source, f.Kustomize} {
		url := fmt.Sprintf("http://127.0.0.1:%d/readyz", ports[1+i])
		deadline := time.Now().Add(controlPlaneTimeout)
		for {
			if done, how := p.Exited(); done {
				t.Fatalf("peers: %s exited: %s\n%s", p.Name, how, p.Tail(40))
			}
			resp, err := client.Get(url)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("peers: %s not ready at %s after %s (%v)\n%s", p.Name, url, controlPlaneTimeout, err, p.Tail(40))
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	return f
}

// Logs returns the end of both controllers' output, for failure messages.
func (f *Flux) Logs() string { return f.Source.Tail(40) + "\n" + f.Kustomize.Tail(40) }
