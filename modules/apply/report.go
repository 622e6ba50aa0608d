package apply

import (
	"fmt"
	"github.com/relcue/release/internal/units"
	"strings"
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
			fmt.Fprintf(&b, "%s%s: %s -> %s: %s %d files (%s), %s %d (delta: %d added, %d changed, %d removed)",
				verb, r.InstallDir, r.BaseVersion, r.TargetVersion, wrote, r.FilesWritten, units.Bytes(r.BytesWritten), removed, r.FilesRemoved,
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
	return b.String()
}
