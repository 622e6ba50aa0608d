package fullpkg

import (
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/relcue/release/pipeline/step"
)

var _ step.PlanChecker = Step{}

// CheckPlan checks the installation tree the layers would make, from the
// files the planner listed, with the checks Run makes (checkTree): two
// inputs writing one path, names the package cannot hold. Its messages
// name the inputs as the configuration does, inputs[i] with their
// positions, which Run does not know.
func (Step) CheckPlan(raw json.RawMessage, sources map[string]step.Listing) error {
	spec, err := parseSpec(raw)
	if err != nil {
		return err
	}
	layers := make([][]treeFile, len(spec.Layers))
	for i, l := range spec.Layers {
		src, ok := sources[l.Source]
		if !ok {
			return fmt.Errorf("the spec uses source %q but the target has none (planner bug)", l.Source)
		}
		// Layers are the release's inputs in order (targets).
		who := fmt.Sprintf("inputs[%d]", i)
		if src.Source.Pos != "" {
			who += " at " + src.Source.Pos
		}
		if src.Files == nil {
			layers[i] = []treeFile{{name: layerPath(l, ""), src: src.Source.Path, owner: who + ": " + src.Source.Path}}
			continue
		}
		for _, rel := range src.Files {
			p := filepath.Join(src.Source.Path, filepath.FromSlash(rel))
			layers[i] = append(layers[i], treeFile{name: layerPath(l, rel), src: p, owner: who + ": " + p})
		}
	}
	_, err = checkTree(spec, layers)
	return err
}
