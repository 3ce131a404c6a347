package audit_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/bindguard/bindguard/internal/audit"
	"github.com/bindguard/bindguard/internal/observed"
	"github.com/bindguard/bindguard/policy"
)

func TestExposureOf(t *testing.T) {
	for _, tc := range []struct {
		addr   string
		v6only observed.V6Only
		want   audit.Exposure
	}{
		{"127.0.0.1", observed.V6OnlyNA, audit.ExposureLoopback},
		{"127.0.0.2", observed.V6OnlyNA, audit.ExposureLoopback},
		{"::1", observed.V6OnlyYes, audit.ExposureLoopback},
		{"::ffff:127.0.0.1", observed.V6OnlyNo, audit.ExposureLoopback},
		{"::ffff:0.0.0.0", observed.V6OnlyNo, audit.ExposureWildcardV4},
		{"::ffff:10.0.0.1", observed.V6OnlyNo, audit.ExposurePrivate},
		{"10.1.1.120", observed.V6OnlyNA, audit.ExposurePrivate},
		{"fd00::1", observed.V6OnlyYes, audit.ExposurePrivate},
		{"169.254.1.1", observed.V6OnlyNA, audit.ExposureLinkLocal},
		{"fe80::1", observed.V6OnlyYes, audit.ExposureLinkLocal},
		{"8.8.8.8", observed.V6OnlyNA, audit.ExposurePublic},
		{"2001:db8::1", observed.V6OnlyYes, audit.ExposurePublic},
		{"0.0.0.0", observed.V6OnlyNA, audit.ExposureWildcardV4},
		{"::", observed.V6OnlyYes, audit.ExposureWildcardV6},
		{"::", observed.V6OnlyNo, audit.ExposureDualStack},
		{"::", observed.V6OnlyUnknown, audit.ExposureDualStack}, // /proc/net cannot tell: assume the worst
	} {
		if got := audit.ExposureOf(netip.MustParseAddr(tc.addr), tc.v6only); got != tc.want {
			t.Errorf("ExposureOf(%s, %v) = %s, want %s", tc.addr, tc.v6only, got, tc.want)
		}
	}
}

func obs(proto policy.Protocol, addr string, port uint16, v6 observed.V6Only, owner string) observed.Listener {
	a := netip.MustParseAddr(addr)
	fam := observed.IPv4
	if a.Is6() {
		fam = observed.IPv6
	}
	o := observed.Listener{Socket: observed.Socket{Protocol: observed.Protocol(proto), Family: fam, Addr: a, Port: port, V6Only: v6, Inode: 1}, Netns: "host"}
	if owner != "" {
		o.Owner = observed.OwnerKnown
		o.Owners = []observed.Process{{PID: 42, Name: owner}}
	} else {
		o.Owner = observed.OwnerHidden
	}
	return o
}

