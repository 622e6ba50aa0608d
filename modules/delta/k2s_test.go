package delta_test

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/relcue/release/modules/apply"
	"github.com/relcue/release/modules/delta"
	"github.com/relcue/release/modules/delta/deltatest"
	"github.com/relcue/release/modules/nodepkg/nodepkgtest"
	"github.com/relcue/release/modules/pkgzip"
	"github.com/relcue/release/pipeline/config"
)

// The conformance tests of the k2s profile: each encodes what K2s's own
// code (Siemens-Healthineers/K2s) needs of a cluster delta, citing the
// lines, on the K2s-shaped releases of deltatest.K2sTrees. Line numbers
// are those of K2s at eaa769c where ../shared/k2s/AUDIT.md gives them;
// the others are of the copy of the file read for this work:
// Apply-Delta.template.ps1 at 5b76f263, internal/powershell/powershell.go
// at 65fce395, internal/core/config/k2sconfig.go at 5b493836,
// New-K2sDelta.ImageDiff.ps1 at 011c99de, New-K2sDelta.ImageAcquisition.ps1
// at f8725d52.

// k2sFixture is a K2s-shaped base and target, their control plane's node
// packages, and the k2s profile's options.
type k2sFixture struct {
	dir                  string
	base, target         string
	baseNode, targetNode string
	baseTree, targetTree deltatest.Tree
	opts                 delta.Options
	manifest             *delta.Manifest
	out                  string
	entries              map[string][]byte
	// arch is the host's Debian architecture, that of kubelet and kubeadm.
	arch string
}

func k2sOptions(t testing.TB) delta.Options {
	t.Helper()
	pd, err := config.DefaultsOf(config.ProfileK2s)
	if err != nil {
		t.Fatal(err)
	}
	return delta.Options{
		Profile: delta.ProfileK2s, WholeDirectories: pd.WholeDirectories, Skip: pd.Skip, SkipNames: pd.SkipNames,
		Always: pd.Always, Nested: delta.NestedOf(pd.Nested), ApplyScript: delta.ApplyScriptOf(pd.ApplyScript),
		Date: deltatest.Date, Workers: 2, Log: io.Discard,
	}
}

// newK2sFixture writes the packages and builds the delta with the k2s
// profile's defaults, as a configuration with profile: "k2s" would.
func newK2sFixture(t *testing.T) *k2sFixture {
	t.Helper()
	f := &k2sFixture{dir: t.TempDir()}
	f.baseTree, f.targetTree = deltatest.K2sTrees(t)
	f.base = filepath.Join(f.dir, "k2s-1.4.0.zip")
	f.target = filepath.Join(f.dir, "k2s-1.5.0.zip")
	deltatest.WritePackage(t, f.base, f.baseTree, true)
	deltatest.WritePackage(t, f.target, f.targetTree, true)
	f.arch = nodepkgtest.HostArch(t)
	rels := nodepkgtest.K2sReleases(f.arch)
	f.baseNode = nodepkgtest.NodePackage(t, f.dir, rels[0])
	f.targetNode = nodepkgtest.NodePackage(t, f.dir, rels[1])
	f.opts = k2sOptions(t)
	f.opts.Base, f.opts.Target, f.opts.BaseNode, f.opts.TargetNode = f.base, f.target, f.baseNode, f.targetNode
	f.out = filepath.Join(f.dir, "k2s-delta-1.4.0-to-1.5.0.zip")
	f.opts.Output = f.out
	m, err := delta.Build(context.Background(), f.opts)
	if err != nil {
		t.Fatal(err)
	}
	f.manifest = m
	f.entries = zipEntries(t, f.out)
	return f
}

