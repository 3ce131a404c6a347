package policy_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bindguard/bindguard/policy"
)

// gen derives values from fuzz bytes; when they run out it answers zero.
type gen struct{ b []byte }

func (g *gen) byte() byte {
	if len(g.b) == 0 {
		return 0
	}
	c := g.b[0]
	g.b = g.b[1:]
	return c
}

func (g *gen) bit() bool { return g.byte()&1 == 1 }

// n is a small count below max: max-1 when the input has run out.
func (g *gen) n(max int) int { return max - 1 - int(g.byte())%max }

// yes is usually true (always when the input has run out).
func (g *gen) yes() bool { return g.byte() < 192 }

// raw is a string taken from the input as it is: any bytes at all.
func (g *gen) raw() string {
	n := int(g.byte()) % 24
	if n > len(g.b) {
		n = len(g.b)
	}
	s := string(g.b[:n])
	g.b = g.b[n:]
	return s
}

// hostileStrings are values that must never pass into generated files, or that YAML could read
// as something else.
var hostileStrings = []string{
	"", " ", "example.com; include /etc/passwd", "/x { return 200; }", "a\nb", "a\rb", "a\x00b", "$var", "/$host", "#",
	"/a#b", `"`, "'", "a\u2028b", "a\u202eb", "\ufeff", "\xff", "..", "/a/../b", "//", "/a//b", "null", "~", "true", "yes",
	"-", "[", "{", ":", "::", "? x", "&a", "*a", "!!str", "|", ">", "%", "@", "`", "\\", "a: b", "- x", "10M", "01", "1e3",
	"é", "日本", "\t", "*", "[::1", "fe80::1%eth0", "::ffff:10.0.0.1", "0.0.0.0/0", "::/0", "10.1.1.5/24",
}

// pick mostly chooses def, so that generated policies are often valid, and otherwise one of
// alts, a hostile string or the raw input.
func (g *gen) pick(def string, alts ...string) string {
	switch c := g.byte(); {
	case c < 192:
		return def
	case c < 224 && len(alts) > 0:
		return alts[int(c)%len(alts)]
	case c < 248:
		return hostileStrings[int(c)%len(hostileStrings)]
	default:
		return g.raw()
	}
}

// strs is usually def, otherwise a list of up to max picks.
func (g *gen) strs(def []string, max int, alts ...string) []string {
	if g.byte() < 160 {
		return append([]string(nil), def...)
	}
	n := g.n(max + 1)
	if n == 0 && g.bit() {
		return nil
	}
	out := make([]string, n)
	for i := range out {
		d := ""
		if len(def) > 0 {
			d = def[i%len(def)]
		}
		out[i] = g.pick(d, alts...)
	}
	return out
}

// int is usually def.
func (g *gen) int(def int) int {
	switch c := g.byte(); {
	case c < 192:
		return def
	case c < 208:
		return 0
	case c < 232:
		return int(g.byte())
	}
	return int(g.byte())<<8 | int(g.byte())
}

func (g *gen) prefix(def string, alts ...string) (netip.Prefix, bool) {
	pr, err := netip.ParsePrefix(g.pick(def, alts...))
	return pr, err == nil
}

var (
	genPrefixes = []string{"10.1.1.0/24", "10.0.0.0/8", "192.0.2.7/32", "127.0.0.1/32", "::1/128", "2001:db8::/32", "0.0.0.0/1", "128.0.0.0/1", "fe80::/10"}
	genAddrs    = []string{"", "127.0.0.1", "127.0.0.53", "0.0.0.0", "::", "::1", "10.1.1.7", "192.0.2.1", "2001:db8::1"}
	genNames    = []string{"web", "web80", "core", "lan", "status", "s1", "a.b-c_d", "null", "true"}
	genAllow    = []string{"lan", "wan", "10.1.1.103", "10.1.1.0/24", "2001:db8::1", "::1", "192.0.2.0/24", "core"}
	genAccess   = []string{"localhost_only", "proxy_only", "lan", "restricted", "public", "nginx_only", ""}
	genPaths    = []string{"/", "/api/", "/health", "/nginx-status", "/a.b~c-d_e/", "/internal/"}
	genFiles    = []string{"/etc/ssl/a.crt", "/etc/ssl/a.key", "/a+b@c/d.pem"}
	genHosts    = []string{"example.com", "*.example.com", "10.1.1.120", "[::1]", "2001:db8::1", "a-b.c"}
)

// slot is the usual shape of the i-th generated service, which the proxy section refers to.
type slot struct {
	name, addr, access string
	port               int
	allow              []string
}

