// Command procwait waits until no process whose image name is NAME (for
// example release.exe) is running, polling the process list
// (CreateToolhelp32Snapshot) every 20 ms for up to 30 s. It exits 0 when
// none is left and 1 on timeout, naming the processes still there.
// internal/winetest runs it under Wine after killing a Windows program
// from Linux, to wait until the wineserver has processed its death.
//
//	procwait NAME
package main

import (
	"fmt"
	"os"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: procwait NAME")
		os.Exit(2)
	}
	name := os.Args[1]
	deadline := time.Now().Add(30 * time.Second)
	for {
		pids, err := running(name)
		if err != nil {
			fmt.Fprintln(os.Stderr, "procwait:", err)
			os.Exit(2)
		}
		if len(pids) == 0 {
			return
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(os.Stderr, "procwait: %s is still running after 30 s (process ids %v)\n", name, pids)
			os.Exit(1)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// running lists the ids of the processes whose image name is name, except
// this one.
func running(name string) ([]uint32, error) {
	snap, err := windows.CreateToolhelp32Snapshot(windows.TH32CS_SNAPPROCESS, 0)
	if err != nil {
		return nil, fmt.Errorf("CreateToolhelp32Snapshot: %w", err)
	}
	defer windows.CloseHandle(snap)
	var pids []uint32
	e := windows.ProcessEntry32{Size: uint32(unsafe.Sizeof(windows.ProcessEntry32{}))}
	for err = windows.Process32First(snap, &e); err == nil; err = windows.Process32Next(snap, &e) {
		if strings.EqualFold(windows.UTF16ToString(e.ExeFile[:]), name) && e.ProcessID != windows.GetCurrentProcessId() {
			pids = append(pids, e.ProcessID)
		}
	}
	if err != windows.ERROR_NO_MORE_FILES {
		return nil, fmt.Errorf("Process32Next: %w", err)
	}
	return pids, nil
}
