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

// rawIO reads and writes the non-blocking socket behind rc with raw system calls; reads and
// writes may run at once from any goroutines, as on a net.Conn (each direction one call at a
// time). Its callbacks are bound once, so a call allocates nothing.
type rawIO struct {
	rc syscall.RawConn

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

	// sendTimeout, when set, bounds how long a write may wait without the peer taking a
	// byte (nginx's send_timeout): the first time a write must wait, and again each time it
	// must wait after progress, setWriteDeadline moves the deadline sendTimeout ahead; the
	// write clears it when done. armedAt is wn when it was last moved.
	sendTimeout      time.Duration
	setWriteDeadline func(time.Time) error
	armed            bool
	armedAt          int
}

func (r *rawIO) init(rc syscall.RawConn) {
	r.rc = rc
	r.readFn = r.doRead
	r.writeFn = r.doWrite
}

// doRead is one read(2); false (wait for the poller) on EAGAIN.
func (r *rawIO) doRead(fd uintptr) bool {
	for {
		// #nosec G103 -- the buffer's address for read(2); it outlives the call
		n, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(&r.rbuf[0])), uintptr(len(r.rbuf)))
		switch e {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		case 0:
			r.rn = int(n) // #nosec G115 -- at most len(rbuf)
		default:
			r.rerrno = e // n is -1 here: never a count
		}
		return true
	}
}

// doWrite writes what is left of wbuf; false (wait for the poller) on EAGAIN.
func (r *rawIO) doWrite(fd uintptr) bool {
	for r.wn < len(r.wbuf) {
		p := r.wbuf[r.wn:]
		// #nosec G103 -- the buffer's address for write(2); it outlives the call
		n, _, e := unix.RawSyscall(unix.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		switch e {
		case 0:
			r.wn += int(n) // #nosec G115 -- at most len(p)
		case unix.EINTR:
		case unix.EAGAIN:
			if r.sendTimeout > 0 && (!r.armed || r.armedAt != r.wn) {
				_ = r.setWriteDeadline(time.Now().Add(r.sendTimeout))
				r.armed, r.armedAt = true, r.wn
			}
			return false
		default:
			r.werrno = e
			return true
		}
	}
	return true
}

// read is Read's work: n bytes, EOF as (0, nil, true), an errno, or the poller's error
// (deadline, closed).
func (r *rawIO) read(p []byte) (n int, errno syscall.Errno, err error) {
	r.rmu.Lock()
	defer r.rmu.Unlock()
	r.rbuf, r.rn, r.rerrno = p, 0, 0
	err = r.rc.Read(r.readFn)
	n, errno = r.rn, r.rerrno
	r.rbuf = nil
	return n, errno, err
}

// write is Write's work: how much was written, and an errno or the poller's error.
func (r *rawIO) write(p []byte) (n int, errno syscall.Errno, err error) {
	r.wmu.Lock()
	defer r.wmu.Unlock()
	r.wbuf, r.wn, r.werrno = p, 0, 0
	err = r.rc.Write(r.writeFn)
	n, errno = r.wn, r.werrno
	r.wbuf = nil
	if r.armed {
		_ = r.setWriteDeadline(time.Time{})
		r.armed = false
	}
	return n, errno, err
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
	rt := &rawTCPConn{TCPConn: tc}
	rt.io.init(rc)
	rt.io.sendTimeout, rt.io.setWriteDeadline = l.sendTimeout, tc.SetWriteDeadline
	return rt, nil
}

// rawTCPConn is a client's connection to the front server: Read and Write are raw system
// calls on the poller (rawIO), everything else (addresses, deadlines, Close, CloseWrite) is
// the TCPConn's. Its errors are the net package's: *net.OpError "read" and "write", deadline
// errors that are Timeout(), io.EOF.
type rawTCPConn struct {
	*net.TCPConn
	io rawIO
}

func (c *rawTCPConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, errno, err := c.io.read(p)
	if n == 0 && errno == 0 && err == nil {
		return 0, io.EOF
	}
	return c.result("read", n, errno, err)
}

func (c *rawTCPConn) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, errno, err := c.io.write(p)
	return c.result("write", n, errno, err)
}

// result is n with the errno or the poller's error as the net package reports them for op.
func (c *rawTCPConn) result(op string, n int, errno syscall.Errno, err error) (int, error) {
	if err == nil && errno != 0 {
		err = os.NewSyscallError(op, errno)
	}
	if err != nil {
		return n, c.opError(op, err)
	}
	return n, nil
}

// opError is err as the net package reports it for op; the poller's own errors come wrapped
// in an OpError of op "raw-read" or "raw-write", which is unwrapped.
func (c *rawTCPConn) opError(op string, err error) error {
	if oe, ok := err.(*net.OpError); ok {
		err = oe.Err
	}
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}
