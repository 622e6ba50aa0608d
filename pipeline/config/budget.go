package config

import (
	"errors"
	"fmt"
	"sync"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/parser"
)

// budget checks every file CUE's loader reads, before it is parsed,
// against the size and depth limits. The loader may call parseFile from
// several goroutines and more than once per file (the package clause
// first), so each file counts once.
type budget struct {
	limits Limits
	ps     *problems

	mu       sync.Mutex
	seen     map[string]bool
	total    int64
	problems []Problem
}

// errOverBudget stops the loader; the problems say why.
var errOverBudget = errors.New("configuration over its limits")

func (b *budget) parseFile(name string, src any, cfg parser.Config) (*ast.File, error) {
	var data []byte
	switch s := src.(type) {
	case []byte:
		data = s
	case string:
		data = []byte(s)
	}
	if data != nil {
		if err := b.check(name, data); err != nil {
			return nil, err
		}
	}
	return parser.ParseFile(name, src, cfg)
}

func (b *budget) check(name string, data []byte) error {
	b.mu.Lock()
	if len(b.problems) > 0 {
		b.mu.Unlock()
		return errOverBudget
	}
	if b.seen[name] {
		b.mu.Unlock()
		return nil
	}
	if b.seen == nil {
		b.seen = map[string]bool{}
	}
	b.seen[name] = true
	b.total += int64(len(data))
	if b.total > b.limits.MaxBytes {
		b.problems = append(b.problems, Problem{Pos: Pos{File: b.ps.file(name)}, Message: tooLarge(b.total, b.limits.MaxBytes)})
		b.mu.Unlock()
		return errOverBudget
	}
	b.mu.Unlock()

	// Outside the lock: scanning a large file takes a while.
	var de *depthError
	if err := checkDepth(name, data, b.limits.MaxDepth); errors.As(err, &de) {
		b.mu.Lock()
		b.problems = append(b.problems, Problem{Pos: Pos{File: b.ps.file(name), Line: de.Line, Col: de.Col}, Message: de.Error()})
		b.mu.Unlock()
		return errOverBudget
	}
	return nil
}

// report adds the problems found, and says whether there were any.
func (b *budget) report() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.problems {
		b.ps.add(p)
	}
	return len(b.problems) > 0
}

func tooLarge(size, limit int64) string {
	return fmt.Sprintf("the configuration's .cue files hold %d bytes, more than the limit of %s (--max-config-bytes, or RELEASE_MAX_CONFIG_BYTES); "+
		"CUE needs time and memory that grow faster than the size, so keep large data out of the configuration, or raise the limit", size, sizeString(limit))
}
