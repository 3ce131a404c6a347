package policy_test

import (
	"errors"
	"net/netip"
	"path"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/bindguard/bindguard/policy"
)

// meaning compares policies by every field with meaning: where they came from (Source, Format,
// positions) aside, and nil and empty lists alike.
var meaning = cmp.Options{
	cmpopts.IgnoreFields(policy.Policy{}, "Source", "Format"),
	cmpopts.IgnoreFields(policy.Service{}, "Pos"),
	cmpopts.IgnoreFields(policy.Network{}, "Pos"),
	cmpopts.IgnoreFields(policy.Scope{}, "Pos"),
	cmpopts.IgnoreFields(policy.Proxy{}, "Pos"),
	cmpopts.IgnoreFields(policy.Route{}, "Pos"),
	cmpopts.IgnoreFields(policy.Monitor{}, "Pos"),
	cmpopts.IgnoreFields(policy.Enforce{}, "Pos"),
	cmpopts.IgnoreFields(policy.ProbeTarget{}, "Pos"),
	cmpopts.EquateEmpty(),
	cmpopts.EquateComparable(netip.Prefix{}, netip.Addr{}),
}

// built is a valid policy made in code, with every section, before Defaults.
func built() *policy.Policy {
	lo := netip.MustParseAddr("127.0.0.1")
	any4 := netip.IPv4Unspecified()
	return &policy.Policy{
		Version:        1,
		TrustedProxies: policy.DefaultTrustedProxies(),
		Networks:       []policy.Network{{Name: "lan", Prefixes: []netip.Prefix{netip.MustParsePrefix("10.1.1.0/24")}}},
		Services: []policy.Service{
			{Name: "web", Port: 443, Address: any4, Access: policy.Public},
			{Name: "web80", Port: 80, Address: any4, Access: policy.Public},
			{Name: "status", Port: 8080, Address: any4, Access: policy.Public},
			{Name: "core", Port: 8001, Address: lo, Access: policy.LocalhostOnly, HostCheck: true, Process: "core", Description: "Core API"},
			{Name: "metrics", Protocol: policy.UDP, Port: 9100, Access: policy.LAN, Allow: []string{"lan", "10.2.0.0/16"}},
		},
		Scopes: []policy.Scope{{Name: "web", Match: []string{"web-*", "4f2a9c1be3d5"}, Services: []policy.Service{
			{Name: "core", Port: 8001, Address: lo, Access: policy.LocalhostOnly, HostCheck: true, Process: "core", Description: "its own core"},
			{Name: "metrics", Protocol: policy.UDP, Port: 9100, Access: policy.LAN, Allow: []string{"10.1.1.0/24"}},
		}}},
		Proxy: &policy.Proxy{
			ServerNames: []string{"example.com", "10.1.1.120"}, HTTP: "web80", HTTPS: "web",
			Certificate: "/etc/ssl/a.crt", Key: "/etc/ssl/a.key",
			Routes:  []policy.Route{{Path: "/api/", Service: "core", Methods: []string{"GET", "POST"}, Allow: []string{"lan"}, RateLimit: true}},
			Blocked: []string{"/internal/"}, Health: "/health",
			Status: &policy.ProxyStatus{Service: "status", Allow: []string{"10.1.1.103"},
				DetailPath: "/health-detailed", DetailService: "core", DetailUpstream: "/health"},
		},
		Monitor: &policy.Monitor{Redis: "redis://127.0.0.1:6379/0"},
	}
}

