package main

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	slsa "github.com/in-toto/attestation/go/predicates/provenance/v1"
	intoto "github.com/in-toto/attestation/go/v1"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/relcue/release/internal/peers"
)

// cyclonedxSchema compiles the official CycloneDX 1.6 JSON schema shipped
// in the cyclonedx-go module (with the SPDX and JSF schemas it refers to),
// format assertions on.
func cyclonedxSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/CycloneDX/cyclonedx-go").Output()
	if err != nil {
		t.Fatalf("locating the cyclonedx-go module: %v", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "schema")
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	for id, file := range map[string]string{
		"http://cyclonedx.org/schema/bom-1.6.schema.json":  "bom-1.6.schema.json",
		"http://cyclonedx.org/schema/spdx.schema.json":     "spdx.schema.json",
		"http://cyclonedx.org/schema/jsf-0.82.schema.json": "jsf-0.82.schemax.json",
	} {
		f, err := os.Open(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if err := c.AddResource(id, doc); err != nil {
			t.Fatal(err)
		}
	}
	s, err := c.Compile("http://cyclonedx.org/schema/bom-1.6.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type cdxHash struct{ Alg, Content string }
type cdxProp struct{ Name, Value string }
type cdxComponent struct {
	Ref        string    `json:"bom-ref"`
	Type       string    `json:"type"`
	Name       string    `json:"name"`
	Version    string    `json:"version"`
	PURL       string    `json:"purl"`
	Hashes     []cdxHash `json:"hashes"`
	Properties []cdxProp `json:"properties"`
}
type cdxBOM struct {
	SpecVersion  string `json:"specVersion"`
	SerialNumber string `json:"serialNumber"`
	Metadata     struct {
		Timestamp string       `json:"timestamp"`
		Component cdxComponent `json:"component"`
	} `json:"metadata"`
	Components   []cdxComponent `json:"components"`
	Dependencies []struct {
		Ref       string   `json:"ref"`
		DependsOn []string `json:"dependsOn"`
	} `json:"dependencies"`
}

func (c cdxComponent) sha256() string {
	for _, h := range c.Hashes {
		if h.Alg == "SHA-256" {
			return h.Content
		}
	}
	return ""
}

func (c cdxComponent) prop(name string) string {
	for _, p := range c.Properties {
		if p.Name == name {
			return p.Value
		}
	}
	return ""
}

// zipFiles hashes every entry of a zip with the standard library.
func zipFiles(t *testing.T, p string) map[string][]byte {
	t.Helper()
	zr, err := zip.OpenReader(p)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	out := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("%s: %s: %v", p, f.Name, err)
		}
		out[f.Name] = data
	}
	return out
}

func tarEntries(t *testing.T, p string) map[string][]byte {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return readTar(t, f)
}

// readTar reads the regular files of a tar stream by name.
func readTar(t *testing.T, r io.Reader) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			out[h.Name] = data
		}
	}
}

