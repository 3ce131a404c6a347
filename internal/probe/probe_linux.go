package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bindguard/bindguard/internal/proc"
	"github.com/bindguard/bindguard/policy"
)

// linuxDialer makes sockets in the vantage's network namespace and probes with them from any
// thread: a socket stays in the namespace it was created in, so only socket(2) has to run on
// the thread that entered it.
type linuxDialer struct {
	// reqs go to the thread inside the namespace; nil means the caller's own namespace.
	reqs chan sockReq
	done chan error
}

type sockReq struct {
	family, typ int
	// zone, when set, asks instead for the index of that interface in the namespace.
	zone  string
	reply chan sockReply
}

type sockReply struct {
	fd  int
	err error
}

func newSocket(family, typ int) (int, error) {
	fd, err := unix.Socket(family, typ|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("socket: %w", err)
	}
	return fd, nil
}

// newDialer enters the namespace at path on an OS thread of its own (proc.InNetNS), which then
// serves socket requests until close.
func newDialer(path string) (dialer, error) {
	if path == "" {
		return &linuxDialer{}, nil
	}
	d := &linuxDialer{reqs: make(chan sockReq), done: make(chan error, 1)}
	ready := make(chan struct{})
	go func() {
		d.done <- proc.InNetNS(path, func() error {
			close(ready)
			for r := range d.reqs {
				if r.zone != "" {
					idx, err := zoneIndex(r.zone)
					r.reply <- sockReply{idx, err}
					continue
				}
				fd, err := newSocket(r.family, r.typ)
				r.reply <- sockReply{fd, err}
			}
			return nil
		})
	}()
	select {
	case <-ready:
		return d, nil
	case err := <-d.done:
		return nil, fmt.Errorf("probe: enter %s: %w", path, err)
	}
}

func (d *linuxDialer) close() {
	if d.reqs != nil {
		close(d.reqs)
		<-d.done
	}
}

func (d *linuxDialer) socket(family, typ int) (int, error) {
	if d.reqs == nil {
		return newSocket(family, typ)
	}
	reply := make(chan sockReply, 1)
	d.reqs <- sockReq{family: family, typ: typ, reply: reply}
	r := <-reply
	return r.fd, r.err
}

// zoneIndex is the index of the interface named zone (or zone itself, when it is a number)
// in the calling thread's namespace.
func zoneIndex(zone string) (int, error) {
	if n, err := strconv.Atoi(zone); err == nil && n > 0 {
		return n, nil
	}
	ifi, err := net.InterfaceByName(zone)
	if err != nil {
		return 0, fmt.Errorf("zone %s: %w", zone, err)
	}
	return ifi.Index, nil
}

// sockaddr is the socket address of ap; a zone is looked up in the vantage's namespace.
func (d *linuxDialer) sockaddr(ap netip.AddrPort) (int, unix.Sockaddr, error) {
	a := ap.Addr()
	if a.Is4() {
		return unix.AF_INET, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: a.As4()}, nil
	}
	sa := &unix.SockaddrInet6{Port: int(ap.Port()), Addr: a.As16()}
	if z := a.Zone(); z != "" {
		var idx int
		var err error
		if d.reqs == nil {
			idx, err = zoneIndex(z)
		} else {
			reply := make(chan sockReply, 1)
			d.reqs <- sockReq{zone: z, reply: reply}
			r := <-reply
			idx, err = r.fd, r.err
		}
		if err != nil {
			return 0, nil, err
		}
		sa.ZoneId = uint32(idx) // #nosec G115 -- interface indexes are small
	}
	return unix.AF_INET6, sa, nil
}

func localAddr(fd int) netip.Addr {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return netip.Addr{}
	}
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrFrom4(sa.Addr)
	case *unix.SockaddrInet6:
		return netip.AddrFrom16(sa.Addr).Unmap()
	}
	return netip.Addr{}
}

// source connects a UDP socket (which sends nothing) to learn the route's source address.
func (d *linuxDialer) source(addr netip.Addr) (netip.Addr, error) {
	family, sa, err := d.sockaddr(netip.AddrPortFrom(addr, 9))
	if err != nil {
		return netip.Addr{}, err
	}
	fd, err := d.socket(family, unix.SOCK_DGRAM)
	if err != nil {
		return netip.Addr{}, err
	}
	defer func() { _ = unix.Close(fd) }()
	if err := unix.Connect(fd, sa); err != nil {
		return netip.Addr{}, err
	}
	src := localAddr(fd)
	if !src.IsValid() {
		return netip.Addr{}, errors.New("no local address")
	}
	return src, nil
}

