package socket

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/mdlayher/netlink"

	"github.com/bindguard/bindguard/internal/observed"
)

// inet_diag wire constants (linux/inet_diag.h, linux/sock_diag.h).
const (
	sockDiagByFamily = 20 // SOCK_DIAG_BY_FAMILY
	reqLen           = 56 // sizeof(struct inet_diag_req_v2)
	msgLen           = 72 // sizeof(struct inet_diag_msg)
	attrSKV6Only     = 11 // INET_DIAG_SKV6ONLY (u8), sent for AF_INET6 sockets in LISTEN/CLOSE

	// Linux's values, whatever the build's OS: they are part of the wire format.
	afInet          = 2  // AF_INET
	afInet6         = 10 // AF_INET6
	ipprotoTCP      = 6  // IPPROTO_TCP
	ipprotoUDP      = 17 // IPPROTO_UDP
	netlinkSockDiag = 4  // NETLINK_SOCK_DIAG

	nlaHdrLen   = 4      // sizeof(struct nlattr)
	nlaTypeMask = 0x3fff // ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER)

	// dumpBuffer is the receive buffer of a dump: the kernel sizes a dump's datagrams by the
	// largest read it has seen, up to 32 KiB, so one read takes ~400 sockets, not the ~45 of a
	// page (mdlayher/netlink otherwise peeks each datagram's size and allocates it).
	dumpBuffer = 64 << 10
)

func nlaAlign(n int) int { return (n + 3) &^ 3 }

// DiagRequest is one sock_diag dump request: a family, a protocol and the states to return.
type DiagRequest struct {
	Family   observed.Family
	Protocol observed.Protocol
}

// DiagRequests are the four dumps Dump makes: TCP LISTEN and UDP unconnected, IPv4 and IPv6.
var DiagRequests = [4]DiagRequest{
	{observed.IPv4, observed.TCP}, {observed.IPv6, observed.TCP}, {observed.IPv4, observed.UDP}, {observed.IPv6, observed.UDP},
}

func (r DiagRequest) family() uint8 {
	if r.Family == observed.IPv6 {
		return afInet6
	}
	return afInet
}

func (r DiagRequest) proto() uint8 {
	if r.Protocol == observed.UDP {
		return ipprotoUDP
	}
	return ipprotoTCP
}

func (r DiagRequest) state() uint8 {
	if r.Protocol == observed.UDP {
		return stateClose
	}
	return stateListen
}

// String is "tcp6" and the like, as in /proc/net.
func (r DiagRequest) String() string {
	if r.Family == observed.IPv6 {
		return string(r.Protocol) + "6"
	}
	return string(r.Protocol)
}

// Encode returns the request's struct inet_diag_req_v2: the kernel filters by state, so only
// listening TCP and unconnected UDP sockets cross into user space.
func (r DiagRequest) Encode() []byte {
	b := make([]byte, reqLen)
	b[0] = r.family()
	b[1] = r.proto()
	b[2] = 0 // idiag_ext: INET_DIAG_SKV6ONLY is sent for AF_INET6 sockets regardless
	binary.NativeEndian.PutUint32(b[4:], 1<<r.state())
	return b
}

