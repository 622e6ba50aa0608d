// Package plan turns the targets that modules describe into a validated
// build graph: stable IDs, dependencies, source digests and a content cache
// key per target. It knows nothing about what the targets make.
package plan

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/relcue/release/internal/glob"
	"github.com/relcue/release/pipeline/step"
)

// KeyVersion is mixed into every cache key; bump it when the key recipe
// itself changes, or when entries stored by earlier releases can no longer
// be trusted to hold what their keys stand for. v2: before it, a step
// stored what it read even when an input had changed since planning
// (reliability review D1), and zips whose local headers contradicted the
// central directory were packaged as they were (D6-D8).
const KeyVersion = "release-cache-key/v2"

// Node is a planned target.
type Node struct {
	ID          string
	Kind        string
	StepVersion string
	// Spec is the canonical JSON of the target's spec.
	Spec    json.RawMessage
	Sources []SourceDigest
	Deps    []string
	Pos     string
	// Effect is step.Target.Effect.
	Effect bool
	// InProcess is step.Target.InProcess.
	InProcess bool
	// Key is the content cache key: it changes when anything that can
	// change the output changes.
	Key string
}

// SourceDigest is an external input with its content digest.
type SourceDigest struct {
	step.Source
	// Digest is "sha256:<hex>" of a file's bytes, or "tree:<hex>" of a
	// directory tree.
	Digest string
}

// Graph is a validated DAG of nodes.
type Graph struct {
	Nodes map[string]*Node
	// Order lists node IDs topologically (dependencies first); ties are
	// broken by ID so the order is stable.
	Order []string
}

// Options configures planning.
type Options struct {
	// Steps maps step kinds to implementations (for their versions).
	Steps map[string]step.Step
	// Workers bounds parallel hashing of sources.
	Workers int
	// Digests resolves source digests; nil uses LocalDigester.
	Digests Digester
}

// Digester computes the digest of a source.
type Digester interface {
	Digest(ctx context.Context, s step.Source) (string, error)
}

// Build validates targets and computes every cache key.
func Build(ctx context.Context, targets []step.Target, opts Options) (*Graph, error) {
	g := &Graph{Nodes: make(map[string]*Node, len(targets))}
	for _, t := range targets {
		if err := validID(t.ID); err != nil {
			return nil, posErr(t.Pos, err)
		}
		if _, dup := g.Nodes[t.ID]; dup {
			return nil, posErr(t.Pos, fmt.Errorf("target %s is declared twice", t.ID))
		}
		s, ok := opts.Steps[t.Kind]
		if !ok {
			return nil, posErr(t.Pos, fmt.Errorf("target %s: no step of kind %q is registered", t.ID, t.Kind))
		}
		spec, err := Canonical(t.Spec)
		if err != nil {
			return nil, posErr(t.Pos, fmt.Errorf("target %s: spec: %w", t.ID, err))
		}
		deps := append([]string(nil), t.Deps...)
		sort.Strings(deps)
		g.Nodes[t.ID] = &Node{ID: t.ID, Kind: t.Kind, StepVersion: s.Version(), Spec: spec, Deps: dedupe(deps), Pos: t.Pos, Effect: t.Effect, InProcess: t.InProcess}
	}
	owner := map[string]step.Target{}
	for _, t := range targets {
		for _, o := range t.Outputs {
			if prev, dup := owner[o]; dup {
				return nil, posErr(t.Pos, fmt.Errorf("targets %s (%s) and %s both write %s; give them different outputs", prev.ID, orUnknown(prev.Pos), t.ID, o))
			}
			owner[o] = t
		}
	}
	for _, t := range targets {
		for _, d := range t.Deps {
			dn, ok := g.Nodes[d]
			if !ok {
				return nil, posErr(t.Pos, fmt.Errorf("target %s depends on %s, which is not a target", t.ID, d))
			}
			if dn.Effect {
				// An effect has no cacheable result, so nothing may be
				// built from it.
				return nil, posErr(t.Pos, fmt.Errorf("target %s depends on %s, which has effects outside the build; only other effects' inputs may be targets", t.ID, d))
			}
		}
	}
	order, err := topo(g.Nodes)
	if err != nil {
		return nil, err
	}
	g.Order = order

	dg := opts.Digests
	if dg == nil {
		dg = &LocalDigester{Workers: opts.Workers}
	}
	if err := digestSources(ctx, targets, g, dg, opts.Workers); err != nil {
		return nil, err
	}
	if err := checkPlans(targets, g, opts.Steps, dg); err != nil {
		return nil, err
	}
	for _, id := range g.Order {
		g.Nodes[id].Key = key(g, g.Nodes[id])
	}
	return g, nil
}

func validID(id string) error {
	if id == "" || strings.HasPrefix(id, "/") || strings.HasSuffix(id, "/") || strings.ContainsAny(id, " \t\n\\") {
		return fmt.Errorf("invalid target ID %q", id)
	}
	return nil
}

