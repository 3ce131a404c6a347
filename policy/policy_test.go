package policy_test

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/bindguard/bindguard/internal/golden"
	"github.com/bindguard/bindguard/policy"
)

var update = flag.Bool("update", false, "rewrite golden files")

// row is the binding matrix view of a service, what the tests compare.
type row struct {
	Name     string
	Protocol policy.Protocol
	Address  string
	Port     uint16
	V6Only   bool
	Access   policy.Access
	Allow    string
}

func matrix(p *policy.Policy) []row {
	rows := make([]row, len(p.Services))
	for i, s := range p.Services {
		addr := ""
		if s.Address.IsValid() {
			addr = s.Address.String()
		}
		allow := make([]string, len(s.AllowPrefixes))
		for j, a := range s.AllowPrefixes {
			allow[j] = a.String()
		}
		for _, z := range s.AllowZoned {
			allow = append(allow, z.String())
		}
		rows[i] = row{s.Name, s.Protocol, addr, s.Port, s.V6Only, s.Access, strings.Join(allow, ",")}
	}
	return rows
}

func TestSeedLoadsToItsMatrix(t *testing.T) {
	p, err := policy.Load("../testdata/seed/service-bindings.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := []row{
		{"nginx_proxy_http", "tcp", "0.0.0.0", 80, false, policy.Public, ""},
		{"nginx_proxy_https", "tcp", "0.0.0.0", 443, false, policy.Public, ""},
		{"frontend_service", "tcp", "127.0.0.1", 8443, false, policy.ProxyOnly, ""},
		{"intelligent_core_service", "tcp", "127.0.0.1", 8001, false, policy.LocalhostOnly, ""},
		{"broker_gateway_service", "tcp", "127.0.0.1", 8002, false, policy.LocalhostOnly, ""},
		{"event_bus_service", "tcp", "127.0.0.1", 8003, false, policy.LocalhostOnly, ""},
		{"monitoring_service", "tcp", "127.0.0.1", 8004, false, policy.LocalhostOnly, ""},
		{"postgresql", "tcp", "127.0.0.1", 5432, false, policy.LocalhostOnly, ""},
		{"redis", "tcp", "127.0.0.1", 6379, false, policy.LocalhostOnly, ""},
		{"zabbix_agent", "tcp", "0.0.0.0", 10050, false, policy.Restricted, "10.1.1.103/32"},
	}
	if diff := cmp.Diff(want, matrix(p)); diff != "" {
		t.Errorf("seed matrix (-want +got):\n%s", diff)
	}
	if p.Format != policy.FormatSeed || p.Version != 1 {
		t.Errorf("format %q version %d, want seed 1", p.Format, p.Version)
	}
	if diff := cmp.Diff(policy.DefaultTrustedProxies(), p.TrustedProxies, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("trusted proxies (-want +got):\n%s", diff)
	}
	core, _ := p.Lookup("intelligent_core_service")
	if !core.HostCheck {
		t.Error("localhost_only service without host_check: want the default true")
	}
	if s, _ := p.Lookup("zabbix_agent"); s.Description != "Zabbix-Agent für Remote-Monitoring" {
		t.Errorf("description %q lost its UTF-8", s.Description)
	}
}

// TestInvalidFiles checks every hostile file in testdata/policy/invalid against its golden list
// of problems. Each must be refused, each problem must name a line, and every problem except
// those about the file as a whole must name a field.
func TestInvalidFiles(t *testing.T) {
	files, err := filepath.Glob("../testdata/policy/invalid/*.yaml")
	if err != nil || len(files) < 30 {
		t.Fatalf("want at least 30 hostile files, found %d (%v)", len(files), err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			p, err := policy.Load(f)
			if err == nil {
				t.Fatalf("loaded %d services; want the file refused", len(p.Services))
			}
			var inv *policy.InvalidError
			if !errors.As(err, &inv) {
				t.Fatalf("error %v is not an *InvalidError", err)
			}
			for _, pr := range inv.Problems {
				if pr.Line == 0 || pr.Column == 0 {
					t.Errorf("problem without a position: %v", pr)
				}
				if pr.File != f {
					t.Errorf("problem names file %q, want %q", pr.File, f)
				}
			}
			var first *policy.Problem
			if !errors.As(err, &first) || first != inv.Problems[0] {
				t.Error("errors.As does not reach the first *Problem")
			}
			got := strings.ReplaceAll(err.Error(), f, "FILE") + "\n"
			golden.Check(t, strings.TrimSuffix(f, ".yaml")+".err", got, *update)
		})
	}
}