// TestAttestationsDescribeEveryArtifact builds the sample and judges every
// SBOM by the official schema and by the artifact's own bytes (entries
// hashed by archive/zip and archive/tar, debs read by dpkg-deb, images by
// skopeo), and every provenance statement by the in-toto attestation
// library's strict decoding and validation.
func TestAttestationsDescribeEveryArtifact(t *testing.T) {
	schema := cyclonedxSchema(t)
	dpkgDeb := peers.Tool(t, "dpkg-deb")
	skopeo := peers.Tool(t, "skopeo")
	dir := copySample(t)
	b := runBuild(t, dir, filepath.Join(t.TempDir(), "cache"))
	dist := filepath.Join(dir, "dist")

	subjects := map[string]string{} // artifact path -> kind
	attests := map[string][]string{}
	for _, a := range b.Artifacts {
		subjects[a.Path] = a.Kind
		if strings.HasPrefix(a.Target, "sbom/") || strings.HasPrefix(a.Target, "provenance/") {
			attests[a.Target] = append(attests[a.Target], a.Kind+":"+a.Path)
		}
	}
	if len(attests) != 2*len(attested) {
		t.Fatalf("%d attestation targets, want two per package, node package and addon (%d): %v", len(attests), 2*len(attested), attests)
	}
	for _, a := range b.Artifacts {
		switch a.Kind {
		case "package", "node-package", "addon-archive":
		default:
			continue
		}
		sbomPath, provPath := a.Path+".cdx.json", a.Path+".intoto.json"
		if subjects[sbomPath] != "sbom" || subjects[provPath] != "provenance" {
			t.Errorf("%s: SBOM or provenance missing from artifacts.json (%q, %q)", a.Path, subjects[sbomPath], subjects[provPath])
			continue
		}
		subject := readFile(t, filepath.Join(dist, a.Path))
		if sha(subject) != a.SHA256 {
			t.Fatalf("%s: artifacts.json sha256 is wrong", a.Path)
		}
		t.Run(a.Path, func(t *testing.T) {
			raw := readFile(t, filepath.Join(dist, sbomPath))
			doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
			if err != nil {
				t.Fatal(err)
			}
			if err := schema.Validate(doc); err != nil {
				t.Fatalf("%s is not valid CycloneDX 1.6: %v", sbomPath, err)
			}
			var bom cdxBOM
			if err := json.Unmarshal(raw, &bom); err != nil {
				t.Fatal(err)
			}
			if bom.SpecVersion != "1.6" || bom.Metadata.Timestamp != "2025-06-01T00:00:00Z" || !strings.HasPrefix(bom.SerialNumber, "urn:uuid:") {
				t.Errorf("header: spec %s, timestamp %s, serial %s", bom.SpecVersion, bom.Metadata.Timestamp, bom.SerialNumber)
			}
			if bom.Metadata.Component.sha256() != a.SHA256 || bom.Metadata.Component.Name != path.Base(a.Path) {
				t.Errorf("metadata.component %s %s, want %s %s", bom.Metadata.Component.Name, bom.Metadata.Component.sha256(), path.Base(a.Path), a.SHA256)
			}
			var entries map[string][]byte
			if a.Kind == "addon-archive" {
				entries = tarEntries(t, filepath.Join(dist, a.Path))
			} else {
				entries = zipFiles(t, filepath.Join(dist, a.Path))
			}
			// Exactly the artifact's files, each with its hash and size.
			listed := map[string]bool{}
			var debs, images []cdxComponent
			for _, c := range bom.Components {
				switch c.Type {
				case "file":
					data, ok := entries[c.Name]
					if !ok {
						t.Errorf("SBOM lists %s, which %s does not hold", c.Name, a.Path)
					} else if c.sha256() != sha(data) || c.prop("release:size") != strconv.Itoa(len(data)) {
						t.Errorf("%s: SBOM says sha256 %s size %s, the entry is %s size %d", c.Name, c.sha256(), c.prop("release:size"), sha(data), len(data))
					}
					if listed[c.Name] {
						t.Errorf("%s listed twice", c.Name)
					}
					listed[c.Name] = true
				case "application":
					debs = append(debs, c)
				case "container":
					images = append(images, c)
				}
			}
			for name := range entries {
				if !listed[name] {
					t.Errorf("%s holds %s, which the SBOM does not list", a.Path, name)
				}
			}
			// Every .deb with its package name and version as dpkg reads
			// them; every image with the manifest digest skopeo reads: a
			// node package's entries, or what an addon's layers hold.
			contents := entries
			if a.Kind == "addon-archive" {
				contents = addonLayerFiles(t, entries)
			}
			var wantDebs, wantImages []string
			for name, data := range contents {
				switch {
				case strings.HasSuffix(name, ".deb"):
					wantDebs = append(wantDebs, name)
					p := filepath.Join(t.TempDir(), "x.deb")
					os.WriteFile(p, data, 0o644)
					out, err := exec.Command(dpkgDeb, "--field", p, "Package", "Version", "Architecture").Output()
					if err != nil {
						t.Fatalf("dpkg-deb %s: %v", name, err)
					}
					fields := map[string]string{}
					for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
						k, v, _ := strings.Cut(l, ": ")
						fields[k] = v
					}
					found := false
					for _, c := range debs {
						if c.prop("release:file") == name {
							found = true
							want := "pkg:deb/" + fields["Package"] + "@" + fields["Version"] + "?arch=" + fields["Architecture"]
							if c.Name != fields["Package"] || c.Version != fields["Version"] || c.PURL != want || c.sha256() != sha(data) {
								t.Errorf("deb %s: SBOM %s %s %s %s, dpkg says %v (sha256 %s)", name, c.Name, c.Version, c.PURL, c.sha256(), fields, sha(data))
							}
						}
					}
					if !found {
						t.Errorf("deb %s has no component", name)
					}
				case (strings.HasPrefix(name, "images/") || strings.Contains(name, "/images-")) && strings.HasSuffix(name, ".tar"):
					wantImages = append(wantImages, name)
					p := filepath.Join(t.TempDir(), "x.tar")
					os.WriteFile(p, data, 0o644)
					out, err := exec.Command(skopeo, "inspect", "--raw", "oci-archive:"+p).Output()
					if err != nil {
						t.Fatalf("skopeo inspect %s: %v", name, err)
					}
					digest := "sha256:" + sha(out)
					found := false
					for _, c := range images {
						if c.prop("release:file") == name {
							found = true
							if c.prop("release:digest") != digest || c.sha256() != sha(out) || !strings.HasSuffix(c.PURL, "@"+digest) || c.Version == "" {
								t.Errorf("image %s: SBOM digest %s version %q purl %s, skopeo reads %s", name, c.prop("release:digest"), c.Version, c.PURL, digest)
							}
						}
					}
					if !found {
						t.Errorf("image %s has no component", name)
					}
				}
			}
			if len(debs) != len(wantDebs) || len(images) != len(wantImages) {
				t.Errorf("%d deb and %d image components for %d debs and %d images", len(debs), len(images), len(wantDebs), len(wantImages))
			}
			if (a.Kind == "node-package" || a.Path == "addons/metrics-0.7.2.oci.tar") && (len(wantDebs) == 0 || len(wantImages) == 0) {
				t.Errorf("%s: no debs or images found to check: %v", a.Path, contents)
			}
			checkProvenance(t, dir, filepath.Join(dist, provPath), a.Target, a.SHA256)
		})
	}

	// Same inputs elsewhere, with a cold cache: the same bytes.
	dir2 := copySample(t)
	b2 := runBuild(t, dir2, filepath.Join(t.TempDir(), "cache"))
	if artifactsJSON(t, b) != artifactsJSON(t, b2) {
		t.Errorf("a second build in another directory differs:\n%s\n%s", artifactsJSON(t, b), artifactsJSON(t, b2))
	}
}

