package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/relcue/release/internal/ghactions"
	"github.com/relcue/release/pipeline"
	"github.com/relcue/release/pipeline/config"
	"github.com/relcue/release/pipeline/plan"
	"github.com/relcue/release/pipeline/progress"
	"github.com/relcue/release/pipeline/sched"
)

// GitHub Actions integration: when GITHUB_ACTIONS=true, errors become
// annotations, plans and builds go to the job summary, and counts and the
// matrix become step outputs.

func inGitHub() bool { return ghactions.Enabled(os.Getenv) }

// annotate prints err as annotations on stdout: one per configuration
// problem at its file, line and column, one per failed target.
func annotate(w io.Writer, err error) {
	var ce *config.Error
	var be *sched.BuildError
	switch {
	case errors.As(err, &ce):
		for _, p := range ce.Problems {
			msg := p.Message
			if p.Path != "" {
				msg = p.Path + ": " + msg
			}
			ghactions.Annotation{File: annotationPath(p.Pos.File), Line: p.Pos.Line, Col: p.Pos.Col, Title: "release: configuration", Message: msg}.Write(w)
		}
	case errors.As(err, &be):
		for _, o := range be.Failed {
			ghactions.Annotation{Title: "release: " + o.ID + " failed", Message: fmt.Sprint(o.Err)}.Write(w)
		}
	default:
		ghactions.Annotation{Title: "release", Message: err.Error()}.Write(w)
	}
}

// annotationPath makes a file relative to the workspace, as GitHub
// matches annotations to files of the repository.
func annotationPath(p string) string {
	if ws := os.Getenv("GITHUB_WORKSPACE"); ws != "" && filepath.IsAbs(p) {
		if rel, err := filepath.Rel(ws, p); err == nil && !strings.HasPrefix(rel, "..") {
			return filepath.ToSlash(rel)
		}
	}
	return filepath.ToSlash(p)
}

// planToGitHub writes the plan's table and graph to the job summary, and
// its counts and build matrix to the step outputs.
func planToGitHub(views []plan.TargetView) error {
	var b strings.Builder
	toBuild := 0
	b.WriteString("## release plan\n\n| target | kind | status | key | depends on |\n|---|---|---|---|---|\n")
	for _, v := range views {
		status := "to build"
		switch {
		case v.Effect:
			status = "effect"
		case v.Cached:
			status = "cached"
		default:
			toBuild++
		}
		deps := strings.Join(v.Deps, "<br>")
		fmt.Fprintf(&b, "| `%s` | %s | %s | `%.12s` | %s |\n", v.ID, v.Kind, status, v.Key, deps)
	}
	fmt.Fprintf(&b, "\n%d targets, %d to build.\n\n```mermaid\n", len(views), toBuild)
	if err := plan.Render(&b, "mermaid", views); err != nil {
		return err
	}
	b.WriteString("```\n")
	if err := ghactions.AppendSummary(os.Getenv, b.String()); err != nil {
		return err
	}
	var matrix strings.Builder
	if err := plan.Render(&matrix, "github-matrix", views); err != nil {
		return err
	}
	return ghactions.SetOutputs(os.Getenv,
		"matrix", strings.TrimSpace(matrix.String()),
		"targets", fmt.Sprint(len(views)),
		"to-build", fmt.Sprint(toBuild))
}

// buildToGitHub writes the build's outcome to the job summary and outputs.
func buildToGitHub(r *pipeline.BuildReport, remote string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "## release build\n\n%s (engine %s)", r.Summary, r.Engine)
	if remote != "" {
		fmt.Fprintf(&b, "; remote cache: %s", remote)
	}
	b.WriteString("\n\n| target | status |\n|---|---|\n")
	for _, t := range r.Targets {
		status := t.Status
		if t.Error != "" {
			status += ": " + strings.ReplaceAll(t.Error, "\n", " ")
		}
		fmt.Fprintf(&b, "| `%s` | %s |\n", t.ID, status)
	}
	if len(r.Artifacts) > 0 {
		b.WriteString("\n| artifact | size | sha256 |\n|---|---:|---|\n")
		for _, a := range r.Artifacts {
			fmt.Fprintf(&b, "| `%s` | %s | `%.16s` |\n", a.Path, progress.Bytes(a.Size), a.SHA256)
		}
	}
	if err := ghactions.AppendSummary(os.Getenv, b.String()); err != nil {
		return err
	}
	built, cached, failed := 0, 0, 0
	for _, t := range r.Targets {
		switch t.Status {
		case sched.Built:
			built++
		case sched.Cached:
			cached++
		case sched.Failed:
			failed++
		}
	}
	return ghactions.SetOutputs(os.Getenv,
		"summary", r.Summary,
		"built", fmt.Sprint(built),
		"cached", fmt.Sprint(cached),
		"failed", fmt.Sprint(failed),
		"artifacts", fmt.Sprint(len(r.Artifacts)),
		"dist", r.Dist)
}
