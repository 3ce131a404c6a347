package access

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/bindguard/bindguard/policy"
)

func mustResolver(t testing.TB, header string, trusted ...string) *Resolver {
	t.Helper()
	var ps []netip.Prefix
	for _, s := range trusted {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	r, err := NewResolver(ps, header)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// hdr builds a header from name and its lines, in order, as net/http would.
func hdr(name string, lines ...string) http.Header {
	h := http.Header{}
	for _, l := range lines {
		h.Add(name, l)
	}
	return h
}

type resolveCase struct {
	name   string
	peer   string
	lines  []string
	want   string // client address; "" when resolution must fail
	reason Reason
}

func runResolve(t *testing.T, header string, cases []resolveCase) {
	t.Helper()
	r := mustResolver(t, header, "127.0.0.0/8", "::1/128", "10.0.0.1/32")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := hdr(header, tc.lines...)
			c, err := r.Resolve(tc.peer, h)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("client %v, want failure %q", c.Addr, tc.reason)
				}
				if tc.reason != 0 && err != tc.reason {
					t.Errorf("reason %q, want %q", err, tc.reason)
				}
				if c.Addr.IsValid() {
					t.Errorf("failed resolution still returned client %v", c.Addr)
				}
				return
			}
			if err != nil {
				t.Fatalf("error %v, want client %s", err, tc.want)
			}
			if c.Addr.String() != tc.want {
				t.Errorf("client %v, want %s", c.Addr, tc.want)
			}
		})
	}
}

func TestResolveXFF(t *testing.T) {
	runResolve(t, "X-Forwarded-For", []resolveCase{
		{"untrusted peer ignores header", "203.0.113.9:5555", []string{"127.0.0.1"}, "203.0.113.9", 0},
		{"untrusted peer without header", "203.0.113.9:5555", nil, "203.0.113.9", 0},
		{"forged loopback left of client", "127.0.0.1:80", []string{"127.0.0.1, 198.51.100.7"}, "198.51.100.7", 0},
		{"rightmost untrusted wins", "127.0.0.1:80", []string{"1.1.1.1, 2.2.2.2, 10.0.0.1"}, "2.2.2.2", 0},
		{"all trusted: leftmost", "127.0.0.1:80", []string{"127.0.0.5, 10.0.0.1"}, "127.0.0.5", 0},
		{"lines are one list", "127.0.0.1:80", []string{"1.1.1.1", "2.2.2.2, 10.0.0.1"}, "2.2.2.2", 0},
		{"lines right to left", "127.0.0.1:80", []string{"9.9.9.9", "10.0.0.1"}, "9.9.9.9", 0},
		{"junk left of client never parsed", "127.0.0.1:80", []string{"not-an-ip, unknown, _x, 0177.0.0.1, 8.8.8.8"}, "8.8.8.8", 0},
		{"ipv4 with port", "127.0.0.1:80", []string{"8.8.8.8:4711"}, "8.8.8.8", 0},
		{"bare ipv6", "[::1]:80", []string{"2001:db8::1"}, "2001:db8::1", 0},
		{"bracketed ipv6 with port", "[::1]:80", []string{"[2001:db8::1]:443"}, "2001:db8::1", 0},
		{"bracketed ipv6", "[::1]:80", []string{"[2001:DB8:0::1]"}, "2001:db8::1", 0},
		{"mapped unmapped", "127.0.0.1:80", []string{"::ffff:8.8.4.4"}, "8.8.4.4", 0},
		{"mapped peer trusted", "[::ffff:127.0.0.1]:80", []string{"8.8.4.4"}, "8.8.4.4", 0},
		{"tabs and spaces trimmed", "127.0.0.1:80", []string{"\t 8.8.8.8 \t"}, "8.8.8.8", 0},
		{"trusted peer without header", "127.0.0.1:80", nil, "", ReasonNoHeader},
		{"empty header", "127.0.0.1:80", []string{""}, "", ReasonBadHop},
		{"trailing comma", "127.0.0.1:80", []string{"8.8.8.8,"}, "", ReasonBadHop},
		{"empty element reached", "127.0.0.1:80", []string{"8.8.8.8, ,10.0.0.1"}, "", ReasonBadHop},
		{"leading comma reached", "127.0.0.1:80", []string{",10.0.0.1"}, "", ReasonBadHop},
		{"hostname", "127.0.0.1:80", []string{"evil.example"}, "", ReasonBadHop},
		{"unknown", "127.0.0.1:80", []string{"unknown"}, "", ReasonBadHop},
		{"octal ipv4", "127.0.0.1:80", []string{"0177.0.0.1"}, "", ReasonBadHop},
		{"short ipv4", "127.0.0.1:80", []string{"127.1"}, "", ReasonBadHop},
		{"hex ipv4", "127.0.0.1:80", []string{"0x7f.0.0.1"}, "", ReasonBadHop},
		{"integer ipv4", "127.0.0.1:80", []string{"2130706433"}, "", ReasonBadHop},
		{"zone", "127.0.0.1:80", []string{"fe80::1%eth0"}, "", ReasonBadHop},
		{"bracketed zone", "127.0.0.1:80", []string{"[fe80::1%25eth0]"}, "", ReasonBadHop},
		{"bracketed ipv4", "127.0.0.1:80", []string{"[8.8.8.8]"}, "", ReasonBadHop},
		{"bad port", "127.0.0.1:80", []string{"8.8.8.8:99999"}, "", ReasonBadHop},
		{"port letters", "127.0.0.1:80", []string{"8.8.8.8:http"}, "", ReasonBadHop},
		{"newline inside", "127.0.0.1:80", []string{"8.8.8.8\n"}, "", ReasonBadHop},
		{"vertical tab not trimmed", "127.0.0.1:80", []string{"\v8.8.8.8"}, "", ReasonBadHop},
		{"nbsp not trimmed", "127.0.0.1:80", []string{"\u00a08.8.8.8"}, "", ReasonBadHop},
		{"too many elements", "127.0.0.1:80", []string{strings.Repeat("1.1.1.1,", 64) + "8.8.8.8"}, "", ReasonHeaderTooLong},
		{"64 elements is fine", "127.0.0.1:80", []string{strings.Repeat("1.1.1.1,", 63) + "8.8.8.8"}, "8.8.8.8", 0},
		{"too many over lines", "127.0.0.1:80", append(make([]string, 0, 65), strings.Split(strings.Repeat("1.1.1.1 ", 65), " ")[:65]...), "", ReasonHeaderTooLong},
		{"too long", "127.0.0.1:80", []string{strings.Repeat(" ", 8200) + "8.8.8.8"}, "", ReasonHeaderTooLong},
		{"bad peer", "nonsense", []string{"8.8.8.8"}, "", ReasonBadPeer},
		{"zoned peer outside the trusted proxies", "[fe80::1%eth0]:80", []string{"127.0.0.1"}, "fe80::1%eth0", 0},
	})
}

