// Package cli is bindguard's command line: one file per command, each built by a constructor
// (no package state), run by Run. Errors are printed once, as "bindguard: <msg>", and turned
// into the exit code by ExitCode: 0 ok, 1 violations or an invalid policy where a command says
// so, 2 anything else (usage, unreadable input, cannot observe).
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// Exit codes.
const (
	ExitOK        = 0
	ExitViolation = 1
	ExitError     = 2
)

// Streams are the command's standard streams.
type Streams struct {
	In       io.Reader
	Out, Err io.Writer
	// Now is the clock reports are stamped with; nil means time.Now.
	Now func() time.Time
	// PolicyPaths are searched, in order, when no --policy is given; nil means
	// ./bindguard.yaml, then /etc/bindguard/bindguard.yaml. A path named bindguard.yaml is read
	// with the drop-ins in the bindguard.d directory beside it (policy.LoadDir).
	PolicyPaths []string
}

// exitError carries an exit code. With a nil Err the command has already said what it had to.
type exitError struct {
	Code int
	Err  error
}

func (e *exitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *exitError) Unwrap() error { return e.Err }

// usageError is a mistake in how a command was called; the message gets a --help hint.
type usageError struct {
	cmd string
	err error
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// ExitCode maps the error Run returned to the process exit code.
func ExitCode(err error) int {
	var ee *exitError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ee):
		return ee.Code
	}
	return ExitError
}

// Run executes the command line args (without the program name).
func Run(ctx context.Context, args []string, s Streams) error {
	root := newRoot(s)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return nil
	}
	var ee *exitError
	if errors.As(err, &ee) && ee.Err == nil {
		return err
	}
	fmt.Fprintf(s.Err, "bindguard: %v\n", err)
	var ue *usageError
	if errors.As(err, &ue) || isCobraUsage(err) {
		name := cmd.CommandPath()
		if ue != nil && ue.cmd != "" {
			name = ue.cmd
		}
		fmt.Fprintf(s.Err, "Run '%s --help' for usage.\n", name)
	}
	return err
}

// isCobraUsage recognises the argument errors cobra makes itself.
func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "flag needs an argument", "invalid argument", "accepts ", "requires at least", "requires at most"} {
		if strings.HasPrefix(msg, p) || strings.Contains(msg, " "+p) {
			return true
		}
	}
	return false
}

func newRoot(s Streams) *cobra.Command {
	root := &cobra.Command{
		Use:   "bindguard",
		Short: "Audit which services listen where, against a policy of where they may",
		Long: `bindguard keeps a host's services bound where they should be.

One YAML policy declares every service: protocol, port, the address it may bind,
and who may reach it (localhost only, only via the proxy, the LAN, named hosts,
or public). bindguard checks policies, audits live sockets against them (every
network namespace, with the owning process), monitors drift continuously (serve:
Prometheus, Redis, Zabbix), generates the nginx front door, systemd units and
Zabbix configuration from the policy, and explains the access decisions its Go
library (listen, access) makes for services.

Exit codes: 0 ok, 1 violations found (or, for 'policy check', an invalid
policy), 2 error (usage, unreadable input).`,
		Example: `  # Check a policy file, native or the seed's service-bindings.yaml
  bindguard policy check bindguard.yaml

  # Show the binding matrix a policy declares
  bindguard policy show testdata/seed/service-bindings.yaml

  # Audit this host against ./bindguard.yaml or the built-in catalogue
  bindguard audit`,
		SilenceErrors: true,
		SilenceUsage:  true,
		Version:       versionString(),
	}
	root.SetIn(s.In)
	root.SetOut(s.Out)
	root.SetErr(s.Err)
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &usageError{cmd: c.CommandPath(), err: err}
	})
	root.AddCommand(newAuditCmd(s), newInitCmd(s), newPolicyCmd(s), newAccessCmd(s), newGenCmd(s), newServeCmd(s), newEventsCmd(s), newEnforceCmd(s), newZabbixCmd(s), newRunCmd(s), newProbeCmd(s), newScanCmd(s), newVersionCmd(s))
	return root
}

// formatFlag is a --format flag limited to the given values.
type formatFlag struct {
	value   string
	allowed []string
}

func (f *formatFlag) String() string { return f.value }
func (f *formatFlag) Type() string   { return strings.Join(f.allowed, "|") }
func (f *formatFlag) Set(v string) error {
	for _, a := range f.allowed {
		if v == a {
			f.value = v
			return nil
		}
	}
	return fmt.Errorf("must be one of %s", strings.Join(f.allowed, ", "))
}

func addFormatFlag(cmd *cobra.Command, def string, allowed ...string) *formatFlag {
	f := &formatFlag{value: def, allowed: allowed}
	cmd.Flags().Var(f, "format", "output format: "+strings.Join(allowed, " or "))
	_ = cmd.RegisterFlagCompletionFunc("format", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return allowed, cobra.ShellCompDirectiveNoFileComp
	})
	return f
}

// args checks the number of positional arguments, as a usage error.
func args(least, most int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		switch {
		case least == most && len(a) != least:
			return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("%s takes %d argument(s), got %d", cmd.CommandPath(), least, len(a))}
		case len(a) < least:
			return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("%s needs at least %d argument(s)", cmd.CommandPath(), least)}
		case most >= 0 && len(a) > most:
			return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("%s takes at most %d argument(s), got %d", cmd.CommandPath(), most, len(a))}
		}
		return nil
	}
}
