package apply

import (
	"fmt"

	"github.com/relcue/release/modules/delta"
	"github.com/relcue/release/pipeline/config"
)

// Layout is what, besides a package's own files, decides what an
// installation of it holds: the archives the product's installer unpacks
// (their members are installed files too) and the skip rules naming the
// installed files that belong to the cluster or are changed by other
// means (kubeconfig, PKI, addons/ under K2s), which release apply never
// touches and release verify therefore does not judge.
type Layout struct {
	Nested    []delta.Nested
	Skip      []string
	SkipNames []string
}

// LayoutOf is the layout of a profile ("" is the generic one, as a delta
// manifest without Profile says).
func LayoutOf(profile string) (Layout, error) {
	if profile == "" {
		profile = config.ProfileGeneric
	}
	pd, err := config.DefaultsOf(profile)
	if err != nil {
		return Layout{}, fmt.Errorf("profile: %w", err)
	}
	return Layout{Nested: delta.NestedOf(pd.Nested), Skip: pd.Skip, SkipNames: pd.SkipNames}, nil
}

// nestedDirs are the installation directories the layout's archives
// unpack into, for the archives present in files.
func (l Layout) nestedDirs(files map[string]bool) []string {
	var dirs []string
	seen := map[string]bool{}
	for _, n := range l.Nested {
		if !files[n.Archive] {
			continue
		}
		for _, f := range n.Folders {
			if !seen[f.To] {
				seen[f.To] = true
				dirs = append(dirs, f.To)
			}
		}
	}
	return dirs
}