// TestResolvePeerForms: a RemoteAddr without a port (set so by some servers and middleware)
// is read when it is a bare or bracketed IP literal; anything ambiguous is refused.
func TestResolvePeerForms(t *testing.T) {
	runResolve(t, "X-Forwarded-For", []resolveCase{
		{"ipv4 without port", "127.0.0.1", []string{"8.8.8.8"}, "8.8.8.8", 0},
		{"untrusted ipv4 without port", "203.0.113.9", nil, "203.0.113.9", 0},
		{"bare ipv6", "::1", []string{"8.8.8.8"}, "8.8.8.8", 0},
		{"bracketed ipv6 without port", "[::1]", []string{"8.8.8.8"}, "8.8.8.8", 0},
		{"bare untrusted ipv6", "2001:db8::9", nil, "2001:db8::9", 0},
		{"bare mapped ipv6", "::ffff:127.0.0.1", []string{"8.8.8.8"}, "8.8.8.8", 0},
		{"bare zoned ipv6", "fe80::1%eth0", nil, "fe80::1%eth0", 0},
		{"bracketed zoned ipv6", "[fe80::1%eth0]", nil, "fe80::1%eth0", 0},
		{"ipv4 with port", "127.0.0.1:1", []string{"8.8.8.8"}, "8.8.8.8", 0},
		{"empty", "", nil, "", ReasonBadPeer},
		{"empty port", "127.0.0.1:", nil, "", ReasonBadPeer},
		{"empty port ipv6", "[::1]:", nil, "", ReasonBadPeer},
		{"port too big", "127.0.0.1:65536", nil, "", ReasonBadPeer},
		{"two ports", "127.0.0.1:80:80", nil, "", ReasonBadPeer},
		{"bracketed ipv4", "[127.0.0.1]", nil, "", ReasonBadPeer},
		{"bracketed ipv4 with port", "[127.0.0.1]:80", nil, "", ReasonBadPeer},
		{"zoned ipv4", "127.0.0.1%eth0", nil, "", ReasonBadPeer},
		{"zoned mapped", "[::ffff:127.0.0.1%eth0]:80", nil, "", ReasonBadPeer},
		{"bare zoned mapped", "::ffff:127.0.0.1%eth0", nil, "", ReasonBadPeer},
		{"unclosed bracket", "[::1", nil, "", ReasonBadPeer},
		{"junk after bracket", "[::1]x", nil, "", ReasonBadPeer},
		{"stray bracket", "::1]", nil, "", ReasonBadPeer},
		{"hostname", "localhost", nil, "", ReasonBadPeer},
		{"hostname with port", "localhost:80", nil, "", ReasonBadPeer},
		{"octal ipv4", "0177.0.0.1", nil, "", ReasonBadPeer},
		{"short ipv4", "127.1", nil, "", ReasonBadPeer},
		{"space", " 127.0.0.1", nil, "", ReasonBadPeer},
		{"trailing space", "127.0.0.1 ", nil, "", ReasonBadPeer},
		{"ipv6 with too many groups", "2001:db8:0:0:0:0:0:1:443", nil, "", ReasonBadPeer},
		{"bare zoned ipv6 with port", "fe80::1%eth0:80", nil, "", ReasonBadPeer},
		{"zone with bracket", "[fe80::1%a]b]", nil, "", ReasonBadPeer},
		{"zone with space", "[fe80::1%a b]:80", nil, "", ReasonBadPeer},
		{"zone too long", "[fe80::1%abcdefghijklmnop]:80", nil, "", ReasonBadPeer},
	})
}

