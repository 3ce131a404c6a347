package runner

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The guard's sockets do their reads and writes with raw system calls, still on Go's poller.
//
// Every read and write of the net package goes through the runtime's system-call entry,
// which hands the P over when a call lasts: sysmon, which watches for such calls, takes the
// P back from any that lasts over its 20 µs tick and starts another thread to run it, and,
// as long as it finds one every millisecond, keeps waking every 20 µs. A non-blocking write
// of a response on loopback lasts that long (the receiver's TCP path runs in the sender's
// call): on two CPUs under bench/run-guard.sh, sysmon, its wakeups and the thread switches
// were about a fifth of the guard's CPU. The calls here never block (the sockets are
// non-blocking; EAGAIN parks the goroutine on the poller as the net package does), so they
// can be made as raw system calls, which keep the P: the kernel's work is CPU work the
// proxy has to do anyway, and nothing else waits behind it.

// sysRead is read(2) of fd into p (not empty), again on EINTR: the count (0 at EOF), or 0
// and the errno (EAGAIN included), never read(2)'s -1 as a count.
func sysRead(fd uintptr, p []byte) (int, syscall.Errno) {
	for {
		// #nosec G103 -- the buffer's address for read(2); it outlives the call
		n, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		switch e {
		case 0:
			return int(n), 0 // #nosec G115 -- at most len(p)
		case unix.EINTR:
		default:
			return 0, e
		}
	}
}

// sysWrite is write(2) of p to fd until all of it is written or an errno (EAGAIN included)
// stops it, again on EINTR: how much was written, and the errno.
func sysWrite(fd uintptr, p []byte) (int, syscall.Errno) {
	done := 0
	for done < len(p) {
		q := p[done:]
		// #nosec G103 -- the buffer's address for write(2); it outlives the call
		n, _, e := unix.RawSyscall(unix.SYS_WRITE, fd, uintptr(unsafe.Pointer(&q[0])), uintptr(len(q)))
		switch e {
		case 0:
			done += int(n) // #nosec G115 -- at most len(q)
		case unix.EINTR:
		default:
			return done, e
		}
	}
	return done, 0
}

// frontListener gives the front server connections that read and write with raw system
// calls (rawTCPConn), their writes bounded by sendTimeout; other connections pass as they are.
type frontListener struct {
	net.Listener
	sendTimeout time.Duration
}

// newFrontListener is l's connections as the front server serves them, with SendTimeout.
func newFrontListener(l net.Listener) net.Listener { return frontListener{l, SendTimeout} }

func (l frontListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c, nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c, nil
	}
	rt := &rawTCPConn{TCPConn: tc, rc: rc, sendTimeout: l.sendTimeout}
	rt.readFn, rt.writeFn = rt.doRead, rt.doWrite
	return rt, nil
}

// rawTCPConn is a client's connection to the front server: Read and Write are raw system
// calls (sysRead, sysWrite) inside the RawConn's callbacks, so the poller parks them when
// they must wait; everything else (addresses, deadlines, Close, CloseWrite) is the
// TCPConn's. Reads and writes may run at once from any goroutines, as on a net.Conn (each
// direction one call at a time); the callbacks are bound once, so a call allocates nothing.
// Its errors are the net package's: *net.OpError "read" and "write", deadline errors that
// are Timeout(), io.EOF.
type rawTCPConn struct {
	*net.TCPConn
	rc syscall.RawConn
	// sendTimeout, when set, bounds how long a write may wait without the client taking a
	// byte (nginx's send_timeout): the first time a write must wait, and again each time it
	// must wait after progress, the write deadline is moved sendTimeout ahead; the write
	// clears it when done. armedAt is wn when it was last moved.
	sendTimeout time.Duration
	armed       bool
	armedAt     int

	rmu    sync.Mutex
	rbuf   []byte
	rn     int
	rerrno syscall.Errno
	readFn func(uintptr) bool

	wmu     sync.Mutex
	wbuf    []byte
	wn      int
	werrno  syscall.Errno
	writeFn func(uintptr) bool
}

// doRead is one read; false (wait for the poller) on EAGAIN.
func (c *rawTCPConn) doRead(fd uintptr) bool {
	c.rn, c.rerrno = sysRead(fd, c.rbuf)
	return c.rerrno != unix.EAGAIN
}

// doWrite writes what is left of wbuf; false (wait for the poller) on EAGAIN.
func (c *rawTCPConn) doWrite(fd uintptr) bool {
	n, e := sysWrite(fd, c.wbuf[c.wn:])
	c.wn += n
	if e != unix.EAGAIN {
		c.werrno = e
		return true
	}
	if c.sendTimeout > 0 && (!c.armed || c.armedAt != c.wn) {
		_ = c.TCPConn.SetWriteDeadline(time.Now().Add(c.sendTimeout))
		c.armed, c.armedAt = true, c.wn
	}
	return false
}

func (c *rawTCPConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	c.rbuf, c.rn, c.rerrno = p, 0, 0
	err := c.rc.Read(c.readFn)
	c.rbuf = nil
	switch {
	case err != nil:
		return 0, c.opError("read", err)
	case c.rerrno != 0:
		return 0, c.opError("read", os.NewSyscallError("read", c.rerrno))
	case c.rn == 0:
		return 0, io.EOF
	}
	return c.rn, nil
}

func (c *rawTCPConn) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wbuf, c.wn, c.werrno = p, 0, 0
	err := c.rc.Write(c.writeFn)
	c.wbuf = nil
	if c.armed {
		_ = c.TCPConn.SetWriteDeadline(time.Time{})
		c.armed = false
	}
	if err == nil && c.werrno != 0 {
		err = os.NewSyscallError("write", c.werrno)
	}
	if err != nil {
		return c.wn, c.opError("write", err)
	}
	return c.wn, nil
}

// opError is err as the net package reports it for op; the poller's own errors come wrapped
// in an OpError of op "raw-read" or "raw-write", which is unwrapped.
func (c *rawTCPConn) opError(op string, err error) error {
	if oe, ok := err.(*net.OpError); ok {
		err = oe.Err
	}
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}
