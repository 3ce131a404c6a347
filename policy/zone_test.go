package policy_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/bindguard/bindguard/policy"
)

func TestZonedEntries(t *testing.T) {
	p, err := policy.Load("../testdata/policy/valid/zoned.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := p.TrustedZoned; len(got) != 1 || got[0].String() != "fe80::2%eth1" || len(p.TrustedProxies) != 1 {
		t.Errorf("trusted: %v %v", p.TrustedProxies, got)
	}
	one, _ := p.Lookup("oneif")
	var zs []string
	for _, z := range one.AllowZoned {
		zs = append(zs, z.String())
	}
	if strings.Join(zs, " ") != "fe80::%eth0/64 fe80::9%eth2" || len(one.AllowPrefixes) != 1 {
		t.Errorf("oneif allow: prefixes %v, zoned %v", one.AllowPrefixes, zs)
	}
	out := string(policy.Marshal(p))
	if !strings.Contains(out, `trusted_proxies: [127.0.0.1/32, "fe80::2%eth1"]`) ||
		!strings.Contains(out, `allow: ["fe80::%eth0/64", "fe80::9%eth2", 10.1.1.0/24]`) {
		t.Errorf("Marshal lost the zoned entries:\n%s", out)
	}
	for addr, want := range map[string]bool{
		"fe80::1%eth0": true, "fe80::ffff%eth0": true, "fe80::1%eth1": false, "fe80::1": false,
		"fe80:0:0:1::1%eth0": false, "fe80::9%eth2": true,
	} {
		got := false
		for _, z := range one.AllowZoned {
			got = got || z.Contains(netip.MustParseAddr(addr))
		}
		if got != want {
			t.Errorf("%s in %v = %v, want %v", addr, zs, got, want)
		}
	}
}

func TestValidateZonedBuiltPolicy(t *testing.T) {
	p := &policy.Policy{
		Version: 1, ClientIPHeader: policy.HeaderXForwardedFor,
		TrustedZoned: []policy.ZonedPrefix{
			{Prefix: netip.MustParsePrefix("fe80::2/128"), Zone: "eth0"},
			{Prefix: netip.MustParsePrefix("2001:db8::1/128"), Zone: "eth0"},
		},
		Services: []policy.Service{
			{Name: "a", Protocol: policy.TCP, Port: 1, Access: policy.Restricted, Allow: []string{"fe80::1%eth0"}},
			{Name: "b", Protocol: policy.TCP, Port: 2, Access: policy.ProxyOnly, Address: netip.MustParseAddr("127.0.0.1")},
		},
	}
	policy.Defaults(p) // resolves the allow lists, AllowZoned included
	err := policy.Validate(p)
	if err == nil || !strings.Contains(err.Error(), "trusted_proxies[1]") || strings.Count(err.Error(), "\n") != 0 {
		t.Fatalf("Validate = %v; want one problem at trusted_proxies[1]", err)
	}
	p.TrustedZoned = p.TrustedZoned[:1]
	if err := policy.Validate(p); err != nil {
		t.Fatalf("Validate = %v (a zoned proxy alone is enough for proxy_only)", err)
	}
	if z := p.Services[0].AllowZoned; len(z) != 1 || z[0].String() != "fe80::1%eth0" {
		t.Errorf("AllowZoned = %v", z)
	}
}
