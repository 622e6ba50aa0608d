package addon

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/relcue/release/internal/strictjson"
)

// ManifestFile is the name of the addon manifest in an addon directory.
const ManifestFile = "addon.manifest.yaml"

// Manifest is K2s's addon.manifest.yaml (apiVersion v1, kind
// AddonManifest). It is decoded strictly: a misspelt field is an error, not
// a silently missing command.
type Manifest struct {
	APIVersion string           `json:"apiVersion"`
	Kind       string           `json:"kind"`
	Metadata   ManifestMetadata `json:"metadata"`
	Spec       ManifestSpec     `json:"spec"`
}

// ManifestMetadata names and describes the addon.
type ManifestMetadata struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

// ManifestSpec lists the implementations.
type ManifestSpec struct {
	Implementations []Implementation `json:"implementations"`
}

// Implementation is one way of providing the addon (e.g. ingress nginx
// or traefik).
type Implementation struct {
	Name         string        `json:"name"`
	Description  string        `json:"description,omitempty"`
	Version      string        `json:"version,omitempty"`
	OfflineUsage *OfflineUsage `json:"offline_usage,omitempty"`
	Commands     *Commands     `json:"commands,omitempty"`
}

// OfflineUsage is what K2s downloads for offline use; release takes images
// and packages from the configuration instead, but keeps the field so that
// manifests written for K2s load unchanged.
type OfflineUsage struct {
	Linux   *OfflineLinux   `json:"linux,omitempty"`
	Windows *OfflineWindows `json:"windows,omitempty"`
}

// OfflineLinux lists Linux downloads.
type OfflineLinux struct {
	Repos                 []string   `json:"repos,omitempty"`
	Deb                   []string   `json:"deb,omitempty"`
	Curl                  []CurlItem `json:"curl,omitempty"`
	AdditionalImages      []string   `json:"additionalImages,omitempty"`
	AdditionalImagesFiles []string   `json:"additionalImagesFiles,omitempty"`
}

// OfflineWindows lists Windows downloads.
type OfflineWindows struct {
	Curl                  []CurlItem `json:"curl,omitempty"`
	AdditionalImages      []string   `json:"additionalImages,omitempty"`
	AdditionalImagesFiles []string   `json:"additionalImagesFiles,omitempty"`
}

// CurlItem is one download.
type CurlItem struct {
	URL         string `json:"url"`
	Destination string `json:"destination"`
}

// Commands are the enable and disable commands.
type Commands struct {
	Enable  *Command `json:"enable,omitempty"`
	Disable *Command `json:"disable,omitempty"`
}

// Command is a CLI command and the script behind it.
type Command struct {
	CLI    *CommandCLI `json:"cli,omitempty"`
	Script *Script     `json:"script,omitempty"`
}

// CommandCLI describes flags and examples.
type CommandCLI struct {
	Flags    []Flag    `json:"flags,omitempty"`
	Examples []Example `json:"examples,omitempty"`
}

// Flag is a CLI flag.
type Flag struct {
	Name           string       `json:"name"`
	Shorthand      string       `json:"shorthand,omitempty"`
	Default        any          `json:"default,omitempty"`
	Description    string       `json:"description,omitempty"`
	Constraints    *Constraints `json:"constraints,omitempty"`
	ExclusionGroup string       `json:"exclusionGroup,omitempty"`
}

// Constraints restrict a flag's value.
type Constraints struct {
	Kind          string `json:"kind"`
	ValidationSet []any  `json:"validationSet,omitempty"`
	Range         *Range `json:"range,omitempty"`
}

// Range bounds a numeric flag.
type Range struct {
	Min any `json:"min,omitempty"`
	Max any `json:"max,omitempty"`
}

// Example is a usage example.
type Example struct {
	Cmd     string `json:"cmd"`
	Comment string `json:"comment,omitempty"`
}

// Script is the PowerShell script a command runs.
type Script struct {
	SubPath           string             `json:"subPath"`
	ParameterMappings []ParameterMapping `json:"parameterMappings,omitempty"`
}

// ParameterMapping maps a CLI flag to a script parameter.
type ParameterMapping struct {
	CLIFlagName         string `json:"cliFlagName"`
	ScriptParameterName string `json:"scriptParameterName"`
}

// ManifestError is a problem in an addon manifest, naming the file and
// the field.
type ManifestError struct {
	File  string
	Field string // e.g. "spec.implementations[1].name"; "" for the file
	Msg   string
}

func (e *ManifestError) Error() string {
	if e.Field == "" {
		return e.File + ": " + e.Msg
	}
	return e.File + ": " + e.Field + ": " + e.Msg
}

var labelRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// LoadManifest reads and validates dir/addon.manifest.yaml.
func LoadManifest(dir string) (*Manifest, error) {
	file := filepath.Join(dir, ManifestFile)
	data, err := os.ReadFile(file)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, &ManifestError{File: file, Msg: "missing; an addon directory holds an " + ManifestFile + " (apiVersion: v1, kind: AddonManifest)"}
		}
		return nil, &ManifestError{File: file, Msg: err.Error()}
	}
	return ParseManifest(file, data, dir)
}

// ParseManifest decodes data strictly and checks it; dir, when not empty,
// is the addon directory against which script paths are checked.
func ParseManifest(file string, data []byte, dir string) (*Manifest, error) {
	m, err := decodeManifest(data)
	if err == nil {
		err = m.check(dir)
	}
	if err != nil {
		err.File = file
		return nil, err
	}
	return m, nil
}

