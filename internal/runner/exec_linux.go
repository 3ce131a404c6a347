package runner

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/bindguard/bindguard/listen"
	"github.com/bindguard/bindguard/policy"
)

// Reserve holds descriptors 3 .. 3+n-1 (on /dev/null, close-on-exec) until Exec puts the
// service's sockets there, so that nothing bindguard opens meanwhile (the Go runtime's
// poller, the policy file, the sockets themselves) lands on them. Call it before anything
// else opens a file. A descriptor already open there was inherited from the parent: Exec
// replaces it. It fails when one of them belongs to the Go runtime (it was called too late).
func Reserve(n int) error {
	null, err := unix.Open("/dev/null", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("run: reserve descriptors: %w", err)
	}
	keep := false
	for fd := FirstFD; fd < FirstFD+n; fd++ {
		if fd == null {
			keep = true
			continue
		}
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); errors.Is(err, unix.EBADF) {
			if err := unix.Dup3(null, fd, unix.O_CLOEXEC); err != nil {
				return fmt.Errorf("run: reserve descriptor %d: %w", fd, err)
			}
			continue
		}
		if link, _ := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd)); strings.HasPrefix(link, "anon_inode:") {
			return fmt.Errorf("run: descriptor %d is in use (%s) before run could reserve it", fd, link)
		}
	}
	if !keep {
		_ = unix.Close(null)
	}
	return nil
}

// socket is a bound listener or packet socket.
type socket interface {
	SyscallConn() (syscall.RawConn, error)
	Close() error
}

// bind opens the named service's socket as pol declares it, through listen: a forbidden
// address is refused before bind(2) (errors.Is(err, listen.ErrForbidden)).
func bind(ctx context.Context, pol *policy.Policy, service string) (socket, policy.Service, error) {
	svc, ok := pol.Lookup(service)
	if !ok {
		return nil, svc, fmt.Errorf("run: policy %s declares no service %q", pol.Source, service)
	}
	var (
		s   socket
		err error
	)
	if svc.Protocol == policy.UDP {
		var pc net.PacketConn
		pc, err = listen.ListenPacket(ctx, pol, service)
		if err == nil {
			s = pc.(*net.UDPConn)
		}
	} else {
		var l net.Listener
		l, err = listen.Listen(ctx, pol, service)
		if err == nil {
			s = l.(*net.TCPListener)
		}
	}
	if err != nil {
		return nil, svc, fmt.Errorf("run: %w", err)
	}
	return s, svc, nil
}

// Exec binds the service's socket and replaces the process with path (argv, env), the socket
// at descriptor 3 with LISTEN_FDS=1, LISTEN_PID (this pid, which the command keeps) and
// LISTEN_FDNAMES=service. Call Reserve(1) first. It returns only on failure; a socket that
// cannot be bound stops it before the exec.
func Exec(ctx context.Context, pol *policy.Policy, service, path string, argv, env []string) error {
	s, _, err := bind(ctx, pol, service)
	if err != nil {
		return err
	}
	if err := pass([]socket{s}); err != nil {
		_ = s.Close()
		return err
	}
	env = activationEnv(env, os.Getpid(), []string{service})
	if err := syscall.Exec(path, argv, env); err != nil { // #nosec G204 -- the command the operator gave run
		return fmt.Errorf("run: exec %s: %w", path, err)
	}
	return nil
}

// pass puts the sockets at descriptors 3, 4, ... without close-on-exec (and in blocking mode,
// as systemd passes them), and marks every other descriptor above them close-on-exec.
func pass(socks []socket) error {
	for i, s := range socks {
		target := FirstFD + i
		rc, err := s.SyscallConn()
		if err != nil {
			return fmt.Errorf("run: socket %d: %w", i, err)
		}
		var serr error
		if err := rc.Control(func(fd uintptr) {
			if int(fd) < FirstFD+len(socks) {
				serr = fmt.Errorf("socket at descriptor %d, inside the range it is passed to", fd)
				return
			}
			if serr = unix.Dup3(int(fd), target, 0); serr != nil {
				return
			}
			fl, err := unix.FcntlInt(uintptr(target), unix.F_GETFL, 0)
			if err == nil {
				_, err = unix.FcntlInt(uintptr(target), unix.F_SETFL, fl&^unix.O_NONBLOCK)
			}
			serr = err
		}); err != nil {
			return fmt.Errorf("run: socket %d: %w", i, err)
		}
		if serr != nil {
			return fmt.Errorf("run: pass socket %d as descriptor %d: %w", i, target, serr)
		}
	}
	return cloexecFrom(FirstFD + len(socks))
}

// cloexecFrom marks every descriptor from first on close-on-exec: close_range(2), or one by
// one from /proc/self/fd on kernels before 5.11.
func cloexecFrom(first int) error {
	if err := unix.CloseRange(uint(first), ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err == nil {
		return nil
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("run: list descriptors: %w", err)
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd < first {
			continue
		}
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil && !errors.Is(err, unix.EBADF) {
			return fmt.Errorf("run: descriptor %d close-on-exec: %w", fd, err)
		}
	}
	return nil
}
