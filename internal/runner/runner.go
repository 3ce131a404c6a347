// Package runner is `bindguard run`: it binds a service's socket exactly as the policy declares
// (through listen) and either replaces itself with the service's command, passing the socket
// the systemd socket-activation way (Exec), or serves the socket itself behind the access
// middleware and reverse-proxies admitted requests to the command over a private Unix socket
// (Guard).
//
// Exec is execve in place: the command keeps bindguard's pid, so LISTEN_PID holds, signals
// and the exit code are the command's own, and only the passed sockets (at fds 3, 4, ...)
// survive the exec; every other descriptor is close-on-exec. Guard is a parent: it forwards
// signals to the command and exits with its code.
//
// Both fail closed: a socket the policy forbids is refused before bind(2), a socket that
// cannot be bound stops run before the command starts, and Guard refuses services that need no
// client check, UDP services and services the policy says speak TLS.
//
// For run --enforce, NewCgroup makes a cgroup of run's own under the one it was started in
// (Join moves run there before Exec; GuardConfig.Cgroup starts only the command there), and
// Leftovers finds the empty cgroups of ended runs; the enforcement itself is the kernel
// package's, applied by the caller.
package runner

import (
	"errors"

	"fmt"
	"github.com/bindguard/bindguard/access"
	"os/exec"
	"slices"
	"strconv"
	"strings"

	"github.com/bindguard/bindguard/policy"
)

// UpstreamEnv names the environment variable that holds, under Guard, the path of the Unix
// socket the command must listen on.
const UpstreamEnv = "BINDGUARD_UPSTREAM"

// The socket-activation variables (sd_listen_fds(3)).
const (
	envListenFDs     = "LISTEN_FDS"
	envListenPID     = "LISTEN_PID"
	envListenFDNames = "LISTEN_FDNAMES"
)

// FirstFD is the first passed descriptor, as in systemd socket activation.
const FirstFD = 3

// ErrGuard is matched (errors.Is) by every refusal of Guard to guard a service.
var ErrGuard = errors.New("cannot guard this service")

// LookPath resolves the command as a shell would: a name without a slash through PATH, a path
// as it is. The error says which and why.
func LookPath(name string) (string, error) {
	if name == "" {
		return "", errors.New("run: no command after --")
	}
	p, err := exec.LookPath(name)
	if err != nil {
		if strings.Contains(name, "/") {
			return "", fmt.Errorf("run: command %s: %w", strconv.Quote(name), unwrapExec(err))
		}
		return "", fmt.Errorf("run: command %s not found in PATH (%s): give its path, or fix PATH", strconv.Quote(name), unwrapExec(err))
	}
	return p, nil
}

func unwrapExec(err error) error {
	var ee *exec.Error
	if errors.As(err, &ee) {
		return ee.Err
	}
	return err
}

// CheckGuard says whether Guard can guard the service: a TCP service of a class that limits
// who may reach it, which the policy does not say speaks TLS (a proxy route to it with
// upstream_tls). A refusal matches ErrGuard.
func CheckGuard(pol *policy.Policy, svc policy.Service) error {
	switch {
	case svc.Protocol != policy.TCP:
		return fmt.Errorf("%w: service %s is %s; --guard proxies HTTP over TCP only (run it without --guard)", ErrGuard, svc.Name, svc.Protocol)
	case !svc.Access.Confined():
		return fmt.Errorf("%w: service %s is %s: %s, so there is no client to check (run it without --guard)", ErrGuard, svc.Name, svc.Access, svc.Access.Admits())
	}
	if pol.Proxy != nil {
		for _, r := range pol.Proxy.Routes {
			if r.Service == svc.Name && r.UpstreamTLS {
				return fmt.Errorf("%w: service %s speaks TLS (the policy's proxy route %s has upstream_tls); --guard serves plain HTTP only (run it without --guard)", ErrGuard, svc.Name, r.Path)
			}
		}
	}
	return nil
}

// Environ returns env without the variables run sets (LISTEN_*, BINDGUARD_UPSTREAM), so that
// nothing a parent passed can be mistaken for run's own.
func Environ(env []string) []string {
	return slices.DeleteFunc(slices.Clone(env), func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		return k == envListenFDs || k == envListenPID || k == envListenFDNames || k == UpstreamEnv
	})
}

// activationEnv is env with the socket-activation variables for n sockets named names, for
// the process pid.
func activationEnv(env []string, pid int, names []string) []string {
	return append(Environ(env),
		envListenFDs+"="+strconv.Itoa(len(names)),
		envListenPID+"="+strconv.Itoa(pid),
		envListenFDNames+"="+strings.Join(names, ":"))
}

// Route gives requests under a path prefix their own access class, as --route PREFIX=CLASS.
type Route struct {
	Prefix string
	Access policy.Access
}

// ParseRoute reads PREFIX=CLASS ("/internal/=localhost_only").
func ParseRoute(s string) (Route, error) {
	prefix, class, ok := strings.Cut(s, "=")
	a := policy.Access(class)
	if !ok || !a.Valid() {
		return Route{}, fmt.Errorf("route %s: want PREFIX=CLASS with CLASS one of %s", strconv.Quote(s), accessList())
	}
	return Route{Prefix: prefix, Access: a}, nil
}

func accessList() string {
	var names []string
	for _, a := range policy.Accesses() {
		names = append(names, string(a))
	}
	return strings.Join(names, ", ")
}

// NewGuard is the access guard of svc with the routes: lan and restricted routes admit the
// service's allow list, localhost_only routes check the Host header as the service does.
func NewGuard(pol *policy.Policy, svc policy.Service, routes []Route) (*access.Guard, error) {
	g, err := access.NewGuard(pol, svc.Name)
	if err != nil {
		return nil, fmt.Errorf("run: %w", err)
	}
	allow := access.NewZonedPrefixSet(svc.AllowPrefixes, svc.AllowZoned)
	for _, r := range routes {
		if err := g.Route(r.Prefix, access.Rule{Access: r.Access, Allow: allow, HostCheck: svc.HostCheck}); err != nil {
			return nil, fmt.Errorf("run: --route: %w", err)
		}
	}
	return g, nil
}
