package apply

import (
	"fmt"
	"strings"

	"github.com/relcue/release/internal/units"
)

// String is the one-line human summary the CLI prints.
func (r *Report) String() string {
	var b strings.Builder
	if r.Recovery != nil {
		fmt.Fprintf(&b, "recovered an interrupted apply (%s", r.Recovery.Action)
		if r.Recovery.Delta != "" {
			fmt.Fprintf(&b, " %s, %s -> %s", r.Recovery.Delta, r.Recovery.BaseVersion, r.Recovery.TargetVersion)
		}
		b.WriteString("); ")
	}
	switch r.Operation {
	case "verify":
		fmt.Fprintf(&b, "%s: %s", r.Path, r.Kind)
		if r.Kind == "delta" || r.Kind == "node-delta" {
			fmt.Fprintf(&b, " %s -> %s", r.BaseVersion, r.TargetVersion)
		} else {
			fmt.Fprintf(&b, " %s", r.TargetVersion)
		}
		fmt.Fprintf(&b, " OK: %d files, %s verified", r.FilesVerified, units.Bytes(r.BytesVerified))
		if s := r.Signatures; s != nil && s.Signed+s.Unsigned > 0 {
			fmt.Fprintf(&b, "; Authenticode: %d signed, %d unsigned", s.Signed, s.Unsigned)
		}
		if r.SBOM != nil {
			fmt.Fprintf(&b, "; SBOM matches (%d files)", r.SBOM.Files)
		}
	case "install":
		fmt.Fprintf(&b, "%s: installed %s: %d files (%s)", r.InstallDir, r.TargetVersion, r.FilesWritten, units.Bytes(r.BytesWritten))
	case "recover":
		if r.Recovery == nil {
			fmt.Fprintf(&b, "%s: nothing to recover", r.InstallDir)
		} else {
			fmt.Fprintf(&b, "%s is consistent again", r.InstallDir)
		}
	default:
		switch {
		case r.AlreadyApplied:
			fmt.Fprintf(&b, "%s: already at %s", r.InstallDir, r.TargetVersion)
		default:
			verb, wrote, removed := "", "wrote", "removed"
			if r.DryRun {
				verb, wrote, removed = "dry run: ", "would write", "would remove"
			}
			// A forced apply names the version it found: the delta's base
			// is not what the installation was.
			from, forced := r.BaseVersion, ""
			if r.Forced && r.InstalledVersion != r.BaseVersion {
				from, forced = r.InstalledVersion, fmt.Sprintf(" (forced; the delta is %s -> %s)", r.BaseVersion, r.TargetVersion)
				if from == "" {
					from = "unversioned"
				}
			}
			fmt.Fprintf(&b, "%s%s: %s -> %s%s: %s %d files (%s), %s %d (delta: %d added, %d changed, %d removed)",
				verb, r.InstallDir, from, r.TargetVersion, forced, wrote, r.FilesWritten, units.Bytes(r.BytesWritten), removed, r.FilesRemoved,
				r.Added, r.Changed, r.Removed)
		}
	}
	switch n := len(r.Warnings); {
	case n > 0 && r.Forced:
		fmt.Fprintf(&b, "; %d warning(s) overridden by --force", n)
	case n > 0:
		// Not a mismatch --force let through: the apply succeeded but
		// could not clean up after itself.
		fmt.Fprintf(&b, "; warning: %s", strings.Join(r.Warnings, "; "))
	}
	switch c := r.Result; {
	case c == nil:
	case c.OK:
		fmt.Fprintf(&b, "; the result matches %s (%d files checked)", c.Version, c.FilesChecked)
	default:
		fmt.Fprintf(&b, "; the result is NOT %s: %d missing, %d extra, %d changed", c.Version, c.Missing, c.Extra, c.Changed)
	}
	return b.String()
}

// String is the human report of an installation check: one summary line,
// then one line per difference.
func (c *InstallCheck) String() string {
	var b strings.Builder
	against := strings.Join(c.Against, ", ")
	if c.Basis == "record" {
		against = "its record: " + against
	}
	if c.OK {
		fmt.Fprintf(&b, "%s: matches %s (%s): %d files (%s) checked", c.InstallDir, c.Version, against, c.FilesChecked, units.Bytes(c.BytesChecked))
	} else {
		fmt.Fprintf(&b, "%s: does not match %s (%s): %d missing, %d extra, %d changed; %d files (%s) checked",
			c.InstallDir, c.Version, against, c.Missing, c.Extra, c.Changed, c.FilesChecked, units.Bytes(c.BytesChecked))
	}
	if c.Ignored > 0 {
		fmt.Fprintf(&b, ", %d left to the product by its skip rules", c.Ignored)
	}
	if c.Unlisted > 0 {
		fmt.Fprintf(&b, ", %d not listed by what it was checked against (members of nested archives)", c.Unlisted)
	}
	for _, d := range c.Differences {
		fmt.Fprintf(&b, "\n  %-8s %s", d.Problem, d.Path)
		var parts []string
		if d.Detail != "" {
			parts = append(parts, d.Detail)
		}
		if d.ActualSHA256 != "" {
			parts = append(parts, fmt.Sprintf("sha256 %s (%d bytes)", d.ActualSHA256, *d.ActualSize))
		}
		if d.ExpectedSHA256 != "" {
			parts = append(parts, fmt.Sprintf("expected sha256 %s (%d bytes)", d.ExpectedSHA256, *d.ExpectedSize))
		}
		if len(parts) > 0 {
			b.WriteString(": " + strings.Join(parts, ", "))
		}
	}
	return b.String()
}