// addonLayerFiles unpacks the images and packages layers of every addon
// in an exported layout's files: the image archives and .debs inside, named
// <export>/<layer title>/<path>.
func addonLayerFiles(t *testing.T, blobs map[string][]byte) map[string][]byte {
	t.Helper()
	var idx struct {
		Manifests []struct {
			Digest      string
			Annotations map[string]string
		}
	}
	if err := json.Unmarshal(blobs["index.json"], &idx); err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, m := range idx.Manifests {
		var man struct {
			Layers []struct {
				MediaType, Digest string
				Annotations       map[string]string
			}
		}
		if err := json.Unmarshal(blobs["blobs/"+strings.Replace(m.Digest, ":", "/", 1)], &man); err != nil {
			t.Fatal(err)
		}
		for _, l := range man.Layers {
			title := l.Annotations["org.opencontainers.image.title"]
			data := blobs["blobs/"+strings.Replace(l.Digest, ":", "/", 1)]
			var r io.Reader = bytes.NewReader(data)
			switch title {
			case "packages.tar.gz":
				zr, err := gzip.NewReader(r)
				if err != nil {
					t.Fatal(err)
				}
				r = zr
			case "images-linux.tar", "images-windows.tar":
			default:
				continue
			}
			for name, b := range readTar(t, r) {
				out[m.Annotations["vnd.k2s.addon.export-name"]+"/"+title+"/"+name] = b
			}
		}
	}
	return out
}

// checkProvenance decodes a statement with the in-toto attestation types
// (protojson refuses unknown fields) and validates it, then checks its
// subject and that it names every configuration file with its digest.
func checkProvenance(t *testing.T, sampleDir, p, target, sum string) {
	t.Helper()
	raw := readFile(t, p)
	var st intoto.Statement
	if err := protojson.Unmarshal(raw, &st); err != nil {
		t.Fatalf("%s: not an in-toto Statement: %v", p, err)
	}
	if err := st.Validate(); err != nil {
		t.Fatalf("%s: invalid statement: %v", p, err)
	}
	if st.Type != intoto.StatementTypeUri || st.PredicateType != "https://slsa.dev/provenance/v1" {
		t.Errorf("types %s %s", st.Type, st.PredicateType)
	}
	if len(st.Subject) != 1 || st.Subject[0].Digest["sha256"] != sum {
		t.Errorf("subject %v, want sha256 %s", st.Subject, sum)
	}
	pj, err := protojson.Marshal(st.Predicate)
	if err != nil {
		t.Fatal(err)
	}
	var prov slsa.Provenance
	if err := protojson.Unmarshal(pj, &prov); err != nil {
		t.Fatalf("%s: predicate is not SLSA provenance v1: %v", p, err)
	}
	if err := prov.Validate(); err != nil {
		t.Fatalf("%s: invalid provenance: %v", p, err)
	}
	if prov.RunDetails.Builder.Id != "https://github.com/relcue/release" {
		t.Errorf("builder %s", prov.RunDetails.Builder.Id)
	}
	if got := prov.BuildDefinition.ExternalParameters.AsMap()["target"]; got != target {
		t.Errorf("externalParameters.target %v, want %s", got, target)
	}
	deps := map[string]map[string]string{}
	for _, d := range prov.BuildDefinition.ResolvedDependencies {
		deps[d.Uri] = d.Digest
	}
	cues, _ := filepath.Glob(filepath.Join(sampleDir, "*.cue"))
	sort.Strings(cues)
	for _, c := range cues {
		uri := "file:" + filepath.Base(c)
		if deps[uri]["sha256"] != sha(readFile(t, c)) {
			t.Errorf("%s: config %s digest %v, want sha256 %s", p, uri, deps[uri], sha(readFile(t, c)))
		}
	}
	if len(deps) <= len(cues) {
		t.Errorf("%s names only the configuration, not the artifact's inputs: %v", p, deps)
	}
	for uri, d := range deps {
		if strings.HasPrefix(uri, "file:/") || len(d) != 1 {
			t.Errorf("%s: dependency %s %v: want a path relative to the configuration and one digest", p, uri, d)
		}
	}
}

