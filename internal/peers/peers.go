// Package peers finds and starts the real, independent programs that tests
// check this project against: an OCI registry (Debian's docker-registry),
// the pinned Go tools .ci/tools installs (oras, crane, kubeconform,
// actionlint), a Kubernetes control plane with Flux's controllers
// (etcd, kube-apiserver, kubectl, source-controller, kustomize-controller),
// Wine with mingw-w64 (for internal/winetest), and the PowerShell grammar
// that judges generated scripts (PowerShellProblems).
//
// A missing peer skips the test with a message naming how to install it,
// unless RELEASE_REQUIRE_PEERS=1 (as CI sets), where it fails the test.
package peers

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

const (
	// EnvTools names the directory .ci/tools installs into (bin/ below it).
	EnvTools = "RELEASE_TOOLS"
	// EnvRequire, set to 1, turns a missing peer from a skip into a failure.
	EnvRequire = "RELEASE_REQUIRE_PEERS"
)

// installHints says how to get each known peer.
var installHints = map[string]string{
	"oras":                 "make tools (or .ci/tools), which builds oras v1.3.2",
	"crane":                "make tools (or .ci/tools), which builds crane v0.22.1",
	"kubeconform":          "make tools (or .ci/tools), which builds kubeconform v0.8.0",
	"actionlint":           "make tools (or .ci/tools), which builds actionlint v1.7.12",
	"etcd":                 "make tools (or .ci/tools), which builds etcd v3.6.5",
	"kube-apiserver":       "make tools (or .ci/tools), which builds kube-apiserver v1.36.4",
	"kubectl":              "make tools (or .ci/tools), which builds kubectl v1.36.4",
	"source-controller":    "make tools (or .ci/tools), which builds Flux source-controller v1.7.0 and keeps its CRDs",
	"kustomize-controller": "make tools (or .ci/tools), which builds Flux kustomize-controller v1.7.3 and keeps its CRDs",
	"controller-gen":       "make tools (or .ci/tools), which builds controller-gen v0.19.0",
	// Its module is refused by the proxy; the CRD is generated from its
	// served pkg/apis module.
	"system-upgrade-controller": "make tools (or .ci/tools), which generates its Plan CRD from its pkg/apis module with controller-gen v0.19.0",
	"docker-registry":           "apt-get install docker-registry",
	"skopeo":                    "apt-get install skopeo",
	"htpasswd":                  "apt-get install apache2-utils",
	"lintian":                   "apt-get install lintian",
	"dpkg-deb":                  "apt-get install dpkg",
	"debootstrap":               "apt-get install debootstrap",
	"zip":                       "apt-get install zip",
	"osslsigncode":              "apt-get install osslsigncode",
	"cosign":                    "make tools (or .ci/tools), which builds cosign v2.5.0",
	"unzip":                     "apt-get install unzip",
	// Debian 12: Wine 8.0, 64-bit only (wine32 needs i386 multiarch).
	"wine":                   "apt-get install wine wine64",
	"wineserver":             "apt-get install wine wine64",
	"x86_64-w64-mingw32-gcc": "apt-get install gcc-mingw-w64-x86-64-win32",
	// Runs the PowerShell grammar (PowerShellProblems).
	"node":    "apt-get install nodejs",
	"buildah": "apt-get install buildah",
}

// ToolsDir is where .ci/tools installs: $RELEASE_TOOLS, else
// $HOME/.cache/release-tools. Its binaries are in ToolsDir()/bin.
func ToolsDir() string {
	if d := os.Getenv(EnvTools); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "release-tools")
	}
	return filepath.Join(home, ".cache", "release-tools")
}

// Required reports whether missing peers fail tests (RELEASE_REQUIRE_PEERS=1).
func Required() bool { return os.Getenv(EnvRequire) == "1" }

// Lookup finds name in ToolsDir()/bin (the pinned version wins) or on PATH.
func Lookup(name string) (string, error) {
	exe := name
	if runtime.GOOS == "windows" && filepath.Ext(exe) == "" {
		exe += ".exe"
	}
	pinned := filepath.Join(ToolsDir(), "bin", exe)
	if fi, err := os.Stat(pinned); err == nil && fi.Mode().IsRegular() && (runtime.GOOS == "windows" || fi.Mode()&0o111 != 0) {
		return pinned, nil
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", err
	}
	if !filepath.IsAbs(p) {
		if abs, err := filepath.Abs(p); err == nil {
			p = abs
		}
	}
	return p, nil
}

// Tool returns the absolute path of command name, looked for in
// ToolsDir()/bin and then on PATH. When it is missing the test is skipped
// with a message saying how to install it, or failed when
// RELEASE_REQUIRE_PEERS=1.
func Tool(t testing.TB, name string) string {
	t.Helper()
	p, err := Lookup(name)
	if err == nil {
		return p
	}
	if errors.Is(err, exec.ErrDot) {
		err = errors.New("found only relative to the current directory")
	}
	hint, ok := installHints[name]
	if !ok {
		hint = "install it and put it on PATH"
	}
	missing(t, "peer %q not found on PATH or in %s (%v); install with: %s",
		name, filepath.Join(ToolsDir(), "bin"), err, hint)
	return ""
}

// missing skips the test, or fails it when peers are required.
func missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if Required() {
		t.Fatalf(format+" [%s=1: peers are required]", append(args, EnvRequire)...)
		return
	}
	t.Skipf(format+" [set %s=1 to make this a failure]", append(args, EnvRequire)...)
}
