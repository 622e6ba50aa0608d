package debiandelta

import (
	"bytes"
	"embed"
	"fmt"
	"regexp"
	"text/template"
)

//go:embed scripts/*.tmpl
var scriptFS embed.FS

var scripts = template.Must(template.New("").ParseFS(scriptFS, "scripts/*.tmpl"))

// sum is one line of a sha256sum list.
type sum struct{ SHA256, File string }

// scriptData is what the two scripts carry in their text.
type scriptData struct {
	BaseVersion, TargetVersion string
	BaseSet, TargetSet, Purge  []string
	Debs, Images               []sum
	K8s                        string
}

// releaseVersionRE is the alphabet of a semver release version, which the
// scripts quote.
var releaseVersionRE = regexp.MustCompile(`^[0-9A-Za-z.+-]+$`)

// render writes the script named by tmpl (apply or verify).
func render(tmpl string, d scriptData) ([]byte, error) {
	for _, v := range []string{d.BaseVersion, d.TargetVersion} {
		if !releaseVersionRE.MatchString(v) {
			return nil, fmt.Errorf("debian delta: release version %q cannot be written into a script", v)
		}
	}
	var buf bytes.Buffer
	if err := scripts.ExecuteTemplate(&buf, tmpl+"-debian-delta.sh.tmpl", d); err != nil {
		return nil, fmt.Errorf("debian delta: %s script: %w", tmpl, err)
	}
	return buf.Bytes(), nil
}
