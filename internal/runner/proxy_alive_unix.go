//go:build unix && !linux

package runner

import (
	"net"
	"syscall"
)

// alive reports whether an idle upstream connection is still open and has nothing unread: a
// non-blocking peek (one recvfrom) that sees neither EOF nor unsolicited bytes. An upstream
// closes idle keep-alive connections after its own timeout (uvicorn 5 s); without this, the
// next request on it would fail, and only a replayable one could be sent again.
func alive(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	ok = false
	var b [1]byte
	cerr := rc.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		ok = n < 0 && (err == syscall.EAGAIN || err == syscall.EWOULDBLOCK)
		return true
	})
	return cerr == nil && ok
}
