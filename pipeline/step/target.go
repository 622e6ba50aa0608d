package step

// Target is a node of the build graph as a module describes it.
type Target struct {
	ID      string   // stable, e.g. "package/1.5.0"
	Kind    string   // step kind that builds it
	Spec    any      // marshalled to canonical JSON by the planner
	Sources []Source // external inputs, digested by the planner
	Deps    []string // target IDs whose results this step reads
	Pos     string   // config position ("file:line:col") for messages
	// Outputs are the artifact paths (relative to dist/) the target will
	// write, when known at plan time; two targets claiming one path are a
	// planning error.
	Outputs []string
	// Effect marks a target that changes something outside the cache and
	// dist/, such as a registry push. It is never served from the cache,
	// runs on every build that asks for effects, and never as a side
	// effect of a plain build.
	Effect bool
	// InProcess keeps the step in the release process under every engine:
	// it uses the process's credentials (signing keys), which are never
	// shipped to a step container or a shared engine.
	InProcess bool
}

// Source is an external input of a target.
type Source struct {
	Name   string // key in step.Input.Sources
	Path   string // absolute local file or directory
	URL    string // fetched by the pipeline when set (SHA256 required)
	SHA256 string // declared digest; for local paths computed when empty
	Dir    bool   // Path is a directory tree
	Pos    string // config position for messages
}

// Label is how messages name the source: its config position, name and
// origin, e.g. `release.cue:4:20: input zip (https://host/k2s.zip)`. The
// path a step reads (for a URL, a blob in the cache) means nothing to
// whoever wrote the configuration.
func (s Source) Label() string {
	origin := s.URL
	if origin == "" {
		origin = s.Path
	}
	l := "input " + s.Name + " (" + origin + ")"
	if s.Pos != "" {
		l = s.Pos + ": " + l
	}
	return l
}
