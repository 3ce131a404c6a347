package access

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/bindguard/bindguard/policy"
)

var fuzzHeaders = []string{"X-Forwarded-For", "Forwarded", "X-Real-IP"}

// candidates returns every address that can be read out of s: the pieces between delimiters,
// with and without a trailing :port, and with RFC 7230 quoted-pair backslashes removed.
func candidates(s string) map[netip.Addr]bool {
	out := map[netip.Addr]bool{}
	s += "," + strings.ReplaceAll(s, "\\", "")
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return strings.ContainsRune(",;=\"[] \t\n", r) }) {
		for _, piece := range []string{f, f[:max(strings.LastIndexByte(f, ':'), 0)]} {
			if a, err := netip.ParseAddr(piece); err == nil {
				out[a.Unmap()] = true
			}
		}
	}
	return out
}

// FuzzResolve checks the resolver's invariants on any peer and header: no panic; a client is
// the peer or an address written in the header, unmapped, without a zone unless it is the peer;
// and junk put left of a client found before the leftmost hop never changes the answer.
func FuzzResolve(f *testing.F) {
	seeds := []struct {
		kind         uint8
		peer, header string
	}{
		{0, "127.0.0.1:80", "127.0.0.1, 198.51.100.7"},
		{0, "127.0.0.1:80", "[2001:db8::1]:443,\t10.0.0.1"},
		{0, "[::1]:80", "0177.0.0.1"},
		{0, "203.0.113.1:1", "127.0.0.1"},
		{0, "127.0.0.1:80", "a\nb, 8.8.8.8"},
		{1, "127.0.0.1:80", `for=192.0.2.43, for="[2001:db8:cafe::17]:4711";proto=https`},
		{1, "127.0.0.1:80", `for=198.51.100.17;host="a\",for=127.0.0.1"`},
		{1, "127.0.0.1:80", `for="_hidden", for=unknown`},
		{2, "127.0.0.1:80", "198.51.100.7"},
		{2, "[fe80::1%eth0]:80", "::1"},
		{0, "127.0.0.1", "198.51.100.7"},
		{0, "[::1]", "198.51.100.7"},
		{0, "fe80::1%eth0", "198.51.100.7"},
		{0, "fe80::2%eth1", "198.51.100.7"},
		{0, "[fe80::2%eth1]:80", "198.51.100.7"},
		{0, "fe80::1%eth0:80", "198.51.100.7"},
		{0, "[127.0.0.1]", "198.51.100.7"},
		{1, "127.0.0.1:80", `for="\1\9\8.51.100.17"`},
		{1, "127.0.0.1:80", `for="\[2001:db8::1\]:4\711", for="\1\0.0.0.1"`},
		{1, "127.0.0.1:80", `for="1.1.1.1\"`},
		{1, "127.0.0.1:80", `for="\\1.1.1.1"`},
	}
	for _, s := range seeds {
		f.Add(s.kind, s.peer, s.header)
	}
	resolvers := make([]*Resolver, len(fuzzHeaders))
	zoned := []policy.ZonedPrefix{{Prefix: netip.MustParsePrefix("fe80::2/128"), Zone: "eth1"}}
	for i, h := range fuzzHeaders {
		ps := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"), netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fe80::1/128")}
		r, err := NewZonedResolver(ps, zoned, h)
		if err != nil {
			f.Fatal(err)
		}
		resolvers[i] = r
	}
	f.Fuzz(func(t *testing.T, kind uint8, peer, header string) {
		k := int(kind) % len(fuzzHeaders)
		r := resolvers[k]
		lines := strings.Split(header, "\n")
		h := http.Header{r.key: lines}
		c, err := r.Resolve(peer, h)
		if err != ReasonBadPeer && !peerForm(peer, c.Peer) {
			t.Fatalf("peer %q read as %v, which none of its forms is", peer, c.Peer)
		}
		if err != nil {
			if c.Addr.IsValid() {
				t.Fatalf("error %v with client %v", err, c.Addr)
			}
			return
		}
		a := c.Addr
		if !a.IsValid() || a.Is4In6() {
			t.Fatalf("client %v: invalid or mapped", a)
		}
		if a != c.Peer {
			if a.Zone() != "" {
				t.Fatalf("client %v from the header has a zone", a)
			}
			if !c.Proxied || !candidates(header)[a] {
				t.Fatalf("client %v is neither the peer %v nor an address in %q", a, c.Peer, header)
			}
		}
		if s := a.String(); s != a.WithZone("").String()+zoneSuffix(a) {
			t.Fatalf("client %q not canonical", s)
		}
		// Junk left of a client that is not trusted (the walk stopped before the leftmost hop).
		if !c.Proxied || r.kind == kindRealIP || r.trusted.Contains(a) {
			return
		}
		for _, junk := range []string{"127.0.0.1", "unknown", `for="`, "\"", "x\\", "0177.0.0.1", ",,"} {
			l2 := append([]string(nil), lines...)
			l2[0] = junk + "," + l2[0]
			c2, err2 := r.Resolve(peer, http.Header{r.key: l2})
			if err2 == ReasonHeaderTooLong {
				continue
			}
			if err2 != nil || c2.Addr != a {
				t.Fatalf("junk %q left of %q changed the client %v to %v (%v)", junk, header, a, c2.Addr, err2)
			}
		}
	})
}