// zipEntries reads every entry of a zip.
func zipEntries(t testing.TB, p string) map[string][]byte {
	t.Helper()
	r, err := pkgzip.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	out := map[string][]byte{}
	for _, e := range r.Entries {
		rc, err := e.Open()
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name], err = io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestK2sMandatoryFiles: K2s's delta tool always stages k2s.exe, VERSION and
// the update module (New-K2sDelta.Mandatory.ps1:118-177). Apply-Delta.ps1
// needs delta-manifest.json and the update module beside itself
// (Apply-Delta.template.ps1:29-44). .\k2s.exe system upgrade run from the
// delta runs the scripts next to the running k2s.exe
// (cmd/k2s/utils/utilities.go:23, provider/system_windows.go:68), reads
// cfg/config.json at start (internal/core/config/k2sconfig.go:31-36), wraps
// every script in lib/scripts/k2s/base/Invoke-ExecScript.ps1
// (internal/powershell/powershell.go:113-131), and
// Start-ClusterUpgrade.ps1 finds delta-manifest.json five levels up and
// hands over to Start-ClusterUpdate.ps1 in the delta
// (Start-ClusterUpgrade.ps1:50-71). The unchanged ones are Mandatory.
func TestK2sMandatoryFiles(t *testing.T) {
	f := newK2sFixture(t)
	m := f.manifest
	want := []string{
		"cfg/config.json", "k2s.exe",
		"lib/modules/k2s/k2s.cluster.module/update/update.module.psm1",
		"lib/scripts/k2s/base/Invoke-ExecScript.ps1",
		"lib/scripts/k2s/system/upgrade/Start-ClusterUpgrade.ps1",
	}
	if !slices.Equal(m.Mandatory, want) {
		t.Errorf("Mandatory = %v\nwant %v", m.Mandatory, want)
	}
	for _, p := range want {
		if !bytes.Equal(f.entries[p], f.targetTree[p].Data) {
			t.Errorf("%s is not shipped with the target's content", p)
		}
		if m.Files.Base[p] != m.Files.Target[p] {
			t.Errorf("%s: Files.Base and Files.Target differ for an unchanged file", p)
		}
		if slices.Contains(m.Changed, p) {
			t.Errorf("%s is unchanged but listed in Changed", p)
		}
	}
	for _, p := range []string{"VERSION", "lib/scripts/k2s/system/update/Start-ClusterUpdate.ps1"} {
		if !slices.Contains(m.Changed, p) || f.entries[p] == nil {
			t.Errorf("%s changed but is not shipped as Changed", p)
		}
	}
	if problems := k2sEntryPoints(f.entries); len(problems) > 0 {
		t.Errorf("K2s's entry points cannot start from the extracted delta:\n%s", strings.Join(problems, "\n"))
	}

	// A target without one of them is refused, and nothing is written.
	tree := f.targetTree.Clone()
	delete(tree, "k2s.exe")
	noExe := filepath.Join(f.dir, "no-exe.zip")
	deltatest.WritePackage(t, noExe, tree, true)
	o := f.opts
	o.Target, o.Output = noExe, filepath.Join(f.dir, "refused", "d.zip")
	_, err := delta.Build(context.Background(), o)
	if err == nil || !strings.Contains(err.Error(), "the target package has no k2s.exe, which every delta must ship (deltas.always)") {
		t.Errorf("target without k2s.exe: %v", err)
	}
	if _, err := os.Stat(filepath.Dir(o.Output)); err == nil {
		t.Error("a refused delta left its directory behind")
	}
}

// k2sEntryPoints says what K2s's two entry points would miss in the
// extracted delta, resolving the paths the way K2s's code does.
func k2sEntryPoints(entries map[string][]byte) []string {
	var problems []string
	need := func(p, why string) {
		if entries[p] == nil {
			problems = append(problems, p+" is missing: "+why)
		}
	}
	// Apply-Delta.ps1 (K2s's template, lines 29-44): beside it.
	need("Apply-Delta.ps1", "K2s's documented entry point (New-K2sDelta.Mandatory.ps1:161-174)")
	need("delta-manifest.json", "Apply-Delta.ps1 exits 1 without it")
	need("lib/modules/k2s/k2s.cluster.module/update/update.module.psm1", "Apply-Delta.ps1 exits 2 without it")
	// .\k2s.exe system upgrade from the delta.
	need("k2s.exe", "the entry point itself")
	need("cfg/config.json", "k2s.exe reads it when it starts (k2sconfig.go:31-36)")
	need("lib/scripts/k2s/base/Invoke-ExecScript.ps1", "k2s.exe runs every script through it when lib exists (powershell.go:113-131)")
	upgrade := "lib/scripts/k2s/system/upgrade/Start-ClusterUpgrade.ps1"
	need(upgrade, "k2s.exe runs it from its own directory (system_windows.go:68, utilities.go:23)")
	// Start-ClusterUpgrade.ps1:52: Join-Path $PSScriptRoot '..\..\..\..\..\delta-manifest.json'.
	dir := path.Dir(upgrade)
	if root := path.Clean(dir + "/../../../../../delta-manifest.json"); entries[root] == nil {
		problems = append(problems, "Start-ClusterUpgrade.ps1 resolves the manifest to "+root+", which is missing")
	}
	// :57, the update script in the delta, or it throws.
	if p := path.Clean(dir + "/../../../../../lib/scripts/k2s/system/update/Start-ClusterUpdate.ps1"); entries[p] == nil {
		problems = append(problems, "Start-ClusterUpgrade.ps1 throws \"Delta update script not found\": "+p+" is missing")
	}
	return problems
}

// TestK2sApplyDeltaScript: K2s's delta always has Apply-Delta.ps1 at the
// root (New-K2sDelta.Mandatory.ps1:161-174), which imports the update module
// beside itself and calls PerformClusterUpdate from the delta's root with
// exit codes 1-5 (Apply-Delta.template.ps1:17-94). Ours keeps that contract
// and is listed in Files.Upgrade, never installed by release apply. (The
// PowerShell grammar judges it in modules/applydelta.)
func TestK2sApplyDeltaScript(t *testing.T) {
	f := newK2sFixture(t)
	script := f.entries["Apply-Delta.ps1"]
	if script == nil {
		t.Fatal("no Apply-Delta.ps1 at the root")
	}
	if _, ok := f.manifest.Files.Upgrade["Apply-Delta.ps1"]; !ok {
		t.Error("Apply-Delta.ps1 is not in Files.Upgrade")
	}
	if _, ok := f.manifest.Files.Target["Apply-Delta.ps1"]; ok {
		t.Error("Apply-Delta.ps1 would be installed")
	}
	s := string(script)
	for _, want := range []string{
		"\uFEFF", "#Requires -RunAsAdministrator\r\n",
		`Join-Path $deltaRoot 'lib\modules\k2s\k2s.cluster.module\update\update.module.psm1'`,
		`& 'PerformClusterUpdate' -ShowLogs:$ShowLogs -ShowProgress:$ShowProgress`,
		"Push-Location -LiteralPath $deltaRoot", "$manifest.Files.Base.PSObject.Properties",
		"exit 1\r\n", "exit 2\r\n", "exit 3\r\n", "exit 4\r\n", "exit 5\r\n", "exit 7\r\n", "exit 8\r\n",
		"    'lib\\modules\\k2s\\k2s.infra.module\\k2s.infra.module.psm1'",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("Apply-Delta.ps1 lacks %q", want)
		}
	}
	if strings.Contains(strings.ReplaceAll(s, "\r\n", ""), "\n") {
		t.Error("Apply-Delta.ps1 has a line ending that is not CRLF")
	}
}

