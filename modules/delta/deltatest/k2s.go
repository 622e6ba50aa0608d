package deltatest

import (
	"archive/zip"
	"bytes"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

// K2s-shaped releases for the tests of the k2s profile: installation trees
// laid out as K2s lays out its own (Siemens-Healthineers/K2s at eaa769c),
// with short stand-in contents.

// K2sVersions are the base and target of K2sTrees.
const K2sBase, K2sTarget = "1.4.0", "1.5.0"

// K2sNested is the package path of K2s's Windows node archive.
const K2sNested = "bin/WindowsNodeArtifacts.zip"

// K2sTrees returns the full packages' trees of a K2s-shaped product's base
// and target release, with every kind of change the k2s profile treats:
//
//   - the files K2s's entry points need, unchanged (k2s.exe, cfg/config.json,
//     the update module, Start-ClusterUpgrade.ps1, Invoke-ExecScript.ps1)
//     and changed (Start-ClusterUpdate.ps1, VERSION);
//   - bin/WindowsNodeArtifacts.zip with a changed kubetools/kubelet.exe
//     beside unchanged kubectl.exe, kubeadm.exe and kube-proxy.exe, a
//     changed cni plugin, an unchanged containerd, a changed loose tool
//     (yaml/yq.exe beside an unchanged jq.exe) and Windows image tars
//     added, changed and removed;
//   - addons/ changes, a file named config (and one named Config) outside
//     the root, a changed Kubemaster-Base.vhdx, a non-ASCII path, an added,
//     a changed and a removed ordinary file.
func K2sTrees(t testing.TB) (base, target Tree) {
	t.Helper()
	f := func(s string) File { return File{Data: []byte(s)} }
	common := Tree{
		"k2s.exe":         f("k2s.exe stand-in\n"),
		"cfg/config.json": f(`{"configDir": {"kube": "~/.kube", "k2s": "C:\\ProgramData\\K2s"}, "smallsetup": {"masterIP": "172.19.1.100"}}` + "\n"),
		"lib/modules/k2s/k2s.cluster.module/update/update.module.psm1": f("function PerformClusterUpdate { param([switch] $ShowLogs, [switch] $ShowProgress) $true }\r\n"),
		"lib/modules/k2s/k2s.cluster.module/k2s.cluster.module.psm1":   f("# cluster module stand-in\r\n"),
		"lib/modules/k2s/k2s.infra.module/k2s.infra.module.psm1":       f("function Write-Log { param([string] $Message) }\r\n"),
		"lib/scripts/k2s/base/Invoke-ExecScript.ps1":                   f("param([string] $Script) & $Script\r\n"),
		"lib/scripts/k2s/system/upgrade/Start-ClusterUpgrade.ps1":      f("# upgrade entry stand-in\r\n"),
		"addons/addons.module.psm1":                                    f("# addons module stand-in\r\n"),
		"docs/op-manual.md":                                            f("# K2s\n"),
	}
	base, target = common.Clone(), common.Clone()
	add := func(tree Tree, files map[string]string) {
		for p, s := range files {
			tree[p] = f(s)
		}
	}
	add(base, map[string]string{
		"VERSION": K2sBase,
		"lib/scripts/k2s/system/update/Start-ClusterUpdate.ps1":    "# update entry 1.4\r\n",
		"lib/modules/k2s/k2s.node.module/ünïcode/Prüfung.psm1":     "# Prüfung 1.4\r\n",
		"smallsetup/common/GlobalVariables.ps1":                    "$version = '1.4.0'\r\n",
		"smallsetup/legacy/Install-Legacy.ps1":                     "# dropped in 1.5\r\n",
		"bin/Kubemaster-Base.vhdx":                                 "vhdx 1.4",
		"addons/monitoring/manifests/prometheus.yaml":              "replicas: 1\n",
		"lib/modules/k2s/k2s.cluster.module/kubeconfig/config":     "kubeconfig 1.4\n",
		"lib/modules/k2s/k2s.cluster.module/kubeconfig/ca/Config":  "ca 1.4\n",
		"lib/modules/k2s/k2s.cluster.module/kubeconfig/config.txt": "not a kubeconfig 1.4\n",
	})
	add(target, map[string]string{
		"VERSION": K2sTarget,
		"lib/scripts/k2s/system/update/Start-ClusterUpdate.ps1":    "# update entry 1.5\r\n",
		"lib/modules/k2s/k2s.node.module/ünïcode/Prüfung.psm1":     "# Prüfung 1.5\r\n",
		"smallsetup/common/GlobalVariables.ps1":                    "$version = '1.5.0'\r\n",
		"smallsetup/Get-Status.ps1":                                "# new in 1.5\r\n",
		"bin/Kubemaster-Base.vhdx":                                 "vhdx 1.5",
		"addons/monitoring/manifests/prometheus.yaml":              "replicas: 2\n",
		"addons/dashboard/manifests/dashboard.yaml":                "kind: Deployment\n",
		"lib/modules/k2s/k2s.cluster.module/kubeconfig/config":     "kubeconfig 1.5\n",
		"lib/modules/k2s/k2s.cluster.module/kubeconfig/ca/Config":  "ca 1.5\n",
		"lib/modules/k2s/k2s.cluster.module/kubeconfig/config.txt": "not a kubeconfig 1.5\n",
	})
	base[K2sNested] = File{Data: NestedZip(t, K2sNestedMembers(K2sBase))}
	target[K2sNested] = File{Data: NestedZip(t, K2sNestedMembers(K2sTarget))}
	return base, target
}

// K2sNestedMembers are the members of WindowsNodeArtifacts.zip of a
// release of K2sTrees, by their paths in the archive.
func K2sNestedMembers(version string) map[string][]byte {
	kubelet, bridge, yq := "1.31.4", "1.4.0", "4.40.5"
	images := map[string]string{
		"images/shsk2s.azurecr.io__pause-win_v1.4.0.tar":             "pause-win 1.4.0 image",
		"images/mcr.microsoft.com__windows__nanoserver_ltsc2022.tar": "nanoserver 2024-05",
	}
	if version == K2sTarget {
		kubelet, bridge, yq = "1.32.2", "1.6.2", "4.44.1"
		images = map[string]string{
			"images/shsk2s.azurecr.io__pause-win_v1.5.0.tar":             "pause-win 1.5.0 image",
			"images/mcr.microsoft.com__windows__nanoserver_ltsc2022.tar": "nanoserver 2025-06",
		}
	}
	m := map[string][]byte{
		"kubetools/kubelet.exe":                        []byte("kubelet " + kubelet),
		"kubetools/kubectl.exe":                        []byte("kubectl 1.31.4"),
		"kubetools/kubeadm.exe":                        []byte("kubeadm 1.31.4"),
		"kubetools/kube-proxy.exe":                     []byte("kube-proxy 1.31.4"),
		"cni_plugins/bridge.exe":                       []byte("bridge " + bridge),
		"cni_plugins/host-local.exe":                   []byte("host-local 1.4.0"),
		"cni_flannel/flannel-amd64.exe":                []byte("flannel cni 0.25.2"),
		"flannel/flanneld.exe":                         []byte("flanneld 0.25.2"),
		"containerd/bin/containerd.exe":                []byte("containerd 1.7.20"),
		"containerd/bin/containerd-shim-runhcs-v1.exe": []byte("runhcs shim 0.12"),
		"nssm/nssm.exe":                                []byte("nssm 2.24"),
		"yaml/yq.exe":                                  []byte("yq " + yq),
		"yaml/jq.exe":                                  []byte("jq 1.7.1"),
	}
	for p, s := range images {
		m[p] = []byte(s)
	}
	return m
}

// NestedZip returns a zip of members as Windows PowerShell's
// Compress-Archive writes one: deflated, with backslash separators and
// explicit directory entries (K2s builds WindowsNodeArtifacts.zip so,
// downloader.module.psm1). The same members give the same bytes.
func NestedZip(t testing.TB, members map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	dirs := map[string]bool{}
	for _, p := range sortedKeys(members) {
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	names := append([]string{}, sortedKeys(dirs)...)
	names = append(names, sortedKeys(members)...)
	for _, p := range names {
		data, file := members[p]
		name := strings.ReplaceAll(p, "/", `\`)
		if !file {
			name += `\`
		}
		h := &zip.FileHeader{Name: name, Method: zip.Deflate, Modified: Date}
		if !file {
			h.Method = zip.Store
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// k2sInstalled maps the folders of WindowsNodeArtifacts.zip to where K2s's
// installer copies their files (lib/modules/k2s/k2s.node.module/
// windowsnode/artifacts/*: kube-tools, docker, containerd, flannel, nssm,
// yaml-tools, ... modules), with the one rename it makes.
var k2sInstalled = []struct{ from, to string }{
	{"kubetools/", "bin/kube/"},
	{"docker/docker/", "bin/docker/"},
	{"containerd/bin/", "bin/containerd/"},
	{"flannel/", "bin/cni/"},
	{"cni_plugins/", "bin/cni/"},
	{"cni_flannel/", "bin/cni/"},
	{"crictl/", "bin/"}, {"nerdctl/", "bin/"}, {"nssm/", "bin/"}, {"dnsproxy/", "bin/"},
	{"yaml/", "bin/"}, {"puttytools/", "bin/"}, {"helm/", "bin/"}, {"oras/", "bin/"},
	{"windowsexporter/", "bin/"},
}

// InstallK2s unpacks the full package at zipPath into dir as K2s's
// installer leaves an installation: every file of the package, and the
// tool folders of bin/WindowsNodeArtifacts.zip copied into bin/kube,
// bin/cni, bin/containerd, ... (cni_flannel's flannel-amd64.exe as
// flannel.exe).
func InstallK2s(t testing.TB, zipPath, dir string) {
	t.Helper()
	Extract(t, zipPath, dir)
	data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(K2sNested)))
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	for _, zf := range zr.File {
		name := strings.ReplaceAll(zf.Name, `\`, "/")
		if strings.HasSuffix(name, "/") {
			continue
		}
		for _, m := range k2sInstalled {
			rest, ok := strings.CutPrefix(name, m.from)
			if !ok {
				continue
			}
			if rest == "flannel-amd64.exe" && m.from == "cni_flannel/" {
				rest = "flannel.exe"
			}
			rc, err := zf.Open()
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			dst := filepath.Join(dir, filepath.FromSlash(m.to+rest))
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dst, body, 0o644); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
}
