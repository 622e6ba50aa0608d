// Package delta builds cluster delta packages: the files that changed
// between two full packages, the wholesale directories complete, and a
// K2s-compatible delta-manifest.json extended with the hashes that
// modules/apply verifies.
package delta

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/relcue/release/modules/applydelta"
	"github.com/relcue/release/modules/codesign"
	"github.com/relcue/release/modules/fullpkg"
	"github.com/relcue/release/modules/nodepkg"
	"github.com/relcue/release/modules/pkgzip"
	"github.com/relcue/release/pipeline/config"
	"github.com/relcue/release/pipeline/step"
)

// Kind is the step kind and ArtifactKind the kind of the artifact it makes.
const (
	Kind         = "delta"
	ArtifactKind = "delta"
	// StepVersion changes whenever Build's bytes could change for the same
	// inputs, so that cached deltas stop matching: the scripts a k2s delta
	// writes (modules/applydelta, modules/debiandelta) included.
	StepVersion = "1"
)

// TargetID is the stable ID of the delta from one version to another.
func TargetID(from, to string) string { return "delta/" + from + ".." + to }

// OutputPath is where the delta goes, relative to dist/.
func OutputPath(product, from, to string) string {
	return "deltas/" + product + "-delta-" + from + "-to-" + to + ".zip"
}

// Spec is the canonical JSON spec of a delta target; every field affects the
// output bytes.
type Spec struct {
	Product          string   `json:"product"`
	From             string   `json:"from"`
	To               string   `json:"to"`
	Output           string   `json:"output"`
	Date             string   `json:"date"`
	Level            int      `json:"level"`
	Mode             string   `json:"mode"`
	WholeDirectories []string `json:"wholeDirectories"`
	Skip             []string `json:"skip"`
	// NodeOS is the control-plane OS target whose node packages of both
	// releases fill DebianPackageDiff and ContainerImageDiff; "" when no
	// control-plane OS has both (the diffs stay unprocessed).
	NodeOS string `json:"nodeOS,omitempty"`
	// Paths is the path policy; "" is "windows" and stays unwritten, so
	// the default leaves cache keys as they were.
	Paths pkgzip.PathPolicy `json:"paths,omitempty"`
	// The profile and what it brings; unwritten for the generic profile
	// when unset, so that its cache keys stay as they were.
	Profile     string               `json:"profile,omitempty"`
	SkipNames   []string             `json:"skipNames,omitempty"`
	Always      []string             `json:"always,omitempty"`
	Nested      []Nested             `json:"nested,omitempty"`
	ApplyScript *applydelta.Settings `json:"applyScript,omitempty"`
	// Sign signs Apply-Delta.ps1 when the configuration signs .ps1.
	Sign *fullpkg.SignSpec `json:"sign,omitempty"`
}

// SignedTargets plans one target per delta path of the model. When the
// control-plane OS target has node contents for both releases of a path,
// the delta also depends on those two node packages (profile k2s requires
// them). Apply-Delta.ps1 is signed with key when the configuration signs
// .ps1 files.
func SignedTargets(key *codesign.Key) func(*config.Model) ([]step.Target, error) {
	return func(m *config.Model) ([]step.Target, error) {
		sign, err := scriptSignSpec(m, key)
		if err != nil {
			return nil, err
		}
		return targets(m, sign)
	}
}

// scriptSignSpec is the signing of Apply-Delta.ps1: only with profile
// k2s, and only when the configuration signs PowerShell scripts.
func scriptSignSpec(m *config.Model, key *codesign.Key) (*fullpkg.SignSpec, error) {
	if m.Product.Profile != config.ProfileK2s {
		return nil, nil
	}
	sign, err := fullpkg.SignSpecOf(m, key)
	if err != nil || sign == nil {
		return nil, err
	}
	if codesign.FormatOf(ApplyScriptName, sign.Extensions) == codesign.None {
		return nil, nil
	}
	return sign, nil
}