var slots = []slot{
	{"web", "0.0.0.0", "public", 443, nil},
	{"web80", "::", "public", 80, nil},
	{"status", "0.0.0.0", "public", 8080, nil},
	{"core", "127.0.0.1", "localhost_only", 8001, nil},
	{"metrics", "10.1.1.7", "lan", 9100, []string{"lan"}},
	{"zabbix", "0.0.0.0", "restricted", 10050, []string{"10.1.1.103", "2001:db8::/32"}},
	{"front", "::1", "proxy_only", 8443, nil},
}

// genPolicy builds a Policy from fuzz bytes: a small generator over every section, mostly
// valid values with hostile ones mixed in.
func genPolicy(data []byte) *policy.Policy {
	g := &gen{b: data}
	p := &policy.Policy{Version: g.int(1)}
	if g.yes() {
		p.TrustedProxies = policy.DefaultTrustedProxies()
	} else {
		for range g.n(3) {
			if pr, ok := g.prefix("10.1.1.1/32", genPrefixes...); ok {
				p.TrustedProxies = append(p.TrustedProxies, pr)
			}
		}
	}
	p.ClientIPHeader = g.pick(policy.HeaderXForwardedFor, "", policy.HeaderForwarded, policy.HeaderXRealIP, "x-real-ip")
	for i := range g.n(3) {
		n := policy.Network{Name: g.pick([]string{"lan", "mon"}[i%2], genNames...)}
		for range int(g.byte())%3 + 1 {
			if pr, ok := g.prefix("10.1.1.0/24", genPrefixes...); ok {
				n.Prefixes = append(n.Prefixes, pr)
			}
		}
		p.Networks = append(p.Networks, n)
	}
	for i := range g.n(len(slots) + 1) {
		sl := slots[i]
		s := policy.Service{
			Name:     g.pick(sl.name, genNames...),
			Protocol: policy.Protocol(g.pick("tcp", "", "udp", "sctp")),
			Port:     uint16(g.int(sl.port)),
			Access:   policy.Access(g.pick(sl.access, genAccess...)),
			V6Only:   g.byte() > 224,
			Allow:    g.strs(sl.allow, 3, genAllow...),
		}
		if a, err := netip.ParseAddr(g.pick(sl.addr, genAddrs...)); err == nil {
			s.Address = a
		}
		s.HostCheck = s.Access == policy.LocalhostOnly && g.byte() < 224
		if g.yes() {
			s.Process = g.pick("nginx", "core", "a b", "")
		}
		if g.yes() {
			s.Description = g.pick("Core API", "Zabbix-Agent für Remote-Monitoring", `say "hi" # not a comment`, "100% ${x}")
		}
		p.Services = append(p.Services, s)
	}
	if g.yes() {
		px := &policy.Proxy{
			ServerNames: g.strs([]string{"example.com", "10.1.1.120"}, 2, genHosts...),
			HTTP:        g.pick("web80", "", "web"),
			HTTPS:       g.pick("web", "core", "web80", ""),
			Certificate: g.pick("/etc/ssl/a.crt", genFiles...),
			Key:         g.pick("/etc/ssl/a.key", genFiles...),
			Blocked:     g.strs([]string{"/internal/"}, 2, genPaths...),
			Health:      g.pick("/health", ""),
			Rate:        g.int(10), Burst: g.int(20), Connections: g.int(10), Timeout: g.int(60),
			BodySize: g.pick("10m", "", "512k", "1g", "999999", "10M"),
		}
		for i := range g.n(3) {
			px.Routes = append(px.Routes, policy.Route{
				Path: g.pick([]string{"/api/", "/"}[i%2], genPaths...), Service: g.pick("core", genNames...),
				Methods: g.strs(nil, 2, "GET", "POST", "HEAD", "PATCH"), Allow: g.strs(nil, 2, genAllow...),
				UpstreamTLS: g.bit(), RateLimit: g.bit(),
			})
		}
		if g.yes() {
			st := &policy.ProxyStatus{Service: g.pick("status", genNames...), Path: g.pick("/nginx-status", "", "/s"),
				Allow: g.strs([]string{"10.1.1.103"}, 2, genAllow...)}
			if g.yes() {
				st.DetailPath, st.DetailService, st.DetailUpstream = g.pick("/health-detailed", genPaths...), g.pick("core", genNames...), g.pick("/health", genPaths...)
			}
			px.Status = st
		}
		p.Proxy = px
	}
	if g.yes() {
		p.Monitor = &policy.Monitor{Redis: g.pick("redis://127.0.0.1:6379/0", "", "rediss://cache.example:6380/15", "redis://[::1]:6379", "redis://h:0/0")}
	}
	for i := range g.n(3) {
		def := scopeSlots[i]
		sc := policy.Scope{Name: g.pick(def.name, append(genNames, "host", "Web", "db")...), Match: g.strs(def.match, 3, genMatch...)}
		for j := range g.n(3) {
			sl := slots[(i+j*3)%len(slots)]
			s := policy.Service{
				Name:     g.pick(sl.name, genNames...),
				Protocol: policy.Protocol(g.pick("tcp", "", "udp")),
				Port:     uint16(g.int(sl.port)),
				Access:   policy.Access(g.pick(sl.access, genAccess...)),
				Allow:    g.strs(sl.allow, 3, genAllow...),
			}
			if a, err := netip.ParseAddr(g.pick(sl.addr, genAddrs...)); err == nil {
				s.Address = a
			}
			s.HostCheck = s.Access == policy.LocalhostOnly && g.byte() < 224
			if g.byte() > 224 {
				s.Description = g.pick("in the container", `x"y`, "a\u2028b")
			}
			sc.Services = append(sc.Services, s)
		}
		p.Scopes = append(p.Scopes, sc)
	}
	if g.byte() < 192 {
		policy.Defaults(p)
	}
	if g.yes() {
		p.Enforce = &policy.Enforce{Mode: policy.EnforceMode(g.pick("deny", "dry-run", "rewrite"))}
		if g.yes() {
			p.Enforce.Guard = []policy.PortRange{{Lo: 1, Hi: 1023}, {Protocol: policy.TCP, Lo: 6000, Hi: 6999}, {Protocol: policy.UDP, Lo: 53, Hi: 53}}
		}
	}
	if g.yes() {
		t := policy.ProbeTarget{Target: g.pick("10.0.0.5", "[fd00::7]", "web1.example.org", "fe80::1%eth0", "db-1")}
		if len(p.Scopes) > 0 && g.yes() {
			t.Scope = p.Scopes[0].Name
		}
		if g.yes() {
			t.Ports = []policy.PortRange{{Lo: 8000, Hi: 8100}, {Protocol: policy.UDP, Lo: 53, Hi: 53}}
		}
		p.Probe = append(p.Probe, t)
	}
	return p
}

