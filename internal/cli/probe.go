package cli

import (
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/bindguard/bindguard/internal/probe"
	"github.com/bindguard/bindguard/internal/report"
)

type probeOptions struct {
	policyPath, target, scope, from, netnsDir, ports, source string
	concurrency, rate                                        int
	timeout                                                  time.Duration
	debug                                                    bool
}

func newProbeCmd(s Streams) *cobra.Command {
	var o probeOptions
	cmd := &cobra.Command{
		Use:   "probe --target HOST [--policy FILE] [--scope NAME] [--from NETNS] [--ports RANGE]",
		Short: "Probe a host's declared ports from this vantage and judge who reached what",
		Long: `Probe one host from where bindguard runs (or from a network namespace, --from):
a TCP connect and a UDP datagram to every port the target's scope declares, and
to the extra --ports, over every address of the target (IPv4 and IPv6). Each
result is open, closed (refused: a TCP RST or an ICMP port unreachable),
filtered (no answer in time, or an ICMP error) or, for UDP without a reply,
open|filtered. Its verdict is judged by the vantage's own address (the local
address of the connection, or --source): localhost_only and proxy_only may not
be reached from another host (proxy_only only from a trusted proxy), lan and
restricted only from their allow lists, public from anywhere. An undeclared
port found open is a violation (unexpected); a lan or restricted service
reached from outside its allow list contradicts a valid audit.

The probe is bounded: one host named explicitly (never a prefix or a range),
at most --concurrency probes at once, --rate per second, --timeout each; every
probe is logged at debug level (--debug). Only probe hosts you are allowed to.

Exit codes: 0 no violation, 1 violations, 2 error.`,
		Example: `  # From a host outside the Zabbix server's allow list, expect 10050 filtered
  bindguard probe -p bindguard.yaml --target web1.example.org

  # From a network namespace, a container's scope, with the first 1024 TCP ports
  bindguard probe -p bindguard.yaml --target 10.0.3.15 --scope web --from client --ports 1-1024 --format json`,
		Args: args(0, 0),
	}
	format := addFormatFlag(cmd, "table", "table", "json")
	f := cmd.Flags()
	f.StringVarP(&o.policyPath, "policy", "p", "", "policy file (default ./bindguard.yaml, then /etc/bindguard/bindguard.yaml)")
	f.StringVar(&o.target, "target", "", "the one `HOST` to probe: an IP address or a host name (every address it resolves to)")
	f.StringVar(&o.scope, "scope", "", "the policy scope whose services the target runs (default host)")
	f.StringVar(&o.from, "from", "", "probe from this network namespace: an ip-netns `NAME` or a PATH such as /proc/PID/ns/net (root)")
	f.StringVar(&o.netnsDir, "netns-dir", "/run/netns", "where named network namespaces are pinned")
	f.StringVar(&o.ports, "ports", "", "extra ports to probe, as 1-1024,udp:53 (TCP unless prefixed udp:)")
	f.StringVar(&o.source, "source", "", "judge as if from this `ADDRESS` (a vantage behind NAT) instead of the connection's local address")
	f.IntVar(&o.concurrency, "concurrency", probe.DefaultConcurrency, "probes in flight at most")
	f.IntVar(&o.rate, "rate", probe.DefaultRate, "probes started per second at most")
	f.DurationVar(&o.timeout, "timeout", probe.DefaultTimeout, "how long each probe waits for an answer")
	f.BoolVar(&o.debug, "debug", false, "log every probe at debug level (to standard error)")
	cmd.PreRunE = func(cmd *cobra.Command, _ []string) error {
		if o.target == "" {
			return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("--target is required: name the one host to probe")}
		}
		if o.concurrency < 1 || o.concurrency > 1024 || o.rate < 1 || o.rate > 10000 || o.timeout <= 0 || o.timeout > time.Minute {
			return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("--concurrency must be 1-1024, --rate 1-10000 and --timeout between 0 and 1m")}
		}
		return nil
	}
	cmd.RunE = func(cmd *cobra.Command, _ []string) error { return runProbe(cmd, s, o, format.value) }
	return cmd
}

func runProbe(cmd *cobra.Command, s Streams, o probeOptions, format string) error {
	p, err := loadPolicyFor(s, o.policyPath)
	if err != nil {
		return err
	}
	ports, err := probe.ParsePorts(o.ports)
	if err != nil {
		return &usageError{cmd: cmd.CommandPath(), err: err}
	}
	var src netip.Addr
	if o.source != "" {
		if src, err = netip.ParseAddr(o.source); err != nil {
			return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("--source: %w", err)}
		}
	}
	netns := o.from
	if netns != "" && !strings.Contains(netns, "/") {
		netns = filepath.Join(o.netnsDir, netns)
	}
	level := slog.LevelInfo
	if o.debug {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(s.Err, &slog.HandlerOptions{Level: level}))
	rep, err := probe.Run(cmd.Context(), probe.Options{
		Policy: p, Scope: o.scope, Target: o.target, Netns: netns, Ports: ports, Source: src,
		Concurrency: o.concurrency, Rate: o.rate, Timeout: o.timeout, Logger: logger,
	})
	if err != nil {
		return err
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	doc := report.NewProbeDoc(rep, now())
	if format == "json" {
		err = doc.Encode(s.Out)
	} else {
		err = report.WriteProbeTable(s.Out, doc)
	}
	if err != nil {
		return err
	}
	if doc.Violations > 0 {
		return &exitError{Code: ExitViolation}
	}
	return nil
}
