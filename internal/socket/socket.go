// Package socket observes the listening sockets of a network namespace: TCP sockets in LISTEN
// and unconnected (bound) UDP sockets, IPv4 and IPv6. Two sources give the same Socket values:
// the kernel's NETLINK_SOCK_DIAG interface (Dump, the primary source, which knows whether an
// IPv6 socket is IPV6_V6ONLY) and the /proc/net/{tcp,tcp6,udp,udp6} tables (ReadProcNet, the
// fallback, where v6only is unknown).
//
// Decoders check every length and never use unsafe casts; malformed input is an error or a
// reported, skipped line, never a panic.
package socket
