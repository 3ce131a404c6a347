package access

import (
	"fmt"
	"net/http"
	"net/netip"
	"net/textproto"
	"strings"

	"github.com/bindguard/bindguard/policy"
)

// Limits on the client-IP header, over all of its lines together. A header beyond either is
// refused whole: no client, deny.
const (
	MaxHeaderElements = 64
	MaxHeaderBytes    = 8 << 10
)

// Reason says why a client could not be determined or why a request was denied. Its String is
// a fixed sentence without addresses; Decision.Explain adds them.
type Reason uint8

// The reasons.
const (
	ReasonNone           Reason = iota // allowed
	ReasonBadPeer                      // the connection's remote address is not an IP address, with or without a port
	ReasonNoHeader                     // a trusted proxy sent no client-IP header
	ReasonHeaderTooLong                // over MaxHeaderElements or MaxHeaderBytes
	ReasonBadHop                       // the walk reached an element that is not a plain IP
	ReasonRepeatedHeader               // X-Real-IP on more than one line
	ReasonNotLoopback                  // localhost_only: the client is not on this host
	ReasonBadHost                      // localhost_only + host_check: Host is not localhost
	ReasonNotProxied                   // proxy_only: the request did not come through a trusted proxy
	ReasonNotAllowed                   // lan/restricted: the client is not in the allow list
)

var reasonText = [...]string{
	ReasonNone:           "allowed",
	ReasonBadPeer:        "the peer address is not an IP address (with or without a port)",
	ReasonNoHeader:       "a trusted proxy sent no client-IP header",
	ReasonHeaderTooLong:  "the client-IP header is too long",
	ReasonBadHop:         "the client-IP header holds an element that is not a plain IP address",
	ReasonRepeatedHeader: "the X-Real-IP header is repeated",
	ReasonNotLoopback:    "the client is not on this host",
	ReasonBadHost:        "the Host header does not name localhost",
	ReasonNotProxied:     "the request did not come through a trusted proxy",
	ReasonNotAllowed:     "the client is not in the allow list",
}

func (r Reason) String() string {
	if int(r) < len(reasonText) {
		return reasonText[r]
	}
	return fmt.Sprintf("reason(%d)", uint8(r))
}

// Error makes a Reason usable as an error.
func (r Reason) Error() string { return r.String() }

// Client is the result of resolving a request's client address.
type Client struct {
	// Addr is the client: the peer, or the hop the header walk stopped at. IPv4-mapped
	// addresses are unmapped; a peer's IPv6 zone is kept (it matches prefixes without a zone
	// on any interface, and zoned entries of that zone only).
	Addr netip.Addr
	// Peer is the connection's remote address.
	Peer netip.Addr
	// Proxied says Peer is a trusted proxy and Addr came from its header.
	Proxied bool
}

// headerKind is the syntax of the configured client-IP header.
type headerKind uint8

const (
	kindXFF headerKind = iota
	kindForwarded
	kindRealIP
)

// Resolver finds a request's client address: the peer, unless the peer is a trusted proxy;
// then the configured header, walked right to left, where the first hop that is not a trusted
// proxy is the client (if every hop is trusted, the leftmost is). It is safe for concurrent use.
//
// It fails closed: a trusted peer without the header, a header beyond MaxHeaderElements or
// MaxHeaderBytes, an X-Real-IP on several lines, or an element reached by the walk that is not
// a plain IP address (hostnames, "unknown", obfuscated identifiers, zones, non-decimal IPv4
// such as 0177.0.0.1 or 127.1) gives no client. Elements left of the client are never parsed,
// so junk an attacker puts there cannot change the answer.
type Resolver struct {
	trusted *PrefixSet
	key     string // canonical MIME key of the header
	kind    headerKind
}

// NewResolver makes a resolver trusting the given proxies and believing the one header name
// (X-Forwarded-For, Forwarded or X-Real-IP; case-insensitive; empty is X-Forwarded-For).
func NewResolver(trusted []netip.Prefix, header string) (*Resolver, error) {
	return newResolver(NewPrefixSet(trusted), header)
}

// NewZonedResolver is NewResolver with zoned trusted proxies as well (a policy's
// TrustedZoned: fe80::1%eth0 trusts that address on eth0 only).
func NewZonedResolver(trusted []netip.Prefix, zoned []policy.ZonedPrefix, header string) (*Resolver, error) {
	return newResolver(NewZonedPrefixSet(trusted, zoned), header)
}

