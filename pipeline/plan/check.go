package plan

import (
	"fmt"

	"github.com/relcue/release/pipeline/step"
)

// Lister is a Digester that also tells the files of the directory sources
// it digested (nil when it does not know them).
type Lister interface {
	Files(s step.Source) []string
}

// checkPlans lets every step that can (step.PlanChecker) refuse its
// targets from the listings of their sources, once all are digested, so
// that vet and plan report what build would. A target with a directory
// source whose files the digester does not know is left to the build.
func checkPlans(targets []step.Target, g *Graph, steps map[string]step.Step, dg Digester) error {
	lister, ok := dg.(Lister)
	if !ok {
		return nil
	}
	for _, t := range targets {
		pc, ok := steps[t.Kind].(step.PlanChecker)
		if !ok {
			continue
		}
		listings := make(map[string]step.Listing, len(t.Sources))
		known := true
		for _, s := range t.Sources {
			l := step.Listing{Source: s}
			if s.Dir {
				if l.Files = lister.Files(s); l.Files == nil {
					known = false
					break
				}
			}
			listings[s.Name] = l
		}
		if !known {
			continue
		}
		if err := pc.CheckPlan(g.Nodes[t.ID].Spec, listings); err != nil {
			return posErr(t.Pos, fmt.Errorf("target %s: %w", t.ID, err))
		}
	}
	return nil
}
