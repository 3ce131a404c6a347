package access

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/bindguard/bindguard/policy"
)

const guardPolicy = `version: 1
# nginx connects from its own loopback address (proxy_bind), so local clients are not proxies
trusted_proxies: [127.0.0.2/32]
networks:
  lan: [10.1.1.0/24]
services:
  - {name: core, port: 8001, address: 127.0.0.1, access: localhost_only}
  - {name: nohost, port: 8005, address: 127.0.0.1, access: localhost_only, host_check: false}
  - {name: frontend, port: 8443, address: 127.0.0.1, access: proxy_only}
  - {name: dash, port: 8080, address: 10.1.1.120, access: lan, allow: [lan]}
  - {name: agent, port: 10050, address: 0.0.0.0, access: restricted, allow: [10.1.1.103]}
  - {name: web, port: 443, address: 0.0.0.0, access: public}
`

func mustPolicy(t testing.TB, src string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse("guard.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mustGuard(t testing.TB, p *policy.Policy, name string) *Guard {
	t.Helper()
	g, err := NewGuard(p, name)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestGuardClasses(t *testing.T) {
	p := mustPolicy(t, guardPolicy)
	xff := func(v string) http.Header { return hdr("X-Forwarded-For", v) }
	cases := []struct {
		service, remote, host string
		header                http.Header
		want                  Reason
	}{
		{"core", "127.0.0.1:5000", "localhost:8001", nil, ReasonNone},
		{"core", "[::1]:5000", "127.0.0.1:8001", nil, ReasonNone},
		{"core", "127.0.0.3:5000", "[::1]:8001", nil, ReasonNone},
		{"core", "10.1.1.5:5000", "localhost", nil, ReasonNotLoopback},
		{"core", "127.0.0.2:5000", "localhost", xff("127.0.0.1, 10.1.1.5"), ReasonNotLoopback}, // forged through the proxy
		{"core", "127.0.0.2:5000", "localhost", xff("127.0.0.1"), ReasonNone},                  // a local client via the proxy
		{"core", "127.0.0.2:5000", "localhost", nil, ReasonNoHeader},                           // the proxy forgot the header
		{"core", "127.0.0.1:5000", "evil.example", nil, ReasonBadHost},                         // DNS rebinding
		{"core", "127.0.0.1:5000", "0.0.0.0:8001", nil, ReasonBadHost},                         // the "0.0.0.0 day"
		{"core", "127.0.0.1:5000", "", nil, ReasonBadHost},
		{"core", "127.0.0.1:5000", "localhost.:8001", nil, ReasonBadHost},
		{"core", "127.0.0.1:5000", "127.1", nil, ReasonBadHost},
		{"core", "127.0.0.1:5000", "::1", nil, ReasonBadHost},
		{"nohost", "127.0.0.1:5000", "evil.example", nil, ReasonNone},
		{"frontend", "127.0.0.2:5000", "shop.example", xff("203.0.113.9"), ReasonNone},
		{"frontend", "127.0.0.2:5000", "shop.example", nil, ReasonNoHeader},
		{"frontend", "127.0.0.1:5000", "shop.example", xff("203.0.113.9"), ReasonNotProxied},
		{"frontend", "10.1.1.5:5000", "shop.example", xff("203.0.113.9"), ReasonNotProxied},
		{"dash", "10.1.1.5:5000", "dash", nil, ReasonNone},
		{"dash", "10.1.2.5:5000", "dash", nil, ReasonNotAllowed},
		{"dash", "127.0.0.2:5000", "dash", xff("10.1.1.200"), ReasonNone},
		{"dash", "127.0.0.2:5000", "dash", xff("10.1.1.200, 8.8.8.8"), ReasonNotAllowed},
		{"dash", "10.1.2.5:5000", "dash", xff("10.1.1.7"), ReasonNotAllowed}, // untrusted peer's header ignored
		{"dash", "[fe80::1%eth0]:5000", "dash", nil, ReasonNotAllowed},
		{"agent", "10.1.1.103:5000", "", nil, ReasonNone},
		{"agent", "[::ffff:10.1.1.103]:5000", "", nil, ReasonNone},
		{"agent", "10.1.1.104:5000", "", nil, ReasonNotAllowed},
		{"web", "203.0.113.9:5000", "", nil, ReasonNone},
		{"web", "127.0.0.2:5000", "", xff("junk"), ReasonBadHop},
	}
	for _, tc := range cases {
		g := mustGuard(t, p, tc.service)
		d := g.Decide(Request{RemoteAddr: tc.remote, Host: tc.host, Path: "/", Header: tc.header})
		if d.Reason != tc.want || d.Allowed != (tc.want == ReasonNone) {
			t.Errorf("%s from %s (Host %q, %v): %s, want %q", tc.service, tc.remote, tc.host, tc.header, d.Explain(), tc.want)
		}
	}
}

func TestGuardRoutes(t *testing.T) {
	p := mustPolicy(t, guardPolicy)
	g := mustGuard(t, p, "core")
	// The seed's core: reached through the proxy under /api/, its /internal/ localhost-only.
	if err := g.Route("/api/", Rule{Access: policy.ProxyOnly}); err != nil {
		t.Fatal(err)
	}
	if err := g.Route("/internal/", Rule{Access: policy.LocalhostOnly}); err != nil {
		t.Fatal(err)
	}
	viaProxy := hdr("X-Forwarded-For", "127.0.0.1, 10.1.1.5") // forged 127.0.0.1, real client 10.1.1.5
	for _, tc := range []struct {
		path string
		want Reason
	}{
		{"/api/portfolio", ReasonNone},
		{"/internal/metrics", ReasonNotLoopback},
		{"/internal", ReasonNotLoopback},
		{"/api/../internal/metrics", ReasonNotLoopback},
		{"/api//../internal/metrics", ReasonNotLoopback},
		{"//internal/metrics", ReasonNotLoopback},
		{"/api/./x", ReasonNone},
		{"/health", ReasonNotLoopback}, // the service's own class
		{"/apix", ReasonNotLoopback},
	} {
		d := g.Decide(Request{RemoteAddr: "127.0.0.2:4000", Host: "shop.example", Path: tc.path, Header: viaProxy})
		if d.Reason != tc.want {
			t.Errorf("%s: %s, want %q", tc.path, d.Explain(), tc.want)
		}
	}
	for _, bad := range []string{"internal/", "/a/../b", "/a//b"} {
		if err := g.Route(bad, Rule{Access: policy.LocalhostOnly}); err == nil {
			t.Errorf("Route(%q) accepted", bad)
		}
	}
	if err := g.Route("/x/", Rule{Access: policy.LAN}); err == nil {
		t.Error("lan route without an allow list accepted")
	}
}

func TestNewGuardErrors(t *testing.T) {
	p := mustPolicy(t, guardPolicy)
	if _, err := NewGuard(p, "nope"); err == nil || !strings.Contains(err.Error(), `no service "nope"`) {
		t.Errorf("unknown service: %v", err)
	}
	if _, err := NewGuard(nil, "core"); err == nil {
		t.Error("nil policy accepted")
	}
}

// defaultProxies trusts the default proxies, 127.0.0.1 and ::1: a loopback peer must carry the
// header.
const defaultProxies = `version: 1
services:
  - {name: core, port: 8001, address: 127.0.0.1, access: localhost_only, host_check: false}
`

func TestDefaultProxiesNeedTheHeader(t *testing.T) {
	g := mustGuard(t, mustPolicy(t, defaultProxies), "core")
	// A local process connecting directly cannot be told from a proxy that forgot the header.
	if d := g.Decide(Request{RemoteAddr: "127.0.0.1:1", Path: "/"}); d.Allowed || d.Reason != ReasonNoHeader {
		t.Errorf("loopback peer without header: %s", d.Explain())
	}
	if d := g.Decide(Request{RemoteAddr: "127.0.0.1:1", Path: "/", Header: hdr("X-Forwarded-For", "::1")}); !d.Allowed {
		t.Errorf("loopback client via loopback proxy: %s", d.Explain())
	}
	if d := g.Decide(Request{RemoteAddr: "[::1]:1", Path: "/", Header: hdr("X-Forwarded-For", "127.0.0.1, 192.0.2.1")}); d.Allowed {
		t.Errorf("forged: %s", d.Explain())
	}
}

func TestMiddleware(t *testing.T) {
	p := mustPolicy(t, defaultProxies)
	g := mustGuard(t, p, "core")
	var logged strings.Builder
	logger := slog.New(slog.NewJSONHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := Middleware(g, logger, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "secret")
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()

	// A real loopback connection through the (loopback, trusted) "proxy" for a local client:
	// allowed.
	req, _ := http.NewRequest("GET", srv.URL+"/internal/metrics", nil)
	req.Header.Set("X-Forwarded-For", "127.0.0.1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "secret" {
		t.Errorf("loopback: %d %q", resp.StatusCode, body)
	}
	// Through a "proxy" (the loopback peer is trusted) for a remote client: denied, with a
	// problem body that names nothing.
	req.Header.Set("X-Forwarded-For", "127.0.0.1, 192.0.2.44")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != 403 || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("forged: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var prob map[string]any
	if err := json.Unmarshal(body, &prob); err != nil || prob["status"] != float64(403) || prob["title"] != "Forbidden" {
		t.Errorf("problem body %s: %v", body, err)
	}
	for _, leak := range []string{"192.0.2.44", "127.0.0.1", "localhost", "core", "loopback", "secret"} {
		if strings.Contains(string(body), leak) {
			t.Errorf("problem body names %q: %s", leak, body)
		}
	}
	if !strings.Contains(logged.String(), `"client":"192.0.2.44"`) || !strings.Contains(logged.String(), `"allowed":false`) {
		t.Errorf("debug log lacks the decision: %s", logged.String())
	}
	// Nil logger: no log, still enforced.
	rec := httptest.NewRecorder()
	Middleware(g, nil, http.NotFoundHandler()).ServeHTTP(rec, &http.Request{RemoteAddr: "192.0.2.1:9", Host: "localhost", URL: req.URL, Header: http.Header{}})
	if rec.Code != 403 {
		t.Errorf("nil logger: %d", rec.Code)
	}
}

func TestLocalHost(t *testing.T) {
	for h, want := range map[string]bool{
		"localhost": true, "LOCALHOST:80": true, "127.0.0.1": true, "127.8.9.10:8001": true, "[::1]": true, "[::1]:8001": true,
		"": false, "localhost:": false, "localhost:http": false, "::1": false, "0.0.0.0": false, "[::]": false, "127.1": false,
		"0177.0.0.1": false, "evil.localhost": false, "localhost.": false, "[::ffff:8.8.8.8]": false, "2130706433": false,
		"127.0.0.1:99999": false, "[::1": false,
	} {
		if got := LocalHost(h); got != want {
			t.Errorf("LocalHost(%q) = %v, want %v", h, got, want)
		}
	}
}

func TestDecisionExplain(t *testing.T) {
	d := Decision{Client: Client{Addr: netip.MustParseAddr("192.0.2.4"), Peer: netip.MustParseAddr("127.0.0.1"), Proxied: true}, Access: policy.LocalhostOnly, Reason: ReasonNotLoopback}
	if got, want := d.Explain(), "client 192.0.2.4 (via proxy 127.0.0.1) denied by localhost_only: the client is not on this host"; got != want {
		t.Errorf("Explain = %q, want %q", got, want)
	}
}

// TestGuardZonedPeers: an allow list's unzoned entry admits a zoned IPv6 peer on any
// interface (fe80::/10 lists every link-local address); an entry naming a zone admits it on
// that interface only. Trusted proxies likewise.
func TestGuardZonedPeers(t *testing.T) {
	p := mustPolicy(t, `version: 1
trusted_proxies: [127.0.0.2/32, "fe80::2%eth1"]
services:
  - {name: anyif, port: 8081, access: restricted, allow: ["fe80::/10"]}
  - {name: oneif, port: 8082, access: restricted, allow: ["fe80::%eth0/64", "fe80::9%eth2", 10.1.1.5]}
  - {name: front, port: 8083, address: 127.0.0.1, access: proxy_only}
`)
	cases := []struct {
		service, remote string
		header          http.Header
		want            Reason
	}{
		{"anyif", "[fe80::1%eth0]:5000", nil, ReasonNone},
		{"anyif", "[fe80::1%wlan0]:5000", nil, ReasonNone},
		{"anyif", "fe80::1%eth0", nil, ReasonNone}, // RemoteAddr without a port
		{"anyif", "[2001:db8::1]:5000", nil, ReasonNotAllowed},
		{"oneif", "[fe80::1234%eth0]:5000", nil, ReasonNone},
		{"oneif", "[fe80::1234%eth1]:5000", nil, ReasonNotAllowed},
		{"oneif", "[fe80:0:0:1::1234%eth0]:5000", nil, ReasonNotAllowed}, // outside the /64
		{"oneif", "[fe80::9%eth2]:5000", nil, ReasonNone},
		{"oneif", "[fe80::9%eth0]:5000", nil, ReasonNone}, // inside fe80::%eth0/64
		{"oneif", "[fe80::9%eth3]:5000", nil, ReasonNotAllowed},
		{"oneif", "[fe80::9]:5000", nil, ReasonNotAllowed}, // no zone: zoned entries do not match
		{"oneif", "10.1.1.5:5000", nil, ReasonNone},
		{"front", "[fe80::2%eth1]:5000", hdr("X-Forwarded-For", "198.51.100.7"), ReasonNone},
		{"front", "[fe80::2%eth0]:5000", hdr("X-Forwarded-For", "198.51.100.7"), ReasonNotProxied},
	}
	for _, tc := range cases {
		g := mustGuard(t, p, tc.service)
		d := g.Decide(Request{RemoteAddr: tc.remote, Host: "x", Path: "/", Header: tc.header})
		if d.Reason != tc.want {
			t.Errorf("%s from %s: %s, want %q", tc.service, tc.remote, d.Explain(), tc.want)
		}
	}
}
