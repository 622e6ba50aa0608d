package addon

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// buildDate is the build date of every export in these tests.
var buildDate = time.Date(2025, 6, 1, 12, 30, 45, 0, time.UTC)

// writeTree writes files (forward-slash path -> content) below root. A
// path ending in "*" is written executable (the "*" is not part of it).
func writeTree(t testing.TB, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		mode := os.FileMode(0o644)
		if n, ok := strings.CutSuffix(name, "*"); ok {
			name, mode = n, 0o755
		}
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		// WriteFile keeps the mode of an existing file and the umask
		// applies to new ones: set it explicitly.
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
}

const metricsManifest = `apiVersion: v1
kind: AddonManifest
metadata:
  name: metrics
  description: Kubernetes metrics server for API access to resource metrics
spec:
  implementations:
    - name: metrics
      description: metrics-server
      offline_usage:
        linux:
          repos: []
          deb: []
          curl: []
          additionalImages: []
        windows:
          curl: []
      commands:
        enable:
          cli:
            flags:
              - name: replicas
                shorthand: r
                default: 1
                constraints:
                  kind: validation-set
                  validationSet: [1, 2, 3]
            examples:
              - cmd: k2s addons enable metrics
          script:
            subPath: Enable.ps1
            parameterMappings:
              - cliFlagName: replicas
                scriptParameterName: Replicas
        disable:
          script:
            subPath: Disable.ps1
`

// metricsAddon writes a single-implementation addon (the implementation
// is named like the addon, so its files are in the addon directory).
func metricsAddon(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "metrics")
	writeTree(t, dir, map[string]string{
		ManifestFile:                       metricsManifest,
		"Enable.ps1*":                      "# Enables the metrics addon\nkubectl apply -k \"$PSScriptRoot\\manifests\"\n",
		"Disable.ps1":                      "# Disables the metrics addon\nkubectl delete -k \"$PSScriptRoot\\manifests\"\n",
		"README.md":                        "# metrics\n",
		"values.yaml":                      "replicas: 1\n",
		"values-ha.yaml":                   "replicas: 3\n",
		"notes.txt":                        "in no layer\n",
		"config/extra.config.json":         "{\"a\": 1}\n",
		"manifests/kustomization.yaml":     "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - metrics-server.yaml\n",
		"manifests/metrics-server.yaml":    "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: metrics-server\n  namespace: kube-system\n",
		"manifests/rbac/cluster-role.yaml": "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: metrics\n",
	})
	return dir
}

const ingressManifest = `apiVersion: v1
kind: AddonManifest
metadata:
  name: ingress
  description: Ingress controllers for external access
spec:
  implementations:
    - name: nginx
      description: Ingress controller that uses nginx as a reverse proxy
      commands:
        enable:
          script:
            subPath: nginx/Enable.ps1
        disable:
          script:
            subPath: nginx/Disable.ps1
    - name: traefik
      commands:
        enable:
          script:
            subPath: traefik/Enable.ps1
`

// ingressAddon writes a two-implementation addon: nginx/ and traefik/
// (with a Helm chart below manifests/chart/).
func ingressAddon(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ingress")
	writeTree(t, dir, map[string]string{
		ManifestFile:                                 ingressManifest,
		"README.md":                                  "# ingress: in no layer, it is outside every implementation\n",
		"nginx/Enable.ps1":                           "# Enables ingress nginx\n",
		"nginx/Disable.ps1":                          "# Disables ingress nginx\n",
		"nginx/values.yaml":                          "controller: {replicas: 1}\n",
		"nginx/manifests/namespace.yaml":             "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ingress-nginx\n",
		"traefik/Enable.ps1":                         "# Enables ingress traefik\n",
		"traefik/README.md":                          "# traefik\n",
		"traefik/settings.yaml":                      "in no layer\n",
		"traefik/manifests/namespace.yaml":           "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ingress-traefik\n",
		"traefik/manifests/chart/Chart.yaml":         "apiVersion: v2\nname: traefik\nversion: 33.2.1\n",
		"traefik/manifests/chart/templates/dep.yaml": "kind: Deployment\n",
	})
	return dir
}