// TestZonedPeer: a zoned IPv6 peer is matched by unzoned trusted prefixes on any interface,
// and by zoned ones on their interface only.
func TestZonedPeer(t *testing.T) {
	zoned := []policy.ZonedPrefix{{Prefix: netip.MustParsePrefix("fe80::2/128"), Zone: "eth1"}}
	r, err := NewZonedResolver([]netip.Prefix{netip.MustParsePrefix("fe80::1/128")}, zoned, "X-Forwarded-For")
	if err != nil {
		t.Fatal(err)
	}
	h := hdr("X-Forwarded-For", "198.51.100.7")
	for _, tc := range []struct {
		peer, want string
	}{
		{"[fe80::1%eth0]:80", "198.51.100.7"}, // unzoned entry, any interface
		{"[fe80::1%eth9]:80", "198.51.100.7"}, // the same
		{"[fe80::2%eth1]:80", "198.51.100.7"}, // zoned entry, its interface
		{"[fe80::2%eth0]:80", "fe80::2%eth0"}, // zoned entry, another interface: not a proxy
		{"[fe80::2]:80", "fe80::2"},           // no zone: a zoned entry does not match
		{"[fe80::3%eth1]:80", "fe80::3%eth1"}, // outside both
		{"fe80::2%eth1", "198.51.100.7"},      // no port
	} {
		c, err := r.Resolve(tc.peer, h)
		if err != nil || c.Addr.String() != tc.want {
			t.Errorf("Resolve(%s) = %v, %v; want %s", tc.peer, c.Addr, err, tc.want)
		}
	}
}