func TestValidFilesRoundTrip(t *testing.T) {
	files, _ := filepath.Glob("../testdata/policy/valid/*.yaml")
	files = append(files, "../testdata/seed/service-bindings.yaml", "../testdata/seed/service-bindings-proxy.yaml")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			p, err := policy.Load(f)
			if err != nil {
				t.Fatal(err)
			}
			out := policy.Marshal(p)
			back, err := policy.Parse("converted", out)
			if err != nil {
				t.Fatalf("converted policy does not load: %v\n%s", err, out)
			}
			if diff := cmp.Diff(matrix(p), matrix(back)); diff != "" {
				t.Errorf("matrix changed by Marshal (-orig +back):\n%s", diff)
			}
			if back.ClientIPHeader != p.ClientIPHeader || len(back.TrustedProxies) != len(p.TrustedProxies) {
				t.Errorf("header/proxies changed: %q %v -> %q %v", p.ClientIPHeader, p.TrustedProxies, back.ClientIPHeader, back.TrustedProxies)
			}
			if diff := cmp.Diff(p.TrustedZoned, back.TrustedZoned, cmpopts.EquateComparable(netip.Prefix{})); diff != "" {
				t.Errorf("zoned trusted proxies changed by Marshal (-orig +back):\n%s", diff)
			}
			ignorePos := cmpopts.IgnoreFields(policy.Proxy{}, "Pos")
			if diff := cmp.Diff(p.Proxy, back.Proxy, ignorePos, cmpopts.IgnoreFields(policy.Route{}, "Pos"), cmpopts.EquateComparable(netip.Prefix{})); diff != "" {
				t.Errorf("proxy changed by Marshal (-orig +back):\n%s", diff)
			}
			if diff := cmp.Diff(p.Monitor, back.Monitor, cmpopts.IgnoreFields(policy.Monitor{}, "Pos")); diff != "" {
				t.Errorf("monitor changed by Marshal (-orig +back):\n%s", diff)
			}
			for i := range p.Services {
				a, b := p.Services[i], back.Services[i]
				if a.Description != b.Description || a.Process != b.Process || a.HostCheck != b.HostCheck || !slicesEqual(a.Allow, b.Allow) {
					t.Errorf("service %s changed: %+v -> %+v", a.Name, a, b)
				}
			}
		})
	}
}

func slicesEqual(a, b []string) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

func TestFullPolicy(t *testing.T) {
	p, err := policy.Load("../testdata/policy/valid/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if p.ClientIPHeader != policy.HeaderXForwardedFor {
		t.Errorf("header %q, want canonical X-Forwarded-For", p.ClientIPHeader)
	}
	z, _ := p.Lookup("zabbix-agent")
	want := []string{"10.1.1.103/32", "192.0.2.7/32", "2001:db8::/32"}
	var got []string
	for _, a := range z.AllowPrefixes {
		got = append(got, a.String())
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("allow resolution (-want +got):\n%s", diff)
	}
	https, _ := p.Lookup("nginx-https")
	if !https.IsDualStack() {
		t.Error(`"::" without v6only: want dual-stack`)
	}
	syslog, _ := p.Lookup("syslog")
	if syslog.IsDualStack() || !syslog.V6Only {
		t.Error(`"::" with v6only: want v6-only`)
	}
	core, _ := p.Lookup("core")
	if core.HostCheck {
		t.Error("host_check: false was not kept")
	}
	if s, _ := p.Lookup("nginx-https"); s.Process != "nginx" || s.Pos.Line != 9 {
		t.Errorf("process %q at line %d, want nginx at 9", s.Process, s.Pos.Line)
	}
}

