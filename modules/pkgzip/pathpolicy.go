package pkgzip

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"
)

// PathPolicy says which package paths a package may hold, beyond what
// CheckName requires of every path. K2s installs on a Windows host, so the
// default refuses what a Windows filesystem cannot represent; a product
// that is never installed on Windows may opt out.
type PathPolicy string

const (
	// PathsWindows (the default, also for "") refuses paths a Windows
	// installation cannot hold: reserved device names, a trailing dot or
	// space, the characters <>:"|?* and control characters.
	PathsWindows PathPolicy = "windows"
	// PathsPOSIX allows them, for products never installed on Windows.
	PathsPOSIX PathPolicy = "posix"
)

// Limits every package path is held to, whatever the policy. ext4, NTFS
// and the other filesystems an installation lives on take at most 255
// bytes per name (NTFS counts UTF-16 units, never more than UTF-8 bytes).
// Linux refuses a path of 4096 bytes or more (PATH_MAX) and Windows, with
// the \\?\ long paths the apply code uses, one past 32,767 UTF-16 units;
// MaxPathBytes leaves 255 bytes of Linux's limit to the installation
// directory. Apply checks the whole path again against the limit of the
// system it runs on, once it knows the directory.
const (
	MaxSegmentBytes = 255
	MaxPathBytes    = 4095 - 1 - MaxSegmentBytes
)

// ParsePathPolicy reads a policy as the configuration or a flag spells it.
func ParsePathPolicy(s string) (PathPolicy, error) {
	switch PathPolicy(s) {
	case "", PathsWindows:
		return PathsWindows, nil
	case PathsPOSIX:
		return PathsPOSIX, nil
	}
	return "", fmt.Errorf("path policy %q: want %q (refuse names Windows cannot hold) or %q (allow them, for products never installed on Windows)", s, PathsWindows, PathsPOSIX)
}

// NameError is a package path a policy refuses.
type NameError struct {
	Path   string
	Reason string
	// Windows is set when only PathsWindows refuses the path, so that
	// callers can say how to opt out where that is possible.
	Windows bool
}

func (e *NameError) Error() string {
	return fmt.Sprintf("package path %q %s", e.Path, e.Reason)
}

// Check returns a *NameError if the policy refuses name, a path that
// passed CheckName.
func (p PathPolicy) Check(name string) error {
	if len(name) > MaxPathBytes {
		return &NameError{Path: name, Reason: fmt.Sprintf("is %d bytes long, over the %d a package path may have (the installation directory needs the rest of the 4095 Linux allows); shorten its directories or its name", len(name), MaxPathBytes)}
	}
	for _, seg := range strings.Split(name, "/") {
		if len(seg) > MaxSegmentBytes {
			return &NameError{Path: name, Reason: fmt.Sprintf("has a name of %d bytes (%.20q…), over the %d a filesystem allows; shorten it", len(seg), seg, MaxSegmentBytes)}
		}
	}
	if p == PathsPOSIX {
		return nil
	}
	for _, seg := range strings.Split(name, "/") {
		if why := windowsProblem(seg); why != "" {
			return &NameError{Path: name, Reason: why + "; a Windows installation cannot hold it: rename it", Windows: true}
		}
	}
	return nil
}

// WindowsPathUnits is the length of path in UTF-16 code units, as Windows
// counts it.
func WindowsPathUnits(path string) int {
	n := 0
	for _, r := range path {
		n += utf16.RuneLen(r)
	}
	return n
}

// windowsProblem says why Windows cannot hold a file or directory named
// seg, or returns "".
func windowsProblem(seg string) string {
	if seg == "" {
		return "" // CheckName's to refuse
	}
	for _, r := range seg {
		switch {
		case r < 0x20:
			return fmt.Sprintf("has %q, a control character, in %q", r, seg)
		case strings.ContainsRune(`<>:"|?*`, r):
			return fmt.Sprintf("has %q in %q; Windows reserves the characters <>:\"|?*", r, seg)
		}
	}
	if last := seg[len(seg)-1]; last == '.' || last == ' ' {
		// Windows strips them when it creates the file, so the name on
		// disk would not be the name in the manifest.
		return fmt.Sprintf("has %q, which ends with a %s that Windows strips", seg, map[byte]string{'.': "dot", ' ': "space"}[last])
	}
	if dev := reservedDevice(seg); dev != "" {
		return fmt.Sprintf("has %q, which Windows opens as the device %s (reserved in any case, with or without an extension: CON, PRN, AUX, NUL, COM0-9, LPT0-9, CONIN$, CONOUT$)", seg, dev)
	}
	return ""
}

// reservedDevice returns the device a name denotes on Windows, or "". The
// part before the first dot counts, with trailing spaces dropped ("nul .txt"
// is NUL too); COM and LPT take the digits 0-9 and the superscripts ¹²³,
// as Microsoft's naming rules list them.
func reservedDevice(seg string) string {
	base, _, _ := strings.Cut(seg, ".")
	base = strings.ToUpper(strings.TrimRight(base, " "))
	switch base {
	case "CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$":
		return base
	}
	if len(base) > 3 && (base[:3] == "COM" || base[:3] == "LPT") {
		switch base[3:] {
		case "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "¹", "²", "³":
			return base
		}
	}
	return ""
}

// ConfigHint is how a configuration opts out of the Windows rules.
const ConfigHint = `set build: paths: "posix" if the product is never installed on Windows`

// Hint adds how to opt out (e.g. ConfigHint) to an error only PathsWindows
// makes; any other error is returned as it is.
func Hint(err error, how string) error {
	var ne *NameError
	if errors.As(err, &ne) && ne.Windows {
		return fmt.Errorf("%w, or %s", err, how)
	}
	return err
}
