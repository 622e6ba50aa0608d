package peers_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/relcue/release/internal/peers"
)

// TestControlPlaneValidatesAndStops starts the control plane, proves it
// stores objects and enforces an installed CRD's schema server-side (what
// the consumer tests rely on), and that the processes are gone once the
// test that started them ends.
func TestControlPlaneValidatesAndStops(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and kube-apiserver")
	}
	var url string
	t.Run("running", func(t *testing.T) {
		cp := peers.StartControlPlane(t)
		url = cp.URL
		cp.Kubectl(t, nil, "create", "configmap", "probe", "--from-literal=k=v")
		if got := cp.Kubectl(t, nil, "get", "configmap", "probe", "-o", "jsonpath={.data.k}"); got != "v" {
			t.Fatalf("configmap read back %q, want v", got)
		}
		cp.ApplyCRDs(t, peers.VendoredCRD(t, "operator.kairos.io_nodeopupgrades.yaml"))
		const obj = `{"apiVersion":"operator.kairos.io/v1alpha1","kind":"NodeOpUpgrade","metadata":{"name":"x","namespace":"default"},"spec":{"image":7}}`
		_, err := cp.TryKubectl([]byte(obj), "create", "-f", "-")
		if err == nil || !strings.Contains(err.Error(), "spec.image") {
			t.Fatalf("a NodeOpUpgrade with a numeric image was not refused by the CRD schema: %v", err)
		}
	})
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil}}
	if resp, err := c.Get(url + "/readyz"); err == nil {
		resp.Body.Close()
		t.Fatalf("the apiserver at %s still answers after its test ended", url)
	}
}
