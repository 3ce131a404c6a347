package runner

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The forwarder's connections to the upstream make no system call through the runtime's
// system-call entry (see rawio_linux.go for why that matters): socket(2), connect(2), read,
// write and close(2) are raw calls on non-blocking descriptors, and a connection that has to
// wait is woken by a reactor of bindguard's own, an epoll instance whose own descriptor is
// on Go's poller. gunicorn's sync workers close every connection, so the forwarder opens and
// closes one per request; through the net package that was also an epoll_ctl each way,
// getsockname and getpeername, and a close that woke sysmon from its sleep each time.

// reactor is the epoll instance the upstream connections wait on; started once.
type reactor struct {
	ep   *os.File // the epoll descriptor, non-blocking, on Go's poller (never closed)
	epfd int
	rc   syscall.RawConn

	mu    sync.Mutex
	conns map[uint64]*upstreamConn
	next  uint64

	events [64]unix.EpollEvent
	n      int
	errno  syscall.Errno // epoll_pwait's failure, which ends the reactor
	waitFn func(uintptr) bool
	// broken is set when the reactor has stopped: every connection's wait ends with errBroken.
	broken atomic.Bool
}

var errReactor = errors.New("upstream reactor stopped")

var (
	theReactor    *reactor
	theReactorErr error
	reactorOnce   sync.Once
)

func getReactor() (*reactor, error) {
	reactorOnce.Do(func() { theReactor, theReactorErr = newReactor() })
	return theReactor, theReactorErr
}

func newReactor() (*reactor, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		_ = unix.Close(fd)
		return nil, os.NewSyscallError("fcntl", err)
	}
	ep := os.NewFile(uintptr(fd), "bindguard-upstream-epoll") // #nosec G115 -- a descriptor
	rc, err := ep.SyscallConn()
	if err != nil {
		_ = ep.Close()
		return nil, err
	}
	r := &reactor{ep: ep, epfd: fd, rc: rc, conns: make(map[uint64]*upstreamConn)}
	r.waitFn = r.wait
	go r.loop()
	return r, nil
}

// wait is one epoll_wait that does not block; false (park on the poller until the epoll
// descriptor is readable) when nothing is ready.
func (r *reactor) wait(fd uintptr) bool {
	for {
		// #nosec G103 -- the events array for epoll_pwait(2); it outlives the call
		n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, fd, uintptr(unsafe.Pointer(&r.events[0])), uintptr(len(r.events)), 0, 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 || n == 0 {
			r.n, r.errno = 0, e
			return e != 0
		}
		r.n = int(n) // #nosec G115 -- at most len(events)
		return true
	}
}

func (r *reactor) loop() {
	for {
		// The epoll descriptor is never closed, and epoll_pwait fails only on a bad
		// argument: should it happen, the reactor stops rather than spin, and every
		// connection on it fails.
		if err := r.rc.Read(r.waitFn); err != nil || r.errno != 0 {
			r.broken.Store(true)
			r.mu.Lock()
			for _, c := range r.conns {
				wake(c.rready)
				wake(c.wready)
			}
			r.mu.Unlock()
			return
		}
		r.mu.Lock()
		for _, ev := range r.events[:r.n] {
			id := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32 // #nosec G115 -- the id's halves
			if c := r.conns[id]; c != nil {
				if ev.Events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
					wake(c.rready)
				}
				if ev.Events&(unix.EPOLLOUT|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
					wake(c.wready)
				}
			}
		}
		r.mu.Unlock()
	}
}

// wake leaves a token in ch (capacity 1) unless one is there.
func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// upstreamConn is a connection to the upstream's Unix socket on the reactor. One goroutine
// reads, writes and closes it; SetDeadline may be called from any (the forwarder's cancel
// hook does). That is the forwarder's use; http.Transport, which reads, writes and closes
// from goroutines of its own, dials with the net package. Its errors are the net package's (*net.OpError, io.EOF, deadlines that are
// Timeout()).
type upstreamConn struct {
	fd     int
	id     uint64
	r      *reactor
	addr   *net.UnixAddr
	rready chan struct{}
	wready chan struct{}
	closed bool

	// deadline: expired is set by the timer (or a deadline in the past), which then wakes
	// both directions.
	dmu     sync.Mutex
	timer   *time.Timer
	expired atomic.Bool
}

// dialUpstream connects to the Unix socket at addr. A Unix connect does not wait: a full
// backlog is EAGAIN, an error, as with net.DialUnix.
func dialUpstream(addr *net.UnixAddr) (net.Conn, error) {
	r, err := getReactor()
	if err == nil && r.broken.Load() {
		err = errReactor
	}
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: "unix", Addr: addr, Err: err}
	}
	sa, err := sockaddrUnix(addr.Name)
	if err != nil {
		return nil, &net.OpError{Op: "dial", Net: "unix", Addr: addr, Err: err}
	}
	s, _, e := unix.RawSyscall(unix.SYS_SOCKET, unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if e != 0 {
		return nil, &net.OpError{Op: "dial", Net: "unix", Addr: addr, Err: os.NewSyscallError("socket", e)}
	}
	c := &upstreamConn{fd: int(s), r: r, addr: addr, rready: make(chan struct{}, 1), wready: make(chan struct{}, 1)} // #nosec G115 -- a descriptor
	r.mu.Lock()
	r.next++
	c.id = r.next
	r.conns[c.id] = c
	r.mu.Unlock()
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(uint32(c.id)), Pad: int32(uint32(c.id >> 32))} // #nosec G115 -- the id's halves
	// #nosec G103 -- the event for epoll_ctl(2); it outlives the call
	if _, _, e := unix.RawSyscall6(unix.SYS_EPOLL_CTL, uintptr(r.epfd), unix.EPOLL_CTL_ADD, s, uintptr(unsafe.Pointer(&ev)), 0, 0); e != 0 {
		c.release()
		return nil, &net.OpError{Op: "dial", Net: "unix", Addr: addr, Err: os.NewSyscallError("epoll_ctl", e)}
	}
	for {
		// #nosec G103 -- the address for connect(2); it outlives the call
		_, _, e = unix.RawSyscall(unix.SYS_CONNECT, s, uintptr(unsafe.Pointer(&sa)), uintptr(sockaddrUnixLen(addr.Name)))
		if e != unix.EINTR {
			break
		}
	}
	if e != 0 {
		c.release()
		return nil, &net.OpError{Op: "dial", Net: "unix", Addr: addr, Err: os.NewSyscallError("connect", e)}
	}
	return c, nil
}

