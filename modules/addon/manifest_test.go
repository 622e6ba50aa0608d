package addon

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// manifestWith is a valid manifest whose implementations section is impls
// (indented as list items under spec.implementations).
func manifestWith(impls string) string {
	return "apiVersion: v1\nkind: AddonManifest\nmetadata:\n  name: ingress\n  description: Ingress controllers\nspec:\n  implementations:\n" + impls
}

// wantManifestError requires a *ManifestError for file and field whose
// message contains each of msgs, and an Error() naming both.
func wantManifestError(t *testing.T, err error, file, field string, msgs ...string) {
	t.Helper()
	var me *ManifestError
	if !errors.As(err, &me) {
		t.Fatalf("error %v (%T), want a *ManifestError", err, err)
	}
	if me.File != file || me.Field != field {
		t.Errorf("error %q names file %q field %q, want %q %q", err, me.File, me.Field, file, field)
	}
	if !strings.HasPrefix(err.Error(), file+": ") || field != "" && !strings.HasPrefix(err.Error(), file+": "+field+": ") {
		t.Errorf("error %q does not start with the file and field", err)
	}
	for _, m := range msgs {
		if !strings.Contains(me.Msg, m) {
			t.Errorf("message %q does not contain %q", me.Msg, m)
		}
	}
}

