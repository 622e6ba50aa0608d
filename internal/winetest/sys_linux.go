package winetest

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// serverAttr makes the kernel kill the wineserver when the process that
// started it dies without calling Close (a test binary's -timeout panic, a
// SIGKILL): Wine's processes in the prefix exit when their server goes.
func serverAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// serverDirs are the directories the wineserver of prefix keeps its socket
// and lock in: server-<dev>-<inode> of the prefix, in hex, below a
// wine-XXXXXX directory of the temporary directory (Debian's Wine; upstream
// uses /tmp/.wine-<uid>). Wine leaves them behind, lock file and all, when
// its server exits.
func serverDirs(prefix string) []string {
	var st syscall.Stat_t
	if err := syscall.Stat(prefix, &st); err != nil {
		return nil
	}
	name := fmt.Sprintf("server-%x-%x", st.Dev, st.Ino)
	var dirs []string
	for _, pattern := range []string{
		filepath.Join(os.TempDir(), "wine-*", name),
		filepath.Join("/tmp", fmt.Sprintf(".wine-%d", os.Getuid()), name),
	} {
		m, _ := filepath.Glob(pattern)
		dirs = append(dirs, m...)
	}
	return dirs
}