func TestDefaults(t *testing.T) {
	p := built()
	if err := policy.Validate(p); err == nil {
		t.Fatal("a policy without its defaults validates: Validate must not fill them in")
	}
	policy.Defaults(p)
	if err := policy.Validate(p); err != nil {
		t.Fatalf("after Defaults: %v", err)
	}
	px := p.Proxy
	if p.ClientIPHeader != policy.HeaderXForwardedFor || p.Services[0].Protocol != policy.TCP || p.Services[4].Protocol != policy.UDP {
		t.Errorf("header %q, protocols %q %q", p.ClientIPHeader, p.Services[0].Protocol, p.Services[4].Protocol)
	}
	if px.Rate != 10 || px.Burst != 20 || px.Connections != 10 || px.BodySize != "10m" || px.Timeout != 60 || px.Status.Path != "/nginx-status" {
		t.Errorf("proxy defaults: %+v, status path %q", px, px.Status.Path)
	}
	if got := p.Services[4].AllowPrefixes; len(got) != 2 || got[0].String() != "10.1.1.0/24" || got[1].String() != "10.2.0.0/16" {
		t.Errorf("service allow resolved to %v", got)
	}
	if got := px.Routes[0].AllowPrefixes; len(got) != 1 || got[0].String() != "10.1.1.0/24" {
		t.Errorf("route allow resolved to %v", got)
	}
	if got := px.Status.AllowPrefixes; len(got) != 1 || got[0].String() != "10.1.1.103/32" {
		t.Errorf("status allow resolved to %v", got)
	}
	// Zero values that mean something are kept, and Defaults changes nothing twice.
	q := built()
	q.TrustedProxies = nil
	q.Services[3].HostCheck = false
	q.ClientIPHeader, q.Proxy.BodySize = "x-real-ip", "512K"
	policy.Defaults(q)
	if q.TrustedProxies != nil || q.Services[3].HostCheck || q.ClientIPHeader != policy.HeaderXRealIP || q.Proxy.BodySize != "512k" {
		t.Errorf("Defaults changed a meaningful zero or did not canonicalise: %v %v %q %q", q.TrustedProxies, q.Services[3].HostCheck, q.ClientIPHeader, q.Proxy.BodySize)
	}
	again := built()
	again.TrustedProxies = nil
	again.Services[3].HostCheck = false
	again.ClientIPHeader, again.Proxy.BodySize = "x-real-ip", "512K"
	policy.Defaults(again)
	policy.Defaults(again)
	if diff := cmp.Diff(q, again, cmpopts.EquateComparable(netip.Prefix{}, netip.Addr{})); diff != "" {
		t.Errorf("Defaults is not idempotent (-once +twice):\n%s", diff)
	}
}

// TestValidateDoesNotMutate runs Validate over valid and invalid policies and compares each with
// an identical one that Validate never saw.
func TestValidateDoesNotMutate(t *testing.T) {
	withDefaults := func(f func(*policy.Policy)) func() *policy.Policy {
		return func() *policy.Policy {
			p := built()
			policy.Defaults(p)
			f(p)
			return p
		}
	}
	tests := map[string]func() *policy.Policy{
		"valid":                    withDefaults(func(*policy.Policy) {}),
		"no defaults":              built,
		"allow not resolved":       withDefaults(func(p *policy.Policy) { p.Services[4].AllowPrefixes = nil; p.Proxy.Routes[0].AllowPrefixes = nil }),
		"allow changed":            withDefaults(func(p *policy.Policy) { p.Services[4].Allow = []string{"10.9.0.0/16"} }),
		"lan address outside":      withDefaults(func(p *policy.Policy) { p.Services[4].Address = netip.MustParseAddr("192.0.2.1") }),
		"unknown network":          withDefaults(func(p *policy.Policy) { p.Services[4].Allow = []string{"wan"}; p.Proxy.Status.Allow = []string{"wan"} }),
		"hostile proxy":            withDefaults(func(p *policy.Policy) { p.Proxy.ServerNames[0] = "a; b"; p.Proxy.Routes[0].Path = "/x { }" }),
		"duplicates and overlaps":  withDefaults(func(p *policy.Policy) { p.Services = append(p.Services, p.Services[0], p.Services[3]) }),
		"zero limits":              withDefaults(func(p *policy.Policy) { p.Proxy.Rate, p.Proxy.Timeout = 0, 0 }),
		"catalogue":                policy.Builtin,
		"empty":                    func() *policy.Policy { return &policy.Policy{} },
		"public with allow":        withDefaults(func(p *policy.Policy) { p.Services[0].Allow = []string{"lan"} }),
		"proxy_only without proxy": withDefaults(func(p *policy.Policy) { p.TrustedProxies = nil; p.Services[3].Access = policy.ProxyOnly }),
	}
	for name, mk := range tests {
		t.Run(name, func(t *testing.T) {
			p, want := mk(), mk()
			err := policy.Validate(p)
			if name == "valid" || name == "catalogue" {
				if err != nil {
					t.Fatalf("want valid: %v", err)
				}
			} else if err == nil {
				t.Fatal("want invalid")
			}
			if diff := cmp.Diff(want, p, cmpopts.EquateComparable(netip.Prefix{}, netip.Addr{})); diff != "" {
				t.Errorf("Validate changed its argument (-before +after):\n%s", diff)
			}
		})
	}
}