func newResolver(trusted *PrefixSet, header string) (*Resolver, error) {
	r := &Resolver{trusted: trusted}
	switch {
	case header == "" || strings.EqualFold(header, policy.HeaderXForwardedFor):
		r.kind = kindXFF
		header = policy.HeaderXForwardedFor
	case strings.EqualFold(header, policy.HeaderForwarded):
		r.kind = kindForwarded
	case strings.EqualFold(header, policy.HeaderXRealIP):
		r.kind = kindRealIP
	default:
		return nil, fmt.Errorf("access: client-IP header %q: want X-Forwarded-For, Forwarded or X-Real-IP", header)
	}
	r.key = textproto.CanonicalMIMEHeaderKey(header)
	return r, nil
}

// Resolve returns the client of a request whose connection comes from remoteAddr (as in
// http.Request.RemoteAddr) with header h. The error is a Reason.
//
// remoteAddr is "IPv4:port", "[IPv6]:port" or, as some servers and middleware set it, the
// address alone: "IPv4", "IPv6" or "[IPv6]"; an IPv6 address may carry a zone
// ("[fe80::1%eth0]:80"). An unbracketed IPv6 address is read as an address, never as
// address:port (a port needs brackets: RFC 3986, and net.JoinHostPort writes them). Anything
// else — an empty or out-of-range port, IPv4 in brackets or with a zone, a hostname,
// non-decimal IPv4, surrounding space — is ReasonBadPeer.
func (r *Resolver) Resolve(remoteAddr string, h http.Header) (Client, error) {
	var c Client
	if reason := r.resolve(remoteAddr, h, &c); reason != ReasonNone {
		return c, reason
	}
	return c, nil
}

// resolve is Resolve without an error interface on the hot path: ReasonNone on success.
func (r *Resolver) resolve(remoteAddr string, h http.Header, c *Client) Reason {
	peer, ok := parsePeer(remoteAddr)
	if !ok {
		return ReasonBadPeer
	}
	c.Peer = peer
	if !r.trusted.Contains(peer) {
		c.Addr = peer
		return ReasonNone
	}
	lines := h[r.key]
	if len(lines) == 0 {
		return ReasonNoHeader
	}
	size, elems := len(lines)-1, len(lines)
	for _, l := range lines {
		size += len(l)
		elems += strings.Count(l, ",")
	}
	if size > MaxHeaderBytes || elems > MaxHeaderElements {
		return ReasonHeaderTooLong
	}
	if r.kind == kindRealIP {
		if len(lines) > 1 {
			return ReasonRepeatedHeader
		}
		a, ok := parseHop(lines[0])
		if !ok {
			return ReasonBadHop
		}
		c.Addr, c.Proxied = a, true
		return ReasonNone
	}
	a, ok := r.walk(lines)
	if !ok {
		return ReasonBadHop
	}
	c.Addr, c.Proxied = a, true
	return ReasonNone
}

// walk goes through the elements of lines right to left (last line first), for
// X-Forwarded-For and Forwarded. ok is false when it reaches an element it cannot read.
func (r *Resolver) walk(lines []string) (client netip.Addr, ok bool) {
	var last netip.Addr
	for i := len(lines) - 1; i >= 0; i-- {
		rest := lines[i]
		for {
			var elem string
			var a netip.Addr
			ok := true
			if r.kind == kindForwarded {
				rest, elem, ok = nextForwarded(rest)
				if ok {
					a, ok = parseForwardedElement(elem)
				}
			} else {
				rest, elem = nextXFF(rest)
				a, ok = parseHop(elem)
			}
			if !ok {
				return netip.Addr{}, false
			}
			if !r.trusted.Contains(a) {
				return a, true
			}
			last = a
			if rest == "" {
				break
			}
		}
	}
	return last, true // every hop trusted: the leftmost
}

// nextXFF splits off the last comma-separated element of s. rest is "" when elem was the
// first; a trailing comma yields an empty element, which parseHop refuses.
func nextXFF(s string) (rest, elem string) {
	i := strings.LastIndexByte(s, ',')
	if i < 0 {
		return "", s
	}
	if i == 0 {
		// ",x": an empty element is still to come; keep a marker so the walk parses it.
		return " ", s[1:]
	}
	return s[:i], s[i+1:]
}

// trimOWS trims spaces and horizontal tabs only.
func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// parseHop reads one X-Forwarded-For or X-Real-IP element: an IPv4 address, optionally with a
// port; an IPv6 address, bare or in brackets, optionally with a port after the brackets.
// Surrounding SP and HTAB are trimmed; nothing else is accepted.
func parseHop(s string) (netip.Addr, bool) {
	s = trimOWS(s)
	if a, ok := parseIPv4(s); ok {
		return a, true // the common case, first
	}
	if s == "" {
		return netip.Addr{}, false
	}
	if s[0] == '[' {
		end := strings.IndexByte(s, ']')
		if end < 0 || !validPortSuffix(s[end+1:]) {
			return netip.Addr{}, false
		}
		return parseIP(s[1:end], true)
	}
	if colon := strings.IndexByte(s, ':'); colon >= 0 && strings.IndexByte(s[colon+1:], ':') < 0 {
		// exactly one colon: IPv4:port
		if !validPortSuffix(s[colon:]) {
			return netip.Addr{}, false
		}
		a, ok := parseIP(s[:colon], false)
		return a, ok && a.Is4()
	}
	return parseIP(s, false)
}

