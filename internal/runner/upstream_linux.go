package runner

import (
	"errors"
	"io"
	"net"
	"os"
	"runtime"
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

// reactor is the epoll instance the upstream connections wait on.
type reactor struct {
	ep   *os.File // the epoll descriptor, non-blocking, on Go's poller (never closed)
	epfd int
	rc   syscall.RawConn

	mu     sync.Mutex
	wakers map[uint64]*waker
	next   uint64

	events [64]unix.EpollEvent
	n      int
	errno  syscall.Errno // epoll_pwait's failure, which ends the reactor
	waitFn func(uintptr) bool
	// broken is set (under mu) when the loop has stopped.
	broken atomic.Bool
}

// waker is how the reactor wakes one connection: a token in each direction's channel
// (capacity 1). The reactor holds wakers, not connections, so a connection nobody holds
// any more can be collected (and its descriptor closed by its cleanup).
type waker struct{ r, w chan struct{} }

var errReactor = errors.New("upstream reactor stopped")

var (
	reactorMu  sync.Mutex // held to start one
	theReactor atomic.Pointer[reactor]
)

// getReactor is the running reactor, started on first use and again after a failure to
// start or a stop: an error is never kept. A dial takes no lock while it runs.
func getReactor() (*reactor, error) {
	if r := theReactor.Load(); r != nil && !r.broken.Load() {
		return r, nil
	}
	reactorMu.Lock()
	defer reactorMu.Unlock()
	if r := theReactor.Load(); r != nil && !r.broken.Load() {
		return r, nil
	}
	r, err := newReactor()
	if err != nil {
		return nil, err
	}
	theReactor.Store(r)
	return r, nil
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
	r := &reactor{ep: ep, epfd: fd, rc: rc, wakers: make(map[uint64]*waker)}
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
		switch e {
		case unix.EINTR:
			continue
		case 0:
			r.n = int(n) // #nosec G115 -- at most len(events)
			return n > 0
		}
		r.n, r.errno = 0, e
		return true
	}
}

func (r *reactor) loop() {
	for {
		// The epoll descriptor is never closed, and epoll_pwait fails only on a bad
		// argument: should it happen, the reactor stops rather than spin, every
		// connection on it fails, and the next dial starts a new one.
		if err := r.rc.Read(r.waitFn); err != nil || r.errno != 0 {
			r.mu.Lock()
			r.broken.Store(true)
			for _, w := range r.wakers {
				wake(w.r)
				wake(w.w)
			}
			r.mu.Unlock()
			// r.ep stays open: a dial that took r before it stopped may still name
			// epfd, which must not become another descriptor.
			return
		}
		r.mu.Lock()
		for _, ev := range r.events[:r.n] {
			id := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32 // #nosec G115 -- the id's halves
			if w := r.wakers[id]; w != nil {
				if ev.Events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
					wake(w.r)
				}
				if ev.Events&(unix.EPOLLOUT|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
					wake(w.w)
				}
			}
		}
		r.mu.Unlock()
	}
}

// add registers a new connection's waker and gives its id; false when the reactor has
// stopped.
func (r *reactor) add(w *waker) (uint64, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.broken.Load() {
		return 0, false
	}
	r.next++
	r.wakers[r.next] = w
	return r.next, true
}

// wake leaves a token in ch (capacity 1) unless one is there.
func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// upstreamConn is a connection to the upstream's Unix socket on the reactor. One goroutine
// reads, writes and closes it; the deadlines may be set from any (the forwarder's cancel
// hook does). That is the forwarder's use; http.Transport, which reads, writes and closes
// from goroutines of its own, dials with the net package. A connection dropped without
// Close is closed when it is collected, as an os.File is.
type upstreamConn struct {
	fd      int
	id      uint64
	r       *reactor
	w       *waker
	addr    *net.UnixAddr
	closed  bool
	cleanup runtime.Cleanup
	rd, wd  deadline
}

