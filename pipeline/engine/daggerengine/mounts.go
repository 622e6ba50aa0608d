package daggerengine

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/relcue/release/pipeline/engine"
	"github.com/relcue/release/pipeline/step"
)

// Paths in the step container, below its root.
const (
	InDir       = "/in"
	OutDir      = "/out"
	RequestPath = "/in/request.json"
)

// Mount is a host file or directory mounted into the step container.
type Mount struct {
	Host      string // absolute host path
	Container string // absolute path in the container
	Dir       bool
}

// StepPlan is how one step's Input appears inside its container: what is
// mounted where, and the Request `release step` reads there.
type StepPlan struct {
	Mounts  []Mount
	Request engine.Request
}

// PlanStep maps a step's sources and dependency directories to container
// paths below root ("/" for a container): sources at /in/src/<n> (a file
// keeps its base name, /in/src/<n>/<name>, since some steps name outputs
// after it), dependencies at /in/deps/<n>, in sorted order so that the
// same input gives the same container, which Dagger's cache recognises.
func PlanStep(kind string, in *step.Input, root string) (*StepPlan, error) {
	p := &StepPlan{Request: engine.Request{
		Target: in.Target, Kind: kind, Spec: in.Spec, Workers: in.Workers, SourceDigests: in.SourceDigests, SourceLabels: in.SourceLabels,
		Sources: map[string]string{}, Deps: map[string]engine.Dep{},
	}}
	at := func(parts ...string) string { return path.Join(append([]string{root}, parts...)...) }
	names := make([]string, 0, len(in.Sources))
	for n := range in.Sources {
		names = append(names, n)
	}
	sort.Strings(names)
	for i, n := range names {
		host := in.Sources[n]
		if !filepath.IsAbs(host) {
			return nil, fmt.Errorf("step %s: source %s: %q is not an absolute path", in.Target, n, host)
		}
		fi, err := os.Stat(host)
		if err != nil {
			return nil, fmt.Errorf("step %s: source %s: %w", in.Target, n, err)
		}
		c := at(InDir, "src", strconv.Itoa(i))
		if !fi.IsDir() {
			c = path.Join(c, filepath.Base(host))
		}
		p.Mounts = append(p.Mounts, Mount{Host: host, Container: c, Dir: fi.IsDir()})
		p.Request.Sources[n] = c
	}
	ids := make([]string, 0, len(in.Deps))
	for id := range in.Deps {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for i, id := range ids {
		d := in.Deps[id]
		if !filepath.IsAbs(d.Dir) {
			return nil, fmt.Errorf("step %s: dependency %s: %q is not an absolute path", in.Target, id, d.Dir)
		}
		c := at(InDir, "deps", strconv.Itoa(i))
		p.Mounts = append(p.Mounts, Mount{Host: d.Dir, Container: c, Dir: true})
		p.Request.Deps[id] = engine.Dep{Dir: c, Artifacts: d.Artifacts}
	}
	return p, nil
}
