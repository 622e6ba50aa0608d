package deb

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestInspectOwnPackage(t *testing.T) {
	tool(t, "dpkg-deb", "dpkg")
	deb := runTarget(t, onlyTarget(t, model(map[string][]*BuildConfig{"1.5.0": {kubeletDecl(payload(t))}})))
	c, err := Inspect(deb)
	if err != nil {
		t.Fatal(err)
	}
	if c.Package != "kubelet" || c.Version != "1.32.2-1" || c.Architecture != "amd64" {
		t.Errorf("identity %s %s %s", c.Package, c.Version, c.Architecture)
	}
	if c.Maintainer != "Example Edge Systems <release@example.com>" {
		t.Errorf("Maintainer %q", c.Maintainer)
	}
	if want := "Kubernetes node agent\nThe kubelet runs the pods scheduled to a node.\n.\nBuilt by the release pipeline's tests."; c.Description != want {
		t.Errorf("Description %q, want %q", c.Description, want)
	}
	if want := []string{"iptables (>= 1.8.7)", "conntrack | conntrack-tools"}; !slices.Equal(c.Depends, want) {
		t.Errorf("Depends %q, want %q", c.Depends, want)
	}
	size, err := strconv.ParseInt(strings.TrimSpace(run(t, "dpkg-deb", "--field", deb, "Installed-Size")), 10, 64)
	if err != nil || c.InstalledSize != size {
		t.Errorf("InstalledSize %d, dpkg-deb says %d (%v)", c.InstalledSize, size, err)
	}
	if want := []string{"/etc/default/kubelet", "/etc/kubelet/token"}; !slices.Equal(c.Conffiles, want) {
		t.Errorf("Conffiles %q, want %q", c.Conffiles, want)
	}
	if v, ok := c.Field("pre-depends"); !ok || v != "init-system-helpers (>= 1.54~)" {
		t.Errorf("Field(pre-depends) = %q, %v", v, ok)
	}
	if c.Fields["Section"] != "admin" || c.Fields["Priority"] != "optional" {
		t.Errorf("raw fields %v", c.Fields)
	}
}

func TestInspectPackagesMadeByDpkgDeb(t *testing.T) {
	root := writeTree(t, filepath.Join(t.TempDir(), "tool"), map[string]tfile{
		"DEBIAN/control": {"Package: k2s-tool\nVersion: 2:1.4~rc1-3\nArchitecture: arm64\nMaintainer: Example <x@example.com>\n" +
			"Depends: libc6 (>= 2.36),\n zlib1g\nDescription: a tool\n first line\n .\n second paragraph\n", 0o644},
		"DEBIAN/conffiles":  {"/etc/k2s/tool.conf\n", 0o644},
		"etc/k2s/tool.conf": {"a=1\n", 0o644},
		"usr/bin/k2s-tool":  {"#!/bin/sh\n", 0o755},
	})
	for _, comp := range []string{"gzip", "xz", "zstd", "none"} {
		t.Run(comp, func(t *testing.T) {
			deb := dpkgBuild(t, root, comp)
			// The member names show the compression under test was used.
			ext := map[string]string{"gzip": ".gz", "xz": ".xz", "zstd": ".zst", "none": ""}[comp]
			if members := run(t, "ar", "t", deb); !strings.Contains(members, "control.tar"+ext+"\n") {
				t.Fatalf("dpkg-deb -Z%s wrote members:\n%s", comp, members)
			}
			c, err := Inspect(deb)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := os.ReadFile(deb)
			if sc, err := InspectStream(bytes.NewReader(raw)); err != nil || !reflect.DeepEqual(sc, c) {
				t.Errorf("InspectStream: %+v, %v; Inspect: %+v", sc, err, c)
			}
			if c.Package != "k2s-tool" || c.Version != "2:1.4~rc1-3" || c.Architecture != "arm64" || c.Maintainer != "Example <x@example.com>" {
				t.Errorf("control %+v", c)
			}
			if want := []string{"libc6 (>= 2.36)", "zlib1g"}; !slices.Equal(c.Depends, want) {
				t.Errorf("Depends %q, want %q", c.Depends, want)
			}
			if want := "a tool\nfirst line\n.\nsecond paragraph"; c.Description != want {
				t.Errorf("Description %q, want %q", c.Description, want)
			}
			if !slices.Equal(c.Conffiles, []string{"/etc/k2s/tool.conf"}) {
				t.Errorf("Conffiles %q", c.Conffiles)
			}
			if c.InstalledSize != 0 {
				t.Errorf("InstalledSize %d without the field", c.InstalledSize)
			}
		})
	}
}

