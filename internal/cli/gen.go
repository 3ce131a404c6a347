package cli

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/bindguard/bindguard/internal/gen/nginx"
	"github.com/bindguard/bindguard/internal/gen/systemd"
	"github.com/bindguard/bindguard/policy"
)

func newGenCmd(s Streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "gen",
		Short: "Generate nginx, systemd and Zabbix configuration from the policy",
		Long: `Generate configuration that enforces the policy, so that it cannot drift from
the port matrix: the nginx front door (from the policy's proxy section) and
systemd units with the binding and network filters of a service.`,
		Example: `  bindguard gen nginx -p bindguard.yaml --output /etc/nginx/bindguard
  bindguard gen systemd -p bindguard.yaml --service core --exec '/usr/local/bin/core --config /etc/core.yaml'`,
		Args: args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newGenNginxCmd(s), newGenSystemdCmd(s), newGenZabbixCmd(s), newGenNftablesCmd(s))
	return cmd
}

func newGenNginxCmd(s Streams) *cobra.Command {
	var policyPath, output string
	var force bool
	cmd := &cobra.Command{
		Use:   "nginx [--policy FILE] [--output DIR]",
		Short: "Write the nginx site and security include the policy's proxy section describes",
		Long: `Write the nginx front door the policy's proxy section describes (docs/generate.md):

  bindguard.conf           the site: HTTP to HTTPS redirect, TLS 1.2/1.3, security
                           headers, a location per route (methods, clients, rate
                           limits), blocked paths (however spelt: case, ";"
                           parameters, trailing dots, percent-encoding), the
                           health answer, the status server for the monitoring
                           hosts, and on every listener a default server that
                           refuses names the policy does not declare (421; TLS
                           handshakes rejected)
  bindguard-security.conf  the http-context zones the limits use (conf.d)

Listen addresses and upstreams come from the policy's services. X-Forwarded-For
is appended ($proxy_add_x_forwarded_for), which bindguard's access middleware,
trusting only nginx, walks from the right: a client cannot forge its address.

Every value written into a directive is checked again here, and refused with
its field; the policy's file name goes only into comments, quoted and escaped.

Without --output both files are written to standard output, each after a
"# ==> NAME <==" line. Check the result with nginx -t.`,
		Example: `  # Install on Debian
  bindguard gen nginx -p /etc/bindguard/bindguard.yaml --output /etc/nginx/bindguard
  ln -s /etc/nginx/bindguard/bindguard.conf /etc/nginx/sites-enabled/
  ln -s /etc/nginx/bindguard/bindguard-security.conf /etc/nginx/conf.d/
  nginx -t && systemctl reload nginx`,
		Args: args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := loadPolicyFor(s, policyPath)
			if err != nil {
				return err
			}
			files, err := nginx.Generate(p)
			if err != nil {
				return err
			}
			out := make([]genFile, len(files))
			for i, f := range files {
				out[i] = genFile{f.Name, f.Content}
			}
			return writeGenerated(s, output, force, out)
		},
	}
	cmd.Flags().StringVarP(&policyPath, "policy", "p", "", "policy file (default ./bindguard.yaml, then /etc/bindguard/bindguard.yaml)")
	cmd.Flags().StringVarP(&output, "output", "o", "", "directory to write the files to (default: standard output)")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite files that exist")
	return cmd
}

