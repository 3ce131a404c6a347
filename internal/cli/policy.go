package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/bindguard/bindguard/internal/report"
	"github.com/bindguard/bindguard/policy"
)

func newPolicyCmd(s Streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Check, show and convert policy files",
		Long: `A policy is one YAML file that declares every service a host may run.
Two formats are read: bindguard's own (version: 1) and the seed project's
config/service-bindings.yaml, told apart by their shape. See docs/policy.md.`,
		Example: `  bindguard policy check /etc/bindguard/bindguard.yaml
  bindguard policy show --format json bindguard.yaml
  bindguard policy convert service-bindings.yaml > bindguard.yaml`,
		Args: args(0, 0),
		RunE: func(c *cobra.Command, _ []string) error { return c.Help() },
	}
	cmd.AddCommand(newPolicyCheckCmd(s), newPolicyShowCmd(s), newPolicyConvertCmd(s), newPolicySchemaCmd(s))
	return cmd
}

// loadPolicy reads a policy file or directory (policy.Load); "-" is standard input.
func loadPolicy(s Streams, path string) (*policy.Policy, error) {
	if path != "-" {
		return policy.Load(path)
	}
	src, err := io.ReadAll(io.LimitReader(s.In, policy.MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read standard input: %w", err)
	}
	return policy.Parse("<stdin>", src)
}

func newPolicyCheckCmd(s Streams) *cobra.Command {
	return &cobra.Command{
		Use:   "check FILE...",
		Short: "Validate policy files, reporting every problem with its line and field",
		Long: `Validate policy files. A valid file prints "FILE: ok (N services)" (and its
scopes). An invalid one prints every problem, each as FILE:LINE:COL: FIELD:
message, on standard error. "-" reads standard input. A directory is read as
one policy: its bindguard.yaml and the drop-ins bindguard.d/*.yaml.

Exit codes: 0 all valid, 1 any invalid, 2 any unreadable (or a usage error).`,
		Example: `  bindguard policy check bindguard.yaml
  bindguard policy check ../shared/seeds/service-bindings.yaml other.yaml
  cat bindguard.yaml | bindguard policy check -`,
		Args: args(1, -1),
		RunE: func(_ *cobra.Command, files []string) error {
			code := ExitOK
			for _, f := range files {
				p, err := loadPolicy(s, f)
				var inv *policy.InvalidError
				switch {
				case err == nil:
					extra := ""
					if p.Format == policy.FormatSeed {
						extra = ", seed format"
					}
					if len(p.Scopes) > 0 {
						extra += ", " + plural(len(p.Scopes), "scope")
					}
					fmt.Fprintf(s.Out, "%s: ok (%s%s)\n", f, plural(len(p.Services), "service"), extra)
				case errors.As(err, &inv):
					fmt.Fprintln(s.Err, err)
					code = max(code, ExitViolation)
				default:
					fmt.Fprintf(s.Err, "bindguard: %v\n", err)
					code = ExitError
				}
			}
			if code != ExitOK {
				return &exitError{Code: code}
			}
			return nil
		},
	}
}

func newPolicyShowCmd(s Streams) *cobra.Command {
	var format *formatFlag
	cmd := &cobra.Command{
		Use:   "show [FILE]",
		Short: "Show the binding matrix a policy declares",
		Long: `Show each service's protocol, address, port, access class and allowed clients.
With no FILE, shows the built-in catalogue of well-known services that
bindguard judges a host by when no policy is given.

JSON output has the schema "bindguard.policy.v1" (see docs/policy.md).`,
		Example: `  bindguard policy show bindguard.yaml
  bindguard policy show --format json ../shared/seeds/service-bindings.yaml
  bindguard policy show            # the built-in catalogue`,
		Args: args(0, 1),
		RunE: func(_ *cobra.Command, a []string) error {
			p := policy.Builtin()
			if len(a) == 1 {
				var err error
				if p, err = loadPolicy(s, a[0]); err != nil {
					return err
				}
			}
			if format.value == "json" {
				return writePolicyJSON(s.Out, p)
			}
			return writePolicyTable(s.Out, p)
		},
	}
	format = addFormatFlag(cmd, "table", "table", "json")
	return cmd
}

func newPolicyConvertCmd(s Streams) *cobra.Command {
	var output string
	var force bool
	cmd := &cobra.Command{
		Use:   "convert FILE",
		Short: "Write a policy (such as the seed's service-bindings.yaml) in the native format",
		Long: `Convert a policy to bindguard's native format, on standard output or into
--output. The result loads back to the same binding matrix. Seed names are
translated: nginx_only becomes proxy_only, zabbix_server_only restricted with
its allowed_hosts, http_port/https_port two services.`,
		Example: `  bindguard policy convert service-bindings.yaml > bindguard.yaml
  bindguard policy convert -o /etc/bindguard/bindguard.yaml service-bindings.yaml`,
		Args: args(1, 1),
		RunE: func(_ *cobra.Command, a []string) error {
			p, err := loadPolicy(s, a[0])
			if err != nil {
				return err
			}
			var b strings.Builder
			fmt.Fprintf(&b, "# bindguard policy, converted by `bindguard policy convert` from %s (%s format).\n", a[0], p.Format)
			b.WriteString("# Reference: docs/policy.md. Check it with `bindguard policy check FILE`.\n")
			b.Write(policy.Marshal(p))
			if output == "" {
				_, err := io.WriteString(s.Out, b.String())
				return err
			}
			return writeNewFile(output, []byte(b.String()), force)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to `FILE` instead of standard output")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite --output if it exists")
	return cmd
}

// writeNewFile writes data to path, refusing to replace an existing file unless force.
func writeNewFile(path string, data []byte, force bool) error {
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, 0o644) // #nosec G302 G304 -- a policy is configuration, readable like /etc files
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s exists; use --force to overwrite it", path)
	}
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	return errors.Join(err, f.Close())
}

