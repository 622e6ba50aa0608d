package apply

import (
	"fmt"
	"path/filepath"
	"runtime"

	"github.com/relcue/release/modules/delta"
	"github.com/relcue/release/modules/pkgzip"
)

// Longest installed path, as the system counts it, the apply code can
// open: Linux's PATH_MAX less its NUL, in bytes; on Windows, which the os
// package reaches with \\?\ long paths, 32,767 UTF-16 units less the
// prefix it adds (\\?\UNC\ for a share, the longest).
const (
	maxUnixPath    = 4095
	maxWindowsPath = 32767 - len(`\\?\UNC\`)
)

// checkPaths refuses, before anything is touched, a delta whose target
// holds a path this installation cannot: one the policy refuses, or one
// that would be too long below dir.
func checkPaths(dir string, m *delta.Manifest, paths pkgzip.PathPolicy) error {
	for _, p := range sortedKeys(m.Files.Target) {
		if err := paths.Check(p); err != nil {
			err = pkgzip.Hint(err, "pass --paths posix if this installation is not on Windows")
			return fmt.Errorf("%s: %w; nothing was changed", delta.ManifestName, err)
		}
		if err := checkPathLength(dir, p, runtime.GOOS); err != nil {
			return err
		}
	}
	return nil
}

func checkPathLength(dir, p, goos string) error {
	full := filepath.Join(dir, filepath.FromSlash(p))
	n, limit, unit := len(full), maxUnixPath, "bytes"
	if goos == "windows" {
		n, limit, unit = pkgzip.WindowsPathUnits(full), maxWindowsPath, "UTF-16 units"
	}
	if n > limit {
		return fmt.Errorf("package path %q would be installed as a path of %d %s, over the %d this system can open; install into a shorter directory than %s; nothing was changed", p, n, unit, limit, dir)
	}
	return nil
}