func TestParseProblems(t *testing.T) {
	svc := func(fields string) string {
		return "version: 1\nservices:\n  - name: a\n" + fields
	}
	tests := []struct {
		name, src string
		want      []string // substrings, one a problem, in order
	}{
		{"udp and tcp share a port", svc("    port: 53\n    protocol: udp\n    address: 127.0.0.53\n    access: localhost_only\n  - name: b\n    port: 53\n    address: 127.0.0.53\n    access: localhost_only\n"), nil},
		{"two addresses on one port", svc("    port: 80\n    address: 127.0.0.1\n    access: localhost_only\n  - name: b\n    port: 80\n    address: 127.0.0.2\n    access: localhost_only\n"), nil},
		{"v6only wildcard beside 0.0.0.0", svc("    port: 80\n    address: '::'\n    v6only: true\n    access: public\n  - name: b\n    port: 80\n    address: 0.0.0.0\n    access: public\n"), nil},
		{"dual-stack after a v4 address", svc("    port: 80\n    address: 127.0.0.1\n    access: localhost_only\n  - name: b\n    port: 80\n    address: '::'\n    access: public\n"), []string{`9:14: services[1].address: tcp port 80 overlaps service "a" (line 3): :: without v6only is dual-stack`}},
		{"v6 address under v6 wildcard", svc("    port: 80\n    address: '::'\n    v6only: true\n    access: public\n  - name: b\n    port: 80\n    address: ::1\n    access: localhost_only\n"), []string{`services[1].address: tcp port 80 overlaps service "a"`}},
		{"v4 address under dual-stack", svc("    port: 80\n    address: '::'\n    access: public\n  - name: b\n    port: 80\n    address: 127.0.0.1\n    access: localhost_only\n"), []string{`overlaps service "a" (line 3): its wildcard includes 127.0.0.1`}},
		{"mapped allow entry", svc("    port: 80\n    access: restricted\n    allow: ['::ffff:10.0.0.1']\n"), []string{`services[0].allow[0]: "::ffff:10.0.0.1" is an IPv4-mapped IPv6 address; write it as 10.0.0.1`}},
		{"brackets", svc("    port: 80\n    address: '[::1]'\n    access: localhost_only\n"), []string{`write IPv6 addresses without brackets`}},
		{"address with port", svc("    port: 80\n    address: 127.0.0.1:80\n    access: localhost_only\n"), []string{`"127.0.0.1:80" has a port`}},
		{"ipv6 covered by halves", svc("    port: 80\n    access: restricted\n    allow: ['::/1', '8000::/1']\n"), []string{`allows every IPv6 address`}},
		{"almost everything is fine", svc("    port: 80\n    access: restricted\n    allow: [0.0.0.0/1, 128.0.0.0/2, 192.0.0.0/3, 224.0.0.0/4, 240.0.0.0/5]\n"), nil},
		{"null name", svc("    port: 80\n    access: public\n  - name: ~\n    port: 81\n    access: public\n"), []string{`services[1].name: must be a string, got nothing (null)`}},
		{"tabs", "version: 1\nservices:\n\t- name: a\n", []string{"YAML syntax"}},
		{"bom is accepted", "\ufeffversion: 1\nservices: []\n", nil},
		{"crlf is accepted", "version: 1\r\nservices:\r\n  - name: a\r\n    port: 80\r\n    access: public\r\n", nil},
		{"services null", "version: 1\nservices:\n", []string{"services: must be a list, got nothing (null)"}},
		{"seed bind and ports", "g:\n  web:\n    bind_address: 0.0.0.0:80\n    http_port: 0.0.0.0:80\n    access: public\n", []string{"g.web.bind_address: cannot be combined with http_port/https_port"}},
		{"seed ipv6 bind", "g:\n  web:\n    bind_address: '[::1]:80'\n    access: localhost_only\n  x:\n    bind_address: '::1:81'\n    access: localhost_only\n", []string{`g.x.bind_address: "::1:81": write an IPv6 address with its port as "[ADDRESS]:PORT"`}},
		{"seed name invalid", "g:\n  Web Server:\n    bind_address: 127.0.0.1:80\n    access: localhost_only\n", []string{`"Web Server" is not a valid service name`}},
		{"seed group not a mapping", "a:\n  b: {bind_address: 127.0.0.1:80, access: localhost_only}\nc: {}\n", nil},
		{"unknown top-level scalar", "hello: world\n", []string{`1:1: hello: unknown field "hello"`, "version: missing", "services: missing"}},
		{"long description", svc("    port: 80\n    access: public\n    description: " + strings.Repeat("x", 1025) + "\n"), []string{"services[0].description: is 1025 bytes long; the limit is 1024"}},
		{"empty process", svc("    port: 80\n    access: public\n    process: ''\n"), []string{"services[0].process: is empty"}},
		{"allow entry twice", svc("    port: 80\n    access: restricted\n    allow: [10.0.0.1, 10.0.0.2, 10.0.0.1]\n"), []string{`services[0].allow[2]: "10.0.0.1" is listed twice (first as allow[0])`}},
		{"huge key is clipped", "version: 1\nservices: []\n" + strings.Repeat("k", 100000) + ": 1\n", []string{"…"}},
		{"network named like a keyword", "version: 1\nnetworks:\n  'null': [10.0.0.0/8]\nservices:\n  - {name: a, port: 80, access: lan, allow: ['null']}\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := policy.Parse("p.yaml", []byte(tt.src))
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected problems:\n%v", err)
				}
				if p == nil {
					t.Fatal("nil policy without error")
				}
				return
			}
			if err == nil {
				t.Fatalf("loaded; want problems %q", tt.want)
			}
			var inv *policy.InvalidError
			if !errors.As(err, &inv) {
				t.Fatalf("%T %v", err, err)
			}
			if len(inv.Problems) != len(tt.want) {
				t.Fatalf("got %d problems, want %d:\n%v", len(inv.Problems), len(tt.want), err)
			}
			for i, w := range tt.want {
				if !strings.Contains(inv.Problems[i].Error(), w) {
					t.Errorf("problem %d = %q, want it to contain %q", i, inv.Problems[i].Error(), w)
				}
			}
		})
	}
}