func targets(m *config.Model, sign *fullpkg.SignSpec) ([]step.Target, error) {
	var out []step.Target
	seen := map[string]string{}
	cp, err := ControlPlaneOS(m)
	if err != nil {
		return nil, err
	}
	for _, d := range m.Deltas {
		where := d.Pos.String()
		if where != "" {
			where += ": "
		}
		if _, ok := m.Releases[d.From]; !ok {
			return nil, fmt.Errorf("%sdelta %s..%s: release %s is not defined; add it under releases or remove the delta path", where, d.From, d.To, d.From)
		}
		if _, ok := m.Releases[d.To]; !ok {
			return nil, fmt.Errorf("%sdelta %s..%s: release %s is not defined; add it under releases or remove the delta path", where, d.From, d.To, d.To)
		}
		if d.From == d.To {
			return nil, fmt.Errorf("%sdelta %s..%s: from and to are the same version", where, d.From, d.To)
		}
		mode := d.Mode
		if mode == "" {
			mode = "file"
		}
		if mode != ModeFile && mode != ModeBinary {
			return nil, fmt.Errorf("%sdelta %s..%s: mode %q: want %q or %q", where, d.From, d.To, d.Mode, ModeFile, ModeBinary)
		}
		whole, err := normalizeWholeDirs(d.WholeDirectories)
		if err != nil {
			return nil, fmt.Errorf("%sdelta %s..%s: %w", where, d.From, d.To, err)
		}
		skip, err := normalizeSkip(d.Skip)
		if err != nil {
			return nil, fmt.Errorf("%sdelta %s..%s: %w", where, d.From, d.To, err)
		}
		id := TargetID(d.From, d.To)
		if prev, ok := seen[id]; ok {
			return nil, fmt.Errorf("%sdelta %s..%s is also defined at %s", where, d.From, d.To, prev)
		}
		seen[id] = d.Pos.String()
		deps := []string{fullpkg.TargetID(d.From), fullpkg.TargetID(d.To)}
		nodeOS := ""
		if cp != nil && cp.Releases[d.From] != nil && cp.Releases[d.To] != nil {
			nodeOS = cp.Name
			deps = append(deps, nodepkg.TargetID(cp.Name, d.From), nodepkg.TargetID(cp.Name, d.To))
		}
		var paths pkgzip.PathPolicy
		if m.Build.Paths == string(pkgzip.PathsPOSIX) {
			paths = pkgzip.PathsPOSIX
		}
		spec := profileSpec(m, d)
		if spec.Profile == ProfileK2s {
			if nodeOS == "" {
				return nil, fmt.Errorf("%sdelta %s..%s: profile k2s needs the control plane's node packages of both releases to make debian-delta/ (without it K2s's apply skips the control plane's packages and kubeadm upgrade but still moves VERSION to %s): mark the control-plane OS target controlPlane: true and give it releases %s and %s", where, d.From, d.To, d.To, d.From, d.To)
			}
			spec.Sign = sign
		}
		out = append(out, step.Target{
			ID:   id,
			Kind: Kind,
			Spec: Spec{
				Product:          m.Product.Name,
				From:             d.From,
				To:               d.To,
				Output:           OutputPath(m.Product.Name, d.From, d.To),
				Date:             m.Build.Date.UTC().Format(time.RFC3339),
				Level:            m.Build.CompressionLevel,
				Mode:             mode,
				WholeDirectories: whole,
				Skip:             skip,
				NodeOS:           nodeOS,
				Paths:            paths,
				Profile:          spec.Profile,
				SkipNames:        spec.SkipNames,
				Always:           spec.Always,
				Nested:           spec.Nested,
				ApplyScript:      spec.ApplyScript,
				Sign:             spec.Sign,
			},
			Deps:    deps,
			Pos:     d.Pos.String(),
			Outputs: []string{OutputPath(m.Product.Name, d.From, d.To)},
			// Signing Apply-Delta.ps1 uses this process's key, which
			// never goes to a step container.
			InProcess: spec.Sign != nil,
		})
	}
	return out, nil
}

// profileSpec is the part of a delta's spec the profile and deltas'
// layout make; empty lists stay unset.
func profileSpec(m *config.Model, d config.DeltaPath) Spec {
	var s Spec
	if m.Product.Profile == config.ProfileK2s {
		s.Profile = ProfileK2s
	}
	if len(d.SkipNames) > 0 {
		s.SkipNames = d.SkipNames
	}
	l := m.DeltaLayout
	if len(l.Always) > 0 {
		s.Always = l.Always
	}
	s.Nested = NestedOf(l.Nested)
	if s.Profile == ProfileK2s {
		s.ApplyScript = ApplyScriptOf(l.ApplyScript)
	}
	return s
}

// NestedOf converts the configuration's nested archives.
func NestedOf(archives []config.NestedArchive) []Nested {
	var out []Nested
	for _, n := range archives {
		dn := Nested{Archive: n.Archive, WindowsImages: n.WindowsImages}
		for _, f := range n.Folders {
			dn.Folders = append(dn.Folders, NestedFolder{From: f.From, To: f.To, Whole: f.Whole, Rename: f.Rename})
		}
		out = append(out, dn)
	}
	return out
}

// ApplyScriptOf converts the configuration's Apply-Delta.ps1 settings.
func ApplyScriptOf(a *config.ApplyScript) *applydelta.Settings {
	if a == nil {
		return nil
	}
	return &applydelta.Settings{Module: a.Module, Function: a.Function, Preload: a.Preload}
}

// Step builds delta targets; Key signs Apply-Delta.ps1 when the spec asks.
type Step struct {
	Key *codesign.Key
}