func TestParseManifestErrors(t *testing.T) {
	for _, tc := range []struct {
		name, src, field string
		msgs             []string
	}{
		{"empty", "", "", []string{"empty; write apiVersion: v1, kind: AddonManifest"}},
		{"only a comment", "# nothing\n\n", "", []string{"empty"}},
		{"malformed YAML", "apiVersion: v1\nkind: [AddonManifest\n", "", []string{"not valid YAML", "line"}},
		{"tab indentation", "apiVersion: v1\nmetadata:\n\tname: x\n", "", []string{"not valid YAML"}},
		{"duplicate key", manifestWith("    - name: nginx\n      commands:\n        enable: {script: {subPath: a.ps1}}\n        enable: {script: {subPath: b.ps1}}\n"),
			"", []string{"not valid YAML", `"enable" already set`}},
		{"not a mapping", "- a\n- b\n", "", []string{"wrong type: got array"}},
		{"misspelt implementations", "apiVersion: v1\nkind: AddonManifest\nmetadata: {name: ingress, description: d}\nspec:\n  implementation:\n    - name: nginx\n",
			"spec.implementation", []string{`unknown field "implementation"`, "check its spelling"}},
		{"misspelt field of the second implementation", manifestWith("    - name: nginx\n    - name: traefik\n      comands: {}\n"),
			"spec.implementations[1].comands", []string{`unknown field "comands"`}},
		{"misspelt deep field", manifestWith("    - name: nginx\n      offline_usage:\n        linux:\n          additionalImage: [x]\n"),
			"spec.implementations[0].offline_usage.linux.additionalImage", []string{`unknown field "additionalImage"`}},
		{"unknown top-level field", manifestWith("    - name: nginx\n") + "status: {}\n", "status", []string{`unknown field "status"`}},
		{"wrong type", manifestWith("    - name: nginx\n      commands:\n        enable:\n          script:\n            subPath: 3\n"),
			"spec.implementations.commands.enable.script.subPath", []string{"wrong type: got number, want string"}},
		{"implementations not a list", "apiVersion: v1\nkind: AddonManifest\nmetadata: {name: ingress, description: d}\nspec: {implementations: nginx}\n",
			"spec.implementations", []string{"wrong type: got string"}},
		{"missing apiVersion", "kind: AddonManifest\nmetadata: {name: ingress, description: d}\nspec: {implementations: [{name: nginx}]}\n",
			"apiVersion", []string{`""; K2s addon manifests are apiVersion v1`}},
		{"wrong apiVersion", "apiVersion: v2\nkind: AddonManifest\nmetadata: {name: ingress, description: d}\nspec: {implementations: [{name: nginx}]}\n",
			"apiVersion", []string{`"v2"`}},
		{"wrong kind", "apiVersion: v1\nkind: Addon\nmetadata: {name: ingress, description: d}\nspec: {implementations: [{name: nginx}]}\n",
			"kind", []string{`"Addon"; want AddonManifest`}},
		{"upper-case name", "apiVersion: v1\nkind: AddonManifest\nmetadata: {name: Ingress, description: d}\nspec: {implementations: [{name: nginx}]}\n",
			"metadata.name", []string{`"Ingress" is not an addon name`}},
		{"name with underscore", "apiVersion: v1\nkind: AddonManifest\nmetadata: {name: my_addon, description: d}\nspec: {implementations: [{name: nginx}]}\n",
			"metadata.name", []string{`"my_addon"`}},
		{"name too long", "apiVersion: v1\nkind: AddonManifest\nmetadata: {name: " + strings.Repeat("a", 64) + ", description: d}\nspec: {implementations: [{name: nginx}]}\n",
			"metadata.name", []string{"at most 63"}},
		{"no name", "apiVersion: v1\nkind: AddonManifest\nmetadata: {description: d}\nspec: {implementations: [{name: nginx}]}\n",
			"metadata.name", []string{`""`}},
		{"no description", "apiVersion: v1\nkind: AddonManifest\nmetadata: {name: ingress, description: \"  \"}\nspec: {implementations: [{name: nginx}]}\n",
			"metadata.description", []string{"empty"}},
		{"no implementations", "apiVersion: v1\nkind: AddonManifest\nmetadata: {name: ingress, description: d}\nspec: {implementations: []}\n",
			"spec.implementations", []string{"list at least one"}},
		{"bad implementation name", manifestWith("    - name: nginx\n    - name: Traefik-\n"),
			"spec.implementations[1].name", []string{`"Traefik-" is not an implementation name`}},
		{"implementation without name", manifestWith("    - description: x\n"),
			"spec.implementations[0].name", []string{`""`}},
		{"duplicate implementation", manifestWith("    - name: nginx\n    - name: traefik\n    - name: nginx\n"),
			"spec.implementations[2].name", []string{`"nginx" is also implementation 0`}},
		{"script escapes", manifestWith("    - name: nginx\n      commands:\n        disable:\n          script: {subPath: ../x.ps1}\n"),
			"spec.implementations[0].commands.disable.script.subPath", []string{`"../x.ps1" is not a clean forward-slash path inside the addon directory`}},
		{"script absolute", manifestWith("    - name: nginx\n      commands:\n        enable:\n          script: {subPath: /x.ps1}\n"),
			"spec.implementations[0].commands.enable.script.subPath", []string{`"/x.ps1"`}},
		{"script backslash", manifestWith("    - name: nginx\n      commands:\n        enable:\n          script: {subPath: 'nginx\\Enable.ps1'}\n"),
			"spec.implementations[0].commands.enable.script.subPath", []string{`"nginx\\Enable.ps1"`}},
		{"script not clean", manifestWith("    - name: nginx\n      commands:\n        enable:\n          script: {subPath: ./nginx/Enable.ps1}\n"),
			"spec.implementations[0].commands.enable.script.subPath", []string{`"./nginx/Enable.ps1"`}},
		{"script dot-dot inside", manifestWith("    - name: nginx\n      commands:\n        enable:\n          script: {subPath: nginx/../../Enable.ps1}\n"),
			"spec.implementations[0].commands.enable.script.subPath", []string{`"nginx/../../Enable.ps1"`}},
		{"script empty", manifestWith("    - name: nginx\n    - name: traefik\n      commands:\n        enable:\n          script: {subPath: ''}\n"),
			"spec.implementations[1].commands.enable.script.subPath", []string{`""`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const file = "/addons/ingress/addon.manifest.yaml"
			m, err := ParseManifest(file, []byte(tc.src), "")
			if err == nil {
				t.Fatalf("parsed without error: %+v", m)
			}
			wantManifestError(t, err, file, tc.field, tc.msgs...)
		})
	}
}

func TestLoadManifestChecksScriptsExist(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"nginx/Enable.ps1": "#\n",
		"nginx/sub/x.ps1":  "#\n",
	})
	file := filepath.Join(dir, ManifestFile)
	for _, tc := range []struct {
		name, subPath string
		ok            bool
	}{
		{"exists", "nginx/Enable.ps1", true},
		{"nested", "nginx/sub/x.ps1", true},
		{"missing", "nginx/Disable.ps1", false},
		{"a directory", "nginx/sub", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := manifestWith("    - name: nginx\n      commands:\n        enable:\n          script: {subPath: nginx/Enable.ps1}\n" +
				"        disable:\n          script: {subPath: " + tc.subPath + "}\n")
			if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := LoadManifest(dir)
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("loaded without error")
			}
			wantManifestError(t, err, file, "spec.implementations[0].commands.disable.script.subPath",
				`"`+tc.subPath+`" does not name a file in `+dir)
			// Without a directory, only the form is checked.
			if _, err := ParseManifest(file, []byte(src), ""); err != nil {
				t.Errorf("ParseManifest without dir: %v", err)
			}
		})
	}
}

