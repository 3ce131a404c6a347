package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/bindguard/bindguard/internal/gen/nftables"
)

func newGenNftablesCmd(s Streams) *cobra.Command {
	var policyPath, scope, output string
	var force bool
	cmd := &cobra.Command{
		Use:   "nftables [--policy FILE] [--scope NAME] [--output FILE]",
		Short: "Write the nftables ruleset that makes the lan and restricted allow lists true",
		Long: `Write an nftables ruleset for the scope's lan and restricted services: on each
declared port (and address, when the service binds one), the allow list is
accepted and everyone else dropped, so a host outside the list sees the port
filtered (bindguard probe checks it).

The ruleset owns one table, inet bindguard, which loading it replaces
atomically; no other table, chain or port is touched. Loopback is accepted.
localhost_only and proxy_only services are left to their loopback binds and
public ones to everyone.

For a container or network namespace, give its --scope and load the ruleset
inside that namespace.`,
		Example: `  bindguard gen nftables -p /etc/bindguard/bindguard.yaml -o /etc/nftables.d/bindguard.nft
  nft -c -f /etc/nftables.d/bindguard.nft && nft -f /etc/nftables.d/bindguard.nft`,
		Args: args(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := loadPolicyFor(s, policyPath)
			if err != nil {
				return err
			}
			out, err := nftables.Generate(p, nftables.Options{Scope: scope, Source: p.Source})
			if err != nil {
				return err
			}
			if output == "" {
				_, err = fmt.Fprint(s.Out, out)
				return err
			}
			if err := writeNewFile(output, []byte(out), force); err != nil {
				return err
			}
			fmt.Fprintf(s.Err, "wrote %s\n", output)
			return nil
		},
	}
	cmd.Flags().StringVarP(&policyPath, "policy", "p", "", "policy file (default ./bindguard.yaml, then /etc/bindguard/bindguard.yaml)")
	cmd.Flags().StringVar(&scope, "scope", "", "the policy scope of the namespace the ruleset is for (default host)")
	cmd.Flags().StringVarP(&output, "output", "o", "", "file to write (default: standard output)")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite the file if it exists")
	return cmd
}
