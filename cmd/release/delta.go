package main

import (
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/spf13/cobra"

	"github.com/relcue/release/internal/glob"
	"github.com/relcue/release/modules/delta"
	"github.com/relcue/release/modules/pkgzip"
	"github.com/relcue/release/pipeline/config"
)

const deltaHelp = `delta compares two full packages (zips with VERSION at the root, from
release or any other tool) and writes a delta package holding the added and
changed files, wholesale directories complete, and delta-manifest.json with
per-file SHA-256 of base and target so that 'release apply' can verify. Files
are hashed streaming from the zips (or taken from their package-manifest.json)
and changed entries are copied without recompression.

With --profile k2s the delta is one K2s's own upgrade code applies: it carries
Apply-Delta.ps1, the files K2s's entry points need even when unchanged,
debian-delta/ and image-delta/ made from the control plane's node packages
(--from-node, --to-node), the changed members of bin/WindowsNodeArtifacts.zip
at the paths K2s installs them to, K2s's skip rules, and a manifest with a
UTF-8 byte order mark; both versions must be X.Y.Z of one major
(docs/packages.md, "The k2s profile"). --whole-dir, --skip, --skip-name and
--always replace the profile's defaults.

With --mode binary (generic profile only), every changed file of at least
--patch-threshold bytes is shipped as a zstd patch against its base file when
that is smaller than the file's compressed entry; only 'release apply' installs
such a delta (it checks the base before and the result after).`

const deltaExamples = `  release delta --from k2s-1.4.0.zip --to k2s-1.5.0.zip -o k2s-delta-1.4.0-to-1.5.0.zip
  release delta --profile k2s --from k2s-1.4.0.zip --to k2s-1.5.0.zip \
      --from-node k2s-node-debian12-1.4.0.zip --to-node k2s-node-debian12-1.5.0.zip -o k2s-delta-1.4.0-to-1.5.0.zip
  release delta --from a.zip --to b.zip -o d.zip --whole-dir bin/cni --whole-dir bin/kube
  release delta --from a.zip --to b.zip -o d.zip --skip 'etc/kubernetes/pki/**' --format json
  release delta --from k2s-1.4.0.zip --to k2s-1.5.0.zip -o d.zip --mode binary`

// pathsHelp documents --paths of delta and apply.
const pathsHelp = `windows: refuse paths a Windows installation cannot hold (CON, NUL, COM1..., a trailing dot or space, <>:"|?*, control characters); posix: allow them, for installations never on Windows`

func newDelta() *cobra.Command {
	var o delta.Options
	var date, format, profile string
	var quiet bool
	cmd := &cobra.Command{
		Use:     "delta --from A.zip --to B.zip -o D.zip",
		Short:   "Make a delta package between two full package zips",
		Long:    deltaHelp,
		Example: deltaExamples,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			if err := completeDeltaOptions(cmd, &o, date, profile); err != nil {
				return err
			}
			return runDelta(cmd, o, format, quiet)
		},
	}
	bindDeltaFlags(cmd, &o, &date, &quiet)
	cmd.Flags().StringVar(&profile, "profile", config.ProfileGeneric, "generic: release's own format; k2s: a delta K2s's own upgrade code applies (needs --from-node and --to-node)")
	addFormat(cmd, &format)
	return cmd
}

func bindDeltaFlags(cmd *cobra.Command, o *delta.Options, date *string, quiet *bool) {
	f := cmd.Flags()
	f.StringVar(&o.Base, "from", "", "base full package zip")
	f.StringVar(&o.Target, "to", "", "target full package zip")
	f.StringVarP(&o.Output, "output", "o", "", "delta zip to write")
	f.StringVar(&o.BaseNode, "from-node", "", "the control plane's node package of the base release (fills the package and image diffs; needed by --profile k2s)")
	f.StringVar(&o.TargetNode, "to-node", "", "the control plane's node package of the target release")
	// The defaults are the profile's, as in a configuration (the schema's
	// #DefaultSkip, #K2sSkip, ...), filled in once --profile is known.
	f.StringArrayVar(&o.WholeDirectories, "whole-dir", nil, "directory shipped complete and replaced wholesale (repeatable; replaces the default: bin/cni)")
	f.StringArrayVar(&o.Skip, "skip", nil, "glob of paths left out of the delta, \"(?i)\" first for any letter case (repeatable; replaces the profile's defaults)")
	f.StringArrayVar(&o.SkipNames, "skip-name", nil, "file name left out in every directory, any letter case (repeatable; replaces the profile's defaults)")
	f.StringArrayVar(&o.Always, "always", nil, "target path shipped even when unchanged (repeatable; replaces the profile's defaults)")
	f.StringVar(date, "date", "", "timestamp for entries and GeneratedUtc, RFC3339 (default: $SOURCE_DATE_EPOCH or 1980-01-01)")
	f.IntVar(&o.Level, "level", 6, "deflate level 1..9 for new entries")
	f.StringVar(&o.Mode, "mode", delta.ModeFile, "file: ship changed files whole (K2s); binary: ship changed files as patches against their base where smaller")
	f.Int64Var(&o.PatchThreshold, "patch-threshold", delta.DefaultPatchThreshold, "smallest changed file (bytes) tried as a patch in binary mode")
	f.Int64Var(&o.PatchMemory, "patch-memory", delta.DefaultPatchMemory, "memory (bytes) the patches made at once may use; each holds its base and target plus ~128 MiB per frame in flight")
	f.IntVarP(&o.Workers, "jobs", "j", 0, "parallel hashing workers (default: number of CPUs)")
	f.StringVar((*string)(&o.Paths), "paths", string(pkgzip.PathsWindows), pathsHelp)
	f.BoolVarP(quiet, "quiet", "q", false, "no progress output")
}