func newGenSystemdCmd(s Streams) *cobra.Command {
	var (
		policyPath, service, exec, user, output, selfPolicy string
		dropIn, self, force                                 bool
		egress                                              []string
	)
	var (
		run, runGuard, enforce bool
		bindguardPath          string
	)
	cmd := &cobra.Command{
		Use:   "systemd [--policy FILE] (--service NAME [--exec CMD] [--drop-in] [--run | --run-guard] [--enforce] | --self [-- SERVE-FLAGS...])",
		Short: "Write a systemd unit that carries a service's binding and hardening",
		Long: `Write a systemd unit (or, with --drop-in, the [Service] settings for an existing
unit) for a service of the policy (docs/generate.md):

  - the seed's hardening: NoNewPrivileges, ProtectSystem=strict, PrivateTmp,
    PrivateDevices, ProtectKernelTunables, ProtectControlGroups, and more;
  - SocketBindDeny=any with SocketBindAllow= for exactly its protocol and port;
  - IPAddressDeny=any with IPAddressAllow= from its access class and allow list.
    This filters the connections the service makes too: name its upstreams with
    --allow-egress. A public service gets no IP filter;
  - RestrictAddressFamilies=, and BIND_ADDRESS / SERVICE_PORT in the environment;
  - with --enforce, ExecStartPre=+bindguard enforce apply --unit %n and
    ExecStopPost=-+bindguard enforce remove --unit %n: the kernel refuses every
    bind of the unit's processes the policy forbids, by address (docs/enforce.md).

--run (--run-guard) starts --exec through bindguard run (--guard).

--self writes bindguard's own monitor unit, with only the capabilities it needs
(the audit's, and the kernel event source's). It runs serve over every network
namespace with the kernel event source (--netns all --watch kernel) and the
policy /etc/bindguard/bindguard.yaml (or --self-policy); serve flags after --
replace --netns all --watch kernel, and are checked as serve would check them.
Check the result with systemd-analyze verify.`,
		Example: `  bindguard gen systemd -p bindguard.yaml --service core --exec '/opt/core/bin/core' --user core \
    --allow-egress 10.1.1.50 -o /etc/systemd/system/core.service
  bindguard gen systemd -p bindguard.yaml --service redis --drop-in -o /etc/systemd/system/redis-server.service.d/bindguard.conf
  bindguard gen systemd -p /etc/bindguard/bindguard.yaml --self -o /etc/systemd/system/bindguard.service
  bindguard gen systemd -p /etc/bindguard/bindguard.yaml --service core --run-guard \
    --exec '/bin/sh -c '\''exec /usr/bin/gunicorn --bind "unix:$BINDGUARD_UPSTREAM" app:app'\'
  # the kernel refuses every bind of redis's the policy forbids
  bindguard gen systemd -p /etc/bindguard/bindguard.yaml --service redis --drop-in --enforce \
    -o /etc/systemd/system/redis-server.service.d/bindguard.conf

  # bindguard's own monitor, with serve flags after --
  bindguard gen systemd -p /etc/bindguard/bindguard.yaml --self -- --netns all --watch auto --grace 30s`,
		Args: func(cmd *cobra.Command, rest []string) error {
			if len(rest) > 0 && cmd.ArgsLenAtDash() != 0 {
				return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("unexpected argument %q (serve flags for --self go after --)", rest[0])}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, rest []string) error {
			if self == (service != "") {
				return &usageError{cmd: cmd.CommandPath(), err: errors.New("give --service NAME, or --self for bindguard's own unit")}
			}
			var serveArgs []string
			if len(rest) > 0 {
				if !self {
					return &usageError{cmd: cmd.CommandPath(), err: errors.New("serve flags after -- are for --self")}
				}
				if err := checkServeArgs(s, rest); err != nil {
					return &usageError{cmd: cmd.CommandPath(), err: err}
				}
				serveArgs = rest
			}
			p, err := loadPolicyFor(s, policyPath)
			if err != nil {
				return err
			}
			o := systemd.Options{Service: service, Exec: exec, DropIn: dropIn, User: user, Self: self, PolicyPath: selfPolicy, ServeArgs: serveArgs,
				Run: run || runGuard, Guard: runGuard, Bindguard: bindguardPath, Enforce: enforce}
			if o.Run && (self || selfPolicy != "") {
				return &usageError{cmd: cmd.CommandPath(), err: errors.New("--run and --run-guard start a policy service, not --self")}
			}
			if (o.Run || o.Enforce) && p.Source != "" && filepath.IsAbs(p.Source) {
				o.PolicyPath = p.Source
			}
			if self && o.PolicyPath == "" && p.Source != "" && filepath.IsAbs(p.Source) {
				o.PolicyPath = p.Source
			}
			for _, e := range egress {
				pf, err := netip.ParsePrefix(e)
				if err != nil {
					a, aerr := netip.ParseAddr(e)
					if aerr != nil || a.Zone() != "" {
						return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("--allow-egress %q: want an IP address or CIDR", e)}
					}
					pf = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
				}
				o.Egress = append(o.Egress, pf.Masked())
			}
			unit, err := systemd.Generate(p, o)
			if err != nil {
				return err
			}
			if output == "" {
				_, err := s.Out.Write(unit)
				return err
			}
			if err := writeNewFile(output, unit, force); err != nil {
				return err
			}
			fmt.Fprintf(s.Err, "wrote %s\n", output)
			return nil
		},
	}
	cmd.Flags().StringVarP(&policyPath, "policy", "p", "", "policy file (default ./bindguard.yaml, then /etc/bindguard/bindguard.yaml)")
	cmd.Flags().StringVar(&service, "service", "", "the policy service the unit runs")
	cmd.Flags().StringVar(&exec, "exec", "", "ExecStart= command line (an absolute path and arguments)")
	cmd.Flags().BoolVar(&dropIn, "drop-in", false, "write only the [Service] settings, for UNIT.d/bindguard.conf")
	cmd.Flags().StringVar(&user, "user", "", "User= to run the service as")
	cmd.Flags().StringArrayVar(&egress, "allow-egress", nil, "an address or CIDR the service may also talk to (repeatable)")
	cmd.Flags().BoolVar(&self, "self", false, "bindguard's own monitor unit")
	cmd.Flags().BoolVar(&run, "run", false, "ExecStart= starts --exec through `bindguard run` (binds the service's socket, passes it as fd 3)")
	cmd.Flags().BoolVar(&runGuard, "run-guard", false, "like --run, with --guard: bindguard checks clients and proxies to --exec on $BINDGUARD_UPSTREAM")
	cmd.Flags().BoolVar(&enforce, "enforce", false, "ExecStartPre=/ExecStopPost= attach and detach bindguard's kernel bind enforcement on the unit's cgroup (also in a --drop-in)")
	cmd.Flags().StringVar(&bindguardPath, "bindguard", systemd.DefaultBindguard, "with --run or --enforce: the bindguard binary the unit calls")
	cmd.Flags().StringVar(&selfPolicy, "self-policy", "", "with --self: the policy path the monitor reads (default: --policy's, else /etc/bindguard/bindguard.yaml)")
	cmd.Flags().StringVarP(&output, "output", "o", "", "file to write (default: standard output)")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite the file if it exists")
	return cmd
}