// peerForm reports whether peer, as written or without its brackets and port, is an IP
// literal netip reads as a (unmapped, zone kept).
func peerForm(peer string, a netip.Addr) bool {
	forms := []string{peer}
	if i := strings.LastIndexByte(peer, ':'); i >= 0 {
		forms = append(forms, peer[:i])
	}
	for _, f := range forms {
		if len(f) >= 2 && f[0] == '[' && f[len(f)-1] == ']' {
			forms = append(forms, f[1:len(f)-1])
		}
	}
	for _, f := range forms {
		if b, err := netip.ParseAddr(f); err == nil && b.Unmap() == a {
			return true
		}
	}
	return false
}

func zoneSuffix(a netip.Addr) string {
	if a.Zone() == "" {
		return ""
	}
	return "%" + a.Zone()
}

// FuzzLocalHost: no panic, and anything accepted names loopback.
func FuzzLocalHost(f *testing.F) {
	for _, s := range []string{"localhost", "127.0.0.1:80", "[::1]:1", "evil", "[::1", "0x7f.1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		if !LocalHost(host) {
			return
		}
		h := strings.ToLower(host)
		if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.HasSuffix(h, "]") && strings.Count(h, ":") == 1 {
			h = h[:i]
		} else if strings.HasPrefix(h, "[") {
			h = h[1:strings.IndexByte(h, ']')]
		}
		if h == "localhost" {
			return
		}
		a, err := netip.ParseAddr(h)
		if err != nil || !a.Unmap().IsLoopback() {
			t.Fatalf("LocalHost(%q) accepted a host that is not loopback", host)
		}
	})
}

// FuzzParseIPv4: the fast IPv4 parser agrees with netip.ParseAddr on every string without ':'.
func FuzzParseIPv4(f *testing.F) {
	for _, s := range []string{"1.2.3.4", "0.0.0.0", "255.255.255.255", "256.1.1.1", "01.2.3.4", "1.2.3", "1..2.3", "1.2.3.4.", "", "1.2.3.04", "0.0.0.00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if strings.ContainsRune(s, ':') {
			return
		}
		got, ok := parseIPv4(s)
		want, err := netip.ParseAddr(s)
		wantOK := err == nil && want.Is4()
		if ok != wantOK || (ok && got != want) {
			t.Fatalf("parseIPv4(%q) = %v, %v; netip: %v, %v", s, got, ok, want, err)
		}
	})
}

// FuzzNeedsClean: the fast check never misses a path that cleaning changes, so a route rule
// cannot be dodged with "..", "." or "//".
func FuzzNeedsClean(f *testing.F) {
	for _, s := range []string{"/api/x", "/api/../internal", "//a", "/a/.", "/a/..", "/.", "a", "", "/a/.b", "/a/..b/", "/a/./"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if cleanPath(p) != p && !needsClean(p) {
			t.Fatalf("needsClean(%q) = false, but it cleans to %q", p, cleanPath(p))
		}
	})
}