func TestInspectSamplePrebuiltPackage(t *testing.T) {
	c, err := Inspect(filepath.Join("..", "..", "fixtures", "sample", "node", "k2s-node-tools_1.0.0_all.deb"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Package != "k2s-node-tools" || c.Version != "1.0.0" || c.Architecture != "all" || c.Fields["Section"] != "admin" {
		t.Errorf("control %+v", c)
	}
	if FileName(c.Package, c.Version, c.Architecture) != "k2s-node-tools_1.0.0_all.deb" {
		t.Errorf("FileName does not give the sample's name")
	}
}

// arBytes makes an ar archive of the named members, in order.
func arBytes(members ...[2]string) []byte {
	var b bytes.Buffer
	b.WriteString(arMagic)
	for _, m := range members {
		fmt.Fprintf(&b, "%-16s%-12d%-6d%-6d%-8s%-10d`\n", m[0], 0, 0, 0, "100644", len(m[1]))
		b.WriteString(m[1])
		if len(m[1])%2 == 1 {
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

func tarGz(t *testing.T, files map[string]string) string {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	tw := tar.NewWriter(zw)
	for _, name := range sortedKeys(files, nil) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(files[name])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(files[name]))
	}
	tw.Close()
	zw.Close()
	return b.String()
}

func TestInspectStream(t *testing.T) {
	control := tarGz(t, map[string]string{"./control": "Package: pkg\nVersion: 1.0-1\nArchitecture: all\n"})
	data := tarGz(t, map[string]string{"./usr/x": "x"})
	// An odd-sized member before control.tar: the reader must skip its
	// padding byte.
	odd := arBytes([2]string{"debian-binary", "2.0\n"}, [2]string{"_extra", "odd"}, [2]string{"control.tar.gz", control}, [2]string{"data.tar.gz", data})
	c, err := InspectStream(bytes.NewReader(odd))
	if err != nil || c.Package != "pkg" || c.Version != "1.0-1" {
		t.Fatalf("%+v %v", c, err)
	}
	for _, tc := range []struct {
		name, want string
		data       []byte
	}{
		{"text", "no ar archive header", []byte("Package: pkg\n")},
		{"not debian-binary first", "the first ar member is not debian-binary", arBytes([2]string{"control.tar.gz", control}, [2]string{"debian-binary", "2.0\n"})},
		{"no control", "the package has no control.tar member", arBytes([2]string{"debian-binary", "2.0\n"}, [2]string{"data.tar.gz", data})},
		{"truncated control", "control.tar.gz", odd[:len(odd)-len(data)-60-len(control)/2]},
	} {
		if _, err := InspectStream(bytes.NewReader(tc.data)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestInspectErrors(t *testing.T) {
	root := writeTree(t, filepath.Join(t.TempDir(), "pkg"), map[string]tfile{
		"DEBIAN/control":  {"Package: pkg\nVersion: 1.0-1\nArchitecture: all\nMaintainer: Example <x@example.com>\nDescription: x\n y\n", 0o644},
		"usr/share/pkg/x": {strings.Repeat("payload ", 512), 0o644},
	})
	good, err := os.ReadFile(dpkgBuild(t, root, "gzip"))
	if err != nil {
		t.Fatal(err)
	}
	control := tarGz(t, map[string]string{"./control": "Package: pkg\nVersion: 1.0-1\nArchitecture: all\n"})
	data := tarGz(t, map[string]string{"./usr/x": "x"})
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"text", []byte("Package: pkg\n"), "not a Debian package: no ar archive header"},
		{"empty", nil, "not a Debian package: no ar archive header"},
		{"truncated data", good[:len(good)-10], "truncated: member data.tar.gz needs"},
		{"truncated header", good[:8+30], "truncated: the ar member header at offset 8 ends early"},
		{"truncated control", good[:8+60+4+60+20], "truncated: member control.tar.gz needs"},
		{"not debian-binary first", arBytes([2]string{"control.tar.gz", control}, [2]string{"debian-binary", "2.0\n"}), "the first ar member is not debian-binary"},
		{"format 3", arBytes([2]string{"debian-binary", "3.0\n"}, [2]string{"control.tar.gz", control}, [2]string{"data.tar.gz", data}), `format "3.0"`},
		{"no control", arBytes([2]string{"debian-binary", "2.0\n"}, [2]string{"data.tar.gz", data}), "the package has no control.tar member"},
		{"no data", arBytes([2]string{"debian-binary", "2.0\n"}, [2]string{"control.tar.gz", control}), "the package has no data.tar member"},
		{"bzip2", arBytes([2]string{"debian-binary", "2.0\n"}, [2]string{"control.tar.bz2", "BZh9"}, [2]string{"data.tar.gz", data}), "control.tar.bz2: unknown compression"},
		{"corrupt gzip", arBytes([2]string{"debian-binary", "2.0\n"}, [2]string{"control.tar.gz", "not gzip at all"}, [2]string{"data.tar.gz", data}), "control.tar.gz: gzip: invalid header"},
		{"no control file", arBytes([2]string{"debian-binary", "2.0\n"}, [2]string{"control.tar.gz", tarGz(t, map[string]string{"./md5sums": ""})}, [2]string{"data.tar.gz", data}), "no control file in the control archive"},
		{"no Package", arBytes([2]string{"debian-binary", "2.0\n"}, [2]string{"control.tar.gz", tarGz(t, map[string]string{"./control": "Version: 1\nArchitecture: all\n"})}, [2]string{"data.tar.gz", data}), "field Package is missing or empty"},
		{"bad header", append([]byte(arMagic), bytes.Repeat([]byte{'x'}, 60)...), "corrupt ar member header at offset 8"},
	}
	dir := t.TempDir()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-")+".deb")
			if err := os.WriteFile(p, c.data, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Inspect(p)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p) {
				t.Fatalf("error %v; want it to name %s and say %q", err, p, c.want)
			}
		})
	}
	if _, err := Inspect(dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("a directory: %v", err)
	}
	missing := filepath.Join(dir, "missing.deb")
	if _, err := Inspect(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("a missing file: %v", err)
	}
}

func TestParseControlErrors(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"Package: a\nPackage: b\nVersion: 1\nArchitecture: all\n", "line 2: field Package appears twice"},
		{"package: a\nPackage: b\nVersion: 1\nArchitecture: all\n", "line 2: field Package appears twice"},
		{" continued\nPackage: a\n", "line 1: continuation line before any field"},
		{"Package: a\n\nVersion: 1\n", "line 2: empty line"},
		{"Package a\n", `line 1: "Package a" is not "Field: value"`},
		{"Package: a\nVersion: 1\nArchitecture: all\nInstalled-Size: big\n", `Installed-Size "big" is not a number`},
		{"Package: a\nArchitecture: all\n", "field Version is missing"},
	} {
		if _, err := ParseControl([]byte(c.in)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want %q", c.in, err, c.want)
		}
	}
}