func TestValidateBuiltPolicy(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	good := &policy.Policy{
		Version: 1, ClientIPHeader: policy.HeaderXForwardedFor, TrustedProxies: policy.DefaultTrustedProxies(),
		Networks: []policy.Network{{Name: "lan", Prefixes: []netip.Prefix{netip.MustParsePrefix("10.1.1.0/24")}}},
		Services: []policy.Service{
			{Name: "core", Protocol: policy.TCP, Port: 8001, Address: lo, Access: policy.LocalhostOnly, HostCheck: true},
			{Name: "metrics", Protocol: policy.TCP, Port: 9100, Access: policy.LAN, Allow: []string{"lan"}},
		},
	}
	policy.Defaults(good)
	if err := policy.Validate(good); err != nil {
		t.Fatal(err)
	}
	if got := good.Services[1].AllowPrefixes; len(got) != 1 || got[0].String() != "10.1.1.0/24" {
		t.Errorf("Defaults did not resolve the allow list: %v", got)
	}
	bad := &policy.Policy{
		Version: 2, ClientIPHeader: "X-Client",
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.1.1.5/24")},
		Services: []policy.Service{
			{Name: "Core", Protocol: "sctp", Port: 0, Address: netip.MustParseAddr("fe80::1%eth0"), Access: policy.LocalhostOnly},
			{Name: "web", Protocol: policy.TCP, Port: 80, Access: policy.Public, HostCheck: true},
		},
	}
	err := policy.Validate(bad)
	want := []string{
		"policy: version: unsupported version 2",
		`policy: client_ip_header: "X-Client" is not supported`,
		"policy: trusted_proxies[0]: 10.1.1.5/24 has host bits set",
		`policy: services[0].name: "Core" is not a valid service name`,
		`policy: services[0].protocol: "sctp" must be tcp or udp`,
		"policy: services[0].port: 0 is out of range",
		"policy: services[0].address: fe80::1%eth0 has an IPv6 zone",
		"policy: services[1].host_check: applies only to localhost_only services",
	}
	var inv *policy.InvalidError
	if !errors.As(err, &inv) {
		t.Fatalf("Validate: %v", err)
	}
	if len(inv.Problems) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(inv.Problems), len(want), err)
	}
	for i, w := range want {
		if !strings.HasPrefix(inv.Problems[i].Error(), w) {
			t.Errorf("problem %d = %q, want prefix %q", i, inv.Problems[i].Error(), w)
		}
	}
}