// TestK2sDebianDelta: K2s's delta has debian-delta/ with packages.added
// (name=version), packages.removed (names), packages.upgraded (name old
// new), expected-k8s-version (X.Y.Z, no newline) when kubelet changes,
// debian-delta-manifest.json, apply-debian-delta.sh, verify-debian-delta.sh
// and packages/*.deb flat (New-K2sDeltaPackage.ps1:545-684), and the
// manifest's DebianDeltaRelativePath names it; without it K2s's apply skips
// the control plane (update.module.psm1:993-1013). expected-k8s-version
// updates setup.json (:1754-1771).
func TestK2sDebianDelta(t *testing.T) {
	f := newK2sFixture(t)
	m := f.manifest
	if m.DebianDeltaRelativePath == nil || *m.DebianDeltaRelativePath != "debian-delta" {
		t.Fatalf("DebianDeltaRelativePath = %v", m.DebianDeltaRelativePath)
	}
	arch := f.arch
	wantFiles := map[string]string{
		"debian-delta/packages.added":                             "cri-o=1.32.0-1\n",
		"debian-delta/packages.removed":                           "flannel-legacy\n",
		"debian-delta/packages.upgraded":                          "kubeadm 1.31.4-1 1.32.2-1\nkubelet 1.31.4-1 1.32.2-1\n",
		"debian-delta/expected-k8s-version":                       "1.32.2",
		"debian-delta/packages/cri-o_1.32.0-1_all.deb":            "",
		"debian-delta/packages/kubeadm_1.32.2-1_" + arch + ".deb": "",
		"debian-delta/packages/kubelet_1.32.2-1_" + arch + ".deb": "",
	}
	for p, want := range wantFiles {
		got, ok := f.entries[p]
		if !ok {
			t.Errorf("%s is missing", p)
		} else if want != "" && string(got) != want {
			t.Errorf("%s = %q, want %q", p, got, want)
		}
	}
	var debian []string
	for p := range f.entries {
		if strings.HasPrefix(p, "debian-delta/") {
			debian = append(debian, p)
		}
	}
	slices.Sort(debian)
	wantList := []string{
		"debian-delta/apply-debian-delta.sh", "debian-delta/debian-delta-manifest.json", "debian-delta/expected-k8s-version",
		"debian-delta/packages.added", "debian-delta/packages.removed", "debian-delta/packages.upgraded",
		"debian-delta/packages/cri-o_1.32.0-1_all.deb", "debian-delta/packages/download-manifest.json",
		"debian-delta/packages/kubeadm_1.32.2-1_" + arch + ".deb", "debian-delta/packages/kubelet_1.32.2-1_" + arch + ".deb",
		"debian-delta/verify-debian-delta.sh",
	}
	if !slices.Equal(debian, wantList) {
		t.Errorf("debian-delta/ holds\n%s\nwant\n%s", strings.Join(debian, "\n"), strings.Join(wantList, "\n"))
	}
	// The .debs are the target node package's, byte for byte.
	node := zipEntries(t, f.targetNode)
	if !bytes.Equal(f.entries["debian-delta/packages/kubelet_1.32.2-1_"+arch+".deb"], node["packages/debian12/kubernetes/kubelet_1.32.2-1_"+arch+".deb"]) {
		t.Error("the shipped kubelet .deb is not the node package's")
	}
	dm := string(f.entries["debian-delta/debian-delta-manifest.json"])
	for _, want := range []string{"\uFEFF{", `"SourceVhdxOld": "k2s-node-debian12-1.4.0.zip"`, `"Upgraded": [`, `"OfflinePackagesCount": 3`, `"GeneratedUtc": "2026-03-01T12:00:00Z"`} {
		if !strings.Contains(dm, want) {
			t.Errorf("debian-delta-manifest.json lacks %q:\n%s", want, dm)
		}
	}
	if m.DebianOffline == nil || !slices.Equal(m.DebianOfflinePackages, []string{"cri-o=1.32.0-1", "kubeadm=1.32.2-1", "kubelet=1.32.2-1"}) ||
		m.DebianOfflineDownloadedCount != 3 || m.DebianOfflineDownloaded[0] != "debian-delta/packages/cri-o_1.32.0-1_all.deb" {
		t.Errorf("DebianOffline = %+v", m.DebianOffline)
	}
	for _, p := range []string{"debian-delta/apply-debian-delta.sh", "debian-delta/verify-debian-delta.sh"} {
		if !strings.HasPrefix(string(f.entries[p]), "#!/bin/sh\n") || bytes.Contains(f.entries[p], []byte("\r")) {
			t.Errorf("%s does not start with #!/bin/sh or has a CR", p)
		}
	}
}

