package main

import (
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
an installation whose VERSION is not the delta's base (unless --force),
checks the hash of every file before touching anything, stages the new files,
commits them under a journal, and verifies every target hash. If the process
dies part-way, the next apply (or any apply) finishes or rolls back the
interrupted one first: the installation is always the old or the new version.
--recover does only that recovery, without a delta.`,
		Example: `  release apply k2s-delta-1.4.0-to-1.5.0.zip --install-dir /opt/k2s --dry-run
  release apply k2s-delta-1.4.0-to-1.5.0.zip --install-dir /opt/k2s
  release apply d.zip --install-dir /opt/k2s --format json
  release apply --recover --install-dir /opt/k2s
  release apply d.zip --install-dir /opt/k2s --require-signed --trusted-cert signer.pem`,
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
			var r *apply.Report
			if recover {
				r, err = apply.Recover(cmd.Context(), dir)
			} else {
				r, err = apply.Apply(cmd.Context(), args[0], dir, o)
			}
			t.Done("done", err)
			rep.Close()
			if err != nil {
				return err
			}
			if format == "json" {
				return writeJSON(cmd.OutOrStdout(), r)
			}
			fmt.Fprintln(cmd.OutOrStdout(), r)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "install-dir", "", "the installation to upgrade")
	f.BoolVar(&o.DryRun, "dry-run", false, "check everything and report what would change; touch nothing")
	f.BoolVar(&o.Force, "force", false, "apply even if the installed VERSION or installed files do not match the delta's base (mismatches become warnings)")
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
	var format string
	var jobs int
	var sf signatureFlags
	cmd := &cobra.Command{
		Use:   "verify FILE.zip...",
		Short: "Check full or delta packages against their manifests",
		Long: `verify reads each package streaming and checks every entry: a full package
against its package-manifest.json, a delta package against the target hashes
in its delta-manifest.json; zip CRCs are checked too. Every Authenticode
signature on a shipped .exe, .dll or PowerShell file is checked against the
file; --require-signed also refuses unsigned files and signers not trusted
by --trusted-cert. A package's SBOM (<package>.cdx.json beside it in dist/)
is checked against the package when present. Exit code 1 if any package
fails.`,
		Example: `  release verify dist/packages/k2s-1.5.0.zip
  release verify dist/deltas/*.zip --format json
  release verify dist/packages/k2s-1.5.0.zip --require-signed --trusted-cert signer.pem`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(format); err != nil {
				return err
			}
			if jobs <= 0 {
				jobs = runtime.NumCPU()
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
	cmd.Flags().IntVarP(&jobs, "jobs", "j", 0, "parallel hashing workers (default: number of CPUs)")
	sf.bind(cmd, "fail unless every signable file carries a valid Authenticode signature by --trusted-cert")
	addFormat(cmd, &format)
	return cmd
}