// syncFor generates the gitops-sync/ files as the step does.
func syncFor(t testing.TB, name, version, impl string) []SyncFile {
	t.Helper()
	s := &Spec{Name: name, Version: version, GitOps: &SpecGitOps{Registry: "k2s.registry.local:30500", Prefix: "addons",
		Insecure: true, Interval: "5m0s", Timeout: "10m0s", Namespace: "k2s-addon-sync", TargetNamespace: "k2s-addon-sync"}}
	sync, flux, err := gitopsFiles(s, impl)
	if err != nil {
		t.Fatal(err)
	}
	if len(sync) != 2 || len(flux) == 0 {
		t.Fatalf("gitops files: %d sync files, %d bytes of Flux", len(sync), len(flux))
	}
	return sync
}

// layoutOf reads an OCI image layout written by Export.
type layoutOf struct {
	t     testing.TB
	dir   string
	index ocispec.Index
}

func readLayout(t testing.TB, dir string) *layoutOf {
	t.Helper()
	l := &layoutOf{t: t, dir: dir}
	strictJSON(t, l.file("index.json"), &l.index)
	return l
}

func (l *layoutOf) file(name string) []byte {
	l.t.Helper()
	b, err := os.ReadFile(filepath.Join(l.dir, filepath.FromSlash(name)))
	if err != nil {
		l.t.Fatal(err)
	}
	return b
}

// blob reads the blob of d and checks its digest and size.
func (l *layoutOf) blob(d ocispec.Descriptor) []byte {
	l.t.Helper()
	b := l.file("blobs/sha256/" + d.Digest.Encoded())
	if got := sha256Hex(b); "sha256:"+got != d.Digest.String() || int64(len(b)) != d.Size {
		l.t.Fatalf("blob %s: sha256 %s, size %d; the descriptor says size %d", d.Digest, got, len(b), d.Size)
	}
	return b
}

func (l *layoutOf) manifest(d ocispec.Descriptor) ocispec.Manifest {
	l.t.Helper()
	var m ocispec.Manifest
	strictJSON(l.t, l.blob(d), &m)
	return m
}

func strictJSON(t testing.TB, b []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// tarEntry is what the tests check of a tar header.
type tarEntry struct {
	Name string
	Mode int64
	Type byte
	Data string
}

// readTar lists a tar's entries and checks the headers that must not vary:
// owner root, every time the build date.
func readTar(t testing.TB, b []byte) []tarEntry {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(b))
	var out []tarEntry
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: owner %d:%d (%q:%q), want 0:0 unnamed", h.Name, h.Uid, h.Gid, h.Uname, h.Gname)
		}
		if !h.ModTime.Equal(buildDate) || !h.AccessTime.IsZero() || !h.ChangeTime.IsZero() {
			t.Errorf("%s: times %v %v %v, want only mtime %v", h.Name, h.ModTime, h.AccessTime, h.ChangeTime, buildDate)
		}
		// Extended attributes are PAX records too (SCHILY.xattr.*).
		if len(h.PAXRecords) != 0 {
			t.Errorf("%s: PAX records %v", h.Name, h.PAXRecords)
		}
		out = append(out, tarEntry{Name: h.Name, Mode: h.Mode, Type: h.Typeflag, Data: string(data)})
	}
}

// gunzip checks that a gzip stream's header carries no name and no time
// (the raw bytes, not just what compress/gzip reports) and inflates it.
func gunzip(t testing.TB, b []byte) []byte {
	t.Helper()
	if len(b) < 10 || b[0] != 0x1f || b[1] != 0x8b {
		t.Fatalf("not gzip: % x", b[:min(len(b), 10)])
	}
	if flg := b[3]; flg != 0 {
		t.Errorf("gzip FLG %#x: want no name, comment or extra field", flg)
	}
	if mtime := b[4:8]; !bytes.Equal(mtime, []byte{0, 0, 0, 0}) {
		t.Errorf("gzip MTIME % x, want 0", mtime)
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	zr.Multistream(false)
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if zr.Header.Name != "" || !zr.Header.ModTime.IsZero() || zr.Header.Comment != "" {
		t.Errorf("gzip header %+v", zr.Header)
	}
	return out
}

// names lists entry names.
func names(es []tarEntry) []string {
	out := []string{}
	for _, e := range es {
		out = append(out, e.Name)
	}
	return out
}
