//go:build !unix

package deb

import "testing"

func mkfifo(t *testing.T, dir string) string {
	t.Skip("named pipes need a Unix system")
	return ""
}