// TestK2sImageDelta: K2s exports the control plane's added and changed
// images to image-delta/linux/images/<ref, [/:] as "-">.tar as OCI archives
// naming the reference, and the Windows node archive's added and changed
// images/<name>.tar to image-delta/windows/images/<name>.tar
// (New-K2sDelta.ImageAcquisition.ps1:85-86,305-352); its apply loads them
// with ctr images import and buildah pull oci-archive:
// (update.module.psm1:1455-1558). Windows images are named from their file
// names (New-K2sDelta.ImageDiff.ps1:63-92).
func TestK2sImageDelta(t *testing.T) {
	f := newK2sFixture(t)
	node := zipEntries(t, f.targetNode)
	for p, from := range map[string]string{
		"image-delta/linux/images/registry.k8s.io-pause-3.10.tar":                        "images/registry.k8s.io_pause__3.10.tar",
		"image-delta/linux/images/ghcr.io-example-k2s-tools-latest.tar":                  "images/ghcr.io_example_k2s-tools__latest.tar",
		"image-delta/windows/images/shsk2s.azurecr.io__pause-win_v1.5.0.tar":             "",
		"image-delta/windows/images/mcr.microsoft.com__windows__nanoserver_ltsc2022.tar": "",
	} {
		got, ok := f.entries[p]
		if !ok {
			t.Errorf("%s is missing", p)
			continue
		}
		if from != "" && !bytes.Equal(got, node[from]) {
			t.Errorf("%s is not the node package's %s", p, from)
		}
	}
	var images []string
	for p := range f.entries {
		if strings.HasPrefix(p, "image-delta/") {
			images = append(images, p)
		}
	}
	if len(images) != 4 {
		t.Errorf("image-delta/ holds %v, want the 2 added/changed Linux and 2 Windows images", images)
	}
	want := delta.ContainerImageDiff{
		AddedImages: []delta.Image{{FullName: "registry.k8s.io/pause:3.10", Platform: "linux"},
			{FullName: "shsk2s.azurecr.io/pause-win:v1.5.0", Platform: "windows"}},
		RemovedImages: []delta.Image{{FullName: "registry.k8s.io/pause:3.9", Platform: "linux"},
			{FullName: "shsk2s.azurecr.io/pause-win:v1.4.0", Platform: "windows"}},
		ChangedImages: []delta.Image{{FullName: "ghcr.io/example/k2s-tools:latest", Platform: "linux"},
			{FullName: "mcr.microsoft.com/windows/nanoserver:ltsc2022", Platform: "windows"}},
		AddedCount: 2, RemovedCount: 2, ChangedCount: 2,
	}
	if !reflect.DeepEqual(f.manifest.ContainerImageDiff, want) {
		t.Errorf("ContainerImageDiff = %+v\nwant %+v", f.manifest.ContainerImageDiff, want)
	}
}

