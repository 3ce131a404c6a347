package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/bindguard/bindguard/internal/audit"
	"github.com/bindguard/bindguard/internal/observe"
	"github.com/bindguard/bindguard/internal/proc"
	"github.com/bindguard/bindguard/internal/report"
	"github.com/bindguard/bindguard/policy"
)

// Policy files looked for when --policy is not given, in order; then the built-in catalogue.
var defaultPolicyPaths = []string{"bindguard.yaml", "/etc/bindguard/bindguard.yaml"}

// auditGCPercent is the garbage collector's GOGC during an audit: at 10,000 listeners it saves
// about a tenth of the wall time against the default 100, for ~5 MiB more peak RSS
// (docs/performance.md). With a soft memory limit (main sets 40 MiB unless GOMEMLIMIT is set)
// the collector is off instead until the heap nears the limit (auditGCPercentLimited): an
// audit of 10,000 listeners then never collects, and a larger one is bounded by the limit
// either way (with GOGC 400 the limit was already what triggered its collections).
const (
	auditGCPercent        = 400
	auditGCPercentLimited = -1
)

// auditGC is the GOGC an audit runs with, given the soft memory limit.
func auditGC(limit int64) int {
	if limit < math.MaxInt64 {
		return auditGCPercentLimited
	}
	return auditGCPercent
}

// observeFlags are the flags that say what to observe, shared by audit and init.
type observeFlags struct {
	source    formatFlag
	ownerScan formatFlag
	procRoot  string
	netns     string
	netnsDir  string
}

func (o *observeFlags) add(cmd *cobra.Command) {
	o.source.value = string(observe.SourceAuto)
	for _, s := range observe.Sources() {
		o.source.allowed = append(o.source.allowed, string(s))
	}
	cmd.Flags().Var(&o.source, "source", "where sockets are read: auto (netlink, /proc/net where it fails), netlink or procfs")
	o.ownerScan.value = string(proc.OwnerScanAuto)
	for _, s := range proc.OwnerScans() {
		o.ownerScan.allowed = append(o.ownerScan.allowed, string(s))
	}
	cmd.Flags().Var(&o.ownerScan, "owner-scan", "how socket owners are found: auto (bpf from 1000 processes where it loads, else procfs), procfs (every /proc/PID/fd link) or bpf (a kernel task_file iterator; root)")
	cmd.Flags().StringVar(&o.procRoot, "proc-root", "/proc", "procfs root (another tree implies --source procfs)")
	cmd.Flags().StringVar(&o.netns, "netns", "", "network namespace: current (bindguard's own), all, or a `NAME|PATH`: an ip-netns name, a label, or a file such as /proc/PID/ns/net")
	cmd.Flags().StringVar(&o.netnsDir, "netns-dir", "/run/netns", "where named network namespaces are pinned")
}

// options are the observe options the flags describe.
func (o *observeFlags) options() observe.Options {
	netns := o.netns
	if netns == "current" {
		netns = observe.NetnsCurrent
	}
	return observe.Options{
		ProcRoot: o.procRoot, NetnsDir: o.netnsDir, Source: observe.Source(o.source.value), Netns: netns,
		OwnerScan: proc.OwnerScan(o.ownerScan.value),
	}
}

func (o *observeFlags) observe() (*observe.Snapshot, error) { return observe.Observe(o.options()) }