// validPortSuffix accepts "" or ":" followed by 1-5 decimal digits of at most 65535.
func validPortSuffix(s string) bool {
	if s == "" {
		return true
	}
	if s[0] != ':' || len(s) < 2 || len(s) > 6 {
		return false
	}
	n := 0
	for _, c := range []byte(s[1:]) {
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
	}
	return n <= 65535
}

// parseIP parses a plain IP literal: no zone, IPv4 in dotted decimal with four parts and no
// leading zeros (netip's rules). want6 requires IPv6 (the inside of brackets). The result is
// unmapped.
func parseIP(s string, want6 bool) (netip.Addr, bool) {
	if s == "" || strings.IndexByte(s, '%') >= 0 {
		return netip.Addr{}, false
	}
	if !want6 && strings.IndexByte(s, ':') < 0 {
		return parseIPv4(s)
	}
	a, err := netip.ParseAddr(s)
	if err != nil || (want6 && !a.Is6()) {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// parseIPv4 parses dotted-decimal IPv4 exactly as netip.ParseAddr does (four decimal parts of
// 0-255, no leading zeros, nothing else), at a fraction of its cost: it is on the path of every
// request, once per hop. FuzzParseIPv4 checks it against netip.
func parseIPv4(s string) (netip.Addr, bool) {
	if len(s) < 7 || len(s) > 15 {
		return netip.Addr{}, false
	}
	var ip uint32
	i := 0
	for part := 0; part < 4; part++ {
		if part > 0 {
			if i >= len(s) || s[i] != '.' {
				return netip.Addr{}, false
			}
			i++
		}
		start, v := i, uint32(0)
		for i < len(s) && s[i]-'0' <= 9 {
			v = v*10 + uint32(s[i]-'0')
			i++
		}
		n := i - start
		if n == 0 || n > 3 || v > 255 || (n > 1 && s[start] == '0') {
			return netip.Addr{}, false
		}
		ip = ip<<8 | v
	}
	if i != len(s) {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4([4]byte{byte(ip >> 24), byte(ip >> 16), byte(ip >> 8), byte(ip)}), true
}

// parsePeer parses an http.Request.RemoteAddr ("1.2.3.4:5", "[::1]:5", "[fe80::1%eth0]:5"),
// with a fast path for IPv4, or an address without a port ("1.2.3.4", "::1", "[::1]"); see
// Resolve.
func parsePeer(remote string) (netip.Addr, bool) {
	i := strings.LastIndexByte(remote, ':')
	if i > 0 && remote[0] != '[' && validPortSuffix(remote[i:]) {
		if a, ok := parseIPv4(remote[:i]); ok {
			return a, true
		}
	}
	return parsePeerSlow(remote, i)
}

// parsePeerSlow is parsePeer for everything but IPv4:port; i is the index of the last ':'.
func parsePeerSlow(remote string, i int) (netip.Addr, bool) {
	switch {
	case remote == "":
		return netip.Addr{}, false
	case i < 0:
		return parseIPv4(remote) // a bare IPv4 address
	case remote[0] == '[' && remote[len(remote)-1] == ']':
		return parsePeerIPv6(remote[1 : len(remote)-1]) // "[IPv6]" without a port
	case remote[0] == '[':
		end := strings.LastIndexByte(remote, ']')
		if end < 0 || !validPortSuffix(remote[end+1:]) || end+1 == len(remote) {
			return netip.Addr{}, false
		}
		return parsePeerIPv6(remote[1:end])
	}
	return parsePeerIPv6(remote) // a bare IPv6 address, or nothing valid
}

// parsePeerIPv6 parses an IPv6 literal, perhaps with a zone; the result is unmapped. An
// IPv4-mapped address with a zone is refused (IPv4 has no zones), and so is a zone that no
// Linux interface could have (with ':', '/', brackets, '%', space or control characters):
// "fe80::1%eth0:80" is not read as an address.
func parsePeerIPv6(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is6() {
		return netip.Addr{}, false
	}
	if z := a.Zone(); z != "" {
		if a.Is4In6() || len(z) > 15 {
			return netip.Addr{}, false
		}
		for i := 0; i < len(z); i++ {
			if c := z[i]; c <= ' ' || c >= 0x7f || strings.IndexByte(":/[]%", c) >= 0 {
				return netip.Addr{}, false
			}
		}
	}
	return a.Unmap(), true
}

// nextForwarded splits off the last element of an RFC 7239 Forwarded list, honouring
// quoted-strings: a comma inside quotes does not split. ok is false when a quoted-string is not
// closed within s.
func nextForwarded(s string) (rest, elem string, ok bool) {
	inQuote := false
	for i := len(s) - 1; i >= 0; i-- {
		switch c := s[i]; {
		case c == '"':
			if inQuote {
				// escaped when preceded by an odd number of backslashes
				n := 0
				for j := i - 1; j >= 0 && s[j] == '\\'; j-- {
					n++
				}
				if n%2 == 1 {
					continue
				}
			}
			inQuote = !inQuote
		case c == ',' && !inQuote:
			if i == 0 {
				return " ", s[1:], true
			}
			return s[:i], s[i+1:], true
		}
	}
	if inQuote {
		return "", "", false
	}
	return "", s, true
}

// parseForwardedElement reads the for= parameter of one Forwarded element (RFC 7239 section
// 4): pairs token=value separated by ";", values tokens or quoted-strings, exactly one "for".
// The node must be an IPv4 address (a token, or quoted with an optional port) or a bracketed,
// quoted IPv6 address with an optional port. A quoted-pair (\1) in a quoted-string stands
// for the character after the backslash (RFC 7230 section 3.2.6); the value is unescaped, then
// read like any other. "unknown", obfuscated identifiers, unquoted IPv6 or ip:port, and
// malformed quoted-pairs are refused.
func parseForwardedElement(s string) (netip.Addr, bool) {
	s = trimOWS(s)
	var node string
	var quoted, found bool
	for s != "" {
		eq := strings.IndexByte(s, '=')
		if eq <= 0 || !isToken(s[:eq]) {
			return netip.Addr{}, false
		}
		name := s[:eq]
		s = s[eq+1:]
		var val string
		var q bool
		if s != "" && s[0] == '"' {
			end := -1
			for i := 1; i < len(s); i++ {
				if s[i] == '\\' {
					// quoted-pair: a backslash and one HTAB, SP, VCHAR or obs-text
					if i+1 >= len(s) || !(s[i+1] == '\t' || s[i+1] >= 0x20 && s[i+1] != 0x7f) {
						return netip.Addr{}, false
					}
					i++
					continue
				}
				if s[i] == '"' {
					end = i
					break
				}
				if !isQDText(s[i]) {
					return netip.Addr{}, false
				}
			}
			if end < 0 {
				return netip.Addr{}, false
			}
			val, q, s = s[1:end], true, s[end+1:]
		} else {
			end := strings.IndexByte(s, ';')
			if end < 0 {
				end = len(s)
			}
			val, s = s[:end], s[end:]
			if !isToken(val) {
				return netip.Addr{}, false
			}
		}
		if s != "" {
			if s[0] != ';' {
				return netip.Addr{}, false
			}
			s = s[1:]
		}
		if strings.EqualFold(name, "for") {
			if found {
				return netip.Addr{}, false
			}
			node, quoted, found = val, q, true
		}
	}
	if !found {
		return netip.Addr{}, false
	}
	if quoted && strings.IndexByte(node, '\\') >= 0 {
		var ok bool
		if node, ok = unescapeQuoted(node); !ok {
			return netip.Addr{}, false
		}
	}
	if !quoted {
		a, ok := parseIP(node, false)
		return a, ok && a.Is4()
	}
	if node != "" && node[0] == '[' {
		end := strings.IndexByte(node, ']')
		if end < 0 || !validPortSuffix(node[end+1:]) {
			return netip.Addr{}, false
		}
		return parseIP(node[1:end], true)
	}
	host := node
	if colon := strings.IndexByte(node, ':'); colon >= 0 {
		if !validPortSuffix(node[colon:]) {
			return netip.Addr{}, false
		}
		host = node[:colon]
	}
	a, ok := parseIP(host, false)
	return a, ok && a.Is4()
}

// maxNode bounds an unescaped Forwarded node: "[" + the longest IPv6 text (45) + "]:65535" is 53.
const maxNode = 64

// unescapeQuoted removes the quoted-pair escapes of a quoted-string's content (checked as it
// was scanned: each backslash is followed by one character). ok is false when the result is
// too long to be a node.
func unescapeQuoted(s string) (string, bool) {
	var buf [maxNode]byte
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\\' {
			i++
			if i == len(s) {
				return "", false
			}
			c = s[i]
		}
		if n == len(buf) {
			return "", false
		}
		buf[n] = c
		n++
	}
	return string(buf[:n]), true
}

// isToken reports whether s is an RFC 9110 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// isQDText reports whether c may appear unescaped in a quoted-string.
func isQDText(c byte) bool {
	return c == '\t' || c == ' ' || c == 0x21 || (c >= 0x23 && c <= 0x5b) || (c >= 0x5d && c <= 0x7e) || c >= 0x80
}