// completeDeltaOptions checks the flags and fills in the profile's
// defaults for the list flags not given, the date (--date, else
// $SOURCE_DATE_EPOCH, else 1980-01-01) and the number of workers.
func completeDeltaOptions(cmd *cobra.Command, o *delta.Options, date, profile string) error {
	if o.Base == "" || o.Target == "" || o.Output == "" {
		return usageError{fmt.Errorf("--from, --to and -o are required")}
	}
	pd, err := config.DefaultsOf(profile)
	if err != nil {
		return usageError{fmt.Errorf("--profile: %w", err)}
	}
	for _, l := range []struct {
		flag string
		dst  *[]string
		def  []string
	}{{"whole-dir", &o.WholeDirectories, pd.WholeDirectories}, {"skip", &o.Skip, pd.Skip}, {"skip-name", &o.SkipNames, pd.SkipNames}, {"always", &o.Always, pd.Always}} {
		if !cmd.Flags().Changed(l.flag) {
			*l.dst = l.def
		}
	}
	if profile == config.ProfileK2s {
		o.Profile = delta.ProfileK2s
		if o.Mode == delta.ModeBinary {
			return usageError{fmt.Errorf("--mode binary with --profile k2s: %w", delta.ErrBinaryK2s)}
		}
		if o.BaseNode == "" || o.TargetNode == "" {
			return usageError{fmt.Errorf("--profile k2s needs --from-node and --to-node, the control plane's node packages of both releases, to make debian-delta/ (without it K2s's apply skips the control plane's packages and kubeadm upgrade but still moves VERSION)")}
		}
		o.Nested = delta.NestedOf(pd.Nested)
		o.ApplyScript = delta.ApplyScriptOf(pd.ApplyScript)
	}
	if o.PatchThreshold < 0 || o.PatchMemory < 0 {
		return usageError{fmt.Errorf("--patch-threshold and --patch-memory are sizes in bytes; they cannot be negative")}
	}
	if o.Mode != delta.ModeFile && o.Mode != delta.ModeBinary {
		return usageError{fmt.Errorf("--mode %q: want %s or %s", o.Mode, delta.ModeFile, delta.ModeBinary)}
	}
	if _, err := pkgzip.ParsePathPolicy(string(o.Paths)); err != nil {
		return usageError{fmt.Errorf("--paths: %w", err)}
	}
	for _, p := range append(append([]string{}, o.Skip...), o.WholeDirectories...) {
		if err := glob.Validate(p); err != nil {
			return usageError{err}
		}
	}
	if date != "" {
		t, err := time.Parse(time.RFC3339, date)
		if err != nil {
			return usageError{fmt.Errorf("--date: %w", err)}
		}
		o.Date = t.UTC()
	} else if o.Date, _ = sourceDateEpoch(); o.Date.IsZero() {
		o.Date = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if o.Workers <= 0 {
		o.Workers = runtime.NumCPU()
	}
	return nil
}

func runDelta(cmd *cobra.Command, o delta.Options, format string, quiet bool) error {
	rep := reporter(quiet)
	t := rep.Start(o.Output, "delta")
	o.Progress = t.Add
	o.Log = t.Log()
	m, err := delta.Build(cmd.Context(), o)
	err = pkgzip.Hint(err, "pass --paths posix if the product is never installed on Windows")
	t.Done("written", err)
	rep.Close()
	if err != nil {
		return err
	}
	if format == "json" {
		return writeJSON(cmd.OutOrStdout(), m)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s: %s -> %s: %d added, %d changed (%d as patches), %d removed\n",
		o.Output, m.BaseVersion, m.TargetVersion, m.AddedCount, m.ChangedCount, len(m.Patches), m.RemovedCount)
	return nil
}

func sourceDateEpoch() (time.Time, error) {
	v := os.Getenv("SOURCE_DATE_EPOCH")
	if v == "" {
		return time.Time{}, nil
	}
	var sec int64
	if _, err := fmt.Sscan(v, &sec); err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q: %w", v, err)
	}
	return time.Unix(sec, 0).UTC(), nil
}