func posErr(pos string, err error) error {
	if pos == "" {
		return err
	}
	return fmt.Errorf("%s: %w", pos, err)
}

func orUnknown(pos string) string {
	if pos == "" {
		return "no position"
	}
	return pos
}

func dedupe(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// topo orders nodes dependencies-first (Kahn's algorithm with a sorted
// frontier) and reports a cycle by naming its members.
func topo(nodes map[string]*Node) ([]string, error) {
	indeg := make(map[string]int, len(nodes))
	users := make(map[string][]string)
	for id, n := range nodes {
		indeg[id] += 0
		for _, d := range n.Deps {
			indeg[id]++
			users[d] = append(users[d], id)
		}
	}
	var ready []string
	for id, d := range indeg {
		if d == 0 {
			ready = append(ready, id)
		}
	}
	sort.Strings(ready)
	var order []string
	for len(ready) > 0 {
		id := ready[0]
		ready = ready[1:]
		order = append(order, id)
		next := users[id]
		sort.Strings(next)
		for _, u := range next {
			indeg[u]--
			if indeg[u] == 0 {
				ready = insertSorted(ready, u)
			}
		}
	}
	if len(order) != len(nodes) {
		var cyc []string
		for id, d := range indeg {
			if d > 0 {
				cyc = append(cyc, id)
			}
		}
		sort.Strings(cyc)
		return nil, fmt.Errorf("dependency cycle among targets: %s", strings.Join(cyc, ", "))
	}
	return order, nil
}

func insertSorted(s []string, v string) []string {
	i := sort.SearchStrings(s, v)
	s = append(s, "")
	copy(s[i+1:], s[i:])
	s[i] = v
	return s
}

// Canonical marshals v to JSON with object keys sorted at every level, so
// that equal specs give equal bytes whatever Go type produced them.
func Canonical(v any) (json.RawMessage, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var generic any
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	if err := dec.Decode(&generic); err != nil {
		return nil, err
	}
	// encoding/json sorts map keys, which makes this canonical.
	return json.Marshal(generic)
}

type keyDoc struct {
	KeyVersion  string            `json:"keyVersion"`
	Kind        string            `json:"kind"`
	StepVersion string            `json:"stepVersion"`
	Spec        json.RawMessage   `json:"spec"`
	Sources     map[string]string `json:"sources"`
	Deps        map[string]string `json:"deps"`
}

// key hashes what determines a node's output. Dependencies contribute their
// keys, not their output digests: outputs are a pure function of keys, and
// this lets plan know every key before anything is built.
func key(g *Graph, n *Node) string {
	doc := keyDoc{KeyVersion: KeyVersion, Kind: n.Kind, StepVersion: n.StepVersion, Spec: n.Spec,
		Sources: map[string]string{}, Deps: map[string]string{}}
	for _, s := range n.Sources {
		doc.Sources[s.Name] = s.Digest
	}
	for _, d := range n.Deps {
		doc.Deps[d] = g.Nodes[d].Key
	}
	raw, _ := json.Marshal(doc)
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])
}

// Select returns the IDs matching any of the patterns (globs over target
// IDs, see internal/glob), plus everything they depend on, in graph order.
// A pattern also selects the IDs below a prefix it matches, so "deb/*"
// selects "deb/debian12/kubelet_1.32.2-1_amd64".
// roots are the matched IDs themselves. A pattern that matches nothing is
// an error listing what exists.
//
// Effect targets are selected only when effects is true; without it, a
// pattern that matches nothing but effects is an error saying so.
func (g *Graph) Select(patterns []string, effects bool) (all, roots []string, err error) {
	want := map[string]bool{}
	isRoot := map[string]bool{}
	if len(patterns) == 0 {
		for _, id := range g.Order {
			if effects || !g.Nodes[id].Effect {
				isRoot[id] = true
				want[id] = true
			}
		}
	}
	for _, p := range patterns {
		if err := glob.Validate(p); err != nil {
			return nil, nil, fmt.Errorf("--target %w", err)
		}
		matched, onlyEffects := false, false
		for _, id := range g.Order {
			if id != p && !glob.MatchPrefix(p, id) {
				continue
			}
			if g.Nodes[id].Effect && !effects {
				onlyEffects = true
				continue
			}
			matched = true
			isRoot[id] = true
			g.closure(id, want)
		}
		if !matched {
			if onlyEffects {
				return nil, nil, fmt.Errorf("--target %q matches only targets with effects outside the build (such as pushes), which run only when asked for explicitly (build --push)", p)
			}
			return nil, nil, fmt.Errorf("--target %q matches no target; targets are: %s", p, strings.Join(g.Order, ", "))
		}
	}
	for _, id := range g.Order {
		if want[id] {
			all = append(all, id)
		}
		if isRoot[id] {
			roots = append(roots, id)
		}
	}
	return all, roots, nil
}

func (g *Graph) closure(id string, into map[string]bool) {
	if into[id] {
		return
	}
	into[id] = true
	for _, d := range g.Nodes[id].Deps {
		g.closure(d, into)
	}
}