func mustPolicy(t *testing.T, src string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse("t.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestJudgeCases(t *testing.T) {
	p := mustPolicy(t, `version: 1
networks:
  lan: [192.168.1.0/24]
services:
  - {name: redis, protocol: tcp, port: 6379, address: 127.0.0.1, access: localhost_only, process: redis-server}
  - {name: dns, protocol: udp, port: 53, address: 127.0.0.1, access: localhost_only}
  - {name: web, protocol: tcp, port: 443, address: "::", access: public}
  - {name: lanapp, protocol: tcp, port: 9000, access: lan, allow: [lan]}
  - {name: zabbix, protocol: tcp, port: 10050, address: 192.168.1.5, access: restricted, allow: [192.168.1.9]}
`)
	for _, tc := range []struct {
		name     string
		o        observed.Listener
		status   audit.Status
		severity audit.Severity
		reason   string
	}{
		{"valid", obs("tcp", "127.0.0.1", 6379, observed.V6OnlyNA, "redis-server"), audit.Valid, audit.Info, "as the policy allows"},
		{"mapped loopback is loopback", obs("tcp", "::ffff:127.0.0.1", 6379, observed.V6OnlyNo, "redis-server"), audit.Valid, audit.Info, ""},
		{"redis on wildcard", obs("tcp", "0.0.0.0", 6379, observed.V6OnlyNA, "redis-server"), audit.Invalid, audit.Critical, "redis-server (pid 42) listens on 0.0.0.0:6379, all IPv4 interfaces; the policy allows localhost only"},
		{"redis on dual-stack of unknown v6only", obs("tcp", "::", 6379, observed.V6OnlyUnknown, "redis-server"), audit.Invalid, audit.Critical, "all IPv4 and IPv6 interfaces"},
		{"another process on redis's port", obs("tcp", "127.0.0.1", 6379, observed.V6OnlyNA, "nc"), audit.Invalid, audit.High, `expects process "redis-server"`},
		{"hidden owner is not a process mismatch", obs("tcp", "127.0.0.1", 6379, observed.V6OnlyNA, ""), audit.Valid, audit.Info, "may not read"},
		{"udp and tcp do not collide", obs("tcp", "127.0.0.1", 53, observed.V6OnlyNA, "x"), audit.Unexpected, audit.Low, "no service in the policy declares tcp port 53"},
		{"other loopback address", obs("udp", "127.0.0.53", 53, observed.V6OnlyNA, "resolved"), audit.Invalid, audit.Low, "the policy declares 127.0.0.1:53"},
		{"dual-stack declared, v6only observed", obs("tcp", "::", 443, observed.V6OnlyYes, "nginx"), audit.Valid, audit.Info, ""},
		{"v4 wildcard where :: declared", obs("tcp", "0.0.0.0", 443, observed.V6OnlyNA, "nginx"), audit.Invalid, audit.Low, ""},
		{"lan inside allow", obs("tcp", "192.168.1.7", 9000, observed.V6OnlyNA, "app"), audit.Valid, audit.Info, "cannot reach it is not verified"},
		{"lan on loopback needs no reach caveat", obs("tcp", "127.0.0.1", 9000, observed.V6OnlyNA, "app"), audit.Valid, audit.Info, "as the policy allows (lan)"},
		{"restricted as declared", obs("tcp", "192.168.1.5", 10050, observed.V6OnlyNA, "zabbix_agentd"), audit.Valid, audit.Info, "that hosts outside its allow list cannot reach it is not verified"},
		{"lan on wildcard", obs("tcp", "0.0.0.0", 9000, observed.V6OnlyNA, "app"), audit.Invalid, audit.High, "loopback or its LAN addresses (lan)"},
		{"restricted wider than declared", obs("tcp", "0.0.0.0", 10050, observed.V6OnlyNA, "zabbix_agentd"), audit.Invalid, audit.High, "wider than the declared 192.168.1.5:10050"},
		{"unexpected public database", obs("tcp", "0.0.0.0", 5432, observed.V6OnlyNA, "postgres"), audit.Unexpected, audit.Critical, "postgresql (database)"},
		{"unexpected public other", obs("tcp", "10.0.0.1", 8081, observed.V6OnlyNA, "app"), audit.Unexpected, audit.High, ""},
		{"unexpected loopback database", obs("tcp", "127.0.0.1", 5432, observed.V6OnlyNA, "postgres"), audit.Unexpected, audit.Low, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := audit.Judge(p, []observed.Listener{tc.o})
			var f *audit.Finding
			for i := range r.Findings {
				if r.Findings[i].Actual != nil {
					f = &r.Findings[i]
				}
			}
			if f == nil {
				t.Fatal("no finding for the socket")
			}
			if f.Status != tc.status || f.Severity != tc.severity || !strings.Contains(f.Reason, tc.reason) {
				t.Errorf("got %s %s %q; want %s %s containing %q", f.Status, f.Severity, f.Reason, tc.status, tc.severity, tc.reason)
			}
		})
	}
}

func TestScore(t *testing.T) {
	p := mustPolicy(t, `version: 1
services:
  - {name: a, protocol: tcp, port: 1, address: 127.0.0.1, access: localhost_only}
  - {name: b, protocol: tcp, port: 2, address: 127.0.0.1, access: localhost_only}
  - {name: c, protocol: tcp, port: 3, address: 0.0.0.0, access: public}
  - {name: d, protocol: tcp, port: 4, address: 127.0.0.1, access: localhost_only}
`)
	for _, tc := range []struct {
		name string
		obs  []observed.Listener
		want int
	}{
		{"all valid", []observed.Listener{obs("tcp", "127.0.0.1", 1, 0, "x"), obs("tcp", "127.0.0.1", 2, 0, "x"), obs("tcp", "0.0.0.0", 3, 0, "x"), obs("tcp", "127.0.0.1", 4, 0, "x")}, 100},
		// 3/4 valid = 75, minus 20 for exposing d.
		{"one exposed", []observed.Listener{obs("tcp", "127.0.0.1", 1, 0, "x"), obs("tcp", "127.0.0.1", 2, 0, "x"), obs("tcp", "0.0.0.0", 3, 0, "x"), obs("tcp", "0.0.0.0", 4, 0, "x")}, 55},
		// 3/4 = 75, minus 10 for c at another address.
		{"other invalid", []observed.Listener{obs("tcp", "127.0.0.1", 1, 0, "x"), obs("tcp", "127.0.0.1", 2, 0, "x"), obs("tcp", "10.0.0.1", 3, 0, "x"), obs("tcp", "127.0.0.1", 4, 0, "x")}, 65},
		// 4/4 = 100, minus 15 per unexpected wildcard; an unexpected loopback costs nothing.
		{"unexpected", []observed.Listener{obs("tcp", "127.0.0.1", 1, 0, "x"), obs("tcp", "127.0.0.1", 2, 0, "x"), obs("tcp", "0.0.0.0", 3, 0, "x"), obs("tcp", "127.0.0.1", 4, 0, "x"), obs("tcp", "0.0.0.0", 99, 0, "x"), obs("tcp", "::", 98, observed.V6OnlyYes, "x"), obs("tcp", "127.0.0.1", 97, 0, "x")}, 70},
		// 1/4 = 25, minus 20 and 20 and 15: clamped to 0.
		{"clamped", []observed.Listener{obs("tcp", "0.0.0.0", 1, 0, "x"), obs("tcp", "0.0.0.0", 2, 0, "x"), obs("tcp", "0.0.0.0", 3, 0, "x"), obs("tcp", "0.0.0.0", 99, 0, "x")}, 0},
		{"nothing listens", nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := audit.Judge(p, tc.obs).Score; got != tc.want {
				t.Errorf("score %d, want %d", got, tc.want)
			}
		})
	}
}

