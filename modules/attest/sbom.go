package attest

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"path"
	"strings"

	cdx "github.com/CycloneDX/cyclonedx-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/relcue/release/modules/addon"
)

// serial derives the BOM's serial number from the artifact's digest, so it
// is stable across rebuilds and unique per artifact (RFC 4122 layout,
// version 5 bits).
func serial(sum string) string {
	h := sha256.Sum256([]byte("release sbom " + sum))
	h[6] = (h[6] & 0x0f) | 0x50
	h[8] = (h[8] & 0x3f) | 0x80
	return fmt.Sprintf("urn:uuid:%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

// SBOMVersion is the CycloneDX version written; 1.6 is the newest that
// common consumers (syft, grype, Dependency-Track) all read.
const SBOMVersion = cdx.SpecVersion1_6

func sha256Hash(hex string) *[]cdx.Hash {
	return &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: hex}}
}

func makeSBOM(s *SBOMSpec, sum string, size int64, c *contents) ([]byte, error) {
	bom := cdx.NewBOM()
	bom.SerialNumber = serial(sum)
	bom.Version = 1
	mainType := cdx.ComponentTypeApplication
	if s.Format == Addon {
		mainType = cdx.ComponentTypeData
	}
	main := cdx.Component{
		BOMRef: "artifact", Type: mainType, Name: path.Base(s.Path), Hashes: sha256Hash(sum),
		Properties: &[]cdx.Property{{Name: "release:target", Value: s.Subject}, {Name: "release:size", Value: fmt.Sprint(size)}},
	}
	if s.Vendor != "" {
		main.Supplier = &cdx.OrganizationalEntity{Name: s.Vendor}
	}
	bom.Metadata = &cdx.Metadata{
		Timestamp: s.Date,
		Tools: &cdx.ToolsChoice{Components: &[]cdx.Component{{
			Type: cdx.ComponentTypeApplication, Name: "release", Group: "relcue", Version: "attest/" + StepVersion,
		}}},
		Component: &main,
	}
	var comps []cdx.Component
	var refs []string
	add := func(comp cdx.Component) {
		comps = append(comps, comp)
		refs = append(refs, comp.BOMRef)
	}
	for _, f := range c.Files {
		add(cdx.Component{BOMRef: "file:" + f.Path, Type: cdx.ComponentTypeFile, Name: f.Path, Hashes: sha256Hash(f.SHA256),
			Properties: &[]cdx.Property{{Name: "release:size", Value: fmt.Sprint(f.Size)}}})
	}
	for _, d := range c.Debs {
		add(cdx.Component{
			BOMRef: "deb:" + d.Path, Type: cdx.ComponentTypeApplication, Name: d.Package, Version: d.Version,
			PackageURL: fmt.Sprintf("pkg:deb/%s@%s?arch=%s", d.Package, d.Version, d.Architecture),
			Hashes:     sha256Hash(d.SHA256),
			Properties: &[]cdx.Property{{Name: "release:file", Value: d.Entry(c.OSDir)}, {Name: "release:group", Value: d.Group}},
		})
	}
	for _, im := range c.Images {
		props := []cdx.Property{{Name: "release:file", Value: im.Entry()}, {Name: "release:digest", Value: im.Digest}, {Name: "release:archive-sha256", Value: im.SHA256}}
		for _, p := range im.Platforms {
			props = append(props, cdx.Property{Name: "release:platform", Value: p})
		}
		comp, err := imageComponent(im.File, im.Ref, im.Digest, props)
		if err != nil {
			return nil, err
		}
		add(comp)
	}
	for _, m := range c.Manifests {
		add(manifestComponent(m))
	}
	for _, d := range c.AddonDebs {
		ctl := d.Control
		add(cdx.Component{
			BOMRef: "deb:" + d.File, Type: cdx.ComponentTypeApplication, Name: ctl.Package, Version: ctl.Version,
			PackageURL: fmt.Sprintf("pkg:deb/%s@%s?arch=%s", ctl.Package, ctl.Version, ctl.Architecture),
			Hashes:     sha256Hash(d.SHA256),
			Properties: &[]cdx.Property{{Name: "release:file", Value: d.File}},
		})
	}
	for _, im := range c.AddonImages {
		comp, err := imageComponent(im.File, im.Ref, im.Digest, []cdx.Property{{Name: "release:file", Value: im.File}, {Name: "release:digest", Value: im.Digest}})
		if err != nil {
			return nil, err
		}
		add(comp)
	}
	bom.Components = &comps
	bom.Dependencies = &[]cdx.Dependency{{Ref: "artifact", Dependencies: &refs}}
	var buf bytes.Buffer
	if err := cdx.NewBOMEncoder(&buf, cdx.BOMFileFormatJSON).SetPretty(true).SetEscapeHTML(false).EncodeVersion(bom, SBOMVersion); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// imageComponent describes an image by its name, tag and manifest digest.
func imageComponent(file, ref, digest string, props []cdx.Property) (cdx.Component, error) {
	name, tag := splitRef(ref)
	alg, hexd, _ := strings.Cut(digest, ":")
	if alg != "sha256" {
		return cdx.Component{}, fmt.Errorf("image %s: digest %s is not sha256", ref, digest)
	}
	return cdx.Component{
		BOMRef: "image:" + file, Type: cdx.ComponentTypeContainer, Name: name, Version: tag,
		PackageURL: fmt.Sprintf("pkg:oci/%s@%s", path.Base(name), digest),
		Hashes:     sha256Hash(hexd), Properties: &props,
	}, nil
}

func manifestComponent(m ocispec.Descriptor) cdx.Component {
	_, hexd, _ := strings.Cut(m.Digest.String(), ":")
	name := m.Annotations[addon.AnnotationExportName]
	if name == "" {
		name = m.Digest.String()
	}
	return cdx.Component{
		BOMRef: "oci:" + m.Digest.String(), Type: cdx.ComponentTypeData, Name: name,
		Version: m.Annotations[ocispec.AnnotationRefName], Hashes: sha256Hash(hexd),
		Properties: &[]cdx.Property{{Name: "release:mediaType", Value: m.MediaType}, {Name: "release:artifactType", Value: m.ArtifactType}},
	}
}

// splitRef splits "name:tag" (a registry port is not a tag).
func splitRef(ref string) (string, string) {
	i := strings.LastIndex(ref, ":")
	if i < 0 || strings.Contains(ref[i:], "/") {
		return ref, ""
	}
	return ref[:i], ref[i+1:]
}
