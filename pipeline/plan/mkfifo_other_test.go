//go:build !unix

package plan

import "errors"

func mkfifo(string) error { return errors.New("named pipes are a Unix test fixture") }
