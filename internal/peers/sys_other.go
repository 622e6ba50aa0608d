//go:build !linux

package peers

import "syscall"

// childAttr: no parent-death signal outside Linux; t.Cleanup stops peers.
func childAttr() *syscall.SysProcAttr { return nil }
