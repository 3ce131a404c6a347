package probe_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/bindguard/bindguard/internal/netnstest"
	"github.com/bindguard/bindguard/internal/probe"
	"github.com/bindguard/bindguard/policy"
)

// labPolicy is the server's policy. Each client reaches the server over its own link:
// allowed 10.77.1.0/24 (fd77:1::/64), LAN 10.77.2.0/24 (fd77:2::/64), outside 10.77.3.0/24
// (fd77:3::/64); the server is .1 / ::1 on each, the client .2 / ::2.
const labPolicy = `version: 1
networks:
  lan: [10.77.2.0/24, "fd77:2::/64"]
services:
  - {name: web, port: 8080, address: "::", access: public}
  - {name: web6, port: 8443, address: "::", v6only: true, access: public}
  - {name: zabbix, port: 10050, address: 0.0.0.0, access: restricted, allow: [10.77.1.2]}
  - {name: agent, port: 10051, address: "::", access: restricted, allow: [10.77.1.2, "fd77:1::2"]}
  - {name: admin, port: 9000, address: 10.77.2.1, access: lan, allow: [lan]}
  - {name: db, port: 5432, address: 127.0.0.1, access: localhost_only}
  - {name: echo, protocol: udp, port: 5353, address: "::", access: restricted, allow: [10.77.1.2, "fd77:1::2"]}
`

// lab is a server namespace and three client namespaces joined to it by veth pairs, with no
// route anywhere else.
type lab struct {
	server, allowed, lan, outside *netnstest.NS
	pol                           *policy.Policy
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func newLab(t *testing.T) *lab {
	t.Helper()
	netnstest.Require(t)
	l := &lab{
		server:  netnstest.New(t, "pbsrv"),
		allowed: netnstest.New(t, "pballow"),
		lan:     netnstest.New(t, "pblan"),
		outside: netnstest.New(t, "pbout"),
	}
	for i, c := range []*netnstest.NS{l.allowed, l.lan, l.outside} {
		n := string(rune('1' + i))
		netnstest.Connect(t, l.server, c,
			[]netip.Prefix{pfx("10.77." + n + ".1/24"), pfx("fd77:" + n + "::1/64")},
			[]netip.Prefix{pfx("10.77." + n + ".2/24"), pfx("fd77:" + n + "::2/64")})
	}
	var err error
	if l.pol, err = policy.Parse("lab.yaml", []byte(labPolicy)); err != nil {
		t.Fatal(err)
	}
	spec := func(s string) netnstest.Spec {
		sp, err := netnstest.ParseSpec(s)
		if err != nil {
			t.Fatal(err)
		}
		return sp
	}
	l.server.Listen(t, spec("tcp:[::]:8080"), spec("tcp6:[::]:8443:v6only"), spec("tcp4:0.0.0.0:10050"),
		spec("tcp:[::]:10051"), spec("tcp4:10.77.2.1:9000"), spec("tcp4:127.0.0.1:5432"))
	l.server.UDPEcho(t, "[::]:5353")
	return l
}

// nft loads a ruleset into a namespace.
func nft(t *testing.T, ns *netnstest.NS, ruleset string) {
	t.Helper()
	netnstest.RequireTool(t, "nft", "nftables")
	cmd := exec.Command("nsenter", "--net="+ns.Path, "nft", "-f", "-") // #nosec G204 -- our own namespace
	cmd.Stdin = strings.NewReader(ruleset)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft -f: %v\n%s\n%s", err, out, ruleset)
	}
}

type key struct {
	proto policy.Protocol
	addr  string
	port  uint16
}

type want struct {
	state   probe.State
	verdict probe.Verdict
	contra  bool
}

