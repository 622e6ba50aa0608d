package config

import (
	"strconv"
	"time"
)

// Limits bound the work of loading one configuration. CUE evaluates some
// inputs in time that grows with the square of their size (a list of 100,000
// numbers takes about a minute), and a deep enough chain of labels crashes
// the Go runtime inside CUE; a configuration that would do either is refused
// with a message instead. The zero value of a field means its default.
type Limits struct {
	// Timeout bounds loading and evaluating the configuration
	// (DefaultTimeout).
	Timeout time.Duration
	// MaxBytes bounds the summed size of the .cue files CUE reads
	// (DefaultMaxBytes).
	MaxBytes int64
	// MaxDepth bounds the nesting of braces, brackets, parentheses and
	// chained labels (a: b: c: 1 is three deep) in any one file
	// (DefaultMaxDepth).
	MaxDepth int
	// MaxDeltaPaths bounds the delta paths listed and produced by the
	// policies together (DefaultMaxDeltaPaths).
	MaxDeltaPaths int
}

// Defaults of Limits. Real configurations are far below each: a product
// with years of releases is a few hundred kilobytes, nests less than twenty
// deep and ships a few hundred deltas.
const (
	DefaultTimeout       = 60 * time.Second
	DefaultMaxBytes      = 16 << 20
	DefaultMaxDepth      = 1000
	DefaultMaxDeltaPaths = 10000
)

func (l Limits) withDefaults() Limits {
	if l.Timeout <= 0 {
		l.Timeout = DefaultTimeout
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	if l.MaxDeltaPaths <= 0 {
		l.MaxDeltaPaths = DefaultMaxDeltaPaths
	}
	return l
}

// sizeString prints a byte count the way the command line takes it.
func sizeString(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + "MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + "KiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}
