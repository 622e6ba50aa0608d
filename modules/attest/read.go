package attest

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"

	cdx "github.com/CycloneDX/cyclonedx-go"

	"github.com/relcue/release/internal/strictjson"
	"github.com/relcue/release/modules/pkgzip"
)

// maxSBOM bounds an SBOM read into memory: a million files' components
// are about 300 MiB, far past any package release ships.
const maxSBOM = 512 << 20

// SBOM is what a written SBOM says about its artifact.
type SBOM struct {
	// Artifact is the described artifact's name and SHA-256.
	Artifact       string
	ArtifactSHA256 string
	// Files are the artifact's files by path.
	Files map[string]pkgzip.Digest
}

// ReadSBOM decodes an SBOM release wrote, refusing one whose file
// components are ambiguous (a path twice, no or several SHA-256 hashes, no
// size): a check against it must not pass by accident.
func ReadSBOM(r io.Reader) (*SBOM, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxSBOM+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxSBOM {
		return nil, fmt.Errorf("larger than %d MiB", maxSBOM>>20)
	}
	var bom cdx.BOM
	if err := json.Unmarshal(strictjson.StripBOM(data), &bom); err != nil {
		return nil, fmt.Errorf("not CycloneDX JSON: %w", err)
	}
	if bom.BOMFormat != cdx.BOMFormat {
		return nil, fmt.Errorf("bomFormat is %q, not %q", bom.BOMFormat, cdx.BOMFormat)
	}
	if bom.Metadata == nil || bom.Metadata.Component == nil {
		return nil, fmt.Errorf("no metadata.component: it does not say what it describes")
	}
	s := &SBOM{Artifact: bom.Metadata.Component.Name, Files: map[string]pkgzip.Digest{}}
	if s.ArtifactSHA256, err = oneSHA256(bom.Metadata.Component); err != nil {
		return nil, fmt.Errorf("metadata.component: %w", err)
	}
	if bom.Components == nil {
		return s, nil
	}
	for _, c := range *bom.Components {
		if c.Type != cdx.ComponentTypeFile {
			continue
		}
		sum, err := oneSHA256(&c)
		if err != nil {
			return nil, fmt.Errorf("file %s: %w", c.Name, err)
		}
		size := int64(-1)
		if c.Properties != nil {
			for _, p := range *c.Properties {
				if p.Name == "release:size" {
					if size, err = strconv.ParseInt(p.Value, 10, 64); err != nil || size < 0 {
						return nil, fmt.Errorf("file %s: release:size %q is not a size", c.Name, p.Value)
					}
				}
			}
		}
		if size < 0 {
			return nil, fmt.Errorf("file %s: no release:size property", c.Name)
		}
		if _, dup := s.Files[c.Name]; dup {
			return nil, fmt.Errorf("file %s is listed twice", c.Name)
		}
		s.Files[c.Name] = pkgzip.Digest{SHA256: sum, Size: size}
	}
	return s, nil
}

func oneSHA256(c *cdx.Component) (string, error) {
	var sums []string
	if c.Hashes != nil {
		for _, h := range *c.Hashes {
			if h.Algorithm == cdx.HashAlgoSHA256 {
				sums = append(sums, h.Value)
			}
		}
	}
	if len(sums) != 1 {
		return "", fmt.Errorf("has %d SHA-256 hashes, want one", len(sums))
	}
	return sums[0], nil
}