func runProbe(t *testing.T, l *lab, from *netnstest.NS, target string) map[key]probe.Result {
	t.Helper()
	rep, err := probe.Run(context.Background(), probe.Options{
		Policy: l.pol, Target: target, Netns: from.Path,
		Timeout: 400 * time.Millisecond, Rate: 1000, Concurrency: 16,
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[key]probe.Result{}
	for _, r := range rep.Results {
		got[key{r.Protocol, r.Address.String(), r.Port}] = r
	}
	return got
}

func check(t *testing.T, got map[key]probe.Result, wants map[key]want) {
	t.Helper()
	for k, w := range wants {
		r, ok := got[k]
		if !ok {
			t.Errorf("%v: no result", k)
			continue
		}
		if r.State != w.state || r.Verdict != w.verdict || r.Contradiction != w.contra {
			t.Errorf("%v (%s): got %s/%s contradiction=%v, want %s/%s contradiction=%v; reason: %s",
				k, r.Service, r.State, r.Verdict, r.Contradiction, w.state, w.verdict, w.contra, r.Reason)
		}
	}
}

func TestProbeNetnsNoFirewall(t *testing.T) {
	l := newLab(t)
	t.Run("outside v4", func(t *testing.T) {
		got := runProbe(t, l, l.outside, "10.77.3.1")
		check(t, got, map[key]want{
			{policy.TCP, "10.77.3.1", 8080}:  {probe.Open, probe.OK, false},
			{policy.TCP, "10.77.3.1", 8443}:  {probe.Closed, probe.OK, false}, // v6only
			{policy.TCP, "10.77.3.1", 10050}: {probe.Open, probe.Violation, true},
			{policy.TCP, "10.77.3.1", 10051}: {probe.Open, probe.Violation, true},
			{policy.TCP, "10.77.3.1", 9000}:  {probe.Closed, probe.OK, false},
			{policy.TCP, "10.77.3.1", 5432}:  {probe.Closed, probe.OK, false},
			{policy.UDP, "10.77.3.1", 5353}:  {probe.Open, probe.Violation, true},
		})
		if r := got[key{policy.TCP, "10.77.3.1", 10050}]; r.Source != netip.MustParseAddr("10.77.3.2") {
			t.Errorf("source %s, want 10.77.3.2", r.Source)
		}
	})
	t.Run("outside v6", func(t *testing.T) {
		got := runProbe(t, l, l.outside, "fd77:3::1")
		check(t, got, map[key]want{
			{policy.TCP, "fd77:3::1", 8080}:  {probe.Open, probe.OK, false}, // dual-stack
			{policy.TCP, "fd77:3::1", 8443}:  {probe.Open, probe.OK, false},
			{policy.TCP, "fd77:3::1", 10050}: {probe.Closed, probe.OK, false}, // IPv4 only
			{policy.TCP, "fd77:3::1", 10051}: {probe.Open, probe.Violation, true},
			{policy.UDP, "fd77:3::1", 5353}:  {probe.Open, probe.Violation, true},
		})
	})
	t.Run("allowed", func(t *testing.T) {
		check(t, runProbe(t, l, l.allowed, "10.77.1.1"), map[key]want{
			{policy.TCP, "10.77.1.1", 10050}: {probe.Open, probe.OK, false},
			{policy.TCP, "10.77.1.1", 10051}: {probe.Open, probe.OK, false},
			{policy.UDP, "10.77.1.1", 5353}:  {probe.Open, probe.OK, false},
		})
		check(t, runProbe(t, l, l.allowed, "fd77:1::1"), map[key]want{
			{policy.TCP, "fd77:1::1", 10051}: {probe.Open, probe.OK, false},
			{policy.UDP, "fd77:1::1", 5353}:  {probe.Open, probe.OK, false},
		})
	})
	t.Run("lan", func(t *testing.T) {
		check(t, runProbe(t, l, l.lan, "10.77.2.1"), map[key]want{
			{policy.TCP, "10.77.2.1", 9000}:  {probe.Open, probe.OK, false},
			{policy.TCP, "10.77.2.1", 10050}: {probe.Open, probe.Violation, true},
			{policy.TCP, "10.77.2.1", 5432}:  {probe.Closed, probe.OK, false},
		})
	})
	t.Run("server itself", func(t *testing.T) {
		check(t, runProbe(t, l, l.server, "127.0.0.1"), map[key]want{
			{policy.TCP, "127.0.0.1", 5432}: {probe.Open, probe.OK, false},
			{policy.TCP, "127.0.0.1", 8080}: {probe.Open, probe.OK, false},
		})
		// Its own outside address: the source is the target itself, never another host.
		check(t, runProbe(t, l, l.server, "10.77.3.1"), map[key]want{
			{policy.TCP, "10.77.3.1", 10050}: {probe.Open, probe.OK, false},
			{policy.TCP, "10.77.3.1", 5432}:  {probe.Closed, probe.OK, false},
		})
	})
}

// TestProbeNetnsFirewall: rules in the server namespace drop (filtered) and reject (closed)
// per source address.
func TestProbeNetnsFirewall(t *testing.T) {
	l := newLab(t)
	nft(t, l.server, `table inet labfw {
  chain input {
    type filter hook input priority 0; policy accept;
    ip saddr 10.77.3.2 tcp dport 10051 drop
    ip6 saddr fd77:3::2 tcp dport 10051 reject with tcp reset
    ip saddr 10.77.3.2 udp dport 5353 drop
    ip6 saddr fd77:3::2 udp dport 5353 reject with icmpx type port-unreachable
    ip saddr 10.77.3.2 tcp dport 10050 reject with icmpx type admin-prohibited
  }
}
`)
	check(t, runProbe(t, l, l.outside, "10.77.3.1"), map[key]want{
		{policy.TCP, "10.77.3.1", 10051}: {probe.Filtered, probe.OK, false},
		{policy.UDP, "10.77.3.1", 5353}:  {probe.OpenFiltered, probe.OK, false},
		{policy.TCP, "10.77.3.1", 10050}: {probe.Filtered, probe.OK, false},
		{policy.TCP, "10.77.3.1", 8080}:  {probe.Open, probe.OK, false},
	})
	check(t, runProbe(t, l, l.outside, "fd77:3::1"), map[key]want{
		{policy.TCP, "fd77:3::1", 10051}: {probe.Closed, probe.OK, false},
		{policy.UDP, "fd77:3::1", 5353}:  {probe.Closed, probe.OK, false},
	})
	// The allowed host is untouched by the rules.
	check(t, runProbe(t, l, l.allowed, "fd77:1::1"), map[key]want{
		{policy.TCP, "fd77:1::1", 10051}: {probe.Open, probe.OK, false},
		{policy.UDP, "fd77:1::1", 5353}:  {probe.Open, probe.OK, false},
	})
}

// TestProbeNetnsUndeclared: an extra range finds a port the scope does not declare.
func TestProbeNetnsUndeclared(t *testing.T) {
	l := newLab(t)
	sp, err := netnstest.ParseSpec("tcp4:0.0.0.0:7777")
	if err != nil {
		t.Fatal(err)
	}
	l.server.Listen(t, sp)
	rep, err := probe.Run(context.Background(), probe.Options{
		Policy: l.pol, Target: "10.77.3.1", Netns: l.outside.Path,
		Ports: []probe.PortRange{{Protocol: policy.TCP, Lo: 7770, Hi: 7779}}, Timeout: 400 * time.Millisecond, Rate: 1000,
	})
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, r := range rep.Results {
		if r.Port == 7777 {
			found = true
			if r.State != probe.Open || r.Verdict != probe.Violation || r.Service != "" {
				t.Errorf("7777: %+v", r)
			}
		} else if r.Service == "" {
			t.Errorf("an undeclared port that is not open is listed: %+v", r)
		}
	}
	if !found {
		t.Error("the undeclared open port 7777 is not reported")
	}
	if rep.Undeclared[probe.Closed] != 9 {
		t.Errorf("undeclared closed %d, want 9", rep.Undeclared[probe.Closed])
	}
}

func TestProbeNetnsBadNamespace(t *testing.T) {
	netnstest.Require(t)
	p, err := policy.Parse("p.yaml", []byte(labPolicy))
	if err != nil {
		t.Fatal(err)
	}
	_, err = probe.Run(context.Background(), probe.Options{Policy: p, Target: "127.0.0.1", Netns: "/run/netns/bindguard-no-such-ns"})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("got %v, want an error entering the namespace", err)
	}
}

// TestProbeNetnsHostName: a host name is resolved and every address probed, IPv4 and IPv6,
// each judged on its own (the IPv4-only service is open on one and closed on the other).
func TestProbeNetnsHostName(t *testing.T) {
	l := newLab(t)
	var asked []string
	rep, err := probe.Run(context.Background(), probe.Options{
		Policy: l.pol, Target: "server.lab", Netns: l.outside.Path, Timeout: 400 * time.Millisecond, Rate: 1000,
		Resolve: func(_ context.Context, host string) ([]netip.Addr, error) {
			asked = append(asked, host)
			return []netip.Addr{netip.MustParseAddr("fd77:3::1"), netip.MustParseAddr("::ffff:10.77.3.1"), netip.MustParseAddr("10.77.3.1")}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(asked) != 1 || asked[0] != "server.lab" {
		t.Fatalf("resolver asked %v", asked)
	}
	if got := fmt.Sprint(rep.Addresses); got != "[10.77.3.1 fd77:3::1]" {
		t.Fatalf("addresses %s, want the two, unmapped and deduplicated", got)
	}
	got := map[key]probe.Result{}
	for _, r := range rep.Results {
		got[key{r.Protocol, r.Address.String(), r.Port}] = r
	}
	check(t, got, map[key]want{
		{policy.TCP, "10.77.3.1", 10050}: {probe.Open, probe.Violation, true},
		{policy.TCP, "fd77:3::1", 10050}: {probe.Closed, probe.OK, false},
		{policy.TCP, "10.77.3.1", 8080}:  {probe.Open, probe.OK, false},
		{policy.TCP, "fd77:3::1", 8080}:  {probe.Open, probe.OK, false},
	})
	if r := got[key{policy.TCP, "fd77:3::1", 8080}]; r.Source != netip.MustParseAddr("fd77:3::2") {
		t.Errorf("IPv6 source %s", r.Source)
	}
}

// onlyLink is the name of the one link of ns besides lo.
func onlyLink(t *testing.T, ns *netnstest.NS) string {
	t.Helper()
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(ns.Exec(t, "ip", "-o", "link", "show")), "\n") {
		f := strings.Fields(line)
		if len(f) > 1 {
			if name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@"); name != "lo" {
				names = append(names, name)
			}
		}
	}
	if len(names) != 1 {
		t.Fatalf("links %v", names)
	}
	return names[0]
}

// TestProbeNetnsLinkLocal: a zoned link-local target is reached over the interface the zone
// names in the vantage's namespace (which the host's own namespace does not have).
func TestProbeNetnsLinkLocal(t *testing.T) {
	server, client := netnstest.New(t, "pbllsrv"), netnstest.New(t, "pbllcli")
	netnstest.Connect(t, server, client, []netip.Prefix{pfx("fe80::77:a/64")}, []netip.Prefix{pfx("fe80::77:b/64")})
	sp, err := netnstest.ParseSpec("tcp6:[::]:8443:v6only")
	if err != nil {
		t.Fatal(err)
	}
	server.Listen(t, sp)
	p, err := policy.Parse("p.yaml", []byte("version: 1\nservices:\n  - {name: web6, port: 8443, address: \"::\", v6only: true, access: public}\n"))
	if err != nil {
		t.Fatal(err)
	}
	dev := onlyLink(t, client)
	rep, err := probe.Run(context.Background(), probe.Options{Policy: p, Target: "fe80::77:a%" + dev, Netns: client.Path, Timeout: 400 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 1 || rep.Results[0].State != probe.Open || rep.Results[0].Verdict != probe.OK {
		t.Fatalf("results %+v", rep.Results)
	}
}
