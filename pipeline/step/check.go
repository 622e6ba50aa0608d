package step

import "encoding/json"

// Listing is what the planner learned of one source while digesting it.
type Listing struct {
	Source Source
	// Files are the regular files of a directory source, forward-slash
	// and relative to it, sorted; nil for a single file.
	Files []string
}

// PlanChecker is implemented by steps that can tell at plan time, from
// the spec and the listings of the sources, that Run would refuse the
// target (two inputs writing one path, a name the package cannot hold).
// The planner calls it so that vet and plan report what build would,
// before anything is built. Listings are keyed by source name; a step
// must still check at Run time, since files can change after planning.
type PlanChecker interface {
	CheckPlan(spec json.RawMessage, sources map[string]Listing) error
}