// TestK2sNestedArchive: K2s never ships WindowsNodeArtifacts.zip
// (New-K2sDelta.Skip.ps1:134-146) but its changed members, at the folders
// its installer puts them in, listing those folders as wholesale
// (New-K2sDelta.Staging.ps1:260-489, New-K2sDeltaPackage.ps1:310-314).
// K2s's in-place apply deletes each wholesale directory and copies the
// delta's (update.module.psm1:1147-1235), so the delta ships them complete:
// after K2s's apply, every binary of the target is in place, the unchanged
// ones too. Its relocating apply (the delta folder becomes the
// installation, robocopy seeds what it lacks, :516-543) gets there as well.
func TestK2sNestedArchive(t *testing.T) {
	f := newK2sFixture(t)
	m := f.manifest
	if f.entries[deltatest.K2sNested] != nil || !slices.Contains(m.SpecialSkippedFiles, deltatest.K2sNested) {
		t.Error("the nested archive is shipped, or not listed as skipped")
	}
	if want := []string{"bin/cni", "bin/kube"}; !slices.Equal(m.WholeDirectories, want) {
		t.Errorf("WholeDirectories = %v, want %v (bin/containerd did not change)", m.WholeDirectories, want)
	}
	for _, p := range []string{"bin/kube/kubelet.exe", "bin/kube/kubectl.exe", "bin/kube/kubeadm.exe", "bin/kube/kube-proxy.exe",
		"bin/cni/bridge.exe", "bin/cni/host-local.exe", "bin/cni/flannel.exe", "bin/cni/flanneld.exe"} {
		if f.entries[p] == nil {
			t.Errorf("%s is not shipped: a wholesale directory must be complete", p)
		}
	}
	for _, p := range []string{"bin/containerd/containerd.exe", "bin/jq.exe", "bin/nssm.exe"} {
		if f.entries[p] != nil {
			t.Errorf("%s did not change but is shipped", p)
		}
	}
	if !slices.Contains(m.Changed, "bin/yq.exe") {
		t.Errorf("bin/yq.exe (a loose tool that changed) is not in Changed: %v", m.Changed)
	}

	baseDir, targetDir := filepath.Join(f.dir, "k2s-base"), filepath.Join(f.dir, "k2s-target")
	deltatest.InstallK2s(t, f.base, baseDir)
	deltatest.InstallK2s(t, f.target, targetDir)
	extracted := filepath.Join(f.dir, "delta")
	deltatest.Extract(t, f.out, extracted)
	want := k2sExpected(t, f, baseDir, targetDir)

	inPlace := filepath.Join(f.dir, "in-place")
	copyTree(t, baseDir, inPlace)
	k2sApplyInPlace(t, inPlace, extracted, m)
	if d := deltatest.Diff(want, deltatest.ReadTree(t, inPlace)); d != "" {
		t.Errorf("after K2s's in-place apply the installation is not the target:\n%s", d)
	}

	relocated := filepath.Join(f.dir, "relocated")
	copyTree(t, extracted, relocated)
	k2sApplyRelocating(t, baseDir, relocated, m)
	got := deltatest.ReadTree(t, relocated)
	// Relocating leaves Apply-Delta.ps1 (K2s's own does too).
	delete(got, "Apply-Delta.ps1")
	if d := deltatest.Diff(want, got); d != "" {
		t.Errorf("after K2s's relocating apply the installation is not the target:\n%s", d)
	}
}

// k2sExpected is the target installation as K2s's apply leaves it: what it
// never touches (the delta's skipped paths) stays the base's.
func k2sExpected(t *testing.T, f *k2sFixture, baseDir, targetDir string) deltatest.Tree {
	t.Helper()
	base, want := deltatest.ReadTree(t, baseDir), deltatest.ReadTree(t, targetDir)
	for p := range want {
		if k2sSkipped(f.manifest, p) {
			if b, ok := base[p]; ok {
				want[p] = b
			} else {
				delete(want, p)
			}
		}
	}
	for p, b := range base {
		if k2sSkipped(f.manifest, p) {
			want[p] = b
		}
	}
	return want
}

func k2sSkipped(m *delta.Manifest, p string) bool {
	if slices.Contains(m.SpecialSkippedFiles, p) {
		return true
	}
	for _, n := range m.SkipNames {
		if strings.EqualFold(path.Base(p), n) {
			return true
		}
	}
	return false
}

