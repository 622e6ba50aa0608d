package main

import (
	"errors"
	"fmt"
	"runtime"
	"strings"

	"github.com/spf13/cobra"

	"github.com/relcue/release/modules/apply"
	"github.com/relcue/release/modules/codesign"
	"github.com/relcue/release/modules/pkgzip"
)

func newApply() *cobra.Command {
	var o apply.Options
	var sf signatureFlags
	var dir, format string
	var quiet, recover bool
	cmd := &cobra.Command{
		Use:   "apply DELTA.zip --install-dir DIR | apply --recover --install-dir DIR",
		Short: "Apply a delta package to an installation, verified and atomic",
		Long: `apply upgrades an installation in place with a delta package. It refuses
an installation whose VERSION is not the delta's base, checks the hash of
every file the delta replaces or removes and of every unchanged file of the
target before touching anything, stages the new files, commits them under a
journal, and verifies every target hash. If the process dies part-way, the
next apply (or any apply) finishes or rolls back the interrupted one first:
the installation is always the old or the new version. --recover does only
that recovery, without a delta. The installation's record
(.release-installed.json) is updated in the same commit, so that
'release verify --install-dir DIR' can check it afterwards.

--force is dangerous. It turns a wrong installed version and installed files
that are not what the delta expects into warnings, and then writes only the
files the delta ships: every other file stays as it is, so the result is the
target version only if those files already were. Before writing, apply says
what it will not guarantee; afterwards it checks the whole installation
against the target and, if it differs, exits 1 listing every missing, extra
and changed file (the installation stays as written and 'release verify
--install-dir' shows the same list). The repair is the target's full
package, installed into a new directory. Use the delta made for the installed
version instead whenever there is one.`,
		Example: `  release apply k2s-delta-1.4.0-to-1.5.0.zip --install-dir /opt/k2s --dry-run
  release apply k2s-delta-1.4.0-to-1.5.0.zip --install-dir /opt/k2s
  release verify --install-dir /opt/k2s
  release apply d.zip --install-dir /opt/k2s --format json
  release apply --recover --install-dir /opt/k2s
  release apply d.zip --install-dir /opt/k2s --require-signed --trusted-cert signer.pem
  release apply k2s-delta-1.4.0-to-1.5.0.zip --install-dir /opt/k2s --force --dry-run   # what --force would override`,
		Args: func(cmd *cobra.Command, args []string) error {
			if recover {
				return cobra.NoArgs(cmd, args)
			}
			return cobra.ExactArgs(1)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			if err := checkFormat(format); err != nil {
				return err
			}
			if dir == "" {
				return usageError{fmt.Errorf("--install-dir is required")}
			}
			if o.Workers <= 0 {
				o.Workers = runtime.NumCPU()
			}
			if _, err := pkgzip.ParsePathPolicy(string(o.Paths)); err != nil {
				return usageError{fmt.Errorf("--paths: %w", err)}
			}
			if o.Signatures, err = sf.load(); err != nil {
				return err
			}
			rep := reporter(quiet)
			t := rep.Start(dir, "apply")
			o.Progress = t.Add
			o.Log = t.Log()
			// Shown even with -q: it is what --force does not guarantee.
			o.Notice = func(msg string) { rep.Printf("warning: %s", msg) }
			var r *apply.Report
			if recover {
				r, err = apply.Recover(cmd.Context(), dir)
			} else {
				r, err = apply.Apply(cmd.Context(), args[0], dir, o)
			}
			var mismatch *apply.ResultError
			if errors.As(err, &mismatch) {
				// The list follows once, in the final error.
				t.Done("done", errors.New(mismatch.Summary()))
			} else {
				t.Done("done", err)
			}
			rep.Close()
			if err != nil && mismatch == nil {
				return err
			}
			// A forced apply whose result is not the target did write:
			// say what, then fail with every difference.
			if format == "json" {
				if werr := writeJSON(cmd.OutOrStdout(), r); werr != nil {
					return werr
				}
			} else {
				fmt.Fprintln(cmd.OutOrStdout(), r)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "install-dir", "", "the installation to upgrade")
	f.BoolVar(&o.DryRun, "dry-run", false, "check everything and report what would change; touch nothing")
	f.BoolVar(&o.Force, "force", false, "dangerous: apply even if the installed VERSION or installed files do not match the delta's base; only the delta's files are written, and the result is checked against the target afterwards (exit 1 with every difference)")
	f.BoolVar(&recover, "recover", false, "only finish or roll back an interrupted apply")
	f.IntVarP(&o.Workers, "jobs", "j", 0, "parallel hashing workers (default: number of CPUs)")
	f.StringVar((*string)(&o.Paths), "paths", string(pkgzip.PathsWindows), pathsHelp)
	f.BoolVarP(&quiet, "quiet", "q", false, "no progress output")
	sf.bind(cmd, "refuse the delta unless every .exe/.dll/.ps1/... it writes carries a valid Authenticode signature by --trusted-cert")
	addFormat(cmd, &format)
	return cmd
}

// signatureFlags are --require-signed, --trusted-cert and
// --signed-extensions.
type signatureFlags struct {
	require bool
	trusted []string
	exts    []string
}

func (sf *signatureFlags) bind(cmd *cobra.Command, requireHelp string) {
	f := cmd.Flags()
	f.BoolVar(&sf.require, "require-signed", false, requireHelp)
	f.StringArrayVar(&sf.trusted, "trusted-cert", nil, "a trusted signer: its certificate, or a CA it chains to (PEM or DER; repeatable)")
	f.StringSliceVar(&sf.exts, "signed-extensions", nil, "the signable files (default "+strings.Join(codesign.DefaultExtensions, ",")+")")
}

func (sf *signatureFlags) load() (*apply.Signatures, error) {
	if sf.require && len(sf.trusted) == 0 {
		return nil, usageError{fmt.Errorf("--require-signed needs --trusted-cert, the certificate (or CA) of the signer you trust")}
	}
	if len(sf.exts) > 0 {
		if err := codesign.CheckExtensions(sf.exts); err != nil {
			return nil, usageError{fmt.Errorf("--signed-extensions: %w", err)}
		}
	}
	s := &apply.Signatures{Require: sf.require, Extensions: sf.exts}
	for _, p := range sf.trusted {
		certs, err := codesign.LoadCertificates(p)
		if err != nil {
			return nil, usageError{fmt.Errorf("--trusted-cert: %w", err)}
		}
		s.Trusted = append(s.Trusted, certs...)
	}
	return s, nil
}

func newVerify() *cobra.Command {
	var format, installDir string
	var jobs int
	var sf signatureFlags
	var lf layoutFlags
	cmd := &cobra.Command{
		Use:   "verify FILE.zip... | verify --install-dir DIR [PACKAGE.zip] [DELTA.zip...]",
		Short: "Check packages against their manifests, or an installation against what it should hold",
		Long: `verify reads each package streaming and checks every entry: a full package
against its package-manifest.json, a delta package against the target hashes
in its delta-manifest.json; zip CRCs are checked too. Every Authenticode
signature on a shipped .exe, .dll or PowerShell file is checked against the
file; --require-signed also refuses unsigned files and signers not trusted
by --trusted-cert. A package's SBOM (<package>.cdx.json beside it in dist/)
is checked against the package when present. Exit code 1 if any package
fails.

With --install-dir, verify checks an installation instead and reports every
missing, extra and changed file (not only the first), with both SHA-256s;
exit code 1 if anything differs. It changes nothing. What the installation
should hold comes from:

  - the arguments: the full package it was installed from (with the same
    --profile or -C as 'release install') and the deltas applied to it
    since, in order; or deltas only, the first one's target package being
    the start;
  - without arguments, the installation's record (.release-installed.json),
    which 'release install' writes and every 'release apply' updates;
  - without a record, its package-manifest.json (with --profile's layout).

Files the skip rules leave to the product (cluster-local configuration,
addons/ under the k2s profile, ...) are not judged, only counted; nor is
release's own state (.release-apply*, the record).`,
		Example: `  release verify dist/packages/k2s-1.5.0.zip
  release verify dist/deltas/*.zip --format json
  release verify dist/packages/k2s-1.5.0.zip --require-signed --trusted-cert signer.pem
  release verify --install-dir /opt/k2s
  release verify --install-dir /opt/k2s --format json
  release verify --install-dir /opt/k2s dist/packages/k2s-1.5.0.zip --profile k2s
  release verify --install-dir /opt/k2s k2s-1.4.0.zip k2s-delta-1.4.0-to-1.5.0.zip --profile k2s`,
		Args: func(cmd *cobra.Command, args []string) error {
			if installDir != "" {
				return nil
			}
			return cobra.MinimumNArgs(1)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			if jobs <= 0 {
				jobs = runtime.NumCPU()
			}
			if installDir != "" {
				return verifyInstallation(cmd, installDir, args, jobs, format, &lf, &sf)
			}
			if lf.given(cmd) {
				return usageError{fmt.Errorf("--profile and -C describe an installation; give them with --install-dir")}
			}
			sig, err := sf.load()
			if err != nil {
				return err
			}
			var reports []any
			failed := 0
			for _, p := range args {
				r, err := apply.VerifySigned(cmd.Context(), p, jobs, sig)
				if err != nil {
					failed++
					reports = append(reports, map[string]any{"path": p, "ok": false, "error": err.Error()})
					if format != "json" {
						fmt.Fprintf(cmd.ErrOrStderr(), "release: %s: %v\n", p, err)
					}
					continue
				}
				reports = append(reports, r)
				if format != "json" {
					fmt.Fprintln(cmd.OutOrStdout(), r)
				}
			}
			if format == "json" {
				if err := writeJSON(cmd.OutOrStdout(), reports); err != nil {
					return err
				}
			}
			if failed > 0 {
				return &silentError{code: exitFailure}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVarP(&jobs, "jobs", "j", 0, "parallel hashing workers (default: number of CPUs)")
	f.StringVar(&installDir, "install-dir", "", "check this installation (against the packages and deltas given, else its record)")
	lf.bind(cmd, "", "with --install-dir and a full package: how it was installed (generic: its files only; k2s: bin/WindowsNodeArtifacts.zip unpacked as K2s's installer does; default: as the installation's record says, else generic)",
		"with --install-dir and a full package: take the archives it was installed with from this configuration's deltas.nested")
	sf.bind(cmd, "fail unless every signable file carries a valid Authenticode signature by --trusted-cert")
	addFormat(cmd, &format)
	return cmd
}

// verifyInstallation is verify --install-dir: every difference on stdout
// (text or one-element JSON list, like verify's), exit code 1 if any.
func verifyInstallation(cmd *cobra.Command, dir string, sources []string, jobs int, format string, lf *layoutFlags, sf *signatureFlags) error {
	if sf.require || len(sf.trusted) > 0 || len(sf.exts) > 0 {
		return usageError{fmt.Errorf("--require-signed, --trusted-cert and --signed-extensions check packages; verify the package, then the installation against it")}
	}
	opts := apply.CheckOptions{Sources: sources, Workers: jobs}
	if lf.given(cmd) {
		layout, err := lf.load(cmd)
		if err != nil {
			return err
		}
		opts.Layout = &layout
	}
	rep := reporter(format == "json")
	t := rep.Start(dir, "verify")
	opts.Progress = t.Add
	chk, err := apply.VerifyInstallation(cmd.Context(), dir, opts)
	t.Done("verified", err)
	rep.Close()
	if err != nil {
		if format != "json" {
			return err
		}
		if werr := writeJSON(cmd.OutOrStdout(), []any{map[string]any{"installDir": dir, "ok": false, "error": err.Error()}}); werr != nil {
			return werr
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "release: %v\n", err)
		return &silentError{code: exitFailure}
	}
	if format == "json" {
		if err := writeJSON(cmd.OutOrStdout(), []any{chk}); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(cmd.OutOrStdout(), chk)
	}
	if !chk.OK {
		return &silentError{code: exitFailure}
	}
	return nil
}
