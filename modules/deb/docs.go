package deb

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// commonLicenses maps SPDX identifiers to the files of
// /usr/share/common-licenses on Debian 12 that a copyright file should
// point to instead of repeating the text (lintian:
// copyright-should-refer-to-common-license-file-for-*). BSD is left out on
// purpose: Debian's file names the Regents of the University of
// California and lintian flags references to it.
var commonLicenses = map[string]string{
	"Apache-2.0":        "Apache-2.0",
	"CC0-1.0":           "CC0-1.0",
	"GPL-1.0-only":      "GPL-1",
	"GPL-1.0-or-later":  "GPL-1",
	"GPL-2.0":           "GPL-2",
	"GPL-2.0-only":      "GPL-2",
	"GPL-2.0-or-later":  "GPL-2",
	"GPL-3.0":           "GPL-3",
	"GPL-3.0-only":      "GPL-3",
	"GPL-3.0-or-later":  "GPL-3",
	"LGPL-2.0-only":     "LGPL-2",
	"LGPL-2.0-or-later": "LGPL-2",
	"LGPL-2.1":          "LGPL-2.1",
	"LGPL-2.1-only":     "LGPL-2.1",
	"LGPL-2.1-or-later": "LGPL-2.1",
	"LGPL-3.0":          "LGPL-3",
	"LGPL-3.0-only":     "LGPL-3",
	"LGPL-3.0-or-later": "LGPL-3",
	"MPL-1.1":           "MPL-1.1",
	"MPL-2.0":           "MPL-2.0",
}

// copyrightText is the generated /usr/share/doc/<name>/copyright.
func copyrightText(s *Spec) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n\n", s.Name, s.Version)
	fmt.Fprintf(&b, "Packaged by %s.\n", s.Maintainer)
	if s.Homepage != "" {
		fmt.Fprintf(&b, "Upstream: %s\n", s.Homepage)
	}
	fmt.Fprintf(&b, "\nLicense: %s\n", s.License)
	if f, ok := commonLicenses[s.License]; ok {
		fmt.Fprintf(&b, "\nOn Debian systems, the complete text of the %s license can be\nfound in \"/usr/share/common-licenses/%s\".\n", s.License, f)
	} else {
		b.WriteString("\nThe license text is distributed with the upstream sources.\n")
	}
	return []byte(b.String())
}

// changelogText is a one-entry Debian changelog (deb-changelog(5)) for the
// package's version, dated with the build date.
func changelogText(s *Spec, date time.Time) []byte {
	return fmt.Appendf(nil, "%s (%s) unstable; urgency=medium\n\n  * Built from its declaration in the release configuration.\n\n -- %s  %s\n",
		s.Name, s.Version, s.Maintainer, date.UTC().Format(time.RFC1123Z))
}

// gzipReproducible compresses with the header carrying no name and no
// time (lintian: package-contains-timestamped-gzip) at the maximum level
// (lintian: changelog-not-compressed-with-max-compression).
func gzipReproducible(data []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(data); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeDocs writes the copyright file and changelog Debian Policy requires
// (12.5, 12.7) into scratch unless the contents provide them, and returns
// their entries.
func writeDocs(s *Spec, date time.Time, have []entry, scratch string) ([]entry, error) {
	provided := func(dst string) bool {
		for _, e := range have {
			if e.dst == dst {
				return true
			}
		}
		return false
	}
	var out []entry
	add := func(dst string, data []byte) error {
		p := filepath.Join(scratch, filepath.Base(dst))
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return fmt.Errorf("generated %s: %w", dst, err)
		}
		out = append(out, entry{dst: dst, src: p, mode: 0o644, size: int64(len(data)), from: -1})
		return nil
	}
	if cp := s.copyrightPath(); !provided(cp) {
		if s.License == "" {
			return nil, fmt.Errorf("license is empty and no contents entry provides %s; set license (e.g. \"Apache-2.0\") or ship a copyright file there", cp)
		}
		if err := add(cp, copyrightText(s)); err != nil {
			return nil, err
		}
	}
	if cl := s.changelogPath(); !provided(cl) {
		gz, err := gzipReproducible(changelogText(s, date))
		if err != nil {
			return nil, fmt.Errorf("compressing the changelog: %w", err)
		}
		if err := add(cl, gz); err != nil {
			return nil, err
		}
	}
	return out, nil
}