func TestPermitsBind(t *testing.T) {
	lan := policy.Service{Access: policy.LAN, AllowPrefixes: []netip.Prefix{netip.MustParsePrefix("10.1.1.0/24")}}
	tests := []struct {
		s    policy.Service
		addr string
		want bool
	}{
		{policy.Service{Access: policy.LocalhostOnly}, "127.0.0.1", true},
		{policy.Service{Access: policy.LocalhostOnly}, "127.0.0.2", true},
		{policy.Service{Access: policy.LocalhostOnly}, "::1", true},
		{policy.Service{Access: policy.LocalhostOnly}, "::ffff:127.0.0.1", true},
		{policy.Service{Access: policy.LocalhostOnly}, "0.0.0.0", false},
		{policy.Service{Access: policy.LocalhostOnly}, "::", false},
		{policy.Service{Access: policy.ProxyOnly}, "10.1.1.120", false},
		{lan, "10.1.1.120", true},
		{lan, "127.0.0.1", true},
		{lan, "10.1.2.1", false},
		{lan, "0.0.0.0", false},
		{policy.Service{Access: policy.Restricted}, "0.0.0.0", true},
		{policy.Service{Access: policy.Public}, "::", true},
		{policy.Service{Access: "bogus"}, "127.0.0.1", false},
	}
	for _, tt := range tests {
		if got := tt.s.PermitsBind(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("%s.PermitsBind(%s) = %v, want %v", tt.s.Access, tt.addr, got, tt.want)
		}
	}
}

