package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/relcue/release/internal/units"
	"github.com/relcue/release/pipeline/cache"
	"github.com/relcue/release/pipeline/progress"
)

func newCache() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "cache",
		Short: "Inspect and prune the build cache",
		Example: `  release cache ls
  release cache gc --max-age 720h --max-size 20GiB
  release cache gc --all --dry-run --format json
  release cache verify --all`,
	}
	cmd.PersistentFlags().StringVar(&dir, "cache", "", "cache directory (default: $RELEASE_CACHE or the user cache dir)")
	open := func() (*cache.Store, error) {
		d := dir
		if d == "" {
			var err error
			if d, err = cache.DefaultDir(); err != nil {
				return nil, err
			}
		}
		return cache.Open(d)
	}
	cmd.AddCommand(newCacheLs(open), newCacheGC(open), newCacheVerify(&dir))
	return cmd
}

// openStore opens the cache the --cache flag names.
type openStore func() (*cache.Store, error)

func newCacheLs(open openStore) *cobra.Command {
	var format string
	ls := &cobra.Command{
		Use:     "ls",
		Short:   "List cache entries, most recently used first",
		Example: "  release cache ls\n  release cache ls --format json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			s, err := open()
			if err != nil {
				return err
			}
			list, err := s.List()
			if err != nil {
				return err
			}
			if format == "json" {
				if list == nil {
					list = []cache.EntryInfo{}
				}
				return writeJSON(cmd.OutOrStdout(), list)
			}
			printCacheList(cmd.OutOrStdout(), list, s.Root())
			return nil
		},
	}
	addFormat(ls, &format)
	return ls
}

func printCacheList(w io.Writer, list []cache.EntryInfo, root string) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tTARGET\tKIND\tSIZE\tLAST USED")
	var total int64
	for _, e := range list {
		total += e.Size
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.Key[:12], e.Target, e.Kind, progress.Bytes(e.Size), e.LastUsed.Local().Format(time.DateTime))
	}
	tw.Flush()
	fmt.Fprintf(w, "%d entries, %s in %s\n", len(list), progress.Bytes(total), root)
}

const cacheGCHelp = `gc removes entries not used for --max-age, then the least recently used
ones until the cache fits in --max-size, plus leftovers of interrupted builds.
With no rule given it removes only corrupt entries and leftovers.

gc is safe to run while builds run: entries that a running build holds are
never removed, nor is anything a running build is writing (its scratch
directories and in-flight downloads in v1/tmp, each held under the build's
lease lock). What a build that was killed left behind goes at the next gc.`

func newCacheGC(open openStore) *cobra.Command {
	var o cache.GCOptions
	var maxSize, format string
	gc := &cobra.Command{
		Use:   "gc",
		Short: "Remove cache entries by age and size (entries in use are kept)",
		Long:  cacheGCHelp,
		Example: `  release cache gc --max-age 720h
  release cache gc --max-size 20GiB --dry-run
  release cache gc --all
  release cache gc --cache /var/cache/release --max-age 168h   # from cron, beside running builds`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			if maxSize != "" {
				n, err := units.ParseBytes(maxSize)
				if err != nil {
					return usageError{fmt.Errorf("--max-size: %w", err)}
				}
				o.MaxSize = n
			}
			s, err := open()
			if err != nil {
				return err
			}
			rep, err := s.GC(o)
			if err != nil {
				return err
			}
			if format == "json" {
				return writeJSON(cmd.OutOrStdout(), rep)
			}
			printGCReport(cmd.OutOrStdout(), rep, o.DryRun)
			return nil
		},
	}
	gc.Flags().DurationVar(&o.MaxAge, "max-age", 0, "remove entries unused for longer than this (e.g. 720h)")
	gc.Flags().StringVar(&maxSize, "max-size", "", "keep the cache under this size (e.g. 20GiB, 500MB)")
	gc.Flags().BoolVar(&o.All, "all", false, "remove every entry")
	gc.Flags().BoolVar(&o.DryRun, "dry-run", false, "report what would be removed")
	addFormat(gc, &format)
	return gc
}

func printGCReport(w io.Writer, rep *cache.GCReport, dryRun bool) {
	verb := "removed"
	if dryRun {
		verb = "would remove"
	}
	fmt.Fprintf(w, "%s %d entries (%s); kept %d (%s)", verb, len(rep.Removed), progress.Bytes(rep.FreedBytes), rep.Kept, progress.Bytes(rep.KeptBytes))
	if len(rep.SkippedInUse) > 0 {
		fmt.Fprintf(w, "; %d in use by a running build", len(rep.SkippedInUse))
	}
	fmt.Fprintln(w)
}