func TestResolveForwarded(t *testing.T) {
	runResolve(t, "Forwarded", []resolveCase{
		{"token ipv4", "127.0.0.1:80", []string{"for=192.0.2.60;proto=http;by=203.0.113.43"}, "192.0.2.60", 0},
		{"case-insensitive name", "127.0.0.1:80", []string{"For=192.0.2.60"}, "192.0.2.60", 0},
		{"quoted ipv6", "127.0.0.1:80", []string{`for="[2001:db8:cafe::17]"`}, "2001:db8:cafe::17", 0},
		{"quoted ipv6 port", "127.0.0.1:80", []string{`for="[2001:db8:cafe::17]:4711"`}, "2001:db8:cafe::17", 0},
		{"quoted ipv4 port", "127.0.0.1:80", []string{`for="192.0.2.43:47011"`}, "192.0.2.43", 0},
		{"list right to left", "127.0.0.1:80", []string{"for=192.0.2.43, for=198.51.100.17;by=203.0.113.60;proto=http;host=example.com"}, "198.51.100.17", 0},
		{"forged loopback left", "127.0.0.1:80", []string{"for=127.0.0.1, for=198.51.100.17"}, "198.51.100.17", 0},
		{"trusted hops skipped", "127.0.0.1:80", []string{"for=198.51.100.17, for=10.0.0.1"}, "198.51.100.17", 0},
		{"comma inside quotes does not split", "127.0.0.1:80", []string{`for=198.51.100.17;host="a,b"`}, "198.51.100.17", 0},
		{"escaped quote inside quotes", "127.0.0.1:80", []string{`for=198.51.100.17;host="a\",for=127.0.0.1"`}, "198.51.100.17", 0},
		{"junk left never parsed", "127.0.0.1:80", []string{`for=unknown, for="_hidden", garbage, for=198.51.100.17`}, "198.51.100.17", 0},
		{"lines as one list", "127.0.0.1:80", []string{"for=1.1.1.1", "for=198.51.100.17"}, "198.51.100.17", 0},
		{"unquoted ipv6", "127.0.0.1:80", []string{"for=2001:db8::1"}, "", ReasonBadHop},
		{"quoted ipv6 without brackets", "127.0.0.1:80", []string{`for="2001:db8::1"`}, "", ReasonBadHop},
		{"unquoted ip:port", "127.0.0.1:80", []string{"for=192.0.2.43:47011"}, "", ReasonBadHop},
		{"unquoted brackets", "127.0.0.1:80", []string{"for=[2001:db8::1]"}, "", ReasonBadHop},
		{"unknown", "127.0.0.1:80", []string{"for=unknown"}, "", ReasonBadHop},
		{"obfuscated", "127.0.0.1:80", []string{`for="_gazonk"`}, "", ReasonBadHop},
		{"obfuscated port", "127.0.0.1:80", []string{`for="192.0.2.43:_abc"`}, "", ReasonBadHop},
		{"no for", "127.0.0.1:80", []string{"proto=https"}, "", ReasonBadHop},
		{"two for", "127.0.0.1:80", []string{"for=1.1.1.1;for=2.2.2.2"}, "", ReasonBadHop},
		{"space around =", "127.0.0.1:80", []string{"for = 1.1.1.1"}, "", ReasonBadHop},
		{"unterminated quote", "127.0.0.1:80", []string{`for="1.1.1.1`}, "", ReasonBadHop},
		{"stray quote", "127.0.0.1:80", []string{`for=1.1.1.1"`}, "", ReasonBadHop},
		{"escape inside node", "127.0.0.1:80", []string{`for="1.1.1\.1"`}, "1.1.1.1", 0},
		{"quoted-pair digit", "127.0.0.1:80", []string{`for="\1\9\2.0.2.43"`}, "192.0.2.43", 0},
		{"quoted-pair brackets and port", "127.0.0.1:80", []string{`for="\[2001:db8::1\]:4\711"`}, "2001:db8::1", 0},
		{"escaped backslash", "127.0.0.1:80", []string{`for="\\1.1.1.1"`}, "", ReasonBadHop},
		{"escaped quote in node", "127.0.0.1:80", []string{`for="\"1.1.1.1"`}, "", ReasonBadHop},
		{"escaped closing quote", "127.0.0.1:80", []string{`for="1.1.1.1\"`}, "", ReasonBadHop},
		{"escaped zone", "127.0.0.1:80", []string{`for="[fe80::1\%eth0]"`}, "", ReasonBadHop},
		{"escaped DEL", "127.0.0.1:80", []string{"for=\"1.1.1.1\\\x7f\""}, "", ReasonBadHop},
		{"escaped space", "127.0.0.1:80", []string{`for="1.1.1.1\ "`}, "", ReasonBadHop},
		{"escapes too long", "127.0.0.1:80", []string{`for="` + strings.Repeat(`\0`, 65) + `"`}, "", ReasonBadHop},
		{"escaped node then trusted", "127.0.0.1:80", []string{`for="\1\9\8.51.100.17", for="\1\0.0.0.1"`}, "198.51.100.17", 0},
		{"empty element", "127.0.0.1:80", []string{"for=1.1.1.1,"}, "", ReasonBadHop},
		{"zone", "127.0.0.1:80", []string{`for="[fe80::1%25eth0]"`}, "", ReasonBadHop},
		{"octal", "127.0.0.1:80", []string{"for=0177.0.0.1"}, "", ReasonBadHop},
		{"x-forwarded-for ignored", "127.0.0.1:80", nil, "", ReasonNoHeader},
	})
	// The configured header alone is read.
	r := mustResolver(t, "Forwarded", "127.0.0.0/8")
	h := hdr("X-Forwarded-For", "8.8.8.8")
	if _, err := r.Resolve("127.0.0.1:1", h); err != ReasonNoHeader {
		t.Errorf("Forwarded resolver with only X-Forwarded-For: %v, want %v", err, ReasonNoHeader)
	}
}