func TestLoadManifestFileProblems(t *testing.T) {
	t.Run("missing", func(t *testing.T) {
		dir := t.TempDir()
		_, err := LoadManifest(dir)
		wantManifestError(t, err, filepath.Join(dir, ManifestFile), "", "missing; an addon directory holds an addon.manifest.yaml")
	})
	t.Run("missing directory", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "nope")
		_, err := LoadManifest(dir)
		wantManifestError(t, err, filepath.Join(dir, ManifestFile), "", "missing")
	})
	t.Run("a directory", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.Mkdir(filepath.Join(dir, ManifestFile), 0o755); err != nil {
			t.Fatal(err)
		}
		_, err := LoadManifest(dir)
		wantManifestError(t, err, filepath.Join(dir, ManifestFile), "", "is a directory")
	})
	t.Run("empty", func(t *testing.T) {
		dir := t.TempDir()
		writeTree(t, dir, map[string]string{ManifestFile: ""})
		_, err := LoadManifest(dir)
		wantManifestError(t, err, filepath.Join(dir, ManifestFile), "", "empty")
	})
}

func TestLoadManifestValid(t *testing.T) {
	m, err := LoadManifest(metricsAddon(t))
	if err != nil {
		t.Fatal(err)
	}
	im, ok := m.Implementation("metrics")
	if !ok || m.Metadata.Name != "metrics" || im.Description != "metrics-server" {
		t.Fatalf("manifest %+v", m)
	}
	flags := im.Commands.Enable.CLI.Flags
	if len(flags) != 1 || flags[0].Shorthand != "r" || flags[0].Constraints.Kind != "validation-set" ||
		!reflect.DeepEqual(flags[0].Constraints.ValidationSet, []any{float64(1), float64(2), float64(3)}) {
		t.Errorf("flags %+v", flags)
	}
	if pm := im.Commands.Enable.Script.ParameterMappings; len(pm) != 1 || pm[0] != (ParameterMapping{"replicas", "Replicas"}) {
		t.Errorf("parameter mappings %+v", pm)
	}
	if _, ok := m.Implementation("nginx"); ok {
		t.Error("found an implementation that is not there")
	}

	// The sample's addons load as they are.
	for _, tc := range []struct {
		dir   string
		impls []string
	}{
		{"../../fixtures/sample/addons/metrics", []string{"metrics"}},
		{"../../fixtures/sample/addons/ingress", []string{"nginx", "traefik"}},
	} {
		m, err := LoadManifest(tc.dir)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, im := range m.Spec.Implementations {
			got = append(got, im.Name)
		}
		if !reflect.DeepEqual(got, tc.impls) || m.Metadata.Name != filepath.Base(tc.dir) {
			t.Errorf("%s: %s with %v", tc.dir, m.Metadata.Name, got)
		}
	}
}

func TestExportNameAndImplDir(t *testing.T) {
	for _, tc := range []struct{ addon, impl, export, dir string }{
		{"metrics", "metrics", "metrics", "/a"},
		{"metrics", "", "metrics", ""},
		{"ingress", "nginx", "ingress-nginx", "/a/nginx"},
	} {
		if got := ExportName(tc.addon, tc.impl); got != tc.export {
			t.Errorf("ExportName(%q, %q) = %q, want %q", tc.addon, tc.impl, got, tc.export)
		}
		if tc.impl == "" {
			continue
		}
		if got := ImplDir("/a", tc.addon, tc.impl); got != tc.dir {
			t.Errorf("ImplDir(/a, %q, %q) = %q, want %q", tc.addon, tc.impl, got, tc.dir)
		}
	}
	for ref, want := range map[string][2]string{
		"registry.k8s.io/pause:3.10": {"registry.k8s.io_pause_3.10.tar", "windows_registry.k8s.io_pause_3.10.tar"},
		"ghcr.io/a/b@sha256:abc":     {"ghcr.io_a_bsha256_abc.tar", "windows_ghcr.io_a_bsha256_abc.tar"},
	} {
		if got := ImageTarName(ref, false); got != want[0] {
			t.Errorf("ImageTarName(%q) = %q, want %q", ref, got, want[0])
		}
		if got := ImageTarName(ref, true); got != want[1] {
			t.Errorf("ImageTarName(%q, windows) = %q, want %q", ref, got, want[1])
		}
	}
}
