package config

import (
	"fmt"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"

	cueschema "github.com/relcue/release/cue"
)

// DeltaDefaults returns the default wholesale directories and skip rules
// of a delta path, read from the embedded schema so that `release delta`
// without a configuration behaves like a configured delta.
func DeltaDefaults() (wholeDirectories, skip []string, err error) {
	ctx := cuecontext.New()
	def, err := cueschema.Config(ctx)
	if err != nil {
		return nil, nil, err
	}
	opts := def.LookupPath(cue.ParsePath("deltas.defaults"))
	for name, dst := range map[string]*[]string{"wholeDirectories": &wholeDirectories, "skip": &skip} {
		v, _ := opts.LookupPath(cue.ParsePath(name)).Default()
		if err := v.Decode(dst); err != nil {
			return nil, nil, fmt.Errorf("embedded schema: deltas.defaults.%s: %w", name, err)
		}
	}
	return wholeDirectories, skip, nil
}
