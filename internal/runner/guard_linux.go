package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/bindguard/bindguard/listen"
	"github.com/bindguard/bindguard/policy"
)

// Forwarded are the signals Guard passes on to the command.
var forwarded = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2}

// GuardConfig is what Guard runs.
type GuardConfig struct {
	Policy  *policy.Policy
	Service string
	// Path is the resolved command (LookPath), Argv its arguments with Argv[0], Env its
	// environment (BINDGUARD_UPSTREAM is added).
	Path string
	Argv []string
	Env  []string
	// Stdin, Stdout and Stderr are the command's.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Logger         *slog.Logger
	// Routes give path prefixes their own access class (access.Guard.Route).
	Routes []Route
	// Cgroup, when set, is the cgroup directory the command starts in (cloned straight into
	// it, CLONE_INTO_CGROUP); bindguard itself stays where it is.
	Cgroup *os.File
}

// Guard binds the service's socket, starts the command with BINDGUARD_UPSTREAM naming a Unix
// socket in a new directory only this user can reach (0700), and, once the command listens
// there, serves the service's socket behind the access guard, reverse-proxying admitted
// requests to it. It forwards SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 to the
// command and returns its exit code (128+signal when a signal killed it) when it ends; the
// command is killed if bindguard dies. The command does not start when the socket cannot be
// bound or the service cannot be guarded (CheckGuard).
func Guard(ctx context.Context, c GuardConfig) (int, error) {
	logger := c.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	svc, ok := c.Policy.Lookup(c.Service)
	if !ok {
		return 0, fmt.Errorf("run: policy %s declares no service %q", c.Policy.Source, c.Service)
	}
	if err := CheckGuard(c.Policy, svc); err != nil {
		return 0, fmt.Errorf("run: --guard: %w", err)
	}
	g, err := NewGuard(c.Policy, svc, c.Routes)
	if err != nil {
		return 0, err
	}
	l, err := listen.Listen(ctx, c.Policy, c.Service)
	if err != nil {
		return 0, fmt.Errorf("run: %w", err)
	}
	defer func() { _ = l.Close() }()
	dir, err := os.MkdirTemp("", "bindguard-run-")
	if err != nil {
		return 0, fmt.Errorf("run: upstream directory: %w", err)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	if err := os.Chmod(dir, 0o700); err != nil { // #nosec G302 -- a directory: 0700 is owner-only
		return 0, fmt.Errorf("run: upstream directory: %w", err)
	}
	upstream := filepath.Join(dir, "upstream.sock")

	if err := cloexecFrom(FirstFD); err != nil {
		return 0, err
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, forwarded...)
	defer signal.Stop(sigs)

	cmd := exec.Command(c.Path) // #nosec G204 -- the command the operator gave run
	cmd.Path, cmd.Args = c.Path, c.Argv
	cmd.Env = append(Environ(c.Env), UpstreamEnv+"="+upstream)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = c.Stdin, c.Stdout, c.Stderr
	// Its own process group, so a terminal's ^C reaches it once (forwarded), and killed if
	// bindguard dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if c.Cgroup != nil {
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, int(c.Cgroup.Fd()) // #nosec G115 -- an fd
	}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("run: start %s: %w", c.Path, err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()

	// The proxy's live heap is a few MiB: at the default GOGC it would collect every few
	// milliseconds under load. bindguard's memory limit (main: 40 MiB unless GOMEMLIMIT) still
	// bounds it.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(800)
	}
	// The proxy shares the machine with the service it guards, which does the real work: a
	// quarter of the CPUs Go would use (at least one) is plenty for it, and fewer Ps spin less
	// looking for work (on 2 CPUs under bench/run-guard.sh: 58 against 63 µs of CPU a request).
	// GOMAXPROCS in the environment still decides.
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(guardProcs(runtime.GOMAXPROCS(0)))
	}
	srv := Server(Handler(g, upstream, logger), logger)
	served := make(chan error, 1)
	ready := make(chan struct{})
	go func() {
		if !waitSocket(upstream, exited) {
			served <- nil
			return
		}
		close(ready)
		logger.Info("guarding", "service", c.Service, "addr", l.Addr().String(), "upstream", upstream, "pid", cmd.Process.Pid)
		served <- srv.Serve(newFrontListener(l))
	}()

	for {
		select {
		case s := <-sigs:
			_ = cmd.Process.Signal(s)
		case err := <-served:
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				logger.Error("front server failed; stopping the service", "err", err)
				_ = cmd.Process.Signal(syscall.SIGTERM)
			}
			served = nil
		case <-exited:
			select {
			case <-ready:
				sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				_ = srv.Shutdown(sctx)
				cancel()
			default:
			}
			return exitCode(cmd.ProcessState, waitErr)
		}
	}
}

// waitSocket waits until path is a socket, or exited is closed (false).
func waitSocket(path string, exited <-chan struct{}) bool {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if fi, err := os.Lstat(path); err == nil && fi.Mode().Type() == os.ModeSocket {
			c, err := net.Dial("unix", path)
			if err == nil {
				_ = c.Close()
				return true
			}
		}
		select {
		case <-exited:
			return false
		case <-t.C:
		}
	}
}

// exitCode is the command's exit code, 128+signal when a signal ended it.
func exitCode(ps *os.ProcessState, waitErr error) (int, error) {
	if ps == nil {
		return 0, fmt.Errorf("run: wait: %w", waitErr)
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal()), nil
	}
	return ps.ExitCode(), nil
}

// guardProcs is the GOMAXPROCS of the proxy when Go would use n: n/4, at least 1.
func guardProcs(n int) int { return max(1, n/4) }
