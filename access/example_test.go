package access_test

import (
	"fmt"
	"log"
	"net/http"
	"net/netip"

	"github.com/bindguard/bindguard/access"
	"github.com/bindguard/bindguard/policy"
)

// A client behind nginx forges "X-Forwarded-For: 127.0.0.1"; nginx appends the address it saw.
// The walk from the right stops at that address.
func ExampleResolver_Resolve() {
	r, err := access.NewResolver([]netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, "X-Forwarded-For")
	if err != nil {
		log.Fatal(err)
	}
	h := http.Header{"X-Forwarded-For": {"127.0.0.1, 203.0.113.9"}}
	c, err := r.Resolve("127.0.0.1:51000", h)
	fmt.Println(c.Addr, c.Proxied, err)
	// Output: 203.0.113.9 true <nil>
}

// The seed's core service: localhost-only, reached by nginx under /api/, its /internal/ for
// local clients only.
func ExampleMiddleware() {
	pol, err := policy.Parse("example.yaml", []byte(`version: 1
services:
  - {name: core, port: 8001, address: 127.0.0.1, access: localhost_only}
`))
	if err != nil {
		log.Fatal(err)
	}
	g, err := access.NewGuard(pol, "core")
	if err != nil {
		log.Fatal(err)
	}
	if err := g.Route("/api/", access.Rule{Access: policy.ProxyOnly}); err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/portfolio", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "{}") })
	handler := access.Middleware(g, nil, mux)

	d := g.Decide(access.Request{RemoteAddr: "127.0.0.1:40000", Host: "shop.example", Path: "/internal/metrics",
		Header: http.Header{"X-Forwarded-For": {"127.0.0.1, 198.51.100.4"}}})
	fmt.Println(d.Explain())
	_ = handler // http.Serve(listener, handler)
	// Output: client 198.51.100.4 (via proxy 127.0.0.1) denied by localhost_only: the client is not on this host
}
