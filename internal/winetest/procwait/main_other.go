//go:build !windows

// Command procwait is a Windows program (see main_windows.go); elsewhere
// it only says so.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "procwait: a Windows program; build it with GOOS=windows and run it on Windows or under Wine")
	os.Exit(2)
}