var _ step.Step = Step{}

func (Step) Kind() string    { return Kind }
func (Step) Version() string { return StepVersion }

// Run builds the delta named by the spec from the two package dependencies.
func (st Step) Run(ctx context.Context, in *step.Input) ([]step.Artifact, error) {
	var s Spec
	if err := in.DecodeSpec(&s); err != nil {
		return nil, err
	}
	if s.Mode != ModeFile && s.Mode != ModeBinary {
		return nil, fmt.Errorf("%s: mode %q is not supported", in.Target, s.Mode)
	}
	if s.Output == "" || path.IsAbs(s.Output) || path.Clean(s.Output) != s.Output || s.Output == ".." || len(s.Output) > 2 && s.Output[:3] == "../" {
		return nil, fmt.Errorf("%s: spec output %q must be a clean path relative to the output directory", in.Target, s.Output)
	}
	date, err := time.Parse(time.RFC3339, s.Date)
	if err != nil {
		return nil, fmt.Errorf("%s: spec date %q: %w", in.Target, s.Date, err)
	}
	if _, err := pkgzip.ParsePathPolicy(string(s.Paths)); err != nil {
		return nil, fmt.Errorf("%s: spec: %w", in.Target, err)
	}
	base, err := packageZip(in, s.From)
	if err != nil {
		return nil, err
	}
	target, err := packageZip(in, s.To)
	if err != nil {
		return nil, err
	}
	var baseNode, targetNode string
	if s.NodeOS != "" {
		if baseNode, err = nodePackageZip(in, s.NodeOS, s.From); err != nil {
			return nil, err
		}
		if targetNode, err = nodePackageZip(in, s.NodeOS, s.To); err != nil {
			return nil, err
		}
	}
	var signScript func(context.Context, string, []byte) ([]byte, error)
	if s.Sign != nil {
		if signScript, err = st.scriptSigner(in, s.Sign); err != nil {
			return nil, err
		}
	}
	in.Progress.SetTotal(0)
	_, err = Build(ctx, Options{
		Base:             base,
		Target:           target,
		BaseNode:         baseNode,
		TargetNode:       targetNode,
		Output:           filepath.Join(in.OutDir, filepath.FromSlash(s.Output)),
		WholeDirectories: s.WholeDirectories,
		Skip:             s.Skip,
		Date:             date,
		Level:            s.Level,
		Mode:             s.Mode,
		Workers:          in.Workers,
		Progress:         in.Progress.Add,
		Log:              in.Log,
		Paths:            s.Paths,
		Profile:          s.Profile,
		SkipNames:        s.SkipNames,
		Always:           s.Always,
		Nested:           s.Nested,
		ApplyScript:      s.ApplyScript,
		SignScript:       signScript,
	})
	if err != nil {
		return nil, pkgzip.Hint(err, pkgzip.ConfigHint)
	}
	return []step.Artifact{{Path: s.Output, Kind: ArtifactKind}}, nil
}

func packageZip(in *step.Input, version string) (string, error) {
	return in.DepArtifact(fullpkg.TargetID(version), fullpkg.ArtifactKind)
}

func nodePackageZip(in *step.Input, os, version string) (string, error) {
	return in.DepArtifact(nodepkg.TargetID(os, version), nodepkg.ArtifactKind)
}

// scriptSigner signs the scripts the delta writes with st.Key, which must
// be the certificate the spec names.
func (st Step) scriptSigner(in *step.Input, sign *fullpkg.SignSpec) (func(context.Context, string, []byte) ([]byte, error), error) {
	if st.Key == nil || st.Key.Fingerprint != sign.Certificate {
		have := "no signing credential"
		if st.Key != nil {
			have = "the certificate sha256:" + st.Key.Fingerprint
		}
		return nil, fmt.Errorf("%s signs Apply-Delta.ps1 with the certificate sha256:%s, but this process has %s; set %s (and its password) to that credential, or build with --unsigned",
			in.Target, sign.Certificate, have, codesign.EnvPKCS12)
	}
	signer := codesign.NewSigner(st.Key, sign.Settings, nil)
	return func(ctx context.Context, name string, data []byte) ([]byte, error) {
		format := codesign.FormatOf(name, sign.Extensions)
		if format == codesign.None {
			return data, nil
		}
		dir, err := os.MkdirTemp("", "release-sign-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		src, dst := filepath.Join(dir, "in"+filepath.Ext(name)), filepath.Join(dir, "out"+filepath.Ext(name))
		if err := os.WriteFile(src, data, 0o600); err != nil {
			return nil, err
		}
		if err := signer.SignFile(ctx, format, name, src, dst); err != nil {
			return nil, err
		}
		return os.ReadFile(dst)
	}, nil
}
