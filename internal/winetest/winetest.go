// Package winetest runs Windows programs (release.exe and test helpers
// built with GOOS=windows) for real under Wine, for the end-to-end tests
// and the benchmarks.
//
// A Prefix is one WINEPREFIX (a Windows installation in a directory) with
// its own wineserver, which this package starts in the foreground and
// stops again, so that no Wine process outlives its user. Wine differs
// from Windows in ways the tests must know about; each is commented where
// it matters:
//
//   - Wine 8.0 has no bcryptprimitives.dll, which Go's Windows runtime
//     loads at start (ProcessPrng); the prefix gets a small stand-in built
//     from shim/bcryptprimitives.c with mingw-w64.
//   - Linux paths are reached through drive Z:, which is the Linux root:
//     /tmp/x is Z:\tmp\x (WinPath).
//   - A Linux directory is case-sensitive, but Wine looks names up
//     case-insensitively when the exact name is not there, as Windows does
//     on NTFS.
//   - FILE_ATTRIBUTE_READONLY is the absence of the owner's write bit: a
//     file made 0o444 from Linux is read-only to Windows programs.
//   - Share modes (a file opened without FILE_SHARE_DELETE cannot be
//     renamed) are enforced by the wineserver between the Windows
//     processes of one prefix only; Linux processes are not bound by them.
//   - A Windows process is a Linux process: killing it with SIGKILL is
//     what TerminateProcess or a power cut is to the program, and the
//     wineserver releases its handles and locks when it goes.
package winetest

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

//go:embed shim/bcryptprimitives.c
var shimC []byte

//go:embed shim/bcryptprimitives.def
var shimDef []byte

// Tools are the programs a Prefix needs: Wine's loader and server, and
// the mingw-w64 C compiler that builds the shim.
type Tools struct {
	Wine, Wineserver, MingwGCC string
}

// Prefix is a ready WINEPREFIX with its wineserver running.
type Prefix struct {
	// Dir is the WINEPREFIX.
	Dir    string
	tools  Tools
	server *exec.Cmd
	// procwait is internal/winetest/procwait built for Windows.
	procwait string
	done     chan error
	log      *os.File
}

// NewPrefix creates a WINEPREFIX in dir (which must not exist, or be
// empty), starts its wineserver, initialises it (wineboot, about 10 s)
// and installs the bcryptprimitives.dll shim.
func NewPrefix(dir string, tools Tools) (_ *Prefix, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "..", filepath.Base(dir)+".log"))
	if err != nil {
		return nil, err
	}
	p := &Prefix{Dir: dir, tools: tools, log: logf, done: make(chan error, 1)}
	defer func() {
		if err != nil {
			p.Close()
		}
	}()
	// Foreground (-f) so that it is our child and Close can wait for it;
	// persistent (-p) so that it stays up between the test's programs
	// instead of exiting 3 s after the last one, and so that a later
	// program never starts a server of its own.
	p.server = exec.Command(tools.Wineserver, "-f", "-p")
	p.server.Env = p.env()
	p.server.Stdout, p.server.Stderr = logf, logf
	p.server.SysProcAttr = serverAttr()
	if err := p.server.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", tools.Wineserver, err)
	}
	go func() { p.done <- p.server.Wait() }()
	// wineboot creates the prefix (the registry, C:\windows and the
	// builtin DLLs) and starts Wine's own services (services.exe,
	// rpcss.exe, ...), which live as long as the server.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	boot := exec.CommandContext(ctx, tools.Wine, "wineboot", "--init")
	boot.Env = p.env()
	boot.Stdout, boot.Stderr = logf, logf
	if err := boot.Run(); err != nil {
		return nil, fmt.Errorf("wineboot --init in %s: %v (log: %s)", dir, err, logf.Name())
	}
	if err := p.installShim(); err != nil {
		return nil, err
	}
	p.procwait = filepath.Join(dir, "drive_c", "procwait.exe")
	if err := BuildWindows(p.procwait, "github.com/relcue/release/internal/winetest/procwait"); err != nil {
		return nil, err
	}
	return p, nil
}

// BuildWindows builds the Go package pkg for windows/amd64 (static, no
// cgo) into out. The go command must be on PATH and the current directory
// inside this module.
func BuildWindows(out, pkg string) error {
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=windows", "GOARCH=amd64")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s for windows/amd64: %v\n%s", pkg, err, b)
	}
	return nil
}

