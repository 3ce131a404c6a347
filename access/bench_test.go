package access

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/bindguard/bindguard/policy"
)

// benchGuard guards a restricted service whose allow list has n prefixes (the client's among
// them), behind trusted proxies 10.0.0.0/8.
func benchGuard(b *testing.B, n int) *Guard {
	b.Helper()
	allow := make([]netip.Prefix, 0, n)
	for i := range n - 1 {
		allow = append(allow, netip.PrefixFrom(netip.AddrFrom4([4]byte{100, byte(i >> 16), byte(i >> 8), byte(i)}), 32))
	}
	allow = append(allow, netip.MustParsePrefix("203.0.113.0/24"))
	res, err := NewResolver([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, "X-Forwarded-For")
	if err != nil {
		b.Fatal(err)
	}
	return &Guard{service: "bench", resolver: res, base: Rule{Access: policy.Restricted, Allow: NewPrefixSet(allow), class: classAllow}}
}

// BenchmarkDecide: client IP and decision for a plain X-Forwarded-For chain of 3 (client, two
// trusted hops) arriving from a trusted proxy.
func BenchmarkDecide(b *testing.B) {
	for _, n := range []int{1, 1000, 100000} {
		b.Run(fmt.Sprintf("prefixes=%d", n), func(b *testing.B) {
			g := benchGuard(b, n)
			req := Request{RemoteAddr: "10.0.0.3:41000", Host: "api", Path: "/api/x",
				Header: http.Header{"X-Forwarded-For": {"203.0.113.7, 10.0.0.1, 10.0.0.2"}}}
			if d := g.Decide(req); !d.Allowed {
				b.Fatalf("bench request denied: %s", d.Explain())
			}
			b.ReportAllocs()
			for b.Loop() {
				if !g.Decide(req).Allowed {
					b.Fatal("denied")
				}
			}
		})
	}
}

// BenchmarkDecideZonedPeer: a link-local peer (fe80::1%eth0) through a zoned trusted proxy,
// then an allow list with a zoned and an unzoned entry: the zone path allocates nothing either.
func BenchmarkDecideZonedPeer(b *testing.B) {
	zoned := []policy.ZonedPrefix{{Prefix: netip.MustParsePrefix("fe80::1/128"), Zone: "eth0"}}
	res, err := NewZonedResolver(nil, zoned, "X-Forwarded-For")
	if err != nil {
		b.Fatal(err)
	}
	allow := NewZonedPrefixSet([]netip.Prefix{netip.MustParsePrefix("fe80::/10")}, []policy.ZonedPrefix{{Prefix: netip.MustParsePrefix("fe80::/64"), Zone: "eth1"}})
	g := &Guard{service: "bench", resolver: res, base: Rule{Access: policy.Restricted, Allow: allow, class: classAllow}}
	req := Request{RemoteAddr: "[fe80::1%eth0]:41000", Host: "api", Path: "/api/x",
		Header: http.Header{"X-Forwarded-For": {"fe80::7"}}}
	if d := g.Decide(req); !d.Allowed || !d.Client.Proxied {
		b.Fatalf("bench request: %s", d.Explain())
	}
	b.ReportAllocs()
	for b.Loop() {
		if !g.Decide(req).Allowed {
			b.Fatal("denied")
		}
	}
}

// BenchmarkStdlibParseFloor is the same-run reference for BenchmarkDecide: only parsing the
// peer and the three hops with net/netip, deciding nothing.
func BenchmarkStdlibParseFloor(b *testing.B) {
	hops := []string{"203.0.113.7", "10.0.0.1", "10.0.0.2"}
	b.ReportAllocs()
	for b.Loop() {
		ap, err := netip.ParseAddrPort("10.0.0.3:41000")
		if err != nil || !ap.IsValid() {
			b.Fatal(err)
		}
		for _, h := range hops {
			if _, err := netip.ParseAddr(h); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkMiddleware compares a handler bare and behind Middleware (localhost_only: header
// walk and Host check), in process, without the network.
func BenchmarkMiddleware(b *testing.B) {
	pol, err := policy.Parse("bench.yaml", []byte("version: 1\nservices:\n  - {name: api, port: 8001, address: 127.0.0.1, access: localhost_only}\n"))
	if err != nil {
		b.Fatal(err)
	}
	g, err := NewGuard(pol, "api")
	if err != nil {
		b.Fatal(err)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	req := httptest.NewRequest(http.MethodGet, "http://localhost/api/x", nil)
	req.RemoteAddr = "127.0.0.1:40000"
	req.Header.Set("X-Forwarded-For", "127.0.0.1, ::1")
	for _, c := range []struct {
		name string
		h    http.Handler
	}{{"bare", h}, {"guarded", Middleware(g, nil, h)}} {
		b.Run(c.name, func(b *testing.B) {
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				w.code = 0
				c.h.ServeHTTP(w, req)
				if w.code != http.StatusNoContent {
					b.Fatalf("status %d", w.code)
				}
			}
		})
	}
}

type discardWriter struct {
	h    http.Header
	code int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(code int)        { d.code = code }
