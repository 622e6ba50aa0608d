package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/relcue/release/internal/netx"
	"github.com/relcue/release/pipeline/cache"
	"github.com/relcue/release/pipeline/remotecache"
	"github.com/relcue/release/pipeline/step"
)

// remoteFlags are the build's remote cache flags.
type remoteFlags struct {
	both, from, to      string
	plainHTTP, insecure bool
	// net bounds the requests to the registry (from the --net-* flags).
	net netx.Config
}

func (f *remoteFlags) bind(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.both, "remote-cache", "", "share results through this registry repository, oci://host[:port]/repo (pull and push)")
	cmd.Flags().StringVar(&f.from, "cache-from", "", "pull results from this registry repository (oci://host/repo)")
	cmd.Flags().StringVar(&f.to, "cache-to", "", "push built results to this registry repository (oci://host/repo)")
	cmd.Flags().BoolVar(&f.plainHTTP, "remote-cache-plain-http", false, "talk plain HTTP to the remote cache's registry (one on loopback)")
	cmd.Flags().BoolVar(&f.insecure, "remote-cache-insecure", false, "accept a TLS certificate of the remote cache's registry that does not verify")
}

// remotes pulls from one repository and pushes to another (often the same).
type remotes struct{ from, to *remotecache.Remote }

func (r *remotes) Fetch(ctx context.Context, key string, info cache.Info, outDir string) ([]step.Artifact, error) {
	if r.from == nil {
		return nil, remotecache.ErrMiss
	}
	return r.from.Fetch(ctx, key, info, outDir)
}

func (r *remotes) Push(ctx context.Context, e *cache.Entry) {
	if r.to != nil {
		r.to.Push(ctx, e)
	}
}

// summary says what the build did with the remote cache ("" without one).
func (r *remotes) summary() string {
	if r == nil {
		return ""
	}
	var pulled, pushed, refused int
	seen := map[*remotecache.Remote]bool{}
	var names []string
	for _, x := range []*remotecache.Remote{r.from, r.to} {
		if x == nil || seen[x] {
			continue
		}
		seen[x] = true
		names = append(names, x.Ref().String())
		s := x.Stats()
		pulled, pushed, refused = pulled+s.Pulled, pushed+s.Pushed, refused+s.Rejected
	}
	return fmt.Sprintf("%v: %d pulled, %d pushed, %d refused", names, pulled, pushed, refused)
}

func (f *remoteFlags) open(warn func(string, ...any)) (*remotes, error) {
	from, to := f.from, f.to
	if f.both != "" {
		if from != "" || to != "" {
			return nil, usageError{fmt.Errorf("--remote-cache is --cache-from and --cache-to in one; give either it or those")}
		}
		from, to = f.both, f.both
	}
	if from == "" && to == "" {
		if f.plainHTTP || f.insecure {
			return nil, usageError{fmt.Errorf("--remote-cache-plain-http and --remote-cache-insecure need --remote-cache, --cache-from or --cache-to")}
		}
		return nil, nil
	}
	open := func(s string, pull, push bool) (*remotecache.Remote, error) {
		ref, err := remotecache.ParseRef(s)
		if err != nil {
			return nil, usageError{err}
		}
		return remotecache.New(ref, remotecache.Options{PlainHTTP: f.plainHTTP, Insecure: f.insecure, Pull: pull, Push: push, Warn: warn, Net: f.net})
	}
	r := &remotes{}
	var err error
	if from == to {
		if r.from, err = open(from, true, true); err != nil {
			return nil, err
		}
		r.to = r.from
		return r, nil
	}
	if from != "" {
		if r.from, err = open(from, true, false); err != nil {
			return nil, err
		}
	}
	if to != "" {
		if r.to, err = open(to, false, true); err != nil {
			return nil, err
		}
	}
	return r, nil
}