func TestValidateBuiltProblems(t *testing.T) {
	tests := []struct {
		name string
		edit func(*policy.Policy)
		want []string // problems, as PATH: MESSAGE prefixes, in order
	}{
		{"zero limits", func(p *policy.Policy) { p.Proxy.Rate, p.Proxy.Burst, p.Proxy.Connections, p.Proxy.Timeout = 0, 0, 0, 0 }, []string{
			"proxy.rate: 0 is out of range 1-65535", "proxy.burst: 0 is out of range 1-65535",
			"proxy.connections: 0 is out of range 1-65535", "proxy.timeout: 0 is out of range 1-65535"}},
		{"timeout too long", func(p *policy.Policy) { p.Proxy.Timeout = 7200 }, []string{"proxy.timeout: 7200 is out of range 1-3600"}},
		{"upper-case size", func(p *policy.Policy) { p.Proxy.BodySize = "10M" }, []string{`proxy.body_size: "10M" is not a size`}},
		{"missing required", func(p *policy.Policy) {
			p.Proxy.ServerNames, p.Proxy.HTTPS, p.Proxy.Key = nil, "", ""
			p.Proxy.Routes[0].Path = ""
			p.Proxy.Status.Allow, p.Proxy.Status.AllowPrefixes, p.Proxy.Status.DetailUpstream = nil, nil, ""
		}, []string{"proxy.server_names: missing", "proxy.https: missing", "proxy.key: missing", "proxy.routes[0].path: missing",
			"proxy.status.allow: missing", "proxy.status.detail.upstream_path: missing"}},
		{"blocked root", func(p *policy.Policy) { p.Proxy.Blocked = []string{"/"} }, []string{"proxy.blocked[0]: / would block the whole site"}},
		{"references", func(p *policy.Policy) { p.Proxy.Routes[0].Service = "nope"; p.Proxy.Status.Service = "web" }, []string{
			`proxy.routes[0].service: no service "nope" in this policy`,
			"proxy.status.service: the status listener needs a service of its own, not the site's web"}},
		{"redis", func(p *policy.Policy) { p.Monitor.Redis = "http://x" }, []string{"monitor.redis: want redis://HOST:PORT/DB"}},
		{"stale allow", func(p *policy.Policy) { p.Services[4].Allow = []string{"lan"} }, []string{"services[4].allow: AllowPrefixes does not match the allow list"}},
		{"stale route allow", func(p *policy.Policy) { p.Networks[0].Prefixes[0] = netip.MustParsePrefix("10.7.0.0/16") }, []string{
			"services[4].allow: AllowPrefixes does not match", "proxy.routes[0].allow: AllowPrefixes does not match"}},
		{"prefixes on a public service", func(p *policy.Policy) { p.Services[0].AllowPrefixes = p.Services[4].AllowPrefixes }, []string{
			"services[0].allow: AllowPrefixes does not match"}},
		{"version", func(p *policy.Policy) { p.Version = 0 }, []string{"version: unsupported version 0"}},
		{"not utf-8", func(p *policy.Policy) { p.Services[3].Description = "caf\xe9" }, []string{"services[3].description: is not valid UTF-8"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := built()
			policy.Defaults(p)
			p.Networks[0].Prefixes = append([]netip.Prefix(nil), p.Networks[0].Prefixes...)
			tt.edit(p)
			var inv *policy.InvalidError
			if err := policy.Validate(p); !errors.As(err, &inv) {
				t.Fatalf("Validate: %v; want problems %q", err, tt.want)
			}
			var got []string
			for _, pr := range inv.Problems {
				got = append(got, pr.Path+": "+pr.Msg)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d problems, want %d:\n%s", len(got), len(tt.want), strings.Join(got, "\n"))
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(got[i], w) {
					t.Errorf("problem %d = %q, want prefix %q", i, got[i], w)
				}
			}
		})
	}
}