// k2sApplyInPlace does what K2s's PerformClusterUpdate does to the files of
// an installation with the delta extracted elsewhere... in place
// (update.module.psm1 at eaa769c): every wholesale directory is removed
// and the delta's copied (:1147-1235); Added and Changed are copied unless
// protected (a leaf named config, the pki and kubelet patterns,
// :1241-1268), a missing source is only warned about (:1270-1298);
// Removed is pruned except under bin/ or a wholesale directory
// (Select-PrunableRemovedFile :464-490, :1344-1365); VERSION becomes
// TargetVersion (:1725-1747).
func k2sApplyInPlace(t *testing.T, install, deltaDir string, m *delta.Manifest) {
	t.Helper()
	for _, d := range m.WholeDirectories {
		if err := os.RemoveAll(filepath.Join(install, d)); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(deltaDir, d)); err == nil {
			copyTree(t, filepath.Join(deltaDir, d), filepath.Join(install, d))
		}
	}
	for _, p := range append(slices.Clone(m.Added), m.Changed...) {
		if k2sProtected(p) {
			continue
		}
		src := filepath.Join(deltaDir, filepath.FromSlash(p))
		data, err := os.ReadFile(src)
		if err != nil {
			t.Errorf("K2s's apply warns \"Source missing in delta\" for %s", p)
			continue
		}
		writeFile(t, filepath.Join(install, filepath.FromSlash(p)), data)
	}
	for _, p := range m.Removed {
		if strings.HasPrefix(p, "bin/") || slices.ContainsFunc(m.WholeDirectories, func(d string) bool { return strings.HasPrefix(p, d+"/") }) {
			continue
		}
		os.Remove(filepath.Join(install, filepath.FromSlash(p)))
	}
	writeFile(t, filepath.Join(install, "VERSION"), []byte(m.TargetVersion))
}

