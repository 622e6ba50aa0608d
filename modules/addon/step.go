package addon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/relcue/release/internal/strictjson"
	"github.com/relcue/release/modules/deb"
	"github.com/relcue/release/modules/image"
	"github.com/relcue/release/pipeline/step"
)

// Step exports addons.
type Step struct{}

var _ step.Step = Step{}

func (Step) Kind() string    { return Kind }
func (Step) Version() string { return StepVersion }

// Run exports the addon named by the spec: the OCI layout, the same as
// .oci.tar, and the Flux resources when a registry is known.
func (Step) Run(ctx context.Context, in *step.Input) ([]step.Artifact, error) {
	s, err := ParseSpec(in.Spec)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", in.Target, err)
	}
	dir, ok := in.Sources[dirSource]
	if !ok {
		return nil, fmt.Errorf("%s: the pipeline provided no addon directory (planner bug)", in.Target)
	}
	man, err := LoadManifest(dir)
	if err != nil {
		return nil, err
	}
	date, _ := time.Parse(time.RFC3339, s.Date)
	opts := Options{
		Name: s.Name, Version: s.Version, Dir: dir, Manifest: man, Vendor: s.Vendor, License: s.License,
		ProductVersion: s.ProductVersion, Date: date, OmitImages: s.OmitImages, OmitPackages: s.OmitPackages,
		LayoutDir: filepath.Join(in.OutDir, filepath.FromSlash(LayoutPath(s.Name, s.Version))),
		TarPath:   filepath.Join(in.OutDir, filepath.FromSlash(ArchivePath(s.Name, s.Version))),
	}
	var flux bytes.Buffer
	for _, si := range s.Impls {
		sync, fx, err := gitopsFiles(s, si.Name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", in.Target, err)
		}
		if len(fx) > 0 {
			if flux.Len() > 0 {
				flux.WriteString("---\n")
			}
			flux.Write(fx)
		}
		im := Impl{Name: si.Name, Sync: sync}
		for _, g := range []struct {
			from []SpecFile
			kind string
			into *[]File
		}{{si.LinuxImages, image.ArtifactKind, &im.LinuxImages}, {si.WindowsImages, image.ArtifactKind, &im.WindowsImages}, {si.Packages, deb.ArtifactKind, &im.Packages}} {
			for _, f := range g.from {
				p, err := resolve(in, f, g.kind)
				if err != nil {
					return nil, err
				}
				*g.into = append(*g.into, File{Name: f.Name, Path: p})
			}
		}
		opts.Impls = append(opts.Impls, im)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	in.Progress.SetTotal(0)
	ex, err := Export(opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", in.Target, err)
	}
	arts := []step.Artifact{{Path: ArchivePath(s.Name, s.Version), Kind: ArchiveKind}}
	for _, f := range ex.Files {
		arts = append(arts, step.Artifact{Path: LayoutPath(s.Name, s.Version) + "/" + f, Kind: LayoutKind})
	}
	if flux.Len() > 0 {
		p := FluxPath(s.Name, s.Version)
		if err := os.WriteFile(filepath.Join(in.OutDir, filepath.FromSlash(p)), flux.Bytes(), 0o644); err != nil {
			return nil, err
		}
		arts = append(arts, step.Artifact{Path: p, Kind: FluxKind})
	}
	return arts, nil
}

func resolve(in *step.Input, f SpecFile, kind string) (string, error) {
	if f.Source != "" {
		p, ok := in.Sources[f.Source]
		if !ok {
			return "", fmt.Errorf("%s: the spec uses source %q but the pipeline provided none (planner bug)", in.Target, f.Source)
		}
		return p, nil
	}
	r, ok := in.Deps[f.Target]
	if !ok {
		return "", fmt.Errorf("%s: dependency %s was not provided; the plan is inconsistent", in.Target, f.Target)
	}
	a, ok := r.Find(kind)
	if !ok {
		return "", fmt.Errorf("%s: dependency %s has no %q artifact", in.Target, f.Target, kind)
	}
	return filepath.Join(r.Dir, filepath.FromSlash(a.Path)), nil
}

// ParseSpec decodes an export spec strictly.
func ParseSpec(raw json.RawMessage) (*Spec, error) {
	var s Spec
	if err := strictjson.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("bad addon spec: %w", err)
	}
	if _, err := time.Parse(time.RFC3339, s.Date); err != nil {
		return nil, fmt.Errorf("bad addon spec: date: %w", err)
	}
	if len(s.Impls) == 0 {
		return nil, fmt.Errorf("bad addon spec: no implementations")
	}
	for _, si := range s.Impls {
		for _, f := range append(append(append([]SpecFile{}, si.LinuxImages...), si.WindowsImages...), si.Packages...) {
			if (f.Target == "") == (f.Source == "") {
				return nil, fmt.Errorf("bad addon spec: %s: need exactly one of target and source", f.Name)
			}
			if err := checkName(f.Name); err != nil {
				return nil, fmt.Errorf("bad addon spec: %w", err)
			}
		}
	}
	return &s, nil
}