func newAuditCmd(s Streams) *cobra.Command {
	var (
		policyPath string
		failOn     string
		host       string
		output     string
		prefix     string
		complete   bool
		obs        observeFlags
	)
	var f *formatFlag
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Judge every listening socket, with its owner, against the policy",
		Long: `Audit the listening sockets (TCP LISTEN and bound UDP, IPv4 and IPv6) of this
host's network namespace, or of every namespace with --netns all, with the
process, user, systemd unit and container that own each, against the policy.

Each (namespace, protocol, address, port) is one finding: valid, invalid (bound
where its access class forbids, wider than declared, or by another process),
missing (declared, not listening) or unexpected (listening, not declared), with
a severity and a reason. The score is 0-100 (docs/audit.md).

The policy is --policy, else ./bindguard.yaml, else /etc/bindguard/bindguard.yaml,
else the built-in catalogue of well-known services (which never reports missing).

Each namespace is judged by its own scope of the policy, with its own score; the
host's score is the lowest of them. Run as root to see the owners of every socket
and to enter other namespaces: without, the report says what it could not see
(on standard error, in the table's header, "complete": false in JSON,
bindguard_audit_complete 0), and the exit code is still the findings' unless
--require-complete is given.

Exit codes: 0 compliant, 1 a finding at or above --fail-on, 2 error (or, with
--require-complete, an incomplete audit).`,
		Example: `  # Audit this host against ./bindguard.yaml or the built-in catalogue
  bindguard audit

  # Every network namespace (containers, ip netns), as JSON
  sudo bindguard audit --netns all --format json

  # The seed's policy; fail only on high and critical findings
  bindguard audit --policy service-bindings.yaml --fail-on high

  # For the node exporter's textfile collector, from cron: the file is replaced
  # atomically, and findings do not make cron mail an error
  bindguard audit --format prometheus --fail-on never --output /var/lib/node_exporter/textfile/bindguard.prom

  # To Zabbix, with the seed's keys (the template of gen zabbix --prefix aktienanalyse)
  bindguard audit --format zabbix --prefix aktienanalyse | zabbix_sender -z SERVER -i -`,
		Args: args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			never := failOn == "never"
			threshold, err := audit.ParseSeverity(failOn)
			if err != nil && !never {
				return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("--fail-on: %w, or never", err)}
			}
			if _, err := report.NewZabbixKeys(prefix); err != nil {
				return &usageError{cmd: cmd.CommandPath(), err: err}
			}
			if os.Getenv("GOGC") == "" {
				// An audit allocates its whole report once and exits: collect less often,
				// or not at all below the soft memory limit main sets. Restored for
				// callers that run more than one command in a process (tests).
				defer debug.SetGCPercent(debug.SetGCPercent(auditGC(debug.SetMemoryLimit(-1))))
			}
			if filepath.Clean(obs.procRoot) == proc.DefaultRoot {
				// The owner scan's kernel part (loading the BPF program, walking every open
				// file) needs nothing from what comes before it: run it beside the policy
				// load and the socket dump instead of after them.
				defer proc.StartOwnerScan(proc.OwnerScan(obs.ownerScan.value))()
			}
			p, err := findPolicy(s, policyPath)
			if err != nil {
				return err
			}
			snap, err := obs.observe()
			if err != nil {
				return fmt.Errorf("cannot observe sockets: %w", err)
			}
			rep := audit.JudgeObservation(p, snap.Observation())
			if !rep.Complete {
				fmt.Fprintf(s.Err, "bindguard: warning: the audit is incomplete; it could not see:\n")
				for _, u := range rep.Unseen {
					fmt.Fprintf(s.Err, "  - %s\n", u)
				}
			}
			meta := reportMeta(s, host, p, snap)
			meta.ZabbixPrefix = prefix
			format := f.value
			if output != "" {
				var buf bytes.Buffer
				if err := report.Render(&buf, format, meta, rep, false); err != nil {
					return err
				}
				if err := writeFileAtomic(output, buf.Bytes()); err != nil {
					return fmt.Errorf("--output: %w", err)
				}
			} else if err := report.Render(s.Out, format, meta, rep, format == "table" && colour(s.Out)); err != nil {
				return err
			}
			if complete && !rep.Complete {
				return &exitError{Code: ExitError, Err: fmt.Errorf("--require-complete: the audit could not see everything (%s); run as root", strings.Join(rep.Unseen, "; "))}
			}
			if !never && rep.Fails(threshold) {
				return &exitError{Code: ExitViolation}
			}
			return nil
		},
	}
	f = addFormatFlag(cmd, "table", report.Formats...)
	cmd.Flag("format").Usage = "output format: table, json, prometheus or zabbix"
	cmd.Flags().StringVarP(&policyPath, "policy", "p", "", "policy file, native or seed format (default: ./bindguard.yaml, /etc/bindguard/bindguard.yaml, else the built-in catalogue)")
	cmd.Flags().StringVar(&failOn, "fail-on", "medium", "lowest severity that makes the exit code 1: info, low, medium, high or critical; never: exit 0 whatever is found")
	cmd.Flags().StringVarP(&output, "output", "o", "", "write the report to this file, replaced atomically (a temporary file in the same directory, then a rename), instead of standard output")
	cmd.Flags().StringVar(&host, "host", "", "host name to put in the report (default: this host's name)")
	cmd.Flags().BoolVar(&complete, "require-complete", false, "exit 2 when the audit could not see every namespace and owner (not root), whatever the findings")
	cmd.Flags().StringVar(&prefix, "prefix", report.DefaultZabbixPrefix, "item key prefix of --format zabbix, as given to gen zabbix (the seed's is aktienanalyse)")
	obs.add(cmd)
	return cmd
}

