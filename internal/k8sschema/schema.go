// Package k8sschema derives JSON schemas from Kubernetes API Go types, for
// validating rendered manifests with kubeconform without a network: the
// schema of a kind is the JSON encoding of its upstream type, closed at
// every level (additionalProperties false), so a field the type lacks is
// an error, as with strict decoding.
package k8sschema

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Kind is one API kind and a value of its Go type.
type Kind struct {
	APIVersion string // group/version, e.g. "upgrade.cattle.io/v1"
	Kind       string
	Type       any
}

// Template is the kubeconform -schema-location template, below a
// directory, of the files WriteDir writes.
const Template = "{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json"

// WriteDir writes one schema file per kind into dir, named as Template says.
func WriteDir(dir string, kinds ...Kind) error {
	for _, k := range kinds {
		group, version, ok := strings.Cut(k.APIVersion, "/")
		if !ok {
			return fmt.Errorf("k8sschema: %q has no group", k.APIVersion)
		}
		s := For(reflect.TypeOf(k.Type))
		props := s["properties"].(map[string]any)
		props["apiVersion"] = map[string]any{"enum": []string{k.APIVersion}}
		props["kind"] = map[string]any{"enum": []string{k.Kind}}
		s["required"] = appendUnique(s["required"], "apiVersion", "kind")
		s["$schema"] = "http://json-schema.org/draft-07/schema#"
		data, err := json.MarshalIndent(s, "", "  ")
		if err != nil {
			return err
		}
		p := filepath.Join(dir, group, strings.ToLower(k.Kind)+"_"+version+".json")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func appendUnique(v any, names ...string) []string {
	list, _ := v.([]string)
	for _, n := range names {
		found := false
		for _, have := range list {
			found = found || have == n
		}
		if !found {
			list = append(list, n)
		}
	}
	return list
}

var (
	marshaler = reflect.TypeOf((*json.Marshaler)(nil)).Elem()
	timeType  = reflect.TypeOf(metav1.Time{})
	durType   = reflect.TypeOf(metav1.Duration{})
	intstrTyp = reflect.TypeOf(intstr.IntOrString{})
	fieldsV1  = reflect.TypeOf(metav1.FieldsV1{})
)

// For returns the schema of t's JSON encoding.
func For(t reflect.Type) map[string]any { return schema(t, map[reflect.Type]bool{}) }

func schema(t reflect.Type, path map[reflect.Type]bool) map[string]any {
	switch t {
	case timeType:
		return map[string]any{"type": []string{"string", "null"}}
	case durType:
		return map[string]any{"type": "string"}
	case intstrTyp:
		return map[string]any{"anyOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "integer"}}}
	case fieldsV1:
		return map[string]any{"type": "object"}
	}
	if t.Kind() == reflect.Pointer {
		return nullable(schema(t.Elem(), path))
	}
	if t.Implements(marshaler) || reflect.PointerTo(t).Implements(marshaler) {
		return map[string]any{} // an encoding of its own: anything
	}
	switch t.Kind() {
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Interface:
		return map[string]any{}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return map[string]any{"type": []string{"string", "null"}}
		}
		return map[string]any{"type": []string{"array", "null"}, "items": schema(t.Elem(), path)}
	case reflect.Map:
		return map[string]any{"type": []string{"object", "null"}, "additionalProperties": schema(t.Elem(), path)}
	case reflect.Struct:
		if path[t] {
			return map[string]any{} // recursive type: not descended into again
		}
		path[t] = true
		defer delete(path, t)
		props := map[string]any{}
		var required []string
		structFields(t, path, props, &required)
		s := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
		if len(required) > 0 {
			s["required"] = required
		}
		return s
	}
	panic(fmt.Sprintf("k8sschema: unsupported type %s", t))
}

func structFields(t reflect.Type, path map[reflect.Type]bool, props map[string]any, required *[]string) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		ft := f.Type
		if f.Anonymous && name == "" {
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				structFields(ft, path, props, required) // inline
				continue
			}
		}
		if name == "" {
			name = f.Name
		}
		props[name] = schema(ft, path)
		if !strings.Contains(opts, "omitempty") && !strings.Contains(opts, "omitzero") && ft.Kind() != reflect.Pointer {
			*required = append(*required, name)
		}
	}
}

func nullable(s map[string]any) map[string]any {
	switch ty := s["type"].(type) {
	case string:
		s["type"] = []string{ty, "null"}
	case nil:
		// anything already
	}
	return s
}
