package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/bindguard/bindguard/internal/audit"
	"github.com/bindguard/bindguard/internal/scan"
	"github.com/bindguard/bindguard/policy"
)

func newScanCmd(s Streams) *cobra.Command {
	var (
		policyPath, failOn, category string
		all, vendored, generated     bool
		noIgnore                     bool
		maxSize                      int64
		workers                      int
	)
	var f *formatFlag
	cmd := &cobra.Command{
		Use:   "scan [PATH...]",
		Short: "Find binds and port publications in code and deployment files, judged by the policy",
		Long: `Scan source trees and deployment files for where services bind or publish ports:
Go (net.Listen*, ListenConfig, tls.Listen, http.ListenAndServe*, http.Server{Addr},
gin Run, echo Start; addresses through constants, JoinHostPort, Sprintf, +, flag
and environment defaults), Python (Flask, uvicorn, aiohttp, tornado, waitress,
socket bind, socketserver, asyncio, argparse/click defaults, gunicorn bind) and
JavaScript/TypeScript (Node listen, Express, Fastify, dgram, Bun/Deno serve),
Dockerfile CMD/ENTRYPOINT, docker compose ports and
network_mode, Kubernetes Services, hostPort and hostNetwork, redis.conf,
postgresql.conf, nginx listen and systemd socket units.

Each finding has a reach (loopback, pod network, private, public) and a verdict:
a wildcard inside a container is not a host exposure, its publication is; with
--policy (else ./bindguard.yaml, else the built-in catalogue) a finding is matched
to the service of its protocol and port and judged by that service's access class.
Suppress a finding only with a reason, in a comment on its line or the line above:
  bindguard:allow KIND -- REASON
Python and JavaScript/TypeScript are parsed with tree-sitter, so only a build with
cgo scans them; a build without cgo says how many such files it could not scan.

Exit codes: 0 nothing reported at or above --fail-on, 1 a finding at or above it,
2 error.`,
		Example: `  # Scan this tree against ./bindguard.yaml or the built-in catalogue
  bindguard scan

  # For GitHub code scanning
  bindguard scan --format sarif --policy bindguard.yaml . > bindguard.sarif

  # Everything, allowed findings included
  bindguard scan --all --format json deploy/`,
		RunE: func(cmd *cobra.Command, paths []string) error {
			never := failOn == "never"
			threshold, err := audit.ParseSeverity(failOn)
			if err != nil && !never {
				return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("--fail-on: %w, or never", err)}
			}
			if all && f.value == "sarif" {
				return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("--all lists allowed findings, which SARIF never carries; use --format json or table")}
			}
			if len(paths) == 0 {
				paths = []string{"."}
			}
			opts := scan.Options{Workers: workers, MaxFileSize: maxSize, IncludeVendored: vendored, IncludeGenerated: generated, NoIgnore: noIgnore}
			found, err := findPolicyPath(s, policyPath)
			if err != nil {
				return err
			}
			if found != "" {
				p, err := findPolicy(s, found)
				if err != nil {
					return err
				}
				opts.Policy, opts.PolicyName = p, found
			} else {
				opts.Policy, opts.PolicyName = policy.Builtin(), "the built-in catalogue"
			}
			res, err := scan.Scan(cmd.Context(), paths, opts)
			if err != nil {
				return err
			}
			switch f.value {
			case "json":
				err = scan.WriteJSON(s.Out, res, all)
			case "sarif":
				err = scan.WriteSARIF(s.Out, res, category, versionString())
			default:
				err = scan.WriteTable(s.Out, res, all)
			}
			if err != nil {
				return err
			}
			if f.value != "table" {
				for _, u := range res.Unscanned {
					fmt.Fprintf(s.Err, "bindguard: not scanned: %s\n", u)
				}
			}
			if !never && res.Fails(threshold) {
				return &exitError{Code: ExitViolation}
			}
			return nil
		},
	}
	f = addFormatFlag(cmd, "table", "table", "json", "sarif")
	cmd.Flags().StringVarP(&policyPath, "policy", "p", "", "policy file (default: ./bindguard.yaml, /etc/bindguard/bindguard.yaml, else the built-in catalogue)")
	cmd.Flags().StringVar(&failOn, "fail-on", "medium", "lowest severity of a reported finding that makes the exit code 1: info, low, medium, high or critical; never")
	cmd.Flags().BoolVar(&all, "all", false, "list allowed and suppressed findings too (table and json)")
	cmd.Flags().StringVar(&category, "category", "bindguard/scan", "SARIF automationDetails.id (GitHub code scanning's category)")
	cmd.Flags().BoolVar(&vendored, "include-vendored", false, "scan vendor/ and node_modules/ too")
	cmd.Flags().BoolVar(&generated, "include-generated", false, "scan generated Go files (// Code generated ... DO NOT EDIT.)")
	cmd.Flags().BoolVar(&noIgnore, "no-ignore", false, "disregard .gitignore files")
	cmd.Flags().Int64Var(&maxSize, "max-file-size", scan.DefaultMaxFileSize, "skip files larger than this many bytes, saying so")
	cmd.Flags().IntVar(&workers, "workers", 0, "files scanned at once (default: the number of CPUs)")
	return cmd
}
