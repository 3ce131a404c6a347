package nftables_test

import (
	"context"
	"flag"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bindguard/bindguard/internal/gen/nftables"
	"github.com/bindguard/bindguard/internal/golden"
	"github.com/bindguard/bindguard/internal/netnstest"
	"github.com/bindguard/bindguard/internal/probe"
	"github.com/bindguard/bindguard/policy"
)

var update = flag.Bool("update", false, "rewrite golden files")

// labPolicy: the server is 10.79.N.1 / fd79:N::1 on link N, the client on it .2 / ::2; link 1
// is the allowed host, link 2 the LAN, link 3 outside.
const labPolicy = `version: 1
networks:
  lan: [10.79.2.0/24, "fd79:2::/64"]
services:
  - {name: web, port: 8080, address: "::", access: public}
  - {name: db, port: 5432, address: 127.0.0.1, access: localhost_only}
  - {name: zabbix, port: 10050, address: 0.0.0.0, access: restricted, allow: [10.79.1.2]}
  - {name: agent, port: 10051, address: "::", access: restricted, allow: [10.79.1.0/28, 10.79.1.2, "fd79:1::2", "fe80::9%eth0"]}
  - {name: admin, port: 9000, address: 10.79.2.1, access: lan, allow: [lan]}
  - {name: echo, protocol: udp, port: 5353, address: "::", access: restricted, allow: [10.79.1.2, "fd79:1::2"]}
scopes:
  - name: web
    match: [web-*]
    services:
      - {name: api, port: 7000, access: restricted, allow: ["2001:db8::/32"]}
`

