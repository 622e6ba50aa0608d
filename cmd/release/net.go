package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/relcue/release/internal/netx"
)

// netFlags are the time limits of a build's network operations; a flag
// that is set wins over its RELEASE_NET_* variable, which wins over the
// default.
type netFlags struct {
	connect, timeout time.Duration
	lowSpeed         string
	attempts         int
}

func (f *netFlags) bind(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.DurationVar(&f.connect, "net-connect-timeout", netx.DefaultConnect, "longest wait to open a connection, and again for its TLS handshake (or $"+netx.ConnectSetting.Env+")")
	fl.DurationVar(&f.timeout, "net-timeout", netx.DefaultTimeout, "longest wait for a server to answer a request, and the window of --net-low-speed (or $"+netx.TimeoutSetting.Env+")")
	fl.StringVar(&f.lowSpeed, "net-low-speed", "1KiB", "slowest transfer accepted, bytes per second over each --net-timeout window (or $"+netx.LowSpeedSetting.Env+")")
	fl.IntVar(&f.attempts, "net-attempts", netx.DefaultAttempts, "tries of a download or registry request that failed transiently (or $"+netx.AttemptsSetting.Env+")")
}

func (f *netFlags) config(cmd *cobra.Command) (netx.Config, error) {
	c, err := netx.FromEnv(os.Getenv)
	if err != nil {
		return c, usageError{err}
	}
	fl := cmd.Flags()
	if fl.Changed("net-connect-timeout") {
		if f.connect <= 0 {
			return c, usageError{fmt.Errorf("--net-connect-timeout must be positive")}
		}
		c.Connect = f.connect
	}
	if fl.Changed("net-timeout") {
		if f.timeout <= 0 {
			return c, usageError{fmt.Errorf("--net-timeout must be positive")}
		}
		c.Timeout = f.timeout
	}
	if fl.Changed("net-low-speed") {
		if c.LowSpeed, err = netx.ParseRate(f.lowSpeed); err != nil {
			return c, usageError{fmt.Errorf("--net-low-speed: %w", err)}
		}
	}
	if fl.Changed("net-attempts") {
		if f.attempts < 1 {
			return c, usageError{fmt.Errorf("--net-attempts must be at least 1")}
		}
		c.Attempts = f.attempts
	}
	return c, nil
}
