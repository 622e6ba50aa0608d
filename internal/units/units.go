// Package units formats quantities for people and reads them back.
package units

import (
	"fmt"
	"strconv"
	"strings"
)

// Bytes formats a byte count with binary prefixes: "512 B", "1.5 MiB".
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// ParseBytes reads a byte count as the command line takes it: a number,
// optionally followed by B, KB, MB, GB, TB (powers of ten) or KiB, MiB,
// GiB, TiB (powers of two): "20GiB", "1.5MB", "512".
func ParseBytes(s string) (int64, error) {
	v := strings.TrimSpace(s)
	num := strings.TrimRight(v, "KMGTiBb")
	mult, ok := map[string]float64{"": 1, "B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
		"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}[v[len(num):]]
	n, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || !ok || n < 0 {
		return 0, fmt.Errorf("%q is not a size like 20GiB", s)
	}
	return int64(n * mult), nil
}