func newPolicySchemaCmd(s Streams) *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print a JSON Schema of the native policy format, for editors",
		Long: `Print a JSON Schema (draft 2020-12) of the native format. Editors with a YAML
language server validate and complete policies with it, for example with this
first line in the policy:
  # yaml-language-server: $schema=bindguard-policy.schema.json
'bindguard policy check' is stricter than the schema (overlapping binds,
addresses that contradict the access class, allow lists covering everything).`,
		Example: `  bindguard policy schema > bindguard-policy.schema.json`,
		Args:    args(0, 0),
		RunE: func(*cobra.Command, []string) error {
			_, err := s.Out.Write(policy.Schema())
			return err
		},
	}
}

// writePolicyJSON writes the policy view (report.PolicyDoc, bindguard.policy.v1).
func writePolicyJSON(w io.Writer, p *policy.Policy) error { return report.NewPolicyDoc(p).Encode(w) }

func writePolicyTable(w io.Writer, p *policy.Policy) error {
	proxies := strings.Join(withZoned(report.PrefixStrings(p.TrustedProxies), p.TrustedZoned), ", ")
	if proxies == "" {
		proxies = "none"
	}
	fmt.Fprintf(w, "# %s: %s format, %s; trusted proxies: %s (%s)\n", p.Source, p.Format, plural(len(p.Services), "service"), proxies, p.ClientIPHeader)
	if len(p.Scopes) == 0 {
		return writeServiceTable(w, p, p.Services)
	}
	fmt.Fprintf(w, "# scope %s: the host's network namespace, and every namespace no scope matches; %s\n", policy.HostScope, plural(len(p.Services), "service"))
	if err := writeServiceTable(w, p, p.Services); err != nil {
		return err
	}
	for _, sc := range p.Scopes {
		fmt.Fprintf(w, "\n# scope %s: match %s; %s\n", sc.Name, strings.Join(sc.Match, ", "), plural(len(sc.Services), "service"))
		if err := writeServiceTable(w, p, sc.Services); err != nil {
			return err
		}
	}
	return nil
}

// writeServiceTable writes the binding matrix of one scope's services.
func writeServiceTable(w io.Writer, p *policy.Policy, svcs []policy.Service) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tPROTOCOL\tADDRESS\tPORT\tACCESS\tALLOWED CLIENTS")
	for _, s := range svcs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", s.Name, s.Protocol, addressCell(s), s.Port, s.Access, clientsCell(p, s))
	}
	return tw.Flush()
}

// addressCell says where a service may bind.
func addressCell(s policy.Service) string {
	switch {
	case s.IsDualStack():
		return ":: (dual-stack)"
	case s.V6Only:
		return ":: (v6only)"
	case s.Address.IsValid():
		return s.Address.String()
	case s.Access.LoopbackOnly():
		return "(any loopback)"
	}
	return "(" + strings.ToLower(s.PermittedAddresses()) + ")"
}

// clientsCell says who may reach a service, long lists shortened.
func clientsCell(p *policy.Policy, s policy.Service) string {
	if w := s.ClientWords(); w != "" {
		return w
	}
	var parts []string
	for _, a := range s.Allow {
		if n, ok := p.Network(a); ok {
			parts = append(parts, fmt.Sprintf("%s (%s)", a, shortList(report.PrefixStrings(n.Prefixes), 3)))
		} else {
			parts = append(parts, a)
		}
	}
	return shortList(parts, 4)
}

func shortList(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s, +%d more", strings.Join(items[:n], ", "), len(items)-n)
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// withZoned appends zoned entries (fe80::1%eth0) to prefix strings.
func withZoned(out []string, zs []policy.ZonedPrefix) []string {
	for _, z := range zs {
		out = append(out, z.String())
	}
	return out
}