func TestCatalogueNeverMissing(t *testing.T) {
	r := audit.Judge(policy.Builtin(), []observed.Listener{obs("tcp", "127.0.0.1", 6379, 0, "redis-server")})
	if r.Summary.Missing != 0 || r.Summary.Valid != 1 || r.Score != 100 || len(r.Services) != 1 {
		t.Errorf("catalogue audit: %+v score %d services %d", r.Summary, r.Score, len(r.Services))
	}
	empty := audit.Judge(policy.Builtin(), nil)
	if empty.Score != 100 || len(empty.Findings) != 0 {
		t.Errorf("catalogue audit of nothing: score %d, %d findings", empty.Score, len(empty.Findings))
	}
	r = audit.Judge(policy.Builtin(), []observed.Listener{obs("tcp", "0.0.0.0", 6379, 0, "redis-server")})
	if r.Findings[0].Status != audit.Invalid || r.Findings[0].Severity != audit.Critical {
		t.Errorf("redis on 0.0.0.0 against the catalogue: %s %s", r.Findings[0].Status, r.Findings[0].Severity)
	}
}

func TestFailsThreshold(t *testing.T) {
	p := mustPolicy(t, "version: 1\nservices: []\n")
	r := audit.Judge(p, []observed.Listener{obs("tcp", "127.0.0.1", 5000, 0, "x")}) // unexpected, low
	if r.Fails(audit.Medium) || !r.Fails(audit.Low) || !r.Fails(audit.Info) {
		t.Errorf("low finding: Fails(medium)=%v Fails(low)=%v", r.Fails(audit.Medium), r.Fails(audit.Low))
	}
	for _, s := range []string{"info", "low", "medium", "high", "critical"} {
		v, err := audit.ParseSeverity(s)
		if err != nil || v.String() != s {
			t.Errorf("ParseSeverity(%s) = %v, %v", s, v, err)
		}
	}
	if _, err := audit.ParseSeverity("urgent"); err == nil {
		t.Error("ParseSeverity(urgent) succeeded")
	}
}

func TestStatusOrderMatchesStatuses(t *testing.T) {
	// Findings sort in the order Statuses lists: a table test over the exported order.
	p := mustPolicy(t, `version: 1
services:
  - {name: a, protocol: tcp, port: 1, address: 127.0.0.1, access: localhost_only}
  - {name: b, protocol: tcp, port: 2, address: 127.0.0.1, access: localhost_only}
  - {name: c, protocol: tcp, port: 3, address: 127.0.0.1, access: localhost_only}
`)
	// All at severity low or info except missing; use low-severity invalid and unexpected.
	r := audit.Judge(p, []observed.Listener{
		obs("tcp", "127.0.0.1", 1, 0, "x"),  // valid, info
		obs("tcp", "127.0.0.2", 2, 0, "x"),  // invalid, low (other loopback address)
		obs("tcp", "127.0.0.1", 99, 0, "x"), // unexpected, low
	})
	var got []audit.Status
	for _, f := range r.Findings {
		got = append(got, f.Status)
	}
	want := []audit.Status{audit.Missing, audit.Invalid, audit.Unexpected, audit.Valid} // medium first, then low by status order, then info
	if strings.Join(statusStrings(got), ",") != strings.Join(statusStrings(want), ",") {
		t.Errorf("order %v, want %v", got, want)
	}
}

func statusStrings(s []audit.Status) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = string(v)
	}
	return out
}
