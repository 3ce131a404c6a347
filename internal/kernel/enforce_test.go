package kernel

import (
	"errors"
	"net/netip"
	"slices"
	"testing"

	"github.com/bindguard/bindguard/policy"
)

func TestCompileEnforcement(t *testing.T) {
	p, err := policy.Parse("t.yaml", []byte(`version: 1
networks:
  office: [192.168.1.0/24]
services:
  - {name: redis, protocol: tcp, port: 6379, access: localhost_only}
  - {name: web, protocol: tcp, port: 8080, address: "::", access: public}
  - {name: pub, protocol: tcp, port: 443, access: public}
  - {name: lan, protocol: udp, port: 161, access: lan, allow: [office]}
`))
	if err != nil {
		t.Fatal(err)
	}
	e, err := CompileEnforcement(p.Services, EnforceRewrite, []PortRange{{Lo: 1, Hi: 1023}})
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Rules) != 4 || e.Mode != EnforceRewrite {
		t.Fatalf("%+v", e)
	}
	r := e.Rules[0]
	if r.Name != "redis tcp/6379" || !r.Loopback || r.Any || len(r.Addrs) != 0 || !r.Rewrite {
		t.Errorf("redis %+v", r)
	}
	r = e.Rules[1]
	if !slices.Equal(r.Addrs, []netip.Addr{netip.IPv4Unspecified(), netip.IPv6Unspecified()}) || r.Any || r.Loopback || r.Rewrite {
		t.Errorf("web %+v", r)
	}
	if r := e.Rules[2]; !r.Any || r.Rewrite {
		t.Errorf("pub %+v", r)
	}
	if r := e.Rules[3]; !r.Loopback || r.Any || !slices.Equal(r.Prefixes, []netip.Prefix{netip.MustParsePrefix("192.168.1.0/24")}) {
		t.Errorf("lan %+v", r)
	}
	if _, err := CompileEnforcement(nil, "bogus", nil); err == nil {
		t.Error("mode bogus accepted")
	}
	if _, err := CompileEnforcement(nil, "", []PortRange{{Lo: 10, Hi: 5}}); err == nil {
		t.Error("range 10-5 accepted")
	}
}

func TestDecodeDenial(t *testing.T) {
	b := make([]byte, denialSize)
	b[0] = 1
	b[8] = 42
	b[16] = 7
	b[20] = 3
	b[24], b[25] = 0xeb, 0x18 // 6379
	b[26], b[27], b[28], b[29] = 6, 10, denialV6Only|denialPostBind, 1
	copy(b[48:], "redis-server")
	d, err := decodeDenial(b)
	if err != nil {
		t.Fatal(err)
	}
	if d.CgroupID != 42 || d.PID != 7 || d.Rule != 3 || d.Port != 6379 || d.Protocol != policy.TCP || d.Family != "ipv6" ||
		!d.V6Only || !d.PostBind || d.DryRun || d.Errno != 1 || d.Comm != "redis-server" || d.Addr != netip.IPv6Unspecified() {
		t.Errorf("%+v", d)
	}
	b[32+10], b[32+11], b[32+12] = 0xff, 0xff, 127
	if d, _ := decodeDenial(b); d.Addr != netip.MustParseAddr("127.0.0.0") {
		t.Errorf("mapped address decoded as %s", d.Addr)
	}
	for _, bad := range [][]byte{b[:10], append(slices.Clone(b), 0)} {
		if _, err := decodeDenial(bad); !errors.Is(err, ErrBadRecord) {
			t.Errorf("%d bytes: %v", len(bad), err)
		}
	}
	b[26] = 99
	if _, err := decodeDenial(b); !errors.Is(err, ErrBadRecord) {
		t.Errorf("protocol 99: %v", err)
	}
}

// FuzzDecodeDenial: any record decodes or fails with ErrBadRecord, never panics.
func FuzzDecodeDenial(f *testing.F) {
	b := make([]byte, denialSize)
	b[26], b[27] = 6, 2
	f.Add(b)
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, rec []byte) {
		d, err := decodeDenial(rec)
		if err != nil && !errors.Is(err, ErrBadRecord) {
			t.Fatalf("error %v does not wrap ErrBadRecord", err)
		}
		if err == nil && (!d.Addr.IsValid() || d.Addr.Is4In6()) {
			t.Fatalf("address %v", d.Addr)
		}
	})
}