// sockaddrUnix is path as a struct sockaddr_un (a path that does not fit is an error).
func sockaddrUnix(path string) (unix.RawSockaddrUnix, error) {
	var sa unix.RawSockaddrUnix
	if path == "" || len(path) >= len(sa.Path) {
		return sa, os.NewSyscallError("connect", unix.EINVAL)
	}
	sa.Family = unix.AF_UNIX
	for i := 0; i < len(path); i++ {
		sa.Path[i] = int8(path[i]) // #nosec G115 -- bytes of the path
	}
	return sa, nil
}

func sockaddrUnixLen(path string) int { return 2 + len(path) + 1 }

// release takes c off the reactor and closes its descriptor (which leaves the epoll set).
func (c *upstreamConn) release() {
	c.r.mu.Lock()
	delete(c.r.conns, c.id)
	c.r.mu.Unlock()
	_, _, _ = unix.RawSyscall(unix.SYS_CLOSE, uintptr(c.fd), 0, 0) // #nosec G115 -- a descriptor
}

func (c *upstreamConn) Close() error {
	if c.closed {
		return net.ErrClosed
	}
	c.closed = true
	c.dmu.Lock()
	if c.timer != nil {
		c.timer.Stop()
	}
	c.dmu.Unlock()
	c.release()
	return nil
}

func (c *upstreamConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if c.closed {
			return 0, c.opError("read", net.ErrClosed)
		}
		if c.expired.Load() {
			return 0, c.opError("read", os.ErrDeadlineExceeded)
		}
		// #nosec G103 -- the buffer's address for read(2); it outlives the call
		n, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(c.fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p))) // #nosec G115 -- a descriptor
		switch e {
		case 0:
			if n == 0 {
				return 0, io.EOF
			}
			return int(n), nil // #nosec G115 -- at most len(p)
		case unix.EINTR:
		case unix.EAGAIN:
			<-c.rready
			if c.r.broken.Load() {
				return 0, c.opError("read", errReactor)
			}
		default:
			return 0, c.opError("read", os.NewSyscallError("read", e))
		}
	}
}

func (c *upstreamConn) Write(p []byte) (int, error) {
	var done int
	for done < len(p) {
		if c.closed {
			return done, c.opError("write", net.ErrClosed)
		}
		if c.expired.Load() {
			return done, c.opError("write", os.ErrDeadlineExceeded)
		}
		q := p[done:]
		// #nosec G103 -- the buffer's address for write(2); it outlives the call
		n, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(c.fd), uintptr(unsafe.Pointer(&q[0])), uintptr(len(q))) // #nosec G115 -- a descriptor
		switch e {
		case 0:
			done += int(n) // #nosec G115 -- at most len(q)
		case unix.EINTR:
		case unix.EAGAIN:
			<-c.wready
			if c.r.broken.Load() {
				return done, c.opError("write", errReactor)
			}
		default:
			return done, c.opError("write", os.NewSyscallError("write", e))
		}
	}
	return done, nil
}

// SetDeadline interrupts a read or write waiting at t (now, for a time past); the zero time
// clears it.
func (c *upstreamConn) SetDeadline(t time.Time) error {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	if t.IsZero() {
		c.expired.Store(false)
		return nil
	}
	if d := time.Until(t); d > 0 {
		c.expired.Store(false)
		c.timer = time.AfterFunc(d, c.expire)
		return nil
	}
	c.expire()
	return nil
}

func (c *upstreamConn) expire() {
	c.expired.Store(true)
	wake(c.rready)
	wake(c.wready)
}

func (c *upstreamConn) SetReadDeadline(t time.Time) error  { return c.SetDeadline(t) }
func (c *upstreamConn) SetWriteDeadline(t time.Time) error { return c.SetDeadline(t) }
func (c *upstreamConn) LocalAddr() net.Addr                { return &net.UnixAddr{Net: "unix"} }
func (c *upstreamConn) RemoteAddr() net.Addr               { return c.addr }

func (c *upstreamConn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "unix", Addr: c.addr, Err: err}
}

// alive is alive's peek for this connection: recv(2) with MSG_PEEK|MSG_DONTWAIT sees neither
// EOF nor bytes.
func (c *upstreamConn) alive() bool {
	if c.closed {
		return false
	}
	var b [1]byte
	// #nosec G103 -- the buffer's address for recvfrom(2); it outlives the call
	n, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(c.fd), uintptr(unsafe.Pointer(&b[0])), 1, unix.MSG_PEEK|unix.MSG_DONTWAIT, 0, 0) // #nosec G115 -- a descriptor
	return n == ^uintptr(0) && e == unix.EAGAIN
}