// DecodeDiagMsg decodes one struct inet_diag_msg and its attributes, answering request r.
// It checks every length and that the kernel answered what was asked.
func DecodeDiagMsg(b []byte, r DiagRequest) (observed.Socket, error) {
	if len(b) < msgLen {
		return observed.Socket{}, fmt.Errorf("inet_diag_msg: %d bytes, want at least %d", len(b), msgLen)
	}
	if b[0] != r.family() {
		return observed.Socket{}, fmt.Errorf("inet_diag_msg: family %d, asked for %d", b[0], r.family())
	}
	if b[1] != r.state() {
		return observed.Socket{}, fmt.Errorf("inet_diag_msg: state %d, asked for %d", b[1], r.state())
	}
	s := observed.Socket{
		Protocol:  r.Protocol,
		Family:    r.Family,
		Port:      binary.BigEndian.Uint16(b[4:6]),
		Interface: binary.NativeEndian.Uint32(b[40:44]),
		UID:       binary.NativeEndian.Uint32(b[64:68]),
		Inode:     uint64(binary.NativeEndian.Uint32(b[68:72])),
		V6Only:    observed.V6OnlyNA,
	}
	if r.Family == observed.IPv4 {
		s.Addr = netip.AddrFrom4([4]byte(b[8:12]))
	} else {
		s.Addr = netip.AddrFrom16([16]byte(b[8:24]))
		s.V6Only = observed.V6OnlyUnknown
	}
	if len(b) == msgLen {
		return s, nil
	}
	// The attributes (struct nlattr: u16 length, u16 type, payload padded to 4 bytes), walked
	// in place: a decoder per message would be an allocation per socket.
	for a := b[msgLen:]; len(a) > 0; {
		if len(a) < nlaHdrLen {
			return observed.Socket{}, fmt.Errorf("inet_diag_msg attributes: %d trailing bytes, want a %d-byte attribute header", len(a), nlaHdrLen)
		}
		n := int(binary.NativeEndian.Uint16(a[0:2]))
		typ := binary.NativeEndian.Uint16(a[2:4]) & nlaTypeMask
		if n == 0 {
			n = nlaHdrLen // a length of 0 is an attribute with no payload, as mdlayher/netlink reads it
		}
		if n < nlaHdrLen || n > len(a) {
			return observed.Socket{}, fmt.Errorf("inet_diag_msg attributes: attribute of length %d in %d bytes", n, len(a))
		}
		payload := a[nlaHdrLen:n]
		a = a[min(nlaAlign(n), len(a)):]
		if typ != attrSKV6Only || r.Family != observed.IPv6 {
			continue
		}
		if len(payload) != 1 {
			return observed.Socket{}, fmt.Errorf("inet_diag_msg: INET_DIAG_SKV6ONLY is %d bytes, want 1", len(payload))
		}
		if payload[0] != 0 {
			s.V6Only = observed.V6OnlyYes
		} else {
			s.V6Only = observed.V6OnlyNo
		}
	}
	return s, nil
}

// DiagError is a failed sock_diag dump for one request. Unwrap gives the netlink error, for
// example ENOENT when the kernel has no udp_diag support.
type DiagError struct {
	Request DiagRequest
	Err     error
}

func (e *DiagError) Error() string { return fmt.Sprintf("sockdiag: dump %s: %v", e.Request, e.Err) }
func (e *DiagError) Unwrap() error { return e.Err }

// Dial opens a NETLINK_SOCK_DIAG connection in a network namespace, for Dump. netnsFD is an
// open namespace file (/proc/PID/ns/net, /run/netns/NAME), or 0 for the caller's namespace;
// entering another namespace needs CAP_SYS_ADMIN. It fails off Linux.
func Dial(netnsFD int) (*netlink.Conn, error) {
	c, err := netlink.Dial(netlinkSockDiag, &netlink.Config{NetNS: netnsFD, MessageBufferSize: dumpBuffer})
	if err != nil {
		return nil, fmt.Errorf("sockdiag: open netlink socket: %w", err)
	}
	return c, nil
}

// Dump asks the kernel, over a NETLINK_SOCK_DIAG connection (Dial, or a fake from
// mdlayher/netlink/nltest in tests), for the listening sockets of the connection's network
// namespace. It does not close c.
//
// Each of the four DiagRequests is dumped in turn. The sockets of the requests that succeeded
// are returned with a *DiagError for each that failed, joined; a caller that wants all or
// nothing checks the error, one that can fall back per table inspects the DiagErrors.
func Dump(c *netlink.Conn) ([]observed.Socket, error) {
	var err error
	var (
		out  []observed.Socket
		errs []error
	)
	for _, r := range DiagRequests {
		n := len(out)
		if out, err = dumpOne(c, r, out); err != nil {
			out = out[:n]
			errs = append(errs, &DiagError{Request: r, Err: err})
		}
	}
	return out, errors.Join(errs...)
}

func dumpOne(c *netlink.Conn, r DiagRequest, out []observed.Socket) ([]observed.Socket, error) {
	req := netlink.Message{
		Header: netlink.Header{Type: sockDiagByFamily, Flags: netlink.Request | netlink.Dump},
		Data:   r.Encode(),
	}
	if _, err := c.Send(req); err != nil {
		return out, err
	}
	for m, err := range c.ReceiveIter() {
		if err != nil {
			return out, err
		}
		if m.Header.Type != sockDiagByFamily {
			return out, fmt.Errorf("unexpected netlink message type %d", m.Header.Type)
		}
		s, err := DecodeDiagMsg(m.Data, r)
		if err != nil {
			return out, err
		}
		out = append(out, s)
	}
	return out, nil
}