func TestResolveXRealIP(t *testing.T) {
	runResolve(t, "X-Real-IP", []resolveCase{
		{"one address", "127.0.0.1:80", []string{"198.51.100.7"}, "198.51.100.7", 0},
		{"with port", "127.0.0.1:80", []string{"[2001:db8::7]:80"}, "2001:db8::7", 0},
		{"trusted client is the client", "127.0.0.1:80", []string{"127.0.0.1"}, "127.0.0.1", 0},
		{"repeated line", "127.0.0.1:80", []string{"198.51.100.7", "198.51.100.8"}, "", ReasonRepeatedHeader},
		{"list", "127.0.0.1:80", []string{"198.51.100.7, 198.51.100.8"}, "", ReasonBadHop},
		{"hostname", "127.0.0.1:80", []string{"localhost"}, "", ReasonBadHop},
	})
	// With X-Real-IP configured, X-Forwarded-For is ignored, and the other way round.
	rr := mustResolver(t, "X-Real-IP", "127.0.0.0/8")
	if _, err := rr.Resolve("127.0.0.1:1", hdr("X-Forwarded-For", "8.8.8.8")); err != ReasonNoHeader {
		t.Errorf("X-Real-IP resolver read X-Forwarded-For: %v", err)
	}
	rx := mustResolver(t, "x-forwarded-for", "127.0.0.0/8")
	if _, err := rx.Resolve("127.0.0.1:1", hdr("X-Real-IP", "8.8.8.8")); err != ReasonNoHeader {
		t.Errorf("X-Forwarded-For resolver read X-Real-IP: %v", err)
	}
}

func TestNewResolverRefusesOtherHeaders(t *testing.T) {
	if _, err := NewResolver(nil, "True-Client-IP"); err == nil {
		t.Error("True-Client-IP accepted")
	}
}

func TestNoTrustedProxies(t *testing.T) {
	r := mustResolver(t, "X-Forwarded-For")
	c, err := r.Resolve("127.0.0.1:5", hdr("X-Forwarded-For", "8.8.8.8"))
	if err != nil || c.Addr.String() != "127.0.0.1" || c.Proxied {
		t.Errorf("no trusted proxies: %+v %v, want the peer", c, err)
	}
}

func TestPrefixSet(t *testing.T) {
	var big []netip.Prefix
	for i := range 1000 {
		big = append(big, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 0}), 24))
	}
	big = append(big, netip.MustParsePrefix("2001:db8::/32"), netip.MustParsePrefix("::ffff:192.168.0.0/112"))
	small := []netip.Prefix{netip.MustParsePrefix("10.0.5.0/24"), netip.MustParsePrefix("2001:db8::/32"), netip.MustParsePrefix("::ffff:192.168.0.0/112")}
	for name, s := range map[string]*PrefixSet{"trie": NewPrefixSet(big), "slice": NewPrefixSet(small)} {
		for addr, want := range map[string]bool{
			"10.0.5.9": true, "::ffff:10.0.5.9": true, "192.168.3.4": true, "2001:db8::1": true,
			"11.0.0.1": false, "fe80::1%eth0": false, "2001:db9::1": false, "2001:db8::1%eth0": true,
		} {
			if got := s.Contains(netip.MustParseAddr(addr)); got != want {
				t.Errorf("%s: Contains(%s) = %v, want %v", name, addr, got, want)
			}
		}
	}
	var nilSet *PrefixSet
	if nilSet.Contains(netip.MustParseAddr("1.1.1.1")) || nilSet.Len() != 0 {
		t.Error("nil set not empty")
	}
}
