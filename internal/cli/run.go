package cli

import (
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/bindguard/bindguard/internal/kernel"
	"github.com/bindguard/bindguard/internal/runner"
	"github.com/bindguard/bindguard/policy"
)

func newRunCmd(s Streams) *cobra.Command {
	var (
		policyPath, service, logLevel, pinRoot string
		guard, enforce                         bool
		routeArgs                              []string
	)
	cmd := &cobra.Command{
		Use:   "run --service NAME [--policy F] [--guard] [--enforce] -- CMD [ARGS...]",
		Short: "Bind a service's socket as the policy declares, then run it there (any language)",
		Long: `Bind the service's socket exactly as the policy declares it (a forbidden address
is refused before bind(2); a socket that cannot be bound stops run before CMD
starts), then run CMD on it.

Without --guard, run replaces itself with CMD (execve in place: same pid, so
signals and the exit code are CMD's own) and passes the socket the systemd
socket-activation way: descriptor 3, LISTEN_FDS=1, LISTEN_PID, LISTEN_FDNAMES=NAME.
Every other descriptor is closed on exec. Servers that take a socket:
  gunicorn APP (finds it itself)  uvicorn --fd 3 APP
  Node: server.listen({fd: 3})    sd_listen_fds(3), Go's listen.Activated

With --guard, for a service whose class limits who may reach it (every class but
public), bindguard serves the socket itself behind the access middleware (trusted
proxies, the client-IP header walked right to left, 403 problem+json) and
reverse-proxies admitted requests to CMD, which must listen on the Unix socket
named by $BINDGUARD_UPSTREAM (in a new 0700 directory of the running user).
X-Forwarded-For and X-Real-IP then hold the client bindguard resolved; what the
client sent in forwarding headers (every X-Forwarded-*, Forwarded, X-Real-IP and
CDN client-address headers) and in any header named with "_" is dropped, and a
request target that is not a path is refused (400). bindguard stays CMD's parent:
it forwards SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 and exits
with CMD's code (128+signal if a signal killed it). --guard refuses UDP
services, public services and services the policy's proxy routes mark
upstream_tls. --route PREFIX=CLASS gives a path prefix its own class (the seed's
core: /api/=proxy_only for nginx, the rest localhost_only); lan and restricted
routes admit the service's allow list.

With --enforce (root), run makes a cgroup of its own under the one it was
started in (bindguard-run.NAME.PID) and attaches the kernel's bind enforcement
of the policy's host scope to it, as enforce apply --cgroup does, before CMD
starts: CMD and everything it starts then cannot bind what the policy forbids
(EPERM). Without --guard, run joins the cgroup, binds and execs; the cgroup and
its enforcement stay after CMD exits, until the next run --enforce in the same
cgroup removes them (or enforce remove --cgroup, and rmdir). With --guard only
CMD is started in the cgroup, and run removes it with its enforcement when CMD
and its processes have exited. Under systemd, prefer gen systemd --enforce
(the unit's own cgroup is enforced).

CMD is looked up in PATH unless it holds a slash. The policy is --policy, else
./bindguard.yaml, else /etc/bindguard/bindguard.yaml (not the built-in catalogue).

Exit codes: CMD's own; 2 when run fails before CMD starts.`,
		Example: `  # Flask under gunicorn on the core service's declared 127.0.0.1:8001
  # (gunicorn finds the socket by LISTEN_PID/LISTEN_FDS itself: no --bind)
  bindguard run -p /etc/bindguard/bindguard.yaml --service core -- \
    /usr/bin/gunicorn app:app

  # The same behind bindguard's client check (gunicorn on the private Unix socket)
  bindguard run -p bindguard.yaml --service core --guard -- \
    sh -c 'exec gunicorn --bind "unix:$BINDGUARD_UPSTREAM" app:app'

  # The seed's core: /api/ through nginx, everything else for local clients only
  bindguard run -p bindguard.yaml --service core --guard --route /api/=proxy_only -- \
    sh -c 'exec gunicorn --bind "unix:$BINDGUARD_UPSTREAM" app:app'

  # An ASGI app under uvicorn
  bindguard run -p bindguard.yaml --service api -- uvicorn --fd 3 app:app

  # As root: the kernel refuses any bind of gunicorn's the policy forbids
  sudo bindguard run -p bindguard.yaml --service core --enforce -- gunicorn app:app`,
		Args: func(cmd *cobra.Command, a []string) error {
			if len(a) == 0 {
				return &usageError{cmd: cmd.CommandPath(), err: errors.New("no command: give it after --, e.g. bindguard run --service core -- gunicorn app:app")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, argv []string) error {
			// Descriptor 3 is held before anything else opens a file (the policy, the poller).
			if !guard {
				if err := runner.Reserve(1); err != nil {
					return err
				}
			}
			if service == "" {
				return &usageError{cmd: cmd.CommandPath(), err: errors.New("--service is required")}
			}
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return &usageError{cmd: cmd.CommandPath(), err: fmt.Errorf("--log-level %q: want debug, info, warn or error", logLevel)}
			}
			path, err := runner.LookPath(argv[0])
			if err != nil {
				return err
			}
			pol, err := findPolicy(s, policyPath)
			if err != nil {
				return err
			}
			if pol.Format == policy.FormatBuiltin {
				return errors.New("run: no policy: give --policy FILE (or put one at ./bindguard.yaml or /etc/bindguard/bindguard.yaml); run binds services of your policy, not of the built-in catalogue")
			}
			svc, ok := pol.Lookup(service)
			if !ok {
				return fmt.Errorf("run: policy %s declares no service %q", pol.Source, service)
			}
			var routes []runner.Route
			for _, r := range routeArgs {
				rt, err := runner.ParseRoute(r)
				if err != nil {
					return &usageError{cmd: cmd.CommandPath(), err: err}
				}
				routes = append(routes, rt)
			}
			if len(routes) > 0 && !guard {
				return &usageError{cmd: cmd.CommandPath(), err: errors.New("--route needs --guard (without it, bindguard checks no client)")}
			}
			logger := slog.New(slog.NewTextHandler(s.Err, &slog.HandlerOptions{Level: level}))
			var enf *runEnforcement
			if enforce {
				if guard {
					// Refused services are refused before a cgroup is made.
					if err := runner.CheckGuard(pol, svc); err != nil {
						return fmt.Errorf("run: --guard: %w", err)
					}
				}
				if enf, err = startEnforcement(pol, service, pinRoot, logger); err != nil {
					return err
				}
			}
			if !guard {
				if enf != nil {
					if err := enf.cg.Join(); err != nil {
						enf.abort(false)
						return err
					}
				}
				err := runner.Exec(cmd.Context(), pol, service, path, argv, os.Environ())
				if enf != nil { // Exec returns only when the command did not start
					enf.abort(true)
				}
				return err
			}
			gc := runner.GuardConfig{
				Policy: pol, Service: service, Path: path, Argv: argv, Env: os.Environ(),
				Stdin: s.In, Stdout: s.Out, Stderr: s.Err, Logger: logger, Routes: routes,
			}
			if enf != nil {
				if gc.Cgroup, err = enf.cg.Open(); err != nil {
					enf.abort(false)
					return err
				}
			}
			code, err := runner.Guard(cmd.Context(), gc)
			if enf != nil {
				_ = gc.Cgroup.Close()
				enf.finish()
			}
			if err != nil {
				return err
			}
			if code != 0 {
				return &exitError{Code: code}
			}
			return nil
		},
	}
	cmd.Flags().SetInterspersed(false)
	cmd.Flags().StringVarP(&policyPath, "policy", "p", "", "policy file (default ./bindguard.yaml, then /etc/bindguard/bindguard.yaml)")
	cmd.Flags().StringVar(&service, "service", "", "the policy's service to bind and run (required)")
	cmd.Flags().BoolVar(&guard, "guard", false, "serve the socket behind the access middleware and proxy to CMD on $BINDGUARD_UPSTREAM")
	cmd.Flags().StringArrayVar(&routeArgs, "route", nil, "with --guard: PREFIX=CLASS gives a path prefix its own access class, longest prefix first (repeatable; /internal/=localhost_only)")
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "debug (with --guard: every access decision), info, warn or error, to standard error")
	cmd.Flags().BoolVar(&enforce, "enforce", false, "a cgroup of run's own with the kernel's bind enforcement of the host scope, applied before CMD starts (root)")
	cmd.Flags().StringVar(&pinRoot, "pin-root", kernel.DefaultPinRoot, "with --enforce: where links and maps are pinned")
	_ = cmd.Flags().MarkHidden("pin-root")
	return cmd
}
