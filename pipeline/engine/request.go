package engine

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/relcue/release/internal/strictjson"
	"github.com/relcue/release/pipeline/step"
)

// Request is one step as an engine hands it to another process (`release
// step`, usually in a container): everything step.Input holds, with the
// paths as that process sees them. It is the whole protocol between an
// engine and the process running the step, so that the same step code
// runs there as in-process.
type Request struct {
	Target        string            `json:"target"`
	Kind          string            `json:"kind"`
	Spec          json.RawMessage   `json:"spec"`
	Sources       map[string]string `json:"sources"`
	SourceDigests map[string]string `json:"sourceDigests,omitempty"`
	SourceLabels  map[string]string `json:"sourceLabels,omitempty"`
	Deps          map[string]Dep    `json:"deps"`
	Workers       int               `json:"workers"`
}

// Dep is a dependency's result in a Request.
type Dep struct {
	Dir       string          `json:"dir"`
	Artifacts []step.Artifact `json:"artifacts"`
}

// Response is what the step process writes at ResultFile below its
// output directory.
type Response struct {
	Artifacts []step.Artifact `json:"artifacts"`
}

// ResultFile is the name, in the output directory, of the Response. It
// starts with a dot and is removed before the outputs are recorded, so it
// can never be an artifact.
const ResultFile = ".release-step.json"

// ProgressPrefix starts the progress lines the step process writes to
// stderr ("@release-progress total N" / "... add N"), which the engine
// turns back into progress of the task.
const ProgressPrefix = "@release-progress "

// RunRequest runs a Request in this process: the `release step` side of
// the protocol. Progress goes to stderr as ProgressPrefix lines, the
// step's log as plain lines.
func RunRequest(ctx context.Context, steps map[string]step.Step, req *Request, outDir string, stderr io.Writer) error {
	s, ok := steps[req.Kind]
	if !ok {
		return fmt.Errorf("step %s: this release binary has no step of kind %q (is it the same version as the one planning?)", req.Target, req.Kind)
	}
	deps := make(map[string]step.Result, len(req.Deps))
	for id, d := range req.Deps {
		deps[id] = step.Result{Dir: d.Dir, Artifacts: d.Artifacts}
	}
	in := &step.Input{
		Target: req.Target, Spec: req.Spec, Sources: req.Sources, SourceDigests: req.SourceDigests, SourceLabels: req.SourceLabels, Deps: deps, OutDir: outDir,
		Workers: max(req.Workers, 1), Progress: &lineProgress{w: stderr}, Log: stderr,
	}
	arts, err := s.Run(ctx, in)
	if err != nil {
		return err
	}
	data, err := json.Marshal(Response{Artifacts: arts})
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(outDir, ResultFile), data, 0o644)
}

// ReadResponse reads and removes the Response in an output directory
// exported back from the step process, and checks that every artifact
// it names is a regular file below the directory.
func ReadResponse(outDir string) ([]step.Artifact, error) {
	p := filepath.Join(outDir, ResultFile)
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("the step wrote no result: %w", err)
	}
	if err := os.Remove(p); err != nil {
		return nil, err
	}
	var r Response
	if err := strictjson.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("step result: %w", err)
	}
	for _, a := range r.Artifacts {
		if a.Path == "" || path.IsAbs(a.Path) || path.Clean(a.Path) != a.Path || a.Path == ".." || strings.HasPrefix(a.Path, "../") {
			return nil, fmt.Errorf("step result: artifact path %q is not a clean relative path", a.Path)
		}
		fi, err := os.Lstat(filepath.Join(outDir, filepath.FromSlash(a.Path)))
		if err != nil || !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("step result: artifact %s is not a regular file in the exported outputs", a.Path)
		}
	}
	return r.Artifacts, nil
}

type lineProgress struct{ w io.Writer }

func (p *lineProgress) SetTotal(n int64) { fmt.Fprintf(p.w, "%stotal %d\n", ProgressPrefix, n) }
func (p *lineProgress) Add(n int64) {
	if n != 0 {
		fmt.Fprintf(p.w, "%sadd %d\n", ProgressPrefix, n)
	}
}

// ReplayLog feeds the step process's stderr into a task: progress lines
// become progress, everything else goes to log.
func ReplayLog(stderr string, prog step.Progress, log io.Writer) {
	sc := bufio.NewScanner(strings.NewReader(stderr))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, ProgressPrefix)
		if !ok {
			fmt.Fprintln(log, line)
			continue
		}
		verb, num, _ := strings.Cut(rest, " ")
		n, err := strconv.ParseInt(num, 10, 64)
		switch {
		case err != nil:
			fmt.Fprintln(log, line)
		case verb == "total":
			prog.SetTotal(n)
		case verb == "add":
			prog.Add(n)
		}
	}
}

// LogTail is the end of a failed step process's log, without progress
// lines, indented to follow an error message.
func LogTail(stderr string) string {
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(stderr, "\n"), "\n") {
		if l != "" && !strings.HasPrefix(l, ProgressPrefix) {
			lines = append(lines, l)
		}
	}
	if len(lines) > 40 {
		lines = append([]string{"…"}, lines[len(lines)-40:]...)
	}
	if len(lines) == 0 {
		return ""
	}
	return ":\n    " + strings.Join(lines, "\n    ")
}
