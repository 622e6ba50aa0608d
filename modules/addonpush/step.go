package addonpush

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/relcue/release/internal/netx"
	"github.com/relcue/release/internal/strictjson"
	"github.com/relcue/release/modules/addon"
	"github.com/relcue/release/modules/addonsign"
	"github.com/relcue/release/pipeline/config"
	"github.com/relcue/release/pipeline/step"
)

const (
	// Kind is the step kind; RecordKind the kind of the push record.
	Kind       = "push-addon"
	RecordKind = "push-record"
	// StepVersion changes with the push record's format.
	StepVersion = "1"
)

// TargetID is the ID of the push of one addon version.
func TargetID(name, version string) string { return "push/addon/" + name + "/" + version }

// RecordPath is where the push record goes, relative to dist/.
func RecordPath(name, version string) string { return "pushes/addon-" + name + "-" + version + ".json" }

// Spec is the canonical JSON spec of a push.
type Spec struct {
	Addon     string `json:"addon"` // the export's target ID
	Name      string `json:"name"`
	Version   string `json:"version"`
	Registry  string `json:"registry"`
	PlainHTTP bool   `json:"plainHTTP"`
	Insecure  bool   `json:"insecure"`
	Prefix    string `json:"prefix"`
	// Sign pushes a cosign signature beside each artifact.
	Sign bool `json:"sign,omitempty"`
}

// Record is the push record written to dist/: what was pushed where.
type Record struct {
	Registry string   `json:"registry"`
	Pushed   []Pushed `json:"pushed"`
}

// SignedTargets plans a push per addon when a registry is configured, and
// signs the pushes with key where the configuration asks for it
// (signing.cosign); asking without a key is an error that says how to give
// one. Pushes are effects: never cached, run only by `build --push`.
func SignedTargets(key *addonsign.Key) func(*config.Model) ([]step.Target, error) {
	return func(m *config.Model) ([]step.Target, error) {
		if m.Signing.Cosign && key == nil && addon.SettingsOf(m).Registry != nil {
			return nil, fmt.Errorf("%s: signing.cosign asks for signed addon pushes, but no key is set: set %s to a cosign private key (cosign generate-key-pair) and %s (or %s) to its password, or build with --unsigned",
				m.Signing.CosignPos, addonsign.EnvKey, addonsign.EnvPassword, addonsign.EnvPasswordFile)
		}
		return targets(m, m.Signing.Cosign)
	}
}

func targets(m *config.Model, sign bool) ([]step.Target, error) {
	s := addon.SettingsOf(m)
	reg := s.Registry
	if reg == nil {
		return nil, nil
	}
	var out []step.Target
	for _, name := range s.Names {
		a := s.Addons[name]
		out = append(out, step.Target{
			ID: TargetID(a.Name, a.Version), Kind: Kind, Pos: reg.Pos.String(), Effect: true,
			Deps:    []string{addon.TargetID(a.Name, a.Version)},
			Outputs: []string{RecordPath(a.Name, a.Version)},
			Spec: Spec{Addon: addon.TargetID(a.Name, a.Version), Name: a.Name, Version: a.Version,
				Registry: reg.Host, PlainHTTP: reg.PlainHTTP, Insecure: reg.Insecure, Prefix: reg.Prefix, Sign: sign},
		})
	}
	return out, nil
}

// Step pushes addon artifacts.
type Step struct {
	// Transport, when set, carries every request (tests inject faults).
	Transport http.RoundTripper
	// Cosign signs the pushes whose spec asks for it.
	Cosign *addonsign.Key
	// Net bounds the registry requests in time (zero: the defaults).
	Net netx.Config
}

var _ step.Step = Step{}

func (Step) Kind() string    { return Kind }
func (Step) Version() string { return StepVersion }

// Run pushes the export's layout and writes the push record.
func (st Step) Run(ctx context.Context, in *step.Input) ([]step.Artifact, error) {
	var s Spec
	if err := strictjson.Unmarshal(in.Spec, &s); err != nil {
		return nil, fmt.Errorf("%s: bad push spec: %w", in.Target, err)
	}
	r, ok := in.Deps[s.Addon]
	if !ok {
		return nil, fmt.Errorf("%s: dependency %s was not provided; the plan is inconsistent", in.Target, s.Addon)
	}
	layout := filepath.Join(r.Dir, filepath.FromSlash(addon.LayoutPath(s.Name, s.Version)))
	idx, err := readIndex(layout)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", in.Target, err)
	}
	var total int64
	for _, d := range idx.Manifests {
		total += d.Size
	}
	in.Progress.SetTotal(total)
	var signer *addonsign.Key
	if s.Sign {
		if st.Cosign == nil {
			return nil, fmt.Errorf("%s: the push is to be signed, but this process has no cosign key; set %s", in.Target, addonsign.EnvKey)
		}
		signer = st.Cosign
	}
	pushed, err := Push(ctx, layout, Options{
		Signer:      signer,
		Registry:    Registry{Host: s.Registry, PlainHTTP: s.PlainHTTP, Insecure: s.Insecure, Prefix: s.Prefix},
		Tag:         "v" + s.Version,
		ExportName:  exportName,
		Concurrency: in.Workers,
		Progress:    in.Progress.Add,
		Transport:   st.Transport,
		Net:         st.Net,
	})
	if err != nil {
		return nil, err
	}
	for _, p := range pushed {
		if p.Present {
			fmt.Fprintf(in.Log, "tagged %s@%s: the registry had the whole artifact, nothing uploaded\n", p.Reference, p.Digest)
			continue
		}
		fmt.Fprintf(in.Log, "pushed %s@%s: %d blobs and manifests uploaded, %d already in the registry\n", p.Reference, p.Digest, p.Uploaded, p.Skipped)
	}
	raw, _ := json.MarshalIndent(Record{Registry: s.Registry, Pushed: pushed}, "", "  ")
	p := RecordPath(s.Name, s.Version)
	dst := filepath.Join(in.OutDir, filepath.FromSlash(p))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(dst, append(raw, '\n'), 0o644); err != nil {
		return nil, err
	}
	return []step.Artifact{{Path: p, Kind: RecordKind}}, nil
}

// exportName reads the repository name K2s gives an implementation from
// its index entry.
func exportName(d ocispec.Descriptor) (string, error) {
	if n := d.Annotations[addon.AnnotationExportName]; n != "" {
		return n, nil
	}
	return "", fmt.Errorf("index entry %s has no %s annotation; it was not exported by release", d.Digest, addon.AnnotationExportName)
}

func readIndex(dir string) (*ocispec.Index, error) {
	raw, err := os.ReadFile(filepath.Join(dir, ocispec.ImageIndexFile))
	if err != nil {
		return nil, fmt.Errorf("read OCI layout: %w", err)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, fmt.Errorf("OCI layout %s: index.json: %w", dir, err)
	}
	if len(idx.Manifests) == 0 {
		return nil, fmt.Errorf("OCI layout %s lists no manifests", dir)
	}
	return &idx, nil
}
