package delta

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/relcue/release/modules/pkgzip"
)

func dg(c string, size int64) pkgzip.Digest {
	return pkgzip.Digest{SHA256: strings.Repeat(c, 64), Size: size}
}

// validManifest is a small manifest that passes every check.
func validManifest() *Manifest {
	m := &Manifest{
		ManifestVersion:     ManifestVersion,
		GeneratedUtc:        "2026-03-01T12:00:00Z",
		BasePackage:         "k2s-1.4.0.zip",
		TargetPackage:       "k2s-1.5.0.zip",
		BaseVersion:         "1.4.0",
		TargetVersion:       "1.5.0",
		WholeDirectories:    []string{"bin/cni"},
		SpecialSkippedFiles: []string{"etc/kubernetes/pki/ca.crt"},
		Added:               []string{"lib/new.psm1"},
		Changed:             []string{"VERSION"},
		Removed:             []string{"lib/old.psm1"},
		HashAlgorithm:       HashAlgorithm,
		SkipRules:           []string{"etc/kubernetes/pki/**"},
		Files: FileHashes{
			Base: map[string]pkgzip.Digest{
				"VERSION": dg("1", 6), "lib/old.psm1": dg("2", 10), "bin/cni/flannel.exe": dg("3", 100),
				PackageManifestName: dg("4", 50),
			},
			Target: map[string]pkgzip.Digest{
				"VERSION": dg("5", 6), "lib/new.psm1": dg("6", 11), "bin/cni/flannel.exe": dg("7", 101),
				PackageManifestName: dg("8", 51),
			},
		},
	}
	m.normalize()
	m.WholeDirectoriesCount, m.SpecialSkippedFilesCount = 1, 1
	m.AddedCount, m.ChangedCount, m.RemovedCount = 1, 1, 1
	return m
}

func TestManifestRoundTrip(t *testing.T) {
	m := validManifest()
	data, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseManifest(data)
	if err != nil {
		t.Fatalf("ParseManifest(valid): %v\n%s", err, data)
	}
	if !reflect.DeepEqual(got, m) {
		t.Errorf("round trip changed the manifest:\n got %+v\nwant %+v", got, m)
	}
	// The K2s field names and the empty-but-present sub-objects are part of
	// the format; check them on the raw JSON, not through our own types.
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"ManifestVersion", "GeneratedUtc", "BasePackage", "TargetPackage", "BaseVersion", "TargetVersion",
		"WholeDirectories", "SpecialSkippedFiles", "Added", "Changed", "Removed", "AddedCount", "ChangedCount", "RemovedCount",
		"HashAlgorithm", "DebianPackageDiff", "ContainerImageDiff", "Files"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("manifest JSON lacks %s", k)
		}
	}
	cid := raw["ContainerImageDiff"].(map[string]any)
	for _, k := range []string{"AddedImages", "RemovedImages", "ChangedImages"} {
		if l, ok := cid[k].([]any); !ok || len(l) != 0 {
			t.Errorf("ContainerImageDiff.%s = %#v, want []", k, cid[k])
		}
	}
	deb := raw["DebianPackageDiff"].(map[string]any)
	if deb["Processed"] != false || deb["Error"] != nil {
		t.Errorf("DebianPackageDiff = %#v", deb)
	}
	if !bytes.HasSuffix(data, []byte("}\n")) {
		t.Errorf("manifest does not end with a newline")
	}
}