func TestBuiltinCatalogue(t *testing.T) {
	p := policy.Builtin()
	if p.Format != policy.FormatBuiltin || p.Source != "builtin" {
		t.Errorf("format %q source %q", p.Format, p.Source)
	}
	want := map[string]struct {
		proto  policy.Protocol
		port   uint16
		access policy.Access
	}{
		"ssh": {"tcp", 22, policy.Public}, "http": {"tcp", 80, policy.Public}, "https": {"tcp", 443, policy.Public},
		"dns": {"udp", 53, policy.LAN}, "smtp": {"tcp", 25, policy.Public},
		"postgresql": {"tcp", 5432, policy.LocalhostOnly}, "mysql": {"tcp", 3306, policy.LocalhostOnly},
		"redis": {"tcp", 6379, policy.LocalhostOnly}, "memcached": {"tcp", 11211, policy.LocalhostOnly},
		"mongodb": {"tcp", 27017, policy.LocalhostOnly}, "elasticsearch": {"tcp", 9200, policy.LocalhostOnly},
		"elasticsearch-transport": {"tcp", 9300, policy.LocalhostOnly}, "etcd": {"tcp", 2379, policy.LocalhostOnly},
		"etcd-peer": {"tcp", 2380, policy.LocalhostOnly}, "docker": {"tcp", 2375, policy.LocalhostOnly},
		"docker-tls": {"tcp", 2376, policy.LocalhostOnly}, "kubelet": {"tcp", 10250, policy.LocalhostOnly},
		"prometheus": {"tcp", 9090, policy.LAN}, "node-exporter": {"tcp", 9100, policy.LAN},
		"grafana": {"tcp", 3000, policy.LAN}, "rabbitmq": {"tcp", 5672, policy.LocalhostOnly},
		"rabbitmq-management": {"tcp", 15672, policy.LocalhostOnly}, "zabbix-agent": {"tcp", 10050, policy.LAN},
		"zabbix-server": {"tcp", 10051, policy.LAN}, "consul": {"tcp", 8500, policy.LocalhostOnly},
		"vault": {"tcp", 8200, policy.LocalhostOnly}, "minio": {"tcp", 9000, policy.LocalhostOnly},
	}
	for name, w := range want {
		s, ok := p.Lookup(name)
		if !ok {
			t.Errorf("catalogue lacks %s", name)
			continue
		}
		if s.Protocol != w.proto || s.Port != w.port || s.Access != w.access {
			t.Errorf("%s = %s/%d %s, want %s/%d %s", name, s.Protocol, s.Port, s.Access, w.proto, w.port, w.access)
		}
		if s.Address.IsValid() {
			t.Errorf("%s has a fixed address %s; catalogue entries accept any their class allows", name, s.Address)
		}
	}
	for _, e := range policy.Catalogue() {
		if e.Category.Sensitive() && e.Access != policy.LocalhostOnly {
			t.Errorf("%s is %s but %s: databases, caches and control APIs are localhost_only", e.Name, e.Category, e.Access)
		}
	}
	e, ok := policy.LookupCatalogue(policy.TCP, 6379)
	if !ok || e.Name != "redis" || e.Category != policy.CategoryCache || !e.Category.Sensitive() {
		t.Errorf("LookupCatalogue(tcp, 6379) = %+v, %v", e, ok)
	}
	if _, ok := policy.LookupCatalogue(policy.UDP, 6379); ok {
		t.Error("LookupCatalogue(udp, 6379) found an entry; protocols must not collide")
	}
	p.Services[0].Name = "mutated"
	dns, _ := p.Lookup("dns") // a copy of the service, sharing p's slices
	dns.AllowPrefixes[0] = netip.MustParsePrefix("192.0.2.0/24")
	q := policy.Builtin()
	if q.Services[0].Name == "mutated" {
		t.Error("Builtin shares state between calls")
	}
	if d, _ := q.Lookup("dns"); d.AllowPrefixes[0].String() != "10.0.0.0/8" {
		t.Errorf("a caller's change to an allow list reached the catalogue: %v", d.AllowPrefixes[0])
	}
	if e, _ := policy.LookupCatalogue(policy.UDP, 53); e.AllowPrefixes[0].String() != "10.0.0.0/8" {
		t.Errorf("LookupCatalogue sees a caller's change: %v", e.AllowPrefixes[0])
	}
}

func TestLimits(t *testing.T) {
	big := make([]byte, policy.MaxFileSize+1)
	for i := range big {
		big[i] = '#'
	}
	_, err := policy.Parse("big.yaml", big)
	if err == nil || !strings.Contains(err.Error(), "the limit is") {
		t.Errorf("oversized file: %v", err)
	}
	deep := "version: 1\nservices: " + strings.Repeat("- ", 100) + "x\n"
	if _, err := policy.Parse("deep.yaml", []byte(deep)); err == nil || !strings.Contains(err.Error(), "MaxNesting") {
		t.Errorf("deep block nesting: %v", err)
	}
	var b strings.Builder
	b.WriteString("version: 1\nservices:\n")
	for i := 0; i < policy.MaxProblems+50; i++ {
		fmt.Fprintf(&b, "  - {name: s%d, port: 0x%x, access: public}\n", i, i+1)
	}
	_, err = policy.Parse("many.yaml", []byte(b.String()))
	var inv *policy.InvalidError
	if !errors.As(err, &inv) || len(inv.Problems) != policy.MaxProblems || !inv.Truncated {
		t.Fatalf("want %d problems and Truncated, got %v", policy.MaxProblems, err)
	}
	if !strings.HasSuffix(err.Error(), fmt.Sprintf("only the first %d are listed", policy.MaxProblems)) {
		t.Error("truncation not said in the message")
	}
}

