package kernel

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Kind is what happened to a socket.
type Kind uint8

// The kinds of events.
const (
	// KindListen is a TCP socket entering LISTEN, with its real port (also after listen()
	// without bind(), where the kernel picks the port).
	KindListen Kind = 1
	// KindClose is a TCP listener leaving LISTEN for CLOSE.
	KindClose Kind = 2
	// KindBind is a UDP socket bound to an address and port (the chosen one for port 0).
	KindBind Kind = 3
	// KindUnbind is a bound, unconnected UDP socket being released.
	KindUnbind Kind = 4
)

// String is "listen", "close", "bind" or "unbind".
func (k Kind) String() string {
	switch k {
	case KindListen:
		return "listen"
	case KindClose:
		return "close"
	case KindBind:
		return "bind"
	case KindUnbind:
		return "unbind"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Opens reports whether the event is a socket appearing (listen, bind) rather than going.
func (k Kind) Opens() bool { return k == KindListen || k == KindBind }

// Event is one socket appearing or disappearing, as the kernel reported it.
type Event struct {
	Kind Kind
	// Time is when the kernel saw it, on the wall clock (converted from CLOCK_MONOTONIC).
	Time time.Time
	// Monotonic is the kernel's timestamp itself: CLOCK_MONOTONIC nanoseconds.
	Monotonic int64
	// PID is the acting process (its thread-group leader) as bindguard's pid namespace
	// numbers it; 0 when it is not visible there (another container, a kernel thread).
	PID int
	// Comm is the acting thread's name.
	Comm string
	// CgroupID is the acting task's cgroup2 id: the inode of its directory under the cgroup2
	// mount (CgroupPath resolves it).
	CgroupID uint64
	// NetnsIno is the inode of the socket's network namespace (as in /proc/PID/ns/net).
	NetnsIno uint64
	// Protocol is "tcp" or "udp".
	Protocol string
	// Family is the socket's: "ipv4" (AF_INET) or "ipv6" (AF_INET6).
	Family string
	// Addr is the bound address, Unmap'ed (an IPv6 socket bound to ::ffff:127.0.0.1 reports
	// 127.0.0.1); an IPv6 wildcard stays "::", dual-stack unless V6Only.
	Addr netip.Addr
	// Port is the bound port.
	Port uint16
	// V6Only is IPV6_V6ONLY on an IPv6 socket: "::" with V6Only accepts only IPv6, without it
	// IPv4 too. Always false for IPv4 sockets.
	V6Only bool
	// Cookie is the kernel's socket cookie: the same on a socket's open and close event.
	Cookie uint64
}

// AddrPort is the bound address and port.
func (e Event) AddrPort() netip.AddrPort { return netip.AddrPortFrom(e.Addr, e.Port) }

// String is a one-line description for logs: "listen tcp [::]:80 v6only pid 42 (nginx)".
func (e Event) String() string {
	s := fmt.Sprintf("%s %s %s", e.Kind, e.Protocol, e.AddrPort())
	if e.V6Only {
		s += " v6only"
	}
	return s + fmt.Sprintf(" pid %d (%s) netns %d cgroup %d", e.PID, e.Comm, e.NetnsIno, e.CgroupID)
}

// ErrBadRecord is wrapped by the error for a ring-buffer record that cannot be decoded.
var ErrBadRecord = errors.New("kernel: bad event record")

// eventSize is sizeof(struct event) in bpf/live.c.
const eventSize = 72

const (
	afInet      = 2
	afInet6     = 10
	ipprotoTCP  = 6
	ipprotoUDP  = 17
	flagV6Only  = 1
	offTS       = 0
	offCgroup   = 8
	offCookie   = 16
	offPID      = 24
	offNetns    = 28
	offKind     = 32
	offFamily   = 33
	offProtocol = 34
	offFlags    = 35
	offPort     = 36
	offAddr     = 40
	offComm     = 56
)

// decodeEvent decodes one ring-buffer record (struct event of bpf/live.c). Time is left zero:
// the caller converts Monotonic. It never panics: a short or inconsistent record is an error.
func decodeEvent(b []byte) (Event, error) {
	if len(b) < eventSize {
		return Event{}, fmt.Errorf("%w: %d bytes, want %d", ErrBadRecord, len(b), eventSize)
	}
	ne := binary.NativeEndian
	e := Event{
		Kind:      Kind(b[offKind]),
		Monotonic: int64(ne.Uint64(b[offTS:])), // #nosec G115 -- CLOCK_MONOTONIC fits in 63 bits
		CgroupID:  ne.Uint64(b[offCgroup:]),
		Cookie:    ne.Uint64(b[offCookie:]),
		PID:       int(ne.Uint32(b[offPID:])),
		NetnsIno:  uint64(ne.Uint32(b[offNetns:])),
		Port:      ne.Uint16(b[offPort:]),
	}
	if e.Kind < KindListen || e.Kind > KindUnbind {
		return Event{}, fmt.Errorf("%w: kind %d", ErrBadRecord, b[offKind])
	}
	switch b[offProtocol] {
	case ipprotoTCP:
		e.Protocol = "tcp"
		if e.Kind != KindListen && e.Kind != KindClose {
			return Event{}, fmt.Errorf("%w: tcp %s", ErrBadRecord, e.Kind)
		}
	case ipprotoUDP:
		e.Protocol = "udp"
		if e.Kind != KindBind && e.Kind != KindUnbind {
			return Event{}, fmt.Errorf("%w: udp %s", ErrBadRecord, e.Kind)
		}
	default:
		return Event{}, fmt.Errorf("%w: protocol %d", ErrBadRecord, b[offProtocol])
	}
	v6only := b[offFlags]&flagV6Only != 0
	switch b[offFamily] {
	case afInet:
		e.Family = "ipv4"
		e.Addr = netip.AddrFrom4([4]byte(b[offAddr : offAddr+4]))
		if v6only {
			return Event{}, fmt.Errorf("%w: v6only on an IPv4 socket", ErrBadRecord)
		}
	case afInet6:
		e.Family = "ipv6"
		e.Addr = netip.AddrFrom16([16]byte(b[offAddr : offAddr+16])).Unmap()
		e.V6Only = v6only
	default:
		return Event{}, fmt.Errorf("%w: family %d", ErrBadRecord, b[offFamily])
	}
	comm := b[offComm : offComm+16]
	if i := bytes.IndexByte(comm, 0); i >= 0 {
		comm = comm[:i]
	}
	e.Comm = string(comm)
	return e, nil
}