// genFile is one generated file.
type genFile struct {
	name    string
	content []byte
}

// writeGenerated writes generated files into dir, or, when dir is empty, to standard output,
// each after a "# ==> NAME <==" line.
func writeGenerated(s Streams, dir string, force bool, files []genFile) error {
	if dir == "" {
		for _, f := range files {
			fmt.Fprintf(s.Out, "# ==> %s <==\n", f.name)
			if _, err := s.Out.Write(f.content); err != nil {
				return err
			}
		}
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil { // #nosec G301 -- configuration directories are world-readable
		return err
	}
	for _, f := range files {
		path := filepath.Join(dir, f.name)
		if err := writeNewFile(path, f.content, force); err != nil {
			return err
		}
		fmt.Fprintf(s.Err, "wrote %s\n", path)
	}
	return nil
}

// loadPolicyFor finds the policy a generator works from; the built-in catalogue is not one.
func loadPolicyFor(s Streams, path string) (*policy.Policy, error) {
	p, err := findPolicy(s, path)
	if err != nil {
		return nil, err
	}
	if p.Format == policy.FormatBuiltin {
		return nil, errors.New("no policy: give --policy FILE (or put one at ./bindguard.yaml or /etc/bindguard/bindguard.yaml); generators work from your policy, not the built-in catalogue")
	}
	return p, nil
}

// checkServeArgs checks serve flags for the self unit as serve parses them; the unit sets
// --policy, --web.listen-address and --data itself.
func checkServeArgs(s Streams, args []string) error {
	fs := newServeCmd(s).Flags()
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("serve flags after --: %w", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve flags after --: unexpected argument %q", fs.Arg(0))
	}
	for _, f := range []string{"policy", "web.listen-address", "listen", "data"} {
		if fs.Changed(f) {
			return fmt.Errorf("serve flags after --: --%s is set by the unit (use --self-policy, or the policy's service %q)", f, systemd.SelfService)
		}
	}
	return nil
}
