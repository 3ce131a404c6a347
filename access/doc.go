// Package access admits HTTP clients by IP address according to a bindguard policy, without
// being fooled by forged forwarding headers.
//
// The client of a request is its peer (the TCP connection's remote address), unless the peer
// is one of the policy's trusted_proxies; then it is read from the one header the policy names
// in client_ip_header (X-Forwarded-For, RFC 7239 Forwarded or X-Real-IP), walked right to left:
// a proxy appends the address it received the request from, so everything left of the first
// untrusted hop was written by the client and is never believed, nor even parsed. A client that
// sends "X-Forwarded-For: 127.0.0.1" through nginx arrives as "127.0.0.1, <its address>", and
// the walk stops at its address.
//
// Contract: the package fails closed. When the client cannot be determined — a trusted peer
// without the header, a header over 64 elements or 8 KiB, an X-Real-IP on several lines, an
// element the walk reaches that is not a plain IP address — the request is denied. Addresses are
// compared unmapped (::ffff:127.0.0.1 is 127.0.0.1). A peer with an IPv6 zone (fe80::1%eth0)
// matches a prefix without a zone on any interface, and a zoned entry (fe80::1%eth0,
// fe80::%eth0/64) on that interface only.
//
// Resolver finds the client, Guard decides for one service (and per-route overrides), and
// Middleware wraps an http.Handler, answering refusals 403 with an RFC 9457 problem body.
package access