// TestVerifyChecksSBOM: verify checks a package against the SBOM beside it
// and refuses every way the two can disagree.
func TestVerifyChecksSBOM(t *testing.T) {
	dir := copySample(t)
	runBuild(t, dir, filepath.Join(t.TempDir(), "cache"))
	pkgs := filepath.Join(dir, "dist", "packages")
	zipPath := filepath.Join(pkgs, "k2s-1.5.0.zip")
	sbomPath := zipPath + ".cdx.json"
	good := readFile(t, sbomPath)

	var reps []struct {
		SBOM *struct {
			Path  string
			Files int
		} `json:"sbom"`
	}
	r := mustRun(t, "verify", zipPath, filepath.Join(dir, "dist", "nodes", "k2s-node-debian12-1.5.0.zip"), "--format", "json")
	if err := json.Unmarshal([]byte(r.stdout), &reps); err != nil || len(reps) != 2 || reps[0].SBOM == nil || reps[0].SBOM.Files != 36 || reps[1].SBOM == nil {
		t.Fatalf("verify json: %v\n%s", err, r.stdout)
	}
	if text := mustRun(t, "verify", zipPath).stdout; !strings.Contains(text, "SBOM matches (36 files)") {
		t.Fatalf("verify text: %s", text)
	}

	editComponents := func(edit func([]any) []any) []byte {
		var doc map[string]any
		if err := json.Unmarshal(good, &doc); err != nil {
			t.Fatal(err)
		}
		doc["components"] = edit(doc["components"].([]any))
		out, _ := json.Marshal(doc)
		return out
	}
	fileNamed := func(cs []any, name string) map[string]any {
		for _, c := range cs {
			if m := c.(map[string]any); m["type"] == "file" && m["name"] == name {
				return m
			}
		}
		t.Fatalf("no component %s", name)
		return nil
	}
	cases := []struct {
		name, want string
		sbom       []byte
		zip        func(dst string)
	}{
		{"another package's SBOM", "describes k2s-1.4.0.zip", readFile(t, filepath.Join(pkgs, "k2s-1.4.0.zip.cdx.json")), nil},
		{"a file's hash changed", "entry LICENSE has sha256", editComponents(func(cs []any) []any {
			fileNamed(cs, "LICENSE")["hashes"] = []any{map[string]any{"alg": "SHA-256", "content": strings.Repeat("0", 64)}}
			return cs
		}), nil},
		{"a file left out", "entry LICENSE is not in the SBOM", editComponents(func(cs []any) []any {
			var out []any
			for _, c := range cs {
				if c.(map[string]any)["name"] != "LICENSE" {
					out = append(out, c)
				}
			}
			return out
		}), nil},
		{"a file added", "lists bin/extra.exe, which the package does not hold", editComponents(func(cs []any) []any {
			return append(cs, map[string]any{"type": "file", "name": "bin/extra.exe", "hashes": []any{map[string]any{"alg": "SHA-256", "content": strings.Repeat("1", 64)}},
				"properties": []any{map[string]any{"name": "release:size", "value": "1"}}})
		}), nil},
		{"a file listed twice", "LICENSE is listed twice", editComponents(func(cs []any) []any {
			return append(cs, fileNamed(cs, "LICENSE"))
		}), nil},
		{"not JSON", "not CycloneDX JSON", []byte("{"), nil},
		// The same entries written again: every manifest still matches,
		// only the SBOM's hash of the whole file tells.
		{"the package rewritten", "the package or its SBOM was changed after the build", good, func(dst string) {
			rewriteZip(t, zipPath, dst, func(_ string, b []byte) []byte { return b })
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "k2s-1.5.0.zip")
			if c.zip != nil {
				c.zip(p)
			} else if err := os.WriteFile(p, readFile(t, zipPath), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p+".cdx.json", c.sbom, 0o644); err != nil {
				t.Fatal(err)
			}
			r := releaseCmd(t, nil, "verify", p)
			if r.code != 1 || !strings.Contains(r.stderr, c.want) {
				t.Fatalf("exit %d, want 1 with %q:\n%s%s", r.code, c.want, r.stdout, r.stderr)
			}
			// Without the SBOM the package itself is sound.
			os.Remove(p + ".cdx.json")
			mustRun(t, "verify", p)
		})
	}
}
