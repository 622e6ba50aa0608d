// Command release builds the artifacts of an edge Kubernetes distribution
// from a declarative CUE description. See README.md and docs/.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes.
const (
	exitOK       = 0
	exitFailure  = 1 // a build, apply or verification failed
	exitUsage    = 2 // bad flags, arguments or configuration
	exitCanceled = 130
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		// A second interrupt means "now": the first one is already
		// unwinding and cleaning up temp files.
		<-ctx.Done()
		stop()
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		<-sig
		fmt.Fprintln(os.Stderr, "release: interrupted twice, exiting without cleanup")
		os.Exit(exitCanceled)
	}()

	root := newRoot()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	code := exitCode(ctx, err)
	var silent *silentError
	if !errors.As(err, &silent) {
		fmt.Fprintf(os.Stderr, "release: %v\n", err)
		if inGitHub() && code != exitCanceled {
			annotate(os.Stdout, err)
		}
	}
	return code
}