// installShim builds bcryptprimitives.dll and puts it into system32.
func (p *Prefix) installShim() error {
	build, err := os.MkdirTemp(filepath.Dir(p.Dir), "shim-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(build)
	for name, data := range map[string][]byte{"bcryptprimitives.c": shimC, "bcryptprimitives.def": shimDef} {
		if err := os.WriteFile(filepath.Join(build, name), data, 0o644); err != nil {
			return err
		}
	}
	cc := exec.Command(p.tools.MingwGCC, "-O2", "-shared", "-nostartfiles", "-Wl,--entry=0",
		"-o", "bcryptprimitives.dll", "bcryptprimitives.c", "bcryptprimitives.def", "-ladvapi32")
	cc.Dir = build
	if out, err := cc.CombinedOutput(); err != nil {
		return fmt.Errorf("build the bcryptprimitives.dll shim with %s: %v\n%s", p.tools.MingwGCC, err, out)
	}
	dll, err := os.ReadFile(filepath.Join(build, "bcryptprimitives.dll"))
	if err != nil {
		return err
	}
	sys32 := filepath.Join(p.Dir, "drive_c", "windows", "system32")
	if _, err := os.Stat(sys32); err != nil {
		return fmt.Errorf("wineboot left no %s: %w", sys32, err)
	}
	return os.WriteFile(filepath.Join(sys32, "bcryptprimitives.dll"), dll, 0o644)
}

func (p *Prefix) env() []string { return append(os.Environ(), p.Env()...) }

// Env is the environment, beyond the process's own, that a program run
// under Wine in this prefix needs (Command sets it).
func (p *Prefix) Env() []string {
	return []string{
		"WINEPREFIX=" + p.Dir,
		// No debug channels: Wine's fixme and err lines would mix with the
		// program's stderr, and the loader script's hint about a missing
		// 32-bit Wine is silenced by it too.
		"WINEDEBUG=-all",
		// No Mono or Gecko: wineboot would offer to download them.
		"WINEDLLOVERRIDES=mscoree,mshtml=",
		"WINESERVER=" + p.tools.Wineserver,
	}
}

// Command runs the Windows program exe (a Linux path) with args under
// Wine in this prefix, like exec.CommandContext. Its process is the
// Windows program itself (the wine script execs the loader), so Process,
// Kill and Wait behave as for a native program. Paths in args must be
// Windows paths: see WinPath.
func (p *Prefix) Command(ctx context.Context, exe string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, p.tools.Wine, append([]string{exe}, args...)...)
	cmd.Env = p.env()
	// A program's own children could keep its output pipes open; the
	// wineserver and Wine's services are not among them (they were
	// started by NewPrefix), but a hang must not outlast the test.
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// WaitGone waits until no process whose image name is image (e.g.
// "release.exe") is left in the prefix. After a Linux kill of a Windows
// process the kernel has closed its sockets, but the wineserver releases
// its handles, byte-range locks and share modes only when it has
// processed that, which it does asynchronously. (On Windows a process is
// gone, locks and all, when a wait on its handle returns.) It runs
// procwait.exe, which polls the process list; Wine's wmic would do, but
// it stalls for 10 s after a kill.
func (p *Prefix) WaitGone(ctx context.Context, image string) error {
	out, err := p.Command(ctx, p.procwait, image).CombinedOutput()
	if err != nil {
		return fmt.Errorf("waiting for %s to be gone from the wineserver: %v\n%s", image, err, out)
	}
	return nil
}

// WinPath is the Windows path of the Linux path p under Wine: drive Z: is
// the Linux root, so /tmp/x is Z:\tmp\x. (On Windows there is nothing to
// map; under Wine, Go's filepath.Abs would also turn /tmp/x into Z:\tmp\x
// through the current directory's drive, which is Z: only when the current
// directory is on it.)
func WinPath(p string) string {
	abs, err := filepath.Abs(p)
	if err != nil {
		abs = p
	}
	return `Z:` + strings.ReplaceAll(abs, "/", `\`)
}

// Close kills every process of the prefix (wineserver -k), waits for its
// server to exit and removes the prefix. Safe to call more than once.
func (p *Prefix) Close() error {
	var errs []error
	// Found before the prefix goes: the name is its device and inode.
	leftovers := serverDirs(p.Dir)
	if p.server != nil && p.server.Process != nil {
		kill := exec.Command(p.tools.Wineserver, "-k")
		kill.Env = p.env()
		var out bytes.Buffer
		kill.Stdout, kill.Stderr = &out, &out
		_ = kill.Run() // fails if the server is gone already
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			_ = p.server.Process.Kill()
			<-p.done
			errs = append(errs, fmt.Errorf("wineserver of %s did not exit after wineserver -k: %s", p.Dir, out.String()))
		}
		p.server = nil
	}
	if p.log != nil {
		p.log.Close()
		os.Remove(p.log.Name())
		p.log = nil
	}
	if err := os.RemoveAll(p.Dir); err != nil {
		errs = append(errs, err)
	}
	for _, d := range leftovers {
		if err := os.RemoveAll(d); err != nil {
			errs = append(errs, err)
		}
		os.Remove(filepath.Dir(d)) // only if no other server uses it
	}
	return errors.Join(errs...)
}
