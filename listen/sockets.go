package listen

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/bindguard/bindguard/policy"
)

// listenFDsStart is the first fd systemd passes (SD_LISTEN_FDS_START).
const listenFDsStart = 3

// maxListenFDs bounds LISTEN_FDS: a larger value is a broken environment, not sockets.
const maxListenFDs = 1024

// Sockets are sockets a process was handed: by systemd socket activation or otherwise
// inherited. Listen and ListenPacket take the one belonging to their service, validated
// against the policy. It is safe for concurrent use.
type Sockets struct {
	mu    sync.Mutex
	files []*os.File
	names []string
	taken []bool
}

// Activated returns the sockets systemd passed through LISTEN_PID, LISTEN_FDS and
// LISTEN_FDNAMES, or nil when none were passed to this process. Like sd_listen_fds(3) with
// unset_environment, it removes the variables so that child processes do not take them too,
// and marks the fds close-on-exec.
func Activated() (*Sockets, error) {
	return activated(os.Getenv, os.Unsetenv, os.Getpid())
}

func activated(getenv func(string) string, unsetenv func(string) error, pid int) (*Sockets, error) {
	pidStr, nStr := getenv("LISTEN_PID"), getenv("LISTEN_FDS")
	if pidStr == "" && nStr == "" {
		return nil, nil
	}
	defer func() {
		for _, v := range []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"} {
			_ = unsetenv(v)
		}
	}()
	p, err := strconv.Atoi(pidStr)
	if err != nil || p <= 0 {
		return nil, fmt.Errorf("listen: LISTEN_PID=%q is not a pid", pidStr)
	}
	if p != pid {
		return nil, nil // meant for another process (our parent's environment)
	}
	n, err := strconv.Atoi(nStr)
	if err != nil || n < 0 || n > maxListenFDs {
		return nil, fmt.Errorf("listen: LISTEN_FDS=%q is not a count of 0-%d", nStr, maxListenFDs)
	}
	var names []string
	if v := getenv("LISTEN_FDNAMES"); v != "" {
		names = strings.Split(v, ":")
		if len(names) != n {
			return nil, fmt.Errorf("listen: LISTEN_FDNAMES has %d names for %d sockets", len(names), n)
		}
	}
	// Check every fd before wrapping any: an *os.File closes its fd when collected.
	for i := range n {
		fd := listenFDsStart + i
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
			return nil, fmt.Errorf("listen: LISTEN_FDS=%d but fd %d is not open: %w", n, fd, err)
		}
	}
	files := make([]*os.File, n)
	for i := range n {
		fd := listenFDsStart + i
		unix.CloseOnExec(fd)
		name := "LISTEN_FD_" + strconv.Itoa(fd)
		if names != nil {
			name = names[i]
		}
		files[i] = os.NewFile(uintptr(fd), name)
	}
	return &Sockets{files: files, names: names, taken: make([]bool, n)}, nil
}

// FromFiles wraps inherited sockets. names, when not nil, names each file (as
// LISTEN_FDNAMES does); a socket named like a service is that service's.
func FromFiles(files []*os.File, names []string) (*Sockets, error) {
	if names != nil && len(names) != len(files) {
		return nil, fmt.Errorf("listen: %d names for %d sockets", len(names), len(files))
	}
	return &Sockets{files: files, names: names, taken: make([]bool, len(files))}, nil
}

// Remaining returns the sockets no service has taken, for the caller to close or report.
func (s *Sockets) Remaining() []*os.File {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*os.File
	for i, f := range s.files {
		if !s.taken[i] {
			out = append(out, f)
		}
	}
	return out
}

// inherited describes a socket fd.
type inherited struct {
	protocol  policy.Protocol
	addr      netip.AddrPort
	v6only    bool
	listening bool
}

func describe(f *os.File) (inherited, error) {
	var in inherited
	rc, err := f.SyscallConn()
	if err != nil {
		return in, err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		typ, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TYPE)
		if err != nil {
			serr = fmt.Errorf("not a socket: %w", err)
			return
		}
		sa, err := unix.Getsockname(int(fd))
		if err != nil {
			serr = err
			return
		}
		switch sa := sa.(type) {
		case *unix.SockaddrInet4:
			in.addr = netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port)) // #nosec G115 -- a port is 16 bits
		case *unix.SockaddrInet6:
			in.addr = netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(sa.Port)) // #nosec G115
			v, err := unix.GetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_V6ONLY)
			if err != nil {
				serr = err
				return
			}
			in.v6only = v == 1
		default:
			serr = errors.New("not an IP socket")
			return
		}
		switch typ {
		case unix.SOCK_STREAM:
			in.protocol = policy.TCP
			acc, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
			in.listening = err == nil && acc == 1
		case unix.SOCK_DGRAM:
			in.protocol = policy.UDP
			in.listening = true
		default:
			serr = fmt.Errorf("socket type %d is neither stream nor datagram", typ)
		}
	})
	if err != nil {
		return in, err
	}
	return in, serr
}

// take returns the socket for plan p: the one named like the service, else the one on the
// service's protocol and port. A socket found that way but not matching the policy is an
// *Error; ok is false when s holds no socket for the service.
func (s *Sockets) take(p Plan) (f *os.File, ok bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	svc := p.Service
	pick := -1
	var got inherited
	for i, file := range s.files {
		if s.taken[i] {
			continue
		}
		named := s.names != nil && s.names[i] == svc.Name
		in, derr := describe(file)
		if derr != nil {
			if named {
				return nil, false, refuse(svc, p.Addr, fmt.Sprintf("the inherited socket %q: %v", file.Name(), derr))
			}
			continue
		}
		if named || (in.protocol == svc.Protocol && in.addr.Port() == svc.Port) {
			pick, got = i, in
			if named {
				break
			}
		}
	}
	if pick < 0 {
		return nil, false, nil
	}
	a := got.addr.Addr().Unmap()
	bad := func(reason string) (*os.File, bool, error) {
		return nil, false, refuse(svc, netip.AddrPortFrom(a, got.addr.Port()), "inherited socket: "+reason)
	}
	switch {
	case got.protocol != svc.Protocol:
		return bad(fmt.Sprintf("it is %s, the policy declares %s", got.protocol, svc.Protocol))
	case got.addr.Port() != svc.Port:
		return bad(fmt.Sprintf("it is on port %d, the policy declares %d", got.addr.Port(), svc.Port))
	case !got.listening:
		return bad("it is not listening")
	case !svc.PermitsBind(a):
		return bad(svc.BindRefusal(a))
	case svc.Address.IsValid() && a != svc.Address:
		return bad(fmt.Sprintf("it is bound to %s, the policy declares %s", a, svc.Address))
	case svc.Address == netip.IPv6Unspecified() && got.v6only != svc.V6Only:
		if svc.V6Only {
			return bad(":: without IPV6_V6ONLY also accepts IPv4; the policy declares v6only")
		}
		return bad(":: with IPV6_V6ONLY; the policy declares it dual-stack")
	}
	s.taken[pick] = true
	return s.files[pick], true, nil
}