func load(t *testing.T) *policy.Policy {
	t.Helper()
	p, err := policy.Parse("lab.yaml", []byte(labPolicy))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestGolden(t *testing.T) {
	p := load(t)
	for _, scope := range []string{"", "web"} {
		got, err := nftables.Generate(p, nftables.Options{Scope: scope, Source: "lab.yaml"})
		if err != nil {
			t.Fatal(err)
		}
		golden.Check(t, filepath.Join("testdata", "lab-"+cmpOr(scope, "host")+".nft"), got, *update)
	}
	if _, err := nftables.Generate(p, nftables.Options{Scope: "nosuch"}); err == nil {
		t.Error("an unknown scope was accepted")
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func nft(t *testing.T, ns *netnstest.NS, ruleset string, args ...string) {
	t.Helper()
	netnstest.RequireTool(t, "nft", "nftables")
	cmd := exec.Command("nsenter", append([]string{"--net=" + ns.Path, "nft"}, append(args, "-f", "-")...)...) // #nosec G204 -- our own namespace
	cmd.Stdin = strings.NewReader(ruleset)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft %v -f: %v\n%s\n%s", args, err, out, ruleset)
	}
}

// TestNftCheck: nft itself accepts every generated ruleset (nft -c -f), loads it twice (the
// table is replaced, not duplicated) and leaves another table alone.
func TestNftCheck(t *testing.T) {
	ns := netnstest.New(t, "nftchk")
	p := load(t)
	nft(t, ns, "table inet other {\n\tchain c {\n\t\ttype filter hook input priority 0; policy accept;\n\t\ttcp dport 1 drop\n\t}\n}\n")
	for _, scope := range []string{"", "web"} {
		rs, err := nftables.Generate(p, nftables.Options{Scope: scope})
		if err != nil {
			t.Fatal(err)
		}
		nft(t, ns, rs, "-c")
		nft(t, ns, rs)
		nft(t, ns, rs)
	}
	tables := ns.Exec(t, "nft", "list", "tables")
	if tables != "table inet other\ntable inet bindguard\n" {
		t.Errorf("tables:\n%s", tables)
	}
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

type key struct {
	proto policy.Protocol
	port  uint16
}

func probeFrom(t *testing.T, p *policy.Policy, from *netnstest.NS, target string) map[key]probe.State {
	t.Helper()
	rep, err := probe.Run(context.Background(), probe.Options{Policy: p, Target: target, Netns: from.Path, Timeout: 400 * time.Millisecond, Rate: 1000})
	if err != nil {
		t.Fatal(err)
	}
	got := map[key]probe.State{}
	for _, r := range rep.Results {
		got[key{r.Protocol, r.Port}] = r.State
	}
	return got
}

func expect(t *testing.T, what string, got map[key]probe.State, want map[key]probe.State) {
	t.Helper()
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s %s/%d: %s, want %s", what, k.proto, k.port, got[k], w)
		}
	}
}

// TestRulesetProvenByProbe applies the generated ruleset in a server namespace and probes it
// from an allowed host, a LAN host and an outside host, IPv4 and IPv6: what the outside host
// reached before, it now finds filtered, while the allowed hosts still reach it.
func TestRulesetProvenByProbe(t *testing.T) {
	server := netnstest.New(t, "nftsrv")
	clients := []*netnstest.NS{netnstest.New(t, "nftallow"), netnstest.New(t, "nftlan"), netnstest.New(t, "nftout")}
	for i, c := range clients {
		n := string(rune('1' + i))
		netnstest.Connect(t, server, c,
			[]netip.Prefix{pfx("10.79." + n + ".1/24"), pfx("fd79:" + n + "::1/64")},
			[]netip.Prefix{pfx("10.79." + n + ".2/24"), pfx("fd79:" + n + "::2/64")})
	}
	allowed, lan, outside := clients[0], clients[1], clients[2]
	var specs []netnstest.Spec
	for _, s := range []string{"tcp:[::]:8080", "tcp4:127.0.0.1:5432", "tcp4:0.0.0.0:10050", "tcp:[::]:10051", "tcp4:10.79.2.1:9000"} {
		sp, err := netnstest.ParseSpec(s)
		if err != nil {
			t.Fatal(err)
		}
		specs = append(specs, sp)
	}
	server.Listen(t, specs...)
	server.UDPEcho(t, "[::]:5353")
	p := load(t)

	tcp, udp := policy.TCP, policy.UDP
	expect(t, "outside, no ruleset", probeFrom(t, p, outside, "10.79.3.1"), map[key]probe.State{
		{tcp, 10050}: probe.Open, {tcp, 10051}: probe.Open, {udp, 5353}: probe.Open,
	})

	rs, err := nftables.Generate(p, nftables.Options{})
	if err != nil {
		t.Fatal(err)
	}
	nft(t, server, rs, "-c")
	nft(t, server, rs)

	expect(t, "outside", probeFrom(t, p, outside, "10.79.3.1"), map[key]probe.State{
		{tcp, 10050}: probe.Filtered, {tcp, 10051}: probe.Filtered, {udp, 5353}: probe.OpenFiltered,
		{tcp, 8080}: probe.Open, {tcp, 5432}: probe.Closed,
	})
	expect(t, "outside v6", probeFrom(t, p, outside, "fd79:3::1"), map[key]probe.State{
		{tcp, 10051}: probe.Filtered, {udp, 5353}: probe.OpenFiltered, {tcp, 8080}: probe.Open,
		{tcp, 10050}: probe.Closed, // IPv4 only: the ruleset does not touch IPv6 there
	})
	expect(t, "allowed", probeFrom(t, p, allowed, "10.79.1.1"), map[key]probe.State{
		{tcp, 10050}: probe.Open, {tcp, 10051}: probe.Open, {udp, 5353}: probe.Open, {tcp, 8080}: probe.Open,
	})
	expect(t, "allowed v6", probeFrom(t, p, allowed, "fd79:1::1"), map[key]probe.State{
		{tcp, 10051}: probe.Open, {udp, 5353}: probe.Open,
	})
	expect(t, "lan", probeFrom(t, p, lan, "10.79.2.1"), map[key]probe.State{
		{tcp, 9000}: probe.Open, {tcp, 10050}: probe.Filtered, {tcp, 8080}: probe.Open,
	})
	expect(t, "server itself", probeFrom(t, p, server, "10.79.3.1"), map[key]probe.State{
		{tcp, 10050}: probe.Open, {tcp, 10051}: probe.Open,
	})

	// And the verdicts agree: from outside, nothing is a violation any more.
	rep, err := probe.Run(context.Background(), probe.Options{Policy: p, Target: "10.79.3.1", Netns: outside.Path, Timeout: 400 * time.Millisecond, Rate: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if n := rep.Violations(); n != 0 {
		t.Errorf("%d violations from outside after the ruleset: %+v", n, rep.Results)
	}
}
