// Command holdfile opens a file the way many Windows programs do, sharing
// it for reading only (no FILE_SHARE_WRITE, no FILE_SHARE_DELETE), prints
// "held" and keeps it open until its standard input is closed. Tests run it
// under Wine (or on Windows) to hold a file an apply must replace.
//
//	holdfile PATH
package main

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/windows"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: holdfile PATH")
		os.Exit(2)
	}
	name, err := windows.UTF16PtrFromString(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "holdfile:", err)
		os.Exit(2)
	}
	h, err := windows.CreateFile(name, windows.GENERIC_READ, windows.FILE_SHARE_READ, nil, windows.OPEN_EXISTING, windows.FILE_ATTRIBUTE_NORMAL, 0)
	if err != nil {
		fmt.Fprintf(os.Stderr, "holdfile: open %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
	fmt.Println("held")
	// Until the test closes our stdin (or dies, which closes it too).
	_, _ = io.Copy(io.Discard, os.Stdin)
	_ = windows.CloseHandle(h)
}