// findPolicy loads --policy, else the first default path that exists, else the catalogue.
func findPolicy(s Streams, path string) (*policy.Policy, error) {
	if path != "" {
		return loadPolicy(s, path)
	}
	found, err := findPolicyPath(s, "")
	if err != nil || found == "" {
		return policy.Builtin(), err
	}
	return policy.Load(found)
}

// findPolicyPath is findPolicy's search for a file: path itself when given (a file, or a
// directory policy.Load reads with its drop-ins), else the first of the search paths that
// exists; "" means none (the built-in catalogue). A search path named bindguard.yaml with a
// bindguard.d directory beside it is found as its directory, so that the drop-ins are read
// with it (and read again when serve reloads); drop-ins without their main file are an error.
func findPolicyPath(s Streams, path string) (string, error) {
	if path != "" {
		return path, nil
	}
	paths := s.PolicyPaths
	if paths == nil {
		paths = defaultPolicyPaths
	}
	for _, p := range paths {
		_, err := os.Stat(p)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("policy: %w", err)
		}
		if filepath.Base(p) != policy.MainFile {
			if err == nil {
				return p, nil
			}
			continue
		}
		dir := filepath.Dir(p)
		if err == nil {
			if fi, derr := os.Stat(filepath.Join(dir, policy.DropInDir)); derr == nil && fi.IsDir() {
				return dir, nil
			}
			return p, nil
		}
		dropins, derr := policy.DropIns(dir)
		if derr != nil {
			return "", derr
		}
		if len(dropins) > 0 {
			return "", fmt.Errorf("policy: %s has drop-ins (%s) but %s does not exist: it holds the globals and the host's services, the drop-ins only scopes", filepath.Join(dir, policy.DropInDir), filepath.Base(dropins[0]), p)
		}
	}
	return "", nil
}

// reportMeta fills what the report says about the audit.
func reportMeta(s Streams, host string, p *policy.Policy, snap *observe.Snapshot) report.Meta {
	if host == "" {
		host, _ = os.Hostname()
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	m := report.Meta{Host: host, Time: now(), Policy: p.Source, Warnings: snap.Warnings}
	for _, ns := range snap.Namespaces {
		m.Namespaces = append(m.Namespaces, ns.Label)
	}
	return m
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	return term.IsTerminal(int(f.Fd())) // #nosec G115 -- a file descriptor fits an int
}

// colour reports whether output to w may use colour: a terminal, and NO_COLOR unset or empty
// (https://no-color.org), and TERM not "dumb".
func colour(w io.Writer) bool { return colourAllowed(isTerminal(w), os.Getenv) }

func colourAllowed(terminal bool, getenv func(string) string) bool {
	return terminal && getenv("NO_COLOR") == "" && getenv("TERM") != "dumb"
}