// TestHostileValues puts values that would change a generated file (an nginx directive ended or
// a block opened, a comment, a variable, a line break in a systemd unit) into every field that
// reaches one, in a policy built in code: Validate must refuse each at its field path, and the
// file Marshal writes must not load either.
func TestHostileValues(t *testing.T) {
	hostile := []string{
		"example.com; include /etc/passwd", "/x { return 200; }", "a\nb", "/a\rb", "a\x00b", "$var", "/$host",
		"#", "/a#b", `"`, `/a"b`, "'", "/a'b", "a\u2028b", "/a\u2029b", "a\u202eb", "a b", "",
	}
	type field struct {
		path string
		set  func(p *policy.Policy, v string)
		// free is free text (a description): only unsafe characters are refused.
		free bool
	}
	// accepts says which of the values a field takes: a scope's match pattern may hold "$" or "#".
	accepts := map[string]func(v string) bool{
		"scopes[0].match[1]": func(v string) bool {
			_, err := path.Match(v, "")
			return err == nil && v != "" && !strings.ContainsFunc(v, func(r rune) bool { return policy.UnsafeRune(r) || unicode.IsSpace(r) })
		},
	}
	fields := []field{
		{"proxy.server_names[0]", func(p *policy.Policy, v string) { p.Proxy.ServerNames[0] = v }, false},
		{"proxy.http", func(p *policy.Policy, v string) { p.Proxy.HTTP = v }, false},
		{"proxy.https", func(p *policy.Policy, v string) { p.Proxy.HTTPS = v }, false},
		{"proxy.certificate", func(p *policy.Policy, v string) { p.Proxy.Certificate = v }, false},
		{"proxy.key", func(p *policy.Policy, v string) { p.Proxy.Key = v }, false},
		{"proxy.routes[0].path", func(p *policy.Policy, v string) { p.Proxy.Routes[0].Path = v }, false},
		{"proxy.routes[0].service", func(p *policy.Policy, v string) { p.Proxy.Routes[0].Service = v }, false},
		{"proxy.routes[0].methods[0]", func(p *policy.Policy, v string) { p.Proxy.Routes[0].Methods[0] = v }, false},
		{"proxy.routes[0].allow[0]", func(p *policy.Policy, v string) { p.Proxy.Routes[0].Allow[0] = v }, false},
		{"proxy.blocked[0]", func(p *policy.Policy, v string) { p.Proxy.Blocked[0] = v }, false},
		{"proxy.health", func(p *policy.Policy, v string) { p.Proxy.Health = v }, false},
		{"proxy.body_size", func(p *policy.Policy, v string) { p.Proxy.BodySize = v }, false},
		{"proxy.status.service", func(p *policy.Policy, v string) { p.Proxy.Status.Service = v }, false},
		{"proxy.status.path", func(p *policy.Policy, v string) { p.Proxy.Status.Path = v }, false},
		{"proxy.status.allow[0]", func(p *policy.Policy, v string) { p.Proxy.Status.Allow[0] = v }, false},
		{"proxy.status.detail.path", func(p *policy.Policy, v string) { p.Proxy.Status.DetailPath = v }, false},
		{"proxy.status.detail.service", func(p *policy.Policy, v string) { p.Proxy.Status.DetailService = v }, false},
		{"proxy.status.detail.upstream_path", func(p *policy.Policy, v string) { p.Proxy.Status.DetailUpstream = v }, false},
		{"services[3].name", func(p *policy.Policy, v string) { p.Services[3].Name = v }, false},
		{"services[4].allow[0]", func(p *policy.Policy, v string) { p.Services[4].Allow[0] = v }, false},
		{"services[3].process", func(p *policy.Policy, v string) { p.Services[3].Process = v }, true},
		{"services[3].description", func(p *policy.Policy, v string) { p.Services[3].Description = v }, true},
		{"client_ip_header", func(p *policy.Policy, v string) { p.ClientIPHeader = v }, false},
		{"monitor.redis", func(p *policy.Policy, v string) { p.Monitor.Redis = "redis://h" + v + ":6379/0" }, false},
		{"scopes[0].name", func(p *policy.Policy, v string) { p.Scopes[0].Name = v }, false},
		{"scopes[0].match[1]", func(p *policy.Policy, v string) { p.Scopes[0].Match[1] = v }, false},
		{"scopes[0].services[0].name", func(p *policy.Policy, v string) { p.Scopes[0].Services[0].Name = v }, false},
		{"scopes[0].services[1].allow[0]", func(p *policy.Policy, v string) { p.Scopes[0].Services[1].Allow[0] = v }, false},
		{"scopes[0].services[0].process", func(p *policy.Policy, v string) { p.Scopes[0].Services[0].Process = v }, true},
		{"scopes[0].services[0].description", func(p *policy.Policy, v string) { p.Scopes[0].Services[0].Description = v }, true},
	}
	for _, f := range fields {
		for _, v := range hostile {
			if f.free && !strings.ContainsFunc(v, policy.UnsafeRune) || accepts[f.path] != nil && accepts[f.path](v) {
				continue
			}
			if v == "" && (f.free || strings.HasSuffix(f.path, "http") || f.path == "proxy.health" || f.path == "monitor.redis") {
				continue // optional: empty means none
			}
			t.Run(f.path+"="+strconv.Quote(v), func(t *testing.T) {
				p := built()
				policy.Defaults(p)
				f.set(p, v)
				err := policy.Validate(p)
				var inv *policy.InvalidError
				if !errors.As(err, &inv) {
					t.Fatalf("Validate accepted %q in %s (err %v)", v, f.path, err)
				}
				found := false
				for _, pr := range inv.Problems {
					found = found || pr.Path == f.path
				}
				if !found {
					t.Errorf("no problem names %s:\n%v", f.path, err)
				}
				if _, err := policy.Parse("hostile.yaml", policy.Marshal(p)); err == nil {
					t.Errorf("the marshalled policy loads:\n%s", policy.Marshal(p))
				}
			})
		}
	}
	// The network name is a path key of its own.
	p := built()
	p.Networks[0].Name = "lan; deny all"
	policy.Defaults(p)
	if err := policy.Validate(p); err == nil || !strings.Contains(err.Error(), `networks."lan; deny all": network name`) {
		t.Errorf("hostile network name: %v", err)
	}
}

func TestBuiltPolicyRoundTrips(t *testing.T) {
	p := built()
	policy.Defaults(p)
	if err := policy.Validate(p); err != nil {
		t.Fatal(err)
	}
	back, err := policy.Parse("built.yaml", policy.Marshal(p))
	if err != nil {
		t.Fatalf("%v\n%s", err, policy.Marshal(p))
	}
	if diff := cmp.Diff(p, back, meaning); diff != "" {
		t.Errorf("Parse(Marshal(p)) (-p +back):\n%s", diff)
	}
}

func TestUnsafeRune(t *testing.T) {
	for _, r := range []rune{0, '\t', '\n', '\r', 0x1b, 0x7f, 0x85, 0x9f, 0x202a, 0x202e, 0x2066, 0x2069, 0x2028, 0x2029} {
		if !policy.UnsafeRune(r) {
			t.Errorf("UnsafeRune(%U) = false", r)
		}
	}
	for _, r := range []rune{' ', 'a', '~', 0xa0, 0xe9, 0x2027, 0x202f, 0x2065, 0x206a, 0xfeff, 0x1f600} {
		if policy.UnsafeRune(r) {
			t.Errorf("UnsafeRune(%U) = true", r)
		}
	}
}