// k2sApplyRelocating does what PerformClusterUpdate does when the delta
// folder is not the installation: the delta folder becomes it, robocopy
// /E /XC /XN /XO copies every file it lacks from the old installation
// (Copy-UnchangedInstallationFiles, :516-543), Removed is pruned as in
// place, and delta-manifest.json, image-delta and debian-delta are deleted
// (Remove-DeltaPackageArtifact, :756-774).
func k2sApplyRelocating(t *testing.T, oldInstall, deltaDir string, m *delta.Manifest) {
	t.Helper()
	err := filepath.WalkDir(oldInstall, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(oldInstall, p)
		dst := filepath.Join(deltaDir, rel)
		if _, err := os.Stat(dst); err == nil {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		writeFile(t, dst, data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range m.Removed {
		if strings.HasPrefix(p, "bin/") || slices.ContainsFunc(m.WholeDirectories, func(d string) bool { return strings.HasPrefix(p, d+"/") }) {
			continue
		}
		os.Remove(filepath.Join(deltaDir, filepath.FromSlash(p)))
	}
	for _, p := range []string{"delta-manifest.json", "image-delta", "debian-delta"} {
		if err := os.RemoveAll(filepath.Join(deltaDir, p)); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(deltaDir, "VERSION"), []byte(m.TargetVersion))
}

// k2sProtected is K2s's apply's Test-ProtectedClusterFile
// (update.module.psm1:1241-1268): a leaf named config in any case, and the
// pki and kubelet patterns (-like, any case).
func k2sProtected(p string) bool {
	if strings.EqualFold(path.Base(p), "config") {
		return true
	}
	lp := strings.ToLower(p)
	return lp == "etc/kubernetes/bootstrap-kubelet.conf" || lp == "var/lib/kubelet/config.yaml" ||
		strings.HasPrefix(lp, "etc/kubernetes/pki/") || strings.HasPrefix(lp, "var/lib/kubelet/pki/")
}

func writeFile(t *testing.T, p string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		writeFile(t, filepath.Join(dst, rel), data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestK2sSkips: K2s leaves out the whole addons/ tree
// (New-K2sDelta.Skip.ps1:18-24), its special files by leaf name anywhere
// and in any case, the kubeconfig named config among them (:134-146), and
// the cluster-local configuration (:151-157).
func TestK2sSkips(t *testing.T) {
	f := newK2sFixture(t)
	m := f.manifest
	for _, p := range []string{
		"addons/monitoring/manifests/prometheus.yaml", "addons/dashboard/manifests/dashboard.yaml",
		"lib/modules/k2s/k2s.cluster.module/kubeconfig/config", "lib/modules/k2s/k2s.cluster.module/kubeconfig/ca/Config",
		"bin/Kubemaster-Base.vhdx", deltatest.K2sNested,
	} {
		if f.entries[p] != nil || slices.Contains(m.Added, p) || slices.Contains(m.Changed, p) {
			t.Errorf("%s is shipped", p)
		}
		if !slices.Contains(m.SpecialSkippedFiles, p) {
			t.Errorf("%s is not in SpecialSkippedFiles", p)
		}
	}
	// A name that only starts like a skipped one is shipped.
	if !slices.Contains(m.Changed, "lib/modules/k2s/k2s.cluster.module/kubeconfig/config.txt") {
		t.Error("config.txt is skipped as if it were named config")
	}
	if slices.ContainsFunc(m.Changed, func(p string) bool { return strings.HasPrefix(p, "addons/") }) {
		t.Error("an addons/ file is in Changed")
	}
}

// TestK2sVersionRules: K2s's apply requires both versions to be X.Y.Z,
// the target greater and of the same major (update.module.psm1:61-96,
// 984-989); the delta is refused before anything is written.
func TestK2sVersionRules(t *testing.T) {
	f := newK2sFixture(t)
	for _, c := range []struct{ base, target, want string }{
		{"1.9.3", "2.0.0", "profile k2s: 1.9.3 and 2.0.0 are of different majors"},
		{"1.4.0", "1.5.0-rc.1", "profile k2s: version 1.5.0-rc.1 is not a plain X.Y.Z"},
		{"1.4.0", "1.05.0", "profile k2s: version 1.05.0 is not a plain X.Y.Z"},
		{"1.5.1", "1.5.0", "profile k2s: 1.5.1 is not older than 1.5.0"},
	} {
		t.Run(c.base+".."+c.target, func(t *testing.T) {
			dir := t.TempDir()
			bt, tt := f.baseTree.Clone(), f.targetTree.Clone()
			bt["VERSION"], tt["VERSION"] = deltatest.File{Data: []byte(c.base)}, deltatest.File{Data: []byte(c.target)}
			o := f.opts
			o.Base, o.Target, o.Output = filepath.Join(dir, "a.zip"), filepath.Join(dir, "b.zip"), filepath.Join(dir, "out", "d.zip")
			deltatest.WritePackage(t, o.Base, bt, true)
			deltatest.WritePackage(t, o.Target, tt, true)
			_, err := delta.Build(context.Background(), o)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "Test-DeltaUpgradeVersionIsValid") {
				t.Errorf("error %v\nwant %q", err, c.want)
			}
			if _, err := os.Stat(filepath.Dir(o.Output)); err == nil {
				t.Error("a refused delta left its directory behind")
			}
		})
	}
}

// TestK2sBinaryModeRefused: K2s's apply copies the files Changed lists and
// only warns when one is missing (update.module.psm1:1270-1298), so a
// patched file would stay old while K2s reports success: binary mode and
// the k2s profile do not mix, and neither do the k2s profile and a delta
// without the control plane's node packages.
func TestK2sBinaryModeRefused(t *testing.T) {
	f := newK2sFixture(t)
	o := f.opts
	o.Mode, o.Output = delta.ModeBinary, filepath.Join(t.TempDir(), "d.zip")
	if _, err := delta.Build(context.Background(), o); err == nil || !strings.Contains(err.Error(), `mode "binary" cannot be used with profile k2s`) {
		t.Errorf("binary mode: %v", err)
	}
	o = f.opts
	o.BaseNode, o.TargetNode, o.Output = "", "", filepath.Join(t.TempDir(), "d.zip")
	if _, err := delta.Build(context.Background(), o); err == nil || !strings.Contains(err.Error(), "profile k2s needs the control plane's node packages") {
		t.Errorf("no node packages: %v", err)
	}
}

// TestK2sManifestEncoding: K2s writes delta-manifest.json with
// Out-File -Encoding UTF8 under Windows PowerShell 5.1, so with a byte
// order mark (New-K2sDelta.Manifest.ps1:141-171), and reads it with
// Get-Content -Raw, which without one decodes ANSI and mangles non-ASCII
// paths (update.module.psm1:888-889). Ours has the mark, keeps non-ASCII
// paths as UTF-8 (not \u escapes), and every reader of release's accepts it.
func TestK2sManifestEncoding(t *testing.T) {
	f := newK2sFixture(t)
	data := f.entries["delta-manifest.json"]
	if !bytes.HasPrefix(data, []byte("\uFEFF{")) {
		t.Fatalf("delta-manifest.json starts with %q, want a UTF-8 byte order mark", data[:min(8, len(data))])
	}
	if !bytes.Contains(data, []byte(`"lib/modules/k2s/k2s.node.module/ünïcode/Prüfung.psm1"`)) {
		t.Error("the non-ASCII path is not written as UTF-8")
	}
	m, err := delta.ParseManifest(data)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(m.Changed, "lib/modules/k2s/k2s.node.module/ünïcode/Prüfung.psm1") || m.Profile != delta.ProfileK2s {
		t.Errorf("read back: Changed %v, Profile %q", m.Changed, m.Profile)
	}
	// K2s's field DebianDeltaRelativePath and release's Files agree.
	if _, ok := m.Files.Upgrade["debian-delta/apply-debian-delta.sh"]; !ok {
		t.Error("Files.Upgrade lacks the Debian apply script")
	}
}

// TestK2sReproducible: the same inputs give the same bytes, whatever the
// parallelism.
func TestK2sReproducible(t *testing.T) {
	f := newK2sFixture(t)
	first, err := os.ReadFile(f.out)
	if err != nil {
		t.Fatal(err)
	}
	for _, workers := range []int{1, 8} {
		o := f.opts
		o.Workers, o.Output = workers, filepath.Join(t.TempDir(), "again.zip")
		if _, err := delta.Build(context.Background(), o); err != nil {
			t.Fatal(err)
		}
		again, _ := os.ReadFile(o.Output)
		if !bytes.Equal(first, again) {
			t.Errorf("-j %d gives other bytes", workers)
		}
	}
}

// TestK2sReleaseApply: release's own apply installs the same k2s delta on
// an installation K2s's installer made, verified: the result is the
// target installation (what the delta skips stays as it was), none of the
// upgrade tooling (Apply-Delta.ps1, debian-delta/, image-delta/) is
// installed, and the unchanged mandatory files are checked, not rewritten.
// release verify checks every entry, the upgrade tooling's too.
func TestK2sReleaseApply(t *testing.T) {
	f := newK2sFixture(t)
	baseDir, targetDir := filepath.Join(f.dir, "k2s-base"), filepath.Join(f.dir, "k2s-target")
	deltatest.InstallK2s(t, f.base, baseDir)
	deltatest.InstallK2s(t, f.target, targetDir)
	want := k2sExpected(t, f, baseDir, targetDir)
	mandatory := filepath.Join(baseDir, "k2s.exe")
	before, err := os.Stat(mandatory)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := apply.Apply(context.Background(), f.out, baseDir, apply.Options{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	applied := deltatest.ReadTree(t, baseDir)
	delete(applied, delta.InstallRecord)
	if d := deltatest.Diff(want, applied); d != "" {
		t.Errorf("after release apply the installation is not the target:\n%s", d)
	}
	// The apply left a record the installation verifies against, though
	// K2s's installer left none: the nested archive's members the delta
	// does not change are not listed, only counted.
	chk, err := apply.VerifyInstallation(context.Background(), baseDir, apply.CheckOptions{Workers: 2})
	if err != nil || !chk.OK || chk.Basis != "record" {
		t.Errorf("verify --install-dir after the apply: %v\n%s", err, chk)
	}
	after, err := os.Stat(mandatory)
	if err != nil || !os.SameFile(before, after) {
		t.Error("release apply rewrote the unchanged k2s.exe")
	}
	if rep.TargetVersion != deltatest.K2sTarget {
		t.Errorf("report %+v", rep)
	}
	if _, err := apply.VerifySigned(context.Background(), f.out, 2, nil); err != nil {
		t.Errorf("verify: %v", err)
	}
	tampered := filepath.Join(f.dir, "tampered.zip")
	rewriteZip(t, f.out, tampered, func(name string, body []byte) []byte {
		if name == "debian-delta/apply-debian-delta.sh" {
			return append(body, "\nrm -rf /\n"...)
		}
		return body
	})
	if _, err := apply.VerifySigned(context.Background(), tampered, 2, nil); err == nil || !strings.Contains(err.Error(), "debian-delta/apply-debian-delta.sh is") {
		t.Errorf("verify of a delta with a modified Debian script: %v", err)
	}
}

// TestK2sInstall: release install lays a K2s package out as K2s's
// installer does (deltatest.InstallK2s, written from K2s's artifact
// modules), which is the installation the deltas' base hashes describe.
func TestK2sInstall(t *testing.T) {
	f := newK2sFixture(t)
	want := filepath.Join(f.dir, "installer")
	deltatest.InstallK2s(t, f.base, want)
	got := filepath.Join(f.dir, "installed")
	rep, err := apply.Install(context.Background(), f.base, got, apply.InstallOptions{Nested: f.opts.Nested, Workers: 3})
	if err != nil {
		t.Fatal(err)
	}
	installed := deltatest.ReadTree(t, got)
	// Beside what K2s's installer writes, release keeps its record of the
	// installation (modules/apply tests it).
	delete(installed, delta.InstallRecord)
	if d := deltatest.Diff(deltatest.ReadTree(t, want), installed); d != "" {
		t.Errorf("release install differs from K2s's installer:\n%s", d)
	}
	if rep.TargetVersion != deltatest.K2sBase || rep.FilesWritten != len(deltatest.ReadTree(t, want)) {
		t.Errorf("report %+v", rep)
	}
	// Installed, the delta applies.
	if _, err := apply.Apply(context.Background(), f.out, got, apply.Options{Workers: 2}); err != nil {
		t.Fatal(err)
	}
}
