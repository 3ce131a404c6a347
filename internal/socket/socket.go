// Package socket observes the listening sockets of a network namespace: TCP sockets in LISTEN
// and unconnected (bound) UDP sockets, IPv4 and IPv6. Two sources give the same Socket values:
// the kernel's NETLINK_SOCK_DIAG interface (Dump, the primary source, which knows whether an
// IPv6 socket is IPV6_V6ONLY) and the /proc/net/{tcp,tcp6,udp,udp6} tables (ReadProcNet, the
// fallback, where v6only is unknown).
//
// Decoders check every length and never use unsafe casts; malformed input is an error or a
// reported, skipped line, never a panic.
package socket

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"

	"github.com/bindguard/bindguard/policy"
)

// Family is an address family.
type Family string

// The address families.
const (
	IPv4 Family = "ipv4"
	IPv6 Family = "ipv6"
)

// V6Only says whether an IPv6 socket has IPV6_V6ONLY set. For IPv4 sockets it is V6OnlyNA.
type V6Only int8

// The V6Only states.
const (
	// V6OnlyUnknown: the source cannot tell (the /proc/net tables). A "::" socket of unknown
	// v6only must be judged dual-stack.
	V6OnlyUnknown V6Only = iota
	// V6OnlyYes: IPV6_V6ONLY is set; the socket accepts IPv6 only.
	V6OnlyYes
	// V6OnlyNo: IPV6_V6ONLY is clear; a "::" socket also accepts IPv4.
	V6OnlyNo
	// V6OnlyNA: an IPv4 socket.
	V6OnlyNA
)

// Socket is one listening socket as the kernel reports it.
type Socket struct {
	Protocol policy.Protocol
	Family   Family
	// Addr is the bound address as reported, zone-less. An AF_INET6 socket bound to an
	// IPv4-mapped address keeps the mapped form here; judges unmap it.
	Addr   netip.Addr
	Port   uint16
	V6Only V6Only
	// UID owns the socket; Inode identifies it across the whole host (all namespaces).
	UID   uint32
	Inode uint64
	// OwnerUnknown says the source's inode for the socket was unreadable (a corrupt /proc/net
	// line): Inode is 0 but the kernel does not hold it, and its owner cannot be looked up.
	OwnerUnknown bool
	// Interface is the index of the device the socket is bound to (SO_BINDTODEVICE), 0 if none.
	// Only the netlink source reports it.
	Interface uint32
}

// AddrPort returns the socket's address and port.
func (s Socket) AddrPort() netip.AddrPort { return netip.AddrPortFrom(s.Addr, s.Port) }

// String is "tcp 127.0.0.1:8080", "udp [::]:53".
func (s Socket) String() string { return fmt.Sprintf("%s %s", s.Protocol, s.AddrPort()) }

// Sort orders sockets by protocol, port, family, address and inode, so output is stable.
func Sort(s []Socket) {
	slices.SortFunc(s, func(a, b Socket) int {
		return cmp.Or(
			cmp.Compare(a.Protocol, b.Protocol),
			cmp.Compare(a.Port, b.Port),
			cmp.Compare(a.Family, b.Family),
			a.Addr.Compare(b.Addr),
			cmp.Compare(a.Inode, b.Inode),
		)
	})
}