// problem is a ManifestError whose File the caller fills in.
func problem(field, format string, args ...any) *ManifestError {
	return &ManifestError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

func decodeManifest(data []byte) (*Manifest, *ManifestError) {
	// Strict: a key written twice is an error, not one value silently lost.
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, problem("", "not valid YAML: %v", err)
	}
	if bytes.Equal(bytes.TrimSpace(js), []byte("null")) {
		return nil, problem("", "empty; write apiVersion: v1, kind: AddonManifest, metadata and spec")
	}
	var m Manifest
	if err := strictjson.Unmarshal(js, &m); err != nil {
		field, msg := jsonProblem(err, js)
		return nil, problem(field, "%s", msg)
	}
	return &m, nil
}

// check checks the header and metadata, then each implementation in
// order; dir is as for ParseManifest.
func (m *Manifest) check(dir string) *ManifestError {
	if m.APIVersion != "v1" {
		return problem("apiVersion", "%q; K2s addon manifests are apiVersion v1", m.APIVersion)
	}
	if m.Kind != "AddonManifest" {
		return problem("kind", "%q; want AddonManifest", m.Kind)
	}
	if !labelRE.MatchString(m.Metadata.Name) {
		return problem("metadata.name", "%q is not an addon name (lower-case letters, digits and \"-\", at most 63)", m.Metadata.Name)
	}
	if strings.TrimSpace(m.Metadata.Description) == "" {
		return problem("metadata.description", "empty; describe the addon in one line")
	}
	if len(m.Spec.Implementations) == 0 {
		return problem("spec.implementations", "empty; list at least one implementation (its name is the addon's name for a single one)")
	}
	seen := map[string]int{}
	for i, im := range m.Spec.Implementations {
		f := fmt.Sprintf("spec.implementations[%d]", i)
		if !labelRE.MatchString(im.Name) {
			return problem(f+".name", "%q is not an implementation name (lower-case letters, digits and \"-\")", im.Name)
		}
		if j, dup := seen[im.Name]; dup {
			return problem(f+".name", "%q is also implementation %d; names must be unique", im.Name, j)
		}
		seen[im.Name] = i
		if err := im.checkScripts(f, dir); err != nil {
			return err
		}
	}
	return nil
}

// checkScripts checks the enable and disable scripts' paths of the
// implementation at field f, and when dir is set that they exist there.
func (im *Implementation) checkScripts(f, dir string) *ManifestError {
	if im.Commands == nil {
		return nil
	}
	for _, c := range []struct {
		name string
		cmd  *Command
	}{{"enable", im.Commands.Enable}, {"disable", im.Commands.Disable}} {
		if c.cmd == nil || c.cmd.Script == nil {
			continue
		}
		sf := f + ".commands." + c.name + ".script.subPath"
		sp := c.cmd.Script.SubPath
		if sp == "" || strings.Contains(sp, `\`) || path.IsAbs(sp) || path.Clean(sp) != sp || strings.HasPrefix(sp, "../") || sp == ".." {
			return problem(sf, "%q is not a clean forward-slash path inside the addon directory", sp)
		}
		if dir != "" {
			if fi, err := os.Stat(filepath.Join(dir, filepath.FromSlash(sp))); err != nil || !fi.Mode().IsRegular() {
				return problem(sf, "%q does not name a file in %s; fix the path or add the script", sp, dir)
			}
		}
	}
	return nil
}

// jsonProblem rewrites the decoder's messages in the manifest's terms: the
// field (a path like "spec.implementations[0].comands", when it can be
// told) and the message.
func jsonProblem(err error, js []byte) (field, msg string) {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field == "" {
			return "", fmt.Sprintf("wrong type: got %s, want a mapping with apiVersion, kind, metadata and spec", te.Value)
		}
		return te.Field, fmt.Sprintf("wrong type: got %s, want %s", te.Value, te.Type)
	}
	msg = err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		var doc any
		if name, err := strconv.Unquote(f); err == nil && json.Unmarshal(js, &doc) == nil {
			field = unknownField(doc, reflect.TypeFor[Manifest](), "", name)
		}
		return field, "unknown field " + f + "; check its spelling against K2s's addon manifest schema"
	}
	return "", msg
}

// unknownField returns the path of the first key named name in v (decoded
// JSON) that t has no field for, or "". Keys match fields as
// encoding/json matches them: case-insensitively.
func unknownField(v any, t reflect.Type, path, name string) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch x := v.(type) {
	case map[string]any:
		if t.Kind() != reflect.Struct {
			return ""
		}
		fields := map[string]reflect.Type{}
		for i := range t.NumField() {
			tag, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
			fields[strings.ToLower(tag)] = t.Field(i).Type
		}
		for _, k := range slices.Sorted(maps.Keys(x)) {
			p := k
			if path != "" {
				p = path + "." + k
			}
			ft, ok := fields[strings.ToLower(k)]
			if !ok {
				if k == name {
					return p
				}
				continue
			}
			if u := unknownField(x[k], ft, p, name); u != "" {
				return u
			}
		}
	case []any:
		if t.Kind() != reflect.Slice {
			return ""
		}
		for i, e := range x {
			if u := unknownField(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i), name); u != "" {
				return u
			}
		}
	}
	return ""
}

// Implementation returns the named implementation, or false.
func (m *Manifest) Implementation(name string) (Implementation, bool) {
	for _, im := range m.Spec.Implementations {
		if im.Name == name {
			return im, true
		}
	}
	return Implementation{}, false
}

// ExportName is K2s's name for one implementation: the addon's name, or
// <addon>-<implementation> when they differ ("ingress-nginx").
func ExportName(addon, impl string) string {
	if impl == "" || impl == addon {
		return addon
	}
	return addon + "-" + impl
}

// ImplDir is the directory of an implementation's files: the addon
// directory itself for a single implementation named like the addon,
// dir/<impl> otherwise.
func ImplDir(dir, addon, impl string) string {
	if impl == addon {
		return dir
	}
	return filepath.Join(dir, impl)
}
