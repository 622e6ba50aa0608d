package winetest

import "syscall"

// serverAttr makes the kernel kill the wineserver when the process that
// started it dies without calling Close (a test binary's -timeout panic, a
// SIGKILL): Wine's processes in the prefix exit when their server goes.
func serverAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