// TestAllowExpansionIsBounded: a big network named by many services would expand a small file
// into billions of prefixes; the loader refuses past MaxAllowPrefixes instead.
func TestAllowExpansionIsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("version: 1\nnetworks:\n  big:\n")
	for i := 0; i < 4096; i++ {
		fmt.Fprintf(&b, "    - 10.%d.%d.0/24\n", i/256, i%256)
	}
	b.WriteString("services:\n")
	services := policy.MaxAllowPrefixes/4096 + 1
	for i := 0; i < services; i++ {
		fmt.Fprintf(&b, "  - {name: s%d, port: %d, access: restricted, allow: [big]}\n", i, i+1)
	}
	_, err := policy.Parse("expand.yaml", []byte(b.String()))
	var inv *policy.InvalidError
	if !errors.As(err, &inv) || len(inv.Problems) != 1 || !strings.Contains(inv.Problems[0].Error(), fmt.Sprintf("services[%d].allow[0]: allow lists expand to more than", services-1)) {
		t.Fatalf("want one expansion problem at the last service, got %v", err)
	}
	// One service fewer fits, and shares the network's prefixes rather than copying them.
	src := b.String()
	src = src[:strings.LastIndex(src, "  - {name:")]
	p, err := policy.Parse("fits.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if got := len(p.Services[0].AllowPrefixes); got != 4096 {
		t.Errorf("allow resolved to %d prefixes, want 4096", got)
	}
}

// bigPolicy makes a policy with n services and an allow list of m prefixes.
func bigPolicy(n, m int) []byte {
	var b strings.Builder
	b.WriteString("version: 1\nservices:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  - name: svc%d\n    protocol: %s\n    port: %d\n    address: 127.%d.%d.1\n    access: localhost_only\n    description: \"service %d\"\n",
			i, []string{"tcp", "udp"}[i%2], i%60000+1, i/256%256, i%256, i)
	}
	if m > 0 {
		b.WriteString("  - name: wide\n    port: 65535\n    address: 0.0.0.0\n    access: restricted\n    allow:\n")
		for i := 0; i < m; i++ {
			fmt.Fprintf(&b, "      - %d.%d.%d.0/24\n", 10+i/65536, i/256%256, i%256)
		}
	}
	return []byte(b.String())
}

// TestLargePolicies loads the sizes the limits promise. How long they take is measured by
// BenchmarkLoad, not asserted here.
func TestLargePolicies(t *testing.T) {
	if testing.Short() {
		t.Skip("large policies skipped in -short mode")
	}
	p, err := policy.Parse("20k.yaml", bigPolicy(20000, 0))
	if err != nil || len(p.Services) != 20000 {
		t.Fatalf("20,000 services: %v", err)
	}
	p, err = policy.Parse("100k.yaml", bigPolicy(0, 100000))
	if err != nil {
		t.Fatalf("100,000 allow entries: %v", err)
	}
	if got := len(p.Services[0].AllowPrefixes); got != 100000 {
		t.Errorf("allow list has %d prefixes, want 100000", got)
	}
}

func BenchmarkLookupCatalogue(b *testing.B) {
	for b.Loop() {
		if _, ok := policy.LookupCatalogue(policy.TCP, 6379); !ok {
			b.Fatal("redis not found")
		}
	}
}

func BenchmarkLoad(b *testing.B) {
	for _, bc := range []struct {
		name string
		n, m int
	}{{"seed", -1, 0}, {"services=20000", 20000, 0}, {"allow=100000", 0, 100000}} {
		src := bigPolicy(bc.n, bc.m)
		if bc.n < 0 {
			src, _ = os.ReadFile("../testdata/seed/service-bindings.yaml")
		}
		b.Run(bc.name+"/bindguard", func(b *testing.B) {
			b.SetBytes(int64(len(src)))
			for b.Loop() {
				if _, err := policy.Parse("bench.yaml", src); err != nil {
					b.Fatal(err)
				}
			}
		})
		// The peer: what a naive loader does, goccy/go-yaml's Unmarshal into a generic value,
		// with no positions kept and nothing validated.
		b.Run(bc.name+"/yaml.Unmarshal", func(b *testing.B) {
			b.SetBytes(int64(len(src)))
			for b.Loop() {
				var v any
				if err := yaml.Unmarshal(src, &v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