// scopeSlots are the usual shapes of the generated scopes: disjoint matchers.
var scopeSlots = []struct {
	name  string
	match []string
}{
	{"web", []string{"web-*", "4f2a9c1be3d5"}},
	{"db", []string{"db[0-9]", "db-*"}},
	{"lab", []string{"lab"}},
}

var genMatch = []string{"web-*", "web-1", "db1", "*", "lab?", "[", "*-prod", `web\*`, "a b", "4f2a9c1be3d5", "[^a-z]*"}

// FuzzRoundTrip holds the property of issue 11: for every policy p with Validate(p) == nil,
// Parse(Marshal(p)) succeeds and equals p in every field with meaning. Policies come from a
// generator over fuzz bytes, hostile strings included; Validate must also leave them as it found
// them.
func FuzzRoundTrip(f *testing.F) {
	for _, seed := range []string{"", "\x01\x01\x01\x01", strings.Repeat("\x02", 64), strings.Repeat("\x01\x03\x05\x07", 40), strings.Repeat("\xff\x10", 50)} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p := genPolicy(data)
		if err := policy.Validate(p); err != nil {
			if diff := cmp.Diff(genPolicy(data), p, meaning); diff != "" {
				t.Fatalf("Validate changed an invalid policy (-before +after):\n%s", diff)
			}
			return
		}
		if diff := cmp.Diff(genPolicy(data), p, meaning); diff != "" {
			t.Fatalf("Validate changed a valid policy (-before +after):\n%s", diff)
		}
		out := policy.Marshal(p)
		back, err := policy.Parse("roundtrip.yaml", out)
		if err != nil {
			t.Fatalf("a valid policy does not survive Marshal: %v\n--- marshalled\n%s", err, out)
		}
		if diff := cmp.Diff(p, back, meaning); diff != "" {
			t.Fatalf("Parse(Marshal(p)) differs from p (-p +back):\n%s\n--- marshalled\n%s", diff, out)
		}
	})
}

// TestGenPolicy keeps FuzzRoundTrip honest: the generator's default, what it makes of an input
// that has run out, is a valid policy with every section, so mutations explore around validity
// rather than far from it.
func TestGenPolicy(t *testing.T) {
	p := genPolicy(nil)
	if err := policy.Validate(p); err != nil {
		t.Fatalf("the generator's default policy is invalid: %v", err)
	}
	if len(p.Services) != len(slots) || len(p.Networks) == 0 || p.Proxy == nil || p.Proxy.Status == nil ||
		p.Proxy.Status.DetailPath == "" || len(p.Proxy.Routes) == 0 || p.Monitor == nil || p.Monitor.Redis == "" ||
		len(p.Scopes) != len(scopeSlots)-1 || len(p.Scopes[0].Services) != 2 {
		t.Errorf("the default policy lacks a section: %+v", p)
	}
}