// deadline is one direction's: expired is set when it passes (by its timer, or at once for
// a time past), which wakes that direction's wait. gen tells a timer that fires late, after
// the deadline was moved or cleared, that it is stale.
type deadline struct {
	mu      sync.Mutex
	timer   *time.Timer
	gen     uint64
	expired atomic.Bool
}

// set makes t the deadline (the zero time: none); wakeup is the direction's channel.
func (d *deadline) set(t time.Time, wakeup chan struct{}) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cancel()
	if t.IsZero() {
		d.expired.Store(false)
		return
	}
	if dur := time.Until(t); dur > 0 {
		d.expired.Store(false)
		gen := d.gen
		d.timer = time.AfterFunc(dur, func() {
			d.mu.Lock()
			defer d.mu.Unlock()
			if d.gen == gen {
				d.expired.Store(true)
				wake(wakeup)
			}
		})
		return
	}
	d.expired.Store(true)
	wake(wakeup)
}

func (d *deadline) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cancel()
}

// cancel stops the timer and makes one that already fired stale (d.mu held).
func (d *deadline) cancel() {
	d.gen++
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
}

// closeDesc takes a connection off its reactor and closes its descriptor (which leaves the
// epoll set): Close's work, and the cleanup's for a connection nobody closed.
type closeDesc struct {
	r  *reactor
	id uint64
	fd int
}

func (d closeDesc) run() {
	d.r.mu.Lock()
	delete(d.r.wakers, d.id)
	d.r.mu.Unlock()
	_, _, _ = unix.RawSyscall(unix.SYS_CLOSE, uintptr(d.fd), 0, 0) // #nosec G115 -- a descriptor
}

// dialUpstream connects to the Unix socket at addr. A Unix connect does not wait: a full
// backlog is EAGAIN, an error, as with net.DialUnix.
func dialUpstream(addr *net.UnixAddr) (net.Conn, error) {
	fail := func(err error) (net.Conn, error) {
		return nil, &net.OpError{Op: "dial", Net: "unix", Addr: addr, Err: err}
	}
	sa, salen, err := sockaddrUnix(addr.Name)
	if err != nil {
		return fail(err)
	}
	r, err := getReactor()
	if err != nil {
		return fail(err)
	}
	s, _, e := unix.RawSyscall(unix.SYS_SOCKET, unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if e != 0 {
		return fail(os.NewSyscallError("socket", e))
	}
	w := &waker{r: make(chan struct{}, 1), w: make(chan struct{}, 1)}
	id, ok := r.add(w)
	if !ok {
		_, _, _ = unix.RawSyscall(unix.SYS_CLOSE, s, 0, 0)
		return fail(errReactor)
	}
	cd := closeDesc{r: r, id: id, fd: int(s)}                                                                                                         // #nosec G115 -- a descriptor
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(uint32(id)), Pad: int32(uint32(id >> 32))} // #nosec G115 -- the id's halves
	// #nosec G103 -- the event for epoll_ctl(2); it outlives the call
	if _, _, e := unix.RawSyscall6(unix.SYS_EPOLL_CTL, uintptr(r.epfd), unix.EPOLL_CTL_ADD, s, uintptr(unsafe.Pointer(&ev)), 0, 0); e != 0 { // #nosec G115 -- a descriptor
		cd.run()
		return fail(os.NewSyscallError("epoll_ctl", e))
	}
	for {
		// #nosec G103 -- the address for connect(2); it outlives the call
		_, _, e = unix.RawSyscall(unix.SYS_CONNECT, s, uintptr(unsafe.Pointer(&sa)), uintptr(salen))
		if e != unix.EINTR {
			break
		}
	}
	if e != 0 {
		cd.run()
		return fail(os.NewSyscallError("connect", e))
	}
	c := &upstreamConn{fd: cd.fd, id: id, r: r, w: w, addr: addr}
	c.cleanup = runtime.AddCleanup(c, closeDesc.run, cd)
	return c, nil
}

