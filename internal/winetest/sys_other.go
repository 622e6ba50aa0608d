//go:build !linux

package winetest

import "syscall"

// serverAttr: only Linux can tie the wineserver's life to ours.
func serverAttr() *syscall.SysProcAttr { return nil }

// serverDirs: elsewhere Wine's server directory is not looked for.
func serverDirs(string) []string { return nil }
