package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/relcue/release/pipeline/cache"
	"github.com/relcue/release/pipeline/progress"
)

// verifyReport is `release cache verify --format json`.
type verifyReport struct {
	Checked  int      `json:"checked"`
	Missing  int      `json:"missing"`
	Corrupt  []string `json:"corrupt"`
	Files    int64    `json:"files"`
	Bytes    int64    `json:"bytes"`
	CacheDir string   `json:"cache"`
}

const cacheVerifyHelp = `A build trusts a cache entry whose files still have the fingerprints
(size, modification and change time, inode, device) recorded when they were
written or last verified, and hashes only those that differ. verify hashes
every file regardless, records the fingerprints afresh, and evicts entries
whose content does not match (the next build rebuilds them). Without --all it
checks the entries the configuration's targets use; with --all every entry.
It exits 1 when it evicted anything.`

func newCacheVerify(cacheDir *string) *cobra.Command {
	var c common
	var all bool
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Re-hash cache entries in full, evicting any that do not match",
		Long:  cacheVerifyHelp,
		Example: `  release cache verify -C fixtures/sample
  release cache verify --all --format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(c.format); err != nil {
				return err
			}
			if c.jobs < 0 {
				return usageError{fmt.Errorf("--jobs must be positive")}
			}
			if c.cacheDir == "" {
				c.cacheDir = *cacheDir
			}
			ctx := cmd.Context()
			store, keys, err := keysToVerify(ctx, &c, all)
			if err != nil {
				return err
			}
			rep, err := verifyKeys(ctx, store, keys, c.jobs, cmd)
			if err != nil {
				return err
			}
			if err := printVerifyReport(cmd.OutOrStdout(), rep, c.format); err != nil {
				return err
			}
			if len(rep.Corrupt) > 0 {
				return fmt.Errorf("%d corrupt cache entries evicted; the next build rebuilds them", len(rep.Corrupt))
			}
			return nil
		},
	}
	c.bind(cmd)
	cmd.Flags().BoolVar(&all, "all", false, "verify every entry in the cache, not only the configuration's")
	return cmd
}

// keysToVerify opens the cache and lists every key in it (all), or the
// keys of the configuration's targets that have a cache entry of their own
// (effects have none).
func keysToVerify(ctx context.Context, c *common, all bool) (*cache.Store, []string, error) {
	if !all {
		sess, err := c.open(ctx)
		if err != nil {
			return nil, nil, err
		}
		var keys []string
		for _, id := range sess.Graph.Order {
			if n := sess.Graph.Nodes[id]; !n.Effect {
				keys = append(keys, n.Key)
			}
		}
		return sess.Cache, keys, nil
	}
	d := c.cacheDir
	if d == "" {
		var err error
		if d, err = cache.DefaultDir(); err != nil {
			return nil, nil, err
		}
	}
	s, err := cache.Open(d)
	if err != nil {
		return nil, nil, err
	}
	keys, err := s.Keys()
	if err != nil {
		return nil, nil, err
	}
	return s, keys, nil
}

func printVerifyReport(w io.Writer, rep *verifyReport, format string) error {
	if format == "json" {
		return writeJSON(w, rep)
	}
	fmt.Fprintf(w, "verified %d entries (%d files, %s) in %s; %d not cached, %d corrupt and evicted\n",
		rep.Checked, rep.Files, progress.Bytes(rep.Bytes), rep.CacheDir, rep.Missing, len(rep.Corrupt))
	return nil
}

func verifyKeys(ctx context.Context, s *cache.Store, keys []string, jobs int, cmd *cobra.Command) (*verifyReport, error) {
	if jobs == 0 {
		jobs = runtime.NumCPU()
	}
	rep := &verifyReport{Corrupt: []string{}, CacheDir: s.Root()}
	before := s.Stats()
	for _, k := range keys {
		err := s.Verify(ctx, k, jobs)
		var corrupt *cache.CorruptError
		switch {
		case err == nil:
			rep.Checked++
		case errors.Is(err, cache.ErrNotFound):
			rep.Missing++
		case errors.As(err, &corrupt):
			rep.Checked++
			rep.Corrupt = append(rep.Corrupt, k)
			fmt.Fprintf(cmd.ErrOrStderr(), "evicted: %v\n", err)
		default:
			return nil, err
		}
	}
	after := s.Stats()
	rep.Files, rep.Bytes = after.Rehashed-before.Rehashed, after.RehashedBytes-before.RehashedBytes
	return rep, nil
}
