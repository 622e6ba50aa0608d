package image

import (
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestFileNameAndTargetID(t *testing.T) {
	digest := "sha256:" + strings.Repeat("ab", 32)
	for ref, want := range map[string]string{
		"registry.k8s.io/pause:3.10":                "registry.k8s.io_pause__3.10.tar",
		"registry.k8s.io/coredns/coredns:v1.11.3":   "registry.k8s.io_coredns_coredns__v1.11.3.tar",
		"localhost:5000/k2s/tool:1":                 "localhost__5000_k2s_tool__1.tar",
		"registry.k8s.io/pause@" + digest:           "registry.k8s.io_pause@sha256__" + strings.Repeat("ab", 32) + ".tar",
		"registry.k8s.io/pause:3.10@" + digest:      "registry.k8s.io_pause__3.10@sha256__" + strings.Repeat("ab", 32) + ".tar",
		"docker.io/library/busybox:1.36.1-musl_x86": "docker.io_library_busybox__1.36.1-musl_x86.tar",
	} {
		if got := FileName(ref); got != want {
			t.Errorf("FileName(%q) = %q, want %q", ref, got, want)
		}
		if _, err := parseRef(ref); err != nil {
			t.Errorf("parseRef(%q): %v", ref, err)
		}
	}
	if id := TargetID("debian12", "registry.k8s.io/pause:3.10"); id != "image/debian12/registry.k8s.io_pause__3.10" {
		t.Errorf("TargetID = %q", id)
	}
	if p := OutputPath("trixie", "registry.k8s.io/pause:3.10"); p != "images/trixie/registry.k8s.io_pause__3.10.tar" {
		t.Errorf("OutputPath = %q", p)
	}
}

func TestParseRefRejects(t *testing.T) {
	for ref, want := range map[string]string{
		"":                                  "image ref is empty",
		"pause:3.10":                        "not a complete reference",
		"registry.k8s.io/pause":             "not a complete reference",
		"registry.k8s.io/Pause:1":           "not a complete reference",
		"docker.io/busybox:1.36":            "write docker.io/library/busybox:1.36",
		"index.docker.io/library/busybox:1": "write Docker Hub images as docker.io/library/busybox:1",
		"Registry.K8s.io/pause:3.10":        "write the registry in lower case (registry.k8s.io)",
		"registry.k8s.io/pause@sha256:abc":  "not a complete reference",
		"registry.k8s.io/" + strings.Repeat("a", 240) + ":1": "too long",
	} {
		_, err := parseRef(ref)
		wantErr(t, err, want)
	}
}

func TestParsePlatform(t *testing.T) {
	for in, want := range map[string]string{
		"linux/amd64":    "linux/amd64",
		"linux/arm64":    "linux/arm64",
		"linux/arm64/v8": "linux/arm64",
		"linux/arm":      "linux/arm/v7",
		"linux/arm/v6":   "linux/arm/v6",
		"linux/riscv64":  "linux/riscv64",
	} {
		_, got, err := parsePlatform(in)
		if err != nil || got != want {
			t.Errorf("parsePlatform(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for in, want := range map[string]string{
		"linux":             "unknown platform",
		"linux/amd64/v2/x":  "unknown platform",
		"darwin/arm64":      "node images are Linux images",
		"linux/x86_64":      `architecture "x86_64" is not one of 386, amd64, arm, arm64`,
		"linux/arm64/":      `arm64 has no variant ""`,
		"linux/amd64:10.0":  "architecture",
		"linux/arm/v8":      `arm has no variant "v8"`,
		"linux/amd64/v3":    `amd64 has no variant "v3"`,
		"Linux/amd64":       "node images are Linux images",
		"linux/arm64/v8/v8": "unknown platform",
	} {
		_, _, err := parsePlatform(in)
		wantErr(t, err, want)
	}
}

func TestSamePlatform(t *testing.T) {
	p := func(s string) v1.Platform {
		pl, err := v1.ParsePlatform(s)
		if err != nil {
			t.Fatal(err)
		}
		return *pl
	}
	for _, c := range []struct {
		have, want string
		same       bool
	}{
		{"linux/arm64/v8", "linux/arm64", true},
		{"linux/arm64", "linux/arm64", true},
		{"linux/arm", "linux/arm/v7", true},
		{"linux/arm/v6", "linux/arm/v7", false},
		{"linux/amd64", "linux/arm64", false},
		{"windows/amd64", "linux/amd64", false},
		{"linux/amd64/v3", "linux/amd64", false},
	} {
		if got := samePlatform(p(c.have), p(c.want)); got != c.same {
			t.Errorf("samePlatform(%s, %s) = %t", c.have, c.want, got)
		}
	}
}