// sockaddrUnix is path as a struct sockaddr_un and its length, as the net package makes
// them: the path and its terminating NUL must fit in sun_path (107 bytes at most).
func sockaddrUnix(path string) (unix.RawSockaddrUnix, int, error) {
	var sa unix.RawSockaddrUnix
	if path == "" || len(path) >= len(sa.Path) {
		return sa, 0, os.NewSyscallError("connect", unix.EINVAL)
	}
	sa.Family = unix.AF_UNIX
	for i := 0; i < len(path); i++ {
		sa.Path[i] = int8(path[i]) // #nosec G115 -- bytes of the path
	}
	return sa, 2 + len(path) + 1, nil
}

func (c *upstreamConn) Close() error {
	if c.closed {
		return c.opError("close", net.ErrClosed)
	}
	c.closed = true
	c.rd.stop()
	c.wd.stop()
	c.cleanup.Stop()
	closeDesc{r: c.r, id: c.id, fd: c.fd}.run()
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
		if c.rd.expired.Load() {
			return 0, c.opError("read", os.ErrDeadlineExceeded)
		}
		n, e := sysRead(uintptr(c.fd), p) // #nosec G115 -- a descriptor
		// c is kept alive past the call: its cleanup must not close fd during it.
		runtime.KeepAlive(c)
		switch e {
		case 0:
			if n == 0 {
				return 0, io.EOF
			}
			return n, nil
		case unix.EAGAIN:
			if c.r.broken.Load() {
				return 0, c.opError("read", errReactor)
			}
			<-c.w.r
		default:
			return 0, c.opError("read", os.NewSyscallError("read", e))
		}
	}
}

func (c *upstreamConn) Write(p []byte) (int, error) {
	var done int
	for {
		if c.closed {
			return done, c.opError("write", net.ErrClosed)
		}
		if c.wd.expired.Load() {
			return done, c.opError("write", os.ErrDeadlineExceeded)
		}
		n, e := sysWrite(uintptr(c.fd), p[done:]) // #nosec G115 -- a descriptor
		runtime.KeepAlive(c)
		done += n
		switch e {
		case 0:
			return done, nil
		case unix.EAGAIN:
			if c.r.broken.Load() {
				return done, c.opError("write", errReactor)
			}
			<-c.w.w
		default:
			return done, c.opError("write", os.NewSyscallError("write", e))
		}
	}
}

// SetDeadline sets both directions' deadlines: a wait still blocked at t ends with a
// timeout (at once, for a time past); the zero time clears them.
func (c *upstreamConn) SetDeadline(t time.Time) error {
	c.rd.set(t, c.w.r)
	c.wd.set(t, c.w.w)
	return nil
}

func (c *upstreamConn) SetReadDeadline(t time.Time) error  { c.rd.set(t, c.w.r); return nil }
func (c *upstreamConn) SetWriteDeadline(t time.Time) error { c.wd.set(t, c.w.w); return nil }
func (c *upstreamConn) LocalAddr() net.Addr                { return &net.UnixAddr{Net: "unix"} }
func (c *upstreamConn) RemoteAddr() net.Addr               { return c.addr }

func (c *upstreamConn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "unix", Addr: c.addr, Err: err}
}

// alive reports whether an idle upstream connection may be used again (the forwarder's
// connections are upstreamConns here; see proxy_alive_unix.go for the other systems).
func alive(c net.Conn) bool {
	uc, ok := c.(*upstreamConn)
	return ok && uc.alive()
}

// alive is alive's peek for this connection: recv(2) with MSG_PEEK|MSG_DONTWAIT sees neither
// EOF nor bytes, and its reactor still runs (the pool must not hand out a connection that
// can no longer wait).
func (c *upstreamConn) alive() bool {
	if c.closed || c.r.broken.Load() {
		return false
	}
	var b [1]byte
	// #nosec G103 -- the buffer's address for recvfrom(2); it outlives the call
	_, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(c.fd), uintptr(unsafe.Pointer(&b[0])), 1, unix.MSG_PEEK|unix.MSG_DONTWAIT, 0, 0) // #nosec G115 -- a descriptor
	runtime.KeepAlive(c)
	return e == unix.EAGAIN
}