func (d *linuxDialer) probe(ctx context.Context, prot policy.Protocol, to netip.AddrPort, timeout time.Duration) (outcome, error) {
	deadline := time.Now().Add(timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	if prot == policy.UDP {
		return d.probeUDP(to, deadline, timeout)
	}
	return d.probeTCP(to, deadline, timeout)
}

// classify maps a connect or read error onto a state.
func classify(err error, timeout time.Duration, udp bool) (outcome, bool) {
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		if udp {
			return outcome{state: OpenFiltered, detail: fmt.Sprintf("no reply in %s", timeout)}, true
		}
		return outcome{state: Filtered, detail: fmt.Sprintf("no answer in %s", timeout)}, true
	case errors.Is(err, syscall.ECONNREFUSED):
		if udp {
			return outcome{state: Closed, detail: "ICMP port unreachable"}, true
		}
		return outcome{state: Closed, detail: "connection refused"}, true
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH),
		errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM), errors.Is(err, syscall.ETIMEDOUT):
		return outcome{state: Filtered, detail: err.Error()}, true
	}
	return outcome{}, false
}

func (d *linuxDialer) probeTCP(to netip.AddrPort, deadline time.Time, timeout time.Duration) (outcome, error) {
	family, sa, err := d.sockaddr(to)
	if err != nil {
		return outcome{}, err
	}
	fd, err := d.socket(family, unix.SOCK_STREAM)
	if err != nil {
		return outcome{}, err
	}
	cerr := unix.Connect(fd, sa)
	if cerr != nil && !errors.Is(cerr, unix.EINPROGRESS) {
		_ = unix.Close(fd)
		if out, ok := classify(cerr, timeout, false); ok {
			return out, nil
		}
		return outcome{}, fmt.Errorf("connect: %w", cerr)
	}
	f := os.NewFile(uintptr(fd), "probe") // #nosec G115 -- a descriptor socket(2) returned
	defer func() { _ = f.Close() }()
	if cerr == nil {
		return outcome{state: Open, local: localAddr(fd), detail: "connected"}, nil
	}
	if err := f.SetWriteDeadline(deadline); err != nil {
		return outcome{}, fmt.Errorf("deadline: %w", err)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return outcome{}, err
	}
	var soerr int
	var gerr error
	var local netip.Addr
	werr := rc.Write(func(fd uintptr) bool {
		// Done when the socket has a peer (connected) or an error (refused, unreachable);
		// otherwise the connect is in progress: wait until the socket is writable. The
		// readiness a completion raises after this check wakes the wait.
		ifd := int(fd) // #nosec G115 -- a socket descriptor
		soerr, gerr = unix.GetsockoptInt(ifd, unix.SOL_SOCKET, unix.SO_ERROR)
		if gerr != nil || soerr != 0 {
			return true
		}
		if _, err := unix.Getpeername(ifd); err != nil {
			return false
		}
		local = localAddr(ifd)
		return true
	})
	if werr != nil {
		if out, ok := classify(werr, timeout, false); ok {
			return out, nil
		}
		return outcome{}, werr
	}
	if gerr != nil {
		return outcome{}, fmt.Errorf("SO_ERROR: %w", gerr)
	}
	if soerr != 0 {
		e := syscall.Errno(soerr) // #nosec G115 -- an errno
		if out, ok := classify(e, timeout, false); ok {
			return out, nil
		}
		return outcome{}, fmt.Errorf("connect: %w", e)
	}
	return outcome{state: Open, local: local, detail: "connected"}, nil
}

// udpPayload is what a UDP probe sends: a few bytes no protocol gives meaning to, which an
// echo-like service answers and a silent one ignores.
var udpPayload = []byte("bindguard-probe\n")

func (d *linuxDialer) probeUDP(to netip.AddrPort, deadline time.Time, timeout time.Duration) (outcome, error) {
	family, sa, err := d.sockaddr(to)
	if err != nil {
		return outcome{}, err
	}
	fd, err := d.socket(family, unix.SOCK_DGRAM)
	if err != nil {
		return outcome{}, err
	}
	if err := unix.Connect(fd, sa); err != nil {
		_ = unix.Close(fd)
		if out, ok := classify(err, timeout, true); ok {
			return out, nil
		}
		return outcome{}, fmt.Errorf("connect: %w", err)
	}
	local := localAddr(fd)
	f := os.NewFile(uintptr(fd), "probe") // #nosec G115 -- a descriptor socket(2) returned
	c, err := net.FileConn(f)
	_ = f.Close()
	if err != nil {
		return outcome{}, fmt.Errorf("udp: %w", err)
	}
	defer func() { _ = c.Close() }()
	if err := c.SetDeadline(deadline); err != nil {
		return outcome{}, err
	}
	if _, err := c.Write(udpPayload); err != nil {
		if out, ok := classify(err, timeout, true); ok {
			out.local = local
			return out, nil
		}
		return outcome{}, fmt.Errorf("send: %w", err)
	}
	buf := make([]byte, 512)
	if _, err := c.Read(buf); err != nil {
		if out, ok := classify(err, timeout, true); ok {
			out.local = local
			return out, nil
		}
		return outcome{}, fmt.Errorf("receive: %w", err)
	}
	return outcome{state: Open, local: local, detail: "answered"}, nil
}

func systemResolve(ctx context.Context, host string) ([]netip.Addr, error) {
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}
