package plan

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Status says whether a node's result is already cached.
type Status struct {
	Cached bool
}

// TargetView is the machine-readable description of one planned target.
type TargetView struct {
	ID     string   `json:"id"`
	Kind   string   `json:"kind"`
	Deps   []string `json:"deps"`
	Key    string   `json:"key"`
	Cached bool     `json:"cached"`
	// Effect marks a target with effects outside the build (a push): it
	// is never cached and runs only when asked for.
	Effect bool            `json:"effect,omitempty"`
	Pos    string          `json:"pos,omitempty"`
	Spec   json.RawMessage `json:"spec"`
}

// View lists the given nodes (graph order) with their cache status.
func (g *Graph) View(ids []string, status func(*Node) Status) []TargetView {
	out := make([]TargetView, 0, len(ids))
	for _, id := range ids {
		n := g.Nodes[id]
		deps := n.Deps
		if deps == nil {
			deps = []string{}
		}
		out = append(out, TargetView{ID: id, Kind: n.Kind, Deps: deps, Key: n.Key, Cached: status(n).Cached, Effect: n.Effect, Pos: n.Pos, Spec: n.Spec})
	}
	return out
}

// Formats lists the names Render accepts.
var Formats = []string{"text", "json", "mermaid", "dot", "github-matrix"}

// Render writes the plan of the given targets in one of Formats.
func Render(w io.Writer, format string, views []TargetView) error {
	switch format {
	case "text":
		return renderText(w, views)
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Targets []TargetView `json:"targets"`
		}{views})
	case "mermaid":
		return renderMermaid(w, views)
	case "dot":
		return renderDot(w, views)
	case "github-matrix":
		return renderMatrix(w, views)
	}
	return fmt.Errorf("unknown format %q (want one of %s)", format, strings.Join(Formats, ", "))
}

func state(v TargetView) string {
	if v.Effect {
		return "effect"
	}
	if v.Cached {
		return "cached"
	}
	return "build"
}

func renderText(w io.Writer, views []TargetView) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TARGET\tKIND\tSTATUS\tKEY\tDEPENDS ON")
	cached, effects := 0, 0
	for _, v := range views {
		if v.Cached {
			cached++
		}
		if v.Effect {
			effects++
		}
		deps := strings.Join(v.Deps, " ")
		if deps == "" {
			deps = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", v.ID, v.Kind, state(v), v.Key[:12], deps)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if effects == 0 {
		_, err := fmt.Fprintf(w, "\n%d targets: %d cached, %d to build\n", len(views), cached, len(views)-cached)
		return err
	}
	_, err := fmt.Fprintf(w, "\n%d targets: %d cached, %d to build, %d with effects (run only when asked for, e.g. build --push)\n",
		len(views), cached, len(views)-cached-effects, effects)
	return err
}

// mermaidID makes an ID safe as a Mermaid node name; the label keeps the
// real ID.
func mermaidID(id string) string {
	r := strings.NewReplacer("/", "_", ".", "_", "-", "_", "+", "_")
	return "t_" + r.Replace(id)
}

func renderMermaid(w io.Writer, views []TargetView) error {
	var b strings.Builder
	b.WriteString("graph LR\n")
	b.WriteString("  classDef cached fill:#d4edda,stroke:#28a745\n")
	b.WriteString("  classDef build fill:#fff3cd,stroke:#d39e00\n")
	b.WriteString("  classDef effect fill:#cce5ff,stroke:#004085\n")
	in := map[string]bool{}
	for _, v := range views {
		in[v.ID] = true
	}
	for _, v := range views {
		fmt.Fprintf(&b, "  %s[\"%s\"]:::%s\n", mermaidID(v.ID), v.ID, state(v))
	}
	for _, v := range views {
		for _, d := range v.Deps {
			if in[d] {
				fmt.Fprintf(&b, "  %s --> %s\n", mermaidID(d), mermaidID(v.ID))
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func renderDot(w io.Writer, views []TargetView) error {
	var b strings.Builder
	b.WriteString("digraph release {\n  rankdir=LR;\n  node [shape=box, style=filled];\n")
	in := map[string]bool{}
	for _, v := range views {
		in[v.ID] = true
	}
	for _, v := range views {
		color := "\"#fff3cd\""
		switch {
		case v.Effect:
			color = "\"#cce5ff\""
		case v.Cached:
			color = "\"#d4edda\""
		}
		fmt.Fprintf(&b, "  %q [fillcolor=%s, tooltip=%q];\n", v.ID, color, v.Kind+" "+state(v))
	}
	for _, v := range views {
		for _, d := range v.Deps {
			if in[d] {
				fmt.Fprintf(&b, "  %q -> %q;\n", d, v.ID)
			}
		}
	}
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// MatrixEntry is one job of a GitHub Actions build matrix.
type MatrixEntry struct {
	Target string `json:"target"`
	Kind   string `json:"kind"`
	Cached bool   `json:"cached"`
	// Needs counts the targets the job builds (or pulls from a remote
	// cache) along with Target.
	Needs int `json:"needs"`
}

// renderMatrix writes {"include": [...]} usable as strategy.matrix via
// fromJSON: one job per root of the selected graph (a target no other
// selected target needs), which builds that target and, through the
// cache, everything it needs. Every target is in exactly one root's
// closure or shared between closures, so the jobs together build the
// whole graph; a last job that builds everything with the same remote
// cache then only pulls, and publishes dist/ complete. Effects are left
// out (they run where the build asks for them). GitHub rejects an empty
// matrix, so a workflow must skip the matrix job when include is empty.
func renderMatrix(w io.Writer, views []TargetView) error {
	m := struct {
		Include []MatrixEntry `json:"include"`
	}{Include: []MatrixEntry{}}
	needed := map[string]bool{}
	deps := map[string][]string{}
	for _, v := range views {
		if v.Effect {
			continue
		}
		deps[v.ID] = v.Deps
		for _, d := range v.Deps {
			needed[d] = true
		}
	}
	closure := func(id string) int {
		seen := map[string]bool{}
		var walk func(string)
		walk = func(id string) {
			for _, d := range deps[id] {
				if !seen[d] {
					seen[d] = true
					walk(d)
				}
			}
		}
		walk(id)
		return len(seen)
	}
	for _, v := range views {
		if v.Effect || needed[v.ID] {
			continue
		}
		m.Include = append(m.Include, MatrixEntry{Target: v.ID, Kind: v.Kind, Cached: v.Cached, Needs: closure(v.ID)})
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", raw)
	return err
}