func TestParseManifestRejects(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(m map[string]any)
		raw    string
		want   string
	}{
		{name: "unknown field", mutate: func(m map[string]any) { m["Extra"] = 1 }, want: `unknown field "Extra"`},
		{name: "trailing data", raw: "TRAILING", want: "unexpected data after the JSON object"},
		{name: "version", mutate: func(m map[string]any) { m["ManifestVersion"] = "1.0" }, want: `ManifestVersion is "1.0"`},
		{name: "algorithm", mutate: func(m map[string]any) { m["HashAlgorithm"] = "MD5" }, want: `HashAlgorithm is "MD5"`},
		{name: "date", mutate: func(m map[string]any) { m["GeneratedUtc"] = "yesterday" }, want: "GeneratedUtc"},
		{name: "empty version", mutate: func(m map[string]any) { m["BaseVersion"] = "" }, want: "BaseVersion"},
		{name: "package with dir", mutate: func(m map[string]any) { m["BasePackage"] = "x/k2s.zip" }, want: "file names without directories"},
		{name: "count", mutate: func(m map[string]any) { m["AddedCount"] = 2 }, want: "Added has 1 entries but its count says 2"},
		{name: "dotdot", mutate: func(m map[string]any) {
			m["Removed"] = []any{"../evil"}
		}, want: `".." segment`},
		{name: "absolute", mutate: func(m map[string]any) { m["Added"] = []any{"/etc/passwd"} }, want: "is absolute"},
		{name: "backslash", mutate: func(m map[string]any) { m["Added"] = []any{`lib\new.psm1`} }, want: "backslash"},
		{name: "drive", mutate: func(m map[string]any) { m["Added"] = []any{"C:x"} }, want: "drive letter"},
		{name: "reserved", mutate: func(m map[string]any) { m["Added"] = []any{".release-apply/journal.json"} }, want: "reserved"},
		{name: "unsorted", mutate: func(m map[string]any) {
			m["Changed"] = []any{"b", "a"}
			m["ChangedCount"] = 2
		}, want: "not sorted"},
		{name: "bad hash", mutate: func(m map[string]any) {
			m["Files"].(map[string]any)["Target"].(map[string]any)["VERSION"] = map[string]any{"SHA256": "ABC", "Size": 1}
		}, want: "is not 64 lower-case hex digits"},
		{name: "negative size", mutate: func(m map[string]any) {
			m["Files"].(map[string]any)["Target"].(map[string]any)["VERSION"] = map[string]any{"SHA256": strings.Repeat("a", 64), "Size": -1}
		}, want: "negative Size"},
		{name: "unsafe file path", mutate: func(m map[string]any) {
			m["Files"].(map[string]any)["Target"].(map[string]any)["bin/cni/../../x"] = map[string]any{"SHA256": strings.Repeat("a", 64), "Size": 1}
		}, want: `".." segment`},
		{name: "added without hash", mutate: func(m map[string]any) {
			delete(m["Files"].(map[string]any)["Target"].(map[string]any), "lib/new.psm1")
		}, want: "field Added lists lib/new.psm1 but Files.Target has no hash"},
		{name: "unlisted file", mutate: func(m map[string]any) {
			m["Files"].(map[string]any)["Target"].(map[string]any)["lib/sneaky.dll"] = map[string]any{"SHA256": strings.Repeat("a", 64), "Size": 1}
		}, want: "Files.Target has lib/sneaky.dll, which is neither"},
		{name: "listed in wholesale", mutate: func(m map[string]any) {
			m["Added"] = []any{"bin/cni/x.exe"}
			m["Files"].(map[string]any)["Target"].(map[string]any)["bin/cni/x.exe"] = map[string]any{"SHA256": strings.Repeat("a", 64), "Size": 1}
		}, want: "under wholesale directory bin/cni"},
		{name: "removed but in target", mutate: func(m map[string]any) {
			m["Files"].(map[string]any)["Target"].(map[string]any)["lib/old.psm1"] = map[string]any{"SHA256": strings.Repeat("a", 64), "Size": 1}
		}, want: "field Removed lists lib/old.psm1 but Files.Target has a hash"},
		{name: "skipped and changed", mutate: func(m map[string]any) {
			m["SpecialSkippedFiles"] = []any{"VERSION"}
		}, want: "SpecialSkippedFiles lists VERSION, which the delta also changes"},
		{name: "bad skip rule", mutate: func(m map[string]any) { m["SkipRules"] = []any{"a**"} }, want: "SkipRules"},
		{name: "patch of an unchanged file", mutate: func(m map[string]any) {
			m["DeltaMode"] = ModeBinary
			m["Patches"] = map[string]any{"lib/new.psm1": map[string]any{"Algorithm": PatchAlgorithm, "Entry": PatchEntry("lib/new.psm1"),
				"BaseSHA256": "", "TargetSHA256": strings.Repeat("6", 64), "Patch": map[string]any{"SHA256": strings.Repeat("a", 64), "Size": 1}}}
		}, want: "field Patches has lib/new.psm1, which Changed does not list"},
		{name: "patch entry", mutate: func(m map[string]any) {
			m["DeltaMode"] = ModeBinary
			m["Patches"] = map[string]any{"VERSION": map[string]any{"Algorithm": PatchAlgorithm, "Entry": "VERSION.patch",
				"BaseSHA256": strings.Repeat("1", 64), "TargetSHA256": strings.Repeat("5", 64), "Patch": map[string]any{"SHA256": strings.Repeat("a", 64), "Size": 1}}}
		}, want: `field Patches[VERSION]: entry "VERSION.patch", want ".release-patches/VERSION.patch"`},
		{name: "image count", mutate: func(m map[string]any) {
			m["ContainerImageDiff"].(map[string]any)["AddedCount"] = 1
		}, want: "ContainerImageDiff.AddedImages has 0 entries"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data, err := validManifest().Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if c.mutate != nil {
				var m map[string]any
				if err := json.Unmarshal(data, &m); err != nil {
					t.Fatal(err)
				}
				c.mutate(m)
				if data, err = json.Marshal(m); err != nil {
					t.Fatal(err)
				}
			}
			data = append(data, c.raw...)
			_, err = ParseManifest(data)
			if err == nil {
				t.Fatalf("no error, want %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), ManifestName+": ") {
				t.Errorf("error %q, want it to start with %q and contain %q", err, ManifestName+": ", c.want)
			}
		})
	}
}

func FuzzParseManifest(f *testing.F) {
	valid, err := validManifest().Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	empty := validManifest()
	empty.Added, empty.Changed, empty.Removed = nil, nil, nil
	empty.AddedCount, empty.ChangedCount, empty.RemovedCount = 0, 0, 0
	empty.Files = FileHashes{}
	empty.SpecialSkippedFiles, empty.SpecialSkippedFilesCount = nil, 0
	if data, err := empty.Marshal(); err == nil {
		f.Add(data)
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"ManifestVersion":"2.0","Files":{"Base":null}}`))
	f.Add([]byte(`null`))
	f.Add(bytes.Replace(valid, []byte(`"lib/new.psm1"`), []byte(`"../x"`), -1))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(data)
		if err != nil {
			return
		}
		// Whatever parses must survive a round trip unchanged, so that
		// what apply acts on is exactly what was checked.
		out, err := m.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a parsed manifest: %v", err)
		}
		again, err := ParseManifest(out)
		if err != nil {
			t.Fatalf("re-parse of %s: %v", out, err)
		}
		if !reflect.DeepEqual(m, again) {
			t.Fatalf("round trip changed the manifest")
		}
		for _, p := range append(append(append([]string{}, m.Added...), m.Changed...), m.Removed...) {
			if CheckPath(p) != nil {
				t.Fatalf("accepted unsafe path %q", p)
			}
		}
	})
}
