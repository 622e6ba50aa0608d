// Package progress shows what a build is doing: live bars on a terminal,
// plain lines in CI logs and pipes. The scheduler talks to a Reporter; steps
// only see their Task's byte counter and log writer.
package progress

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"

	"github.com/relcue/release/internal/units"
	"github.com/vbauerster/mpb/v8/decor"
)

// Reporter receives the life of every task of a build.
type Reporter interface {
	// Start begins a task (action is "build", "verify", "fetch", ...).
	Start(id, action string) Task
	// Printf writes a line that is not tied to a task (warnings, notes).
	Printf(format string, args ...any)
	// Close flushes the display; call it once, after the last task.
	Close()
}

// Task is one unit of visible work.
type Task interface {
	SetTotal(total int64)
	Add(n int64)
	// Log receives detail lines of the task.
	Log() io.Writer
	// Done ends the task with a short status ("built", "cached", ...) or
	// an error.
	Done(status string, err error)
}

// Auto picks bars when w is a terminal and CI is not set, plain lines
// otherwise; quiet drops everything but warnings.
func Auto(w *os.File, quiet bool) Reporter {
	if quiet {
		return &Plain{W: w, Quiet: true}
	}
	if os.Getenv("CI") == "" && isTerminal(w) {
		return NewBars(w)
	}
	return &Plain{W: w}
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0 && os.Getenv("TERM") != "dumb"
}

// Plain writes one line when a task starts and one when it ends, for logs
// that are read after the fact.
type Plain struct {
	W     io.Writer // nil discards
	Quiet bool
	mu    sync.Mutex
}

func (p *Plain) line(format string, args ...any) {
	if p.W == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.W, format+"\n", args...)
}

func (p *Plain) Start(id, action string) Task {
	if !p.Quiet {
		p.line("start  %-8s %s", action, id)
	}
	return &plainTask{p: p, id: id, action: action, start: time.Now()}
}

func (p *Plain) Printf(format string, args ...any) { p.line(format, args...) }
func (p *Plain) Close()                            {}

type plainTask struct {
	p          *Plain
	id, action string
	start      time.Time
	mu         sync.Mutex
	total, n   int64
}

func (t *plainTask) SetTotal(total int64) { t.mu.Lock(); t.total = total; t.mu.Unlock() }
func (t *plainTask) Add(n int64)          { t.mu.Lock(); t.n += n; t.mu.Unlock() }
func (t *plainTask) Log() io.Writer {
	if t.p.Quiet {
		return io.Discard
	}
	return &lineWriter{emit: func(l string) { t.p.line("       %-8s %s: %s", "", t.id, l) }}
}

func (t *plainTask) Done(status string, err error) {
	d := time.Since(t.start).Round(time.Millisecond)
	if err != nil {
		t.p.line("FAILED %-8s %s after %s: %v", t.action, t.id, d, err)
		return
	}
	if t.p.Quiet {
		return
	}
	t.mu.Lock()
	n := t.n
	t.mu.Unlock()
	if n > 0 {
		t.p.line("done   %-8s %s: %s in %s (%s)", t.action, t.id, status, d, Bytes(n))
		return
	}
	t.p.line("done   %-8s %s: %s in %s", t.action, t.id, status, d)
}

// Bars draws one live bar per running task.
type Bars struct {
	p *mpb.Progress
}

// NewBars starts a bar container writing to w.
func NewBars(w io.Writer) *Bars {
	return &Bars{p: mpb.New(mpb.WithOutput(w), mpb.WithRefreshRate(120*time.Millisecond), mpb.WithWidth(32))}
}

func (b *Bars) Start(id, action string) Task {
	t := &barTask{b: b, id: id, action: action, start: time.Now(), status: "…"}
	t.bar = b.p.AddBar(0,
		mpb.BarRemoveOnComplete(),
		mpb.PrependDecorators(decor.Name(fmt.Sprintf("%-7s %s", action, id), decor.WCSyncSpaceR)),
		mpb.AppendDecorators(decor.Counters(decor.SizeB1024(0), "% .1f / % .1f", decor.WCSyncSpace), decor.Elapsed(decor.ET_STYLE_GO, decor.WCSyncSpace)),
	)
	return t
}

func (b *Bars) Printf(format string, args ...any) {
	fmt.Fprintf(b.p, format+"\n", args...)
}

func (b *Bars) Close() { b.p.Wait() }

type barTask struct {
	b          *Bars
	bar        *mpb.Bar
	id, action string
	start      time.Time
	status     string
	mu         sync.Mutex
	total      int64
}

func (t *barTask) SetTotal(total int64) {
	t.mu.Lock()
	t.total = total
	t.mu.Unlock()
	t.bar.SetTotal(total, false)
}

func (t *barTask) Add(n int64) { t.bar.IncrInt64(n) }

func (t *barTask) Log() io.Writer {
	return &lineWriter{emit: func(l string) { t.b.Printf("        %s: %s", t.id, l) }}
}

func (t *barTask) Done(status string, err error) {
	d := time.Since(t.start).Round(time.Millisecond)
	if err != nil {
		t.b.Printf("FAILED  %s %s after %s: %v", t.action, t.id, d, err)
	} else {
		t.b.Printf("done    %s %s: %s in %s", t.action, t.id, status, d)
	}
	t.bar.Abort(true)
}

// lineWriter turns a byte stream into whole lines.
type lineWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	emit func(string)
}

func (w *lineWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(b)
	for {
		i := bytes.IndexByte(w.buf.Bytes(), '\n')
		if i < 0 {
			return len(b), nil
		}
		line := string(w.buf.Next(i + 1))
		w.emit(line[:len(line)-1])
	}
}

// Bytes formats a byte count for people.
func Bytes(n int64) string { return units.Bytes(n) }

// Lines is an io.Writer that prints each line written to it with the
// reporter's Printf, for components that log to a writer.
func Lines(r Reporter) io.Writer {
	return &lineWriter{emit: func(l string) { r.Printf("%s", l) }}
}
