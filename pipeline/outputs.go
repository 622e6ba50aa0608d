package pipeline

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/relcue/release/pipeline/step"
)

// checkOutputsOutsideInputs refuses an output directory (dist/ or the
// cache) inside a directory input: every build would package what the
// previous one wrote, so no two builds would give the same bytes.
func checkOutputsOutsideInputs(sources []step.Source, outputs map[string]string) error {
	seen := map[string]bool{}
	for _, s := range sources {
		if !s.Dir || s.Path == "" || seen[s.Path] {
			continue
		}
		seen[s.Path] = true
		for what, out := range outputs {
			if out == "" || !within(out, s.Path) {
				continue
			}
			pos := s.Pos
			err := fmt.Errorf("input %s contains %s %s, so every build would package the previous build's output: move %s outside it, or name a narrower input", s.Path, what, out, what)
			if pos != "" {
				err = fmt.Errorf("%s: %w", pos, err)
			}
			return err
		}
	}
	return nil
}

// targetSources lists the sources of targets, each with a position.
func targetSources(targets []step.Target) []step.Source {
	var out []step.Source
	for _, t := range targets {
		for _, s := range t.Sources {
			if s.Pos == "" {
				s.Pos = t.Pos
			}
			out = append(out, s)
		}
	}
	return out
}

// graphSources lists the sources of every planned node.
func (s *Session) graphSources() []step.Source {
	var out []step.Source
	for _, n := range s.Graph.Nodes {
		for _, src := range n.Sources {
			out = append(out, src.Source)
		}
	}
	return out
}

// within reports whether path is dir or below it.
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}
