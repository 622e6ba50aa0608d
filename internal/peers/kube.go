package peers

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// ControlPlane is a real Kubernetes control plane for tests: etcd and
// kube-apiserver (built by .ci/tools) on loopback, with generated
// certificates and an admin kubeconfig. There is no kubelet and no
// controller-manager: objects are stored, validated and watched, and
// nothing runs them, so tests drive Job status themselves.
type ControlPlane struct {
	// URL is the apiserver's https://127.0.0.1:<port>.
	URL string
	// Kubeconfig is the admin kubeconfig (system:masters).
	Kubeconfig string
	// Dir holds the certificates, etcd's data and the kubeconfig.
	Dir string

	etcd, apiserver *Process
	kubectl         string
	client          *http.Client
}

// controlPlaneTimeout bounds etcd's and the apiserver's start: a cold
// apiserver installs its built-in API groups and bootstrap RBAC first.
const controlPlaneTimeout = 90 * time.Second

// StartControlPlane starts etcd and kube-apiserver on free loopback ports,
// waits until /readyz answers ok and stops both when the test ends. Missing
// binaries skip the test (or fail it under RELEASE_REQUIRE_PEERS=1).
func StartControlPlane(t testing.TB) *ControlPlane {
	t.Helper()
	etcdBin := Tool(t, "etcd")
	apiBin := Tool(t, "kube-apiserver")
	kubectl := Tool(t, "kubectl")

	dir := t.TempDir()
	pki, err := writePKI(dir)
	if err != nil {
		t.Fatalf("peers: control plane certificates: %v", err)
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		cp, err := startControlPlane(t, dir, attempt, pki, etcdBin, apiBin)
		if err == nil {
			cp.kubectl = kubectl
			return cp
		}
		lastErr = err
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	t.Fatalf("peers: control plane did not come up: %v", lastErr)
	return nil
}

func startControlPlane(t testing.TB, dir string, attempt int, pki *pkiFiles, etcdBin, apiBin string) (*ControlPlane, error) {
	ports := make([]int, 3)
	for i := range ports {
		p, err := freePort()
		if err != nil {
			return nil, fmt.Errorf("no free port on 127.0.0.1: %w", err)
		}
		ports[i] = p
	}
	etcdClient := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	etcdPeer := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	data := filepath.Join(dir, fmt.Sprintf("etcd-%d", attempt))
	etcd := StartProcess(t, "etcd", dir, nil, etcdBin,
		"--name=default", "--data-dir="+data,
		"--listen-client-urls="+etcdClient, "--advertise-client-urls="+etcdClient,
		"--listen-peer-urls="+etcdPeer, "--initial-advertise-peer-urls="+etcdPeer,
		"--initial-cluster=default="+etcdPeer,
		// A test's cluster is thrown away: durability buys nothing here.
		"--unsafe-no-fsync", "--log-level=warn")

	url := fmt.Sprintf("https://127.0.0.1:%d", ports[2])
	api := StartProcess(t, "kube-apiserver", dir, nil, apiBin,
		"--etcd-servers="+etcdClient,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", ports[2]),
		"--cert-dir="+filepath.Join(dir, "apiserver-certs"),
		"--tls-cert-file="+pki.serverCert, "--tls-private-key-file="+pki.serverKey,
		"--client-ca-file="+pki.caCert,
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file="+pki.saPub,
		"--service-account-signing-key-file="+pki.saKey,
		"--service-cluster-ip-range=10.96.0.0/24",
		"--authorization-mode=RBAC",
		// Pods never run without a kubelet; the ServiceAccount admission
		// plugin would only demand the token controller's default account.
		"--disable-admission-plugins=ServiceAccount",
		"--enable-priority-and-fairness=false",
		"--profiling=false", "-v=1",
		// A cluster that runs our addon-sync Job (a Windows HostProcess
		// pod, like K2s') must admit privileged pods; without this the
		// apiserver refuses the Job the way such a cluster never would.
		"--allow-privileged=true",
		// The kubernetes Service cannot point at a loopback address.
		"--endpoint-reconciler-type=none")

	cp := &ControlPlane{URL: url, Dir: dir, etcd: etcd, apiserver: api,
		Kubeconfig: filepath.Join(dir, "kubeconfig")}
	if err := os.WriteFile(cp.Kubeconfig, pki.kubeconfig(url), 0o600); err != nil {
		return nil, err
	}
	client, err := pki.client()
	if err != nil {
		return nil, err
	}
	cp.client = client
	if err := cp.waitReady(); err != nil {
		api.Stop()
		etcd.Stop()
		return nil, fmt.Errorf("%w\n%s\n%s", err, etcd.Tail(20), api.Tail(40))
	}
	return cp, nil
}

func (c *ControlPlane) waitReady() error {
	deadline := time.Now().Add(controlPlaneTimeout)
	lastErr := errors.New("no answer")
	for time.Now().Before(deadline) {
		for _, p := range []*Process{c.etcd, c.apiserver} {
			if done, how := p.Exited(); done {
				return fmt.Errorf("%s exited: %s", p.Name, how)
			}
		}
		resp, err := c.client.Get(c.URL + "/readyz")
		if err == nil {
			body := new(bytes.Buffer)
			_, _ = body.ReadFrom(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			lastErr = fmt.Errorf("GET /readyz: %s: %s", resp.Status, strings.TrimSpace(body.String()))
		} else {
			lastErr = err
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("apiserver %s not ready after %s: %v", c.URL, controlPlaneTimeout, lastErr)
}

// Env is the environment a client of this cluster runs with.
func (c *ControlPlane) Env() []string { return []string{"KUBECONFIG=" + c.Kubeconfig} }

// Logs returns the apiserver's output, for failure messages.
func (c *ControlPlane) Logs() string { return c.apiserver.Tail(60) }

// TryKubectl runs kubectl against the cluster with stdin (nil for none)
// and returns its stdout, or an error carrying its stderr.
func (c *ControlPlane) TryKubectl(stdin []byte, args ...string) (string, error) {
	cmd := exec.Command(c.kubectl, append([]string{"--kubeconfig", c.Kubeconfig}, args...)...)
	cmd.Env = append(os.Environ(), c.Env()...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("kubectl %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// Kubectl is TryKubectl that fails the test on error.
func (c *ControlPlane) Kubectl(t testing.TB, stdin []byte, args ...string) string {
	t.Helper()
	out, err := c.TryKubectl(stdin, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// ApplyCRDs installs the CRD files (server-side apply) and waits
// until each is Established, so objects of its kinds are accepted.
func (c *ControlPlane) ApplyCRDs(t testing.TB, files ...string) {
	t.Helper()
	args := []string{"apply", "--server-side", "--field-manager=peers"}
	for _, f := range files {
		args = append(args, "-f", f)
	}
	c.Kubectl(t, nil, args...)
	waitArgs := []string{"wait", "--for=condition=Established", "--timeout=60s"}
	for _, f := range files {
		waitArgs = append(waitArgs, "-f", f)
	}
	c.Kubectl(t, nil, waitArgs...)
}

// Share returns the directory .ci/tools kept from tool's module source
// (share/<tool>/<sub>), e.g. Flux's CRDs; missing, the test is skipped or
// failed like a missing peer.
func Share(t testing.TB, tool, sub string) string {
	t.Helper()
	d := filepath.Join(ToolsDir(), "share", tool, sub)
	if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
		missing(t, "%s not found (kept from %s's module source); install with: %s", d, tool, installHint(tool))
	}
	return d
}

func installHint(name string) string {
	if h, ok := installHints[name]; ok {
		return h
	}
	return "install it and put it on PATH"
}

type pkiFiles struct {
	caCert, serverCert, serverKey, saKey, saPub string
	caPEM, adminCertPEM, adminKeyPEM            []byte
}

// writePKI writes a throwaway CA, the apiserver's serving certificate for
// 127.0.0.1, an admin client certificate (group system:masters) and the
// service-account signing key.
func writePKI(dir string) (*pkiFiles, error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "release-test-ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	leaf := func(serial int64, subj pkix.Name, usage x509.ExtKeyUsage, ips []net.IP, dns []string) (certPEM, keyPEM []byte, err error) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: subj,
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			KeyUsage:    x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: ips, DNSNames: dns,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return nil, nil, err
		}
		kd, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			return nil, nil, err
		}
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
			pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), nil
	}
	serverCert, serverKey, err := leaf(2, pkix.Name{CommonName: "kube-apiserver"}, x509.ExtKeyUsageServerAuth,
		[]net.IP{net.IPv4(127, 0, 0, 1), net.IPv4(10, 96, 0, 1)},
		[]string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"})
	if err != nil {
		return nil, err
	}
	adminCert, adminKey, err := leaf(3, pkix.Name{CommonName: "release-test-admin", Organization: []string{"system:masters"}}, x509.ExtKeyUsageClientAuth, nil, nil)
	if err != nil {
		return nil, err
	}
	saKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	saKeyDER, err := x509.MarshalECPrivateKey(saKey)
	if err != nil {
		return nil, err
	}
	saPubDER, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return nil, err
	}
	p := &pkiFiles{
		caCert: filepath.Join(dir, "ca.crt"), serverCert: filepath.Join(dir, "apiserver.crt"),
		serverKey: filepath.Join(dir, "apiserver.key"), saKey: filepath.Join(dir, "sa.key"), saPub: filepath.Join(dir, "sa.pub"),
		caPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), adminCertPEM: adminCert, adminKeyPEM: adminKey,
	}
	for path, b := range map[string][]byte{
		p.caCert: p.caPEM, p.serverCert: serverCert, p.serverKey: serverKey,
		p.saKey: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: saKeyDER}),
		p.saPub: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: saPubDER}),
	} {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func (p *pkiFiles) kubeconfig(url string) []byte {
	enc := base64.StdEncoding.EncodeToString
	return []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: admin
  user:
    client-certificate-data: %s
    client-key-data: %s
contexts:
- name: test
  context: {cluster: test, user: admin}
current-context: test
`, url, enc(p.caPEM), enc(p.adminCertPEM), enc(p.adminKeyPEM)))
}

func (p *pkiFiles) client() (*http.Client, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(p.caPEM) {
		return nil, errors.New("CA certificate does not parse")
	}
	cert, err := tls.X509KeyPair(p.adminCertPEM, p.adminKeyPEM)
	if err != nil {
		return nil, err
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		Proxy:           nil,
		TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
	}}, nil
}

// VendoredCRD returns the path of a CRD vendored in internal/peers/testdata/crds
// (upstream files whose modules the Go proxy does not serve; each names its
// source in its first line).
func VendoredCRD(t testing.TB, file string) string {
	t.Helper()
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("peers: cannot locate the package's source directory")
	}
	p := filepath.Join(filepath.Dir(self), "testdata", "crds", file)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("peers: vendored CRD: %v", err)
	}
	return p
}
