package probe_test

import (
	"context"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bindguard/bindguard/internal/probe"
	"github.com/bindguard/bindguard/policy"
)

func TestParseTarget(t *testing.T) {
	for _, tt := range []struct {
		in         string
		addr, host string
		bad        bool
	}{
		{in: "10.1.1.5", addr: "10.1.1.5"},
		{in: "::ffff:10.1.1.5", addr: "10.1.1.5"},
		{in: "[fd00::1]", addr: "fd00::1"},
		{in: "fe80::1%eth0", addr: "fe80::1%eth0"},
		{in: "web-1.example.org", host: "web-1.example.org"},
		{in: "db", host: "db"},
		{in: "10.1.1.0/24", bad: true},
		{in: "10.1.1.1-9", bad: true},
		{in: "10.1.1.1,10.1.1.2", bad: true},
		{in: "*.example.org", bad: true},
		{in: "0.0.0.0", bad: true},
		{in: "::", bad: true},
		{in: "224.0.0.1", bad: true},
		{in: "255.255.255.255", bad: true},
		{in: "10.1.1", bad: true},
		{in: "", bad: true},
		{in: "-a.example", bad: true},
	} {
		t.Run(tt.in, func(t *testing.T) {
			a, h, err := probe.ParseTarget(tt.in)
			if tt.bad {
				if err == nil {
					t.Fatalf("accepted %q as %v %q", tt.in, a, h)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			gotA := ""
			if a.IsValid() {
				gotA = a.String()
			}
			if gotA != tt.addr || h != tt.host {
				t.Fatalf("got %q %q, want %q %q", gotA, h, tt.addr, tt.host)
			}
		})
	}
}

func TestParsePorts(t *testing.T) {
	got, err := probe.ParsePorts("1-3, udp:53,tcp:8080")
	if err != nil {
		t.Fatal(err)
	}
	want := []probe.PortRange{{policy.TCP, 1, 3}, {policy.UDP, 53, 53}, {policy.TCP, 8080, 8080}}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("(-want +got)\n%s", d)
	}
	for _, bad := range []string{"0", "65536", "5-3", "sctp:1", "01", "a", "1-", "1,,2"} {
		if _, err := probe.ParsePorts(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

const reachPolicy = `version: 1
trusted_proxies: [127.0.0.1/32, 10.0.0.5/32]
services:
  - {name: core, port: 8001, address: 127.0.0.1, access: localhost_only}
  - {name: front, port: 8443, address: 127.0.0.1, access: proxy_only}
  - {name: zbx, port: 10050, access: restricted, allow: [10.0.0.9]}
  - {name: web, port: 443, access: public}
`

func TestMayReach(t *testing.T) {
	p, err := policy.Parse("p.yaml", []byte(reachPolicy))
	if err != nil {
		t.Fatal(err)
	}
	ip := netip.MustParseAddr
	for _, tt := range []struct {
		svc  string
		src  string
		want bool
	}{
		{"core", "127.0.0.1", true},
		{"core", "::1", true},
		{"core", "10.0.0.9", false},
		{"front", "10.0.0.5", true},
		{"front", "10.0.0.9", false},
		{"zbx", "10.0.0.9", true},
		{"zbx", "::ffff:10.0.0.9", true},
		{"zbx", "10.0.0.8", false},
		{"web", "192.0.2.1", true},
	} {
		s, ok := p.Lookup(tt.svc)
		if !ok {
			t.Fatal(tt.svc)
		}
		if got, _ := probe.MayReach(p, s, ip(tt.src)); got != tt.want {
			t.Errorf("%s from %s: %v, want %v", tt.svc, tt.src, got, tt.want)
		}
	}
}

// TestProbeLoopback probes, without root, a port this test opened on loopback and a port it
// opened and closed: open and closed, both ok from the host itself.
func TestProbeLoopback(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the probe needs Linux")
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	gone, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	openPort := ln.Addr().(*net.TCPAddr).Port
	closedPort := gone.Addr().(*net.TCPAddr).Port
	_ = gone.Close()
	p, err := policy.Parse("p.yaml", []byte("version: 1\nservices:\n  - {name: a, port: "+strconv.Itoa(openPort)+", address: 127.0.0.1, access: localhost_only}\n  - {name: b, port: "+strconv.Itoa(closedPort)+", address: 127.0.0.1, access: localhost_only}\n"))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := probe.Run(context.Background(), probe.Options{Policy: p, Target: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]probe.State{}
	for _, r := range rep.Results {
		got[r.Service] = r.State
		if r.Verdict != probe.OK {
			t.Errorf("%s: %s", r.Service, r.Reason)
		}
	}
	if d := cmp.Diff(map[string]probe.State{"a": probe.Open, "b": probe.Closed}, got); d != "" {
		t.Fatalf("(-want +got)\n%s", d)
	}
	if rep.Probes != 2 {
		t.Errorf("%d probes, want 2", rep.Probes)
	}
}

func TestRunRefuses(t *testing.T) {
	p, err := policy.Parse("p.yaml", []byte(reachPolicy))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []probe.Options{
		{Policy: p, Target: "10.0.0.0/8"},
		{Policy: p, Target: "127.0.0.1", Scope: "nosuch"},
		{Policy: p, Target: "127.0.0.1", Rate: -1},
		{Policy: p, Target: "127.0.0.1", Rate: 2e9},
		{Target: "127.0.0.1"},
	} {
		if _, err := probe.Run(context.Background(), o); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
}
