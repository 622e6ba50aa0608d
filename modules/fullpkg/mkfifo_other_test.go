//go:build !unix

package fullpkg

import "errors"

func mkfifo(string) error { return errors.New("named pipes are a Unix test fixture") }
