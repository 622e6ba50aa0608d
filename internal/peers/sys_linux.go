package peers

import "syscall"

// childAttr makes the kernel kill a started peer when the test binary
// dies without running its cleanups (a -timeout panic, a SIGKILL).
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
