package audit_test

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"github.com/bindguard/bindguard/internal/audit"
	"github.com/bindguard/bindguard/internal/observed"
	"github.com/bindguard/bindguard/policy"
)

// dangerous is the predicate init's deny-by-default keeps: a catalogue database, cache or
// control API listening beyond loopback, in any namespace.
func dangerous(o observed.Observation) bool {
	for _, l := range o.Listeners {
		e, ok := policy.LookupCatalogue(policy.Protocol(l.Protocol), l.Port)
		if ok && e.Category.Sensitive() && audit.ExposureOf(l.Addr, l.V6Only) != audit.ExposureLoopback {
			return true
		}
	}
	return false
}

// checkDraft drafts a policy from o and holds it to init's contract: it validates (each scope
// too, as a policy of its own, until Validate knows scopes), the host scope reads back from
// Marshal, and the audit of the same observation against it fails (at the default
// threshold, medium) exactly when something dangerous is exposed.
func checkDraft(t *testing.T, o observed.Observation) *audit.Draft {
	t.Helper()
	d := audit.DraftPolicy(o)
	p := d.Policy
	policy.Defaults(p)
	if err := policy.Validate(p); err != nil {
		t.Fatalf("draft does not validate: %v\n%s", err, policy.Marshal(p))
	}
	for _, sc := range p.Scopes {
		alone := &policy.Policy{Format: policy.FormatNative, Version: 1, TrustedProxies: p.TrustedProxies, ClientIPHeader: p.ClientIPHeader, Services: sc.Services}
		policy.Defaults(alone)
		if err := policy.Validate(alone); err != nil {
			t.Fatalf("scope %s does not validate: %v\n%s", sc.Name, err, policy.Marshal(alone))
		}
		if len(sc.Match) != 1 {
			t.Fatalf("scope %s matches %q", sc.Name, sc.Match)
		}
	}
	back, err := policy.Parse("init.yaml", policy.Marshal(p))
	if err != nil {
		t.Fatalf("Parse(Marshal(draft)): %v\n%s", err, policy.Marshal(p))
	}
	if len(back.Services) != len(p.Services) {
		t.Fatalf("read back %d services, drafted %d", len(back.Services), len(p.Services))
	}
	r := audit.JudgeObservation(p, o)
	if got, want := r.Fails(audit.Medium), dangerous(o); got != want {
		var lines []string
		for _, f := range r.Findings {
			if f.Status != audit.Valid {
				lines = append(lines, fmt.Sprintf("%s %s %s: %s", f.Netns, f.Status, f.Severity, f.Reason))
			}
		}
		t.Fatalf("audit after init fails %v, dangerous exposure %v; findings:\n%s\n%s", got, want, strings.Join(lines, "\n"), policy.Marshal(p))
	}
	for _, n := range r.Namespaces {
		if !n.Owed {
			t.Errorf("namespace %s is in no drafted scope", n.Label)
		}
	}
	return d
}

var (
	draftAddrs = []string{"127.0.0.1", "127.0.0.2", "::1", "0.0.0.0", "::", "::", "10.0.0.5", "192.168.1.3",
		"fe80::1", "2001:db8::1", "::ffff:127.0.0.1", "::ffff:0.0.0.0", "::ffff:10.0.0.5", "8.8.8.8"}
	// 5432 postgresql, 6379 redis, 11211 memcached, 2375 docker: sensitive; 22, 80, 53,
	// 8080, 9000, 40000: not.
	draftPorts  = []uint16{22, 80, 53, 5432, 6379, 11211, 2375, 8080, 9000, 40000}
	draftOwners = []string{"redis-server", "postgres", "nginx", "a-very-long-process-name", `postgres "evil"\`, "---", "", "tab\there"}
)

func randomObservation(rng *rand.Rand) observed.Observation {
	spaces := []observed.Namespace{{Label: "host", Host: true, Inode: 1}}
	for i := range rng.IntN(4) {
		ns := observed.Namespace{Label: fmt.Sprintf("c%d", i), Inode: uint64(100 + i)}
		switch rng.IntN(3) {
		case 0:
			ns.Container = ns.Label
		case 1:
			ns.Netns = ns.Label
		default:
			ns.Container, ns.Netns = "ct-"+ns.Label, ns.Label
		}
		spaces = append(spaces, ns)
	}
	o := observed.Observation{Namespaces: spaces, AllNamespaces: true}
	for range rng.IntN(14) {
		ns := spaces[rng.IntN(len(spaces))]
		a := netip.MustParseAddr(draftAddrs[rng.IntN(len(draftAddrs))])
		proto := observed.TCP
		if rng.IntN(4) == 0 {
			proto = observed.UDP
		}
		s := observed.Socket{Protocol: proto, Addr: a, Port: draftPorts[rng.IntN(len(draftPorts))], Inode: rng.Uint64N(1000) + 1}
		if a.Is4() {
			s.Family, s.V6Only = observed.IPv4, observed.V6OnlyNA
		} else {
			s.Family, s.V6Only = observed.IPv6, []observed.V6Only{observed.V6OnlyYes, observed.V6OnlyNo, observed.V6OnlyUnknown}[rng.IntN(3)]
		}
		l := observed.Listener{Socket: s, Netns: ns.Label}
		switch rng.IntN(6) {
		case 0:
			l.Owner = observed.OwnerHidden
		case 1:
			l.Owner = observed.OwnerGone
		default:
			l.Owner = observed.OwnerKnown
			pid := rng.IntN(5) + 1
			name := draftOwners[rng.IntN(len(draftOwners))]
			for range rng.IntN(3) + 1 { // one process, several descriptors; sometimes a second
				l.Owners = append(l.Owners, observed.Process{PID: pid, Name: name})
			}
			if rng.IntN(4) == 0 {
				l.Owners = append(l.Owners, observed.Process{PID: pid + 10, Name: draftOwners[rng.IntN(len(draftOwners))]})
			}
		}
		o.Listeners = append(o.Listeners, l)
		if rng.IntN(3) == 0 { // the same port in another namespace, at another address
			l2 := l
			l2.Netns = spaces[rng.IntN(len(spaces))].Label
			l2.Addr = netip.MustParseAddr(draftAddrs[rng.IntN(len(draftAddrs))])
			if l2.Addr.Is4() {
				l2.Family, l2.V6Only = observed.IPv4, observed.V6OnlyNA
			} else {
				l2.Family, l2.V6Only = observed.IPv6, observed.V6OnlyYes
			}
			o.Listeners = append(o.Listeners, l2)
		}
	}
	return o
}

// TestDraftProperty: over generated socket sets (any mix of addresses, ports shared across
// namespaces, dual-stack and v6only pairs, dangerous ports), init's draft validates and the
// audit right after it fails exactly when something dangerous is exposed.
func TestDraftProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 5)) // fixed: every run checks the same cases
	sawDanger, sawSafe := 0, 0
	for i := range 3000 {
		o := randomObservation(rng)
		t.Run(fmt.Sprint(i), func(t *testing.T) { checkDraft(t, o) })
		if dangerous(o) {
			sawDanger++
		} else {
			sawSafe++
		}
	}
	if sawDanger < 100 || sawSafe < 100 {
		t.Errorf("generated %d dangerous and %d safe cases: the generator no longer covers both", sawDanger, sawSafe)
	}
}

func tcp(ns, addr string, port uint16, v6 observed.V6Only, owner string) observed.Listener {
	l := obs(policy.TCP, addr, port, v6, owner)
	l.Netns = ns
	return l
}

// TestDraftRealCases: the states issue 13 found init failing on.
func TestDraftRealCases(t *testing.T) {
	host := observed.Namespace{Label: "host", Host: true}
	web1 := observed.Namespace{Label: "web1", Container: "web1"}
	web2 := observed.Namespace{Label: "web2", Container: "web2"}
	for name, tc := range map[string]struct {
		o         observed.Observation
		dangerous bool
	}{
		"postgres listen_addresses='*' (0.0.0.0 and :: v6only)": {observed.Observation{Listeners: []observed.Listener{
			tcp("host", "0.0.0.0", 5432, observed.V6OnlyNA, "postgres"), tcp("host", "::", 5432, observed.V6OnlyYes, "postgres"),
		}}, true},
		"redis bind * -::* (0.0.0.0 and :: of unknown v6only, from /proc/net)": {observed.Observation{Listeners: []observed.Listener{
			tcp("host", "0.0.0.0", 6379, observed.V6OnlyNA, "redis-server"), tcp("host", "::", 6379, observed.V6OnlyUnknown, "redis-server"),
		}}, true},
		"a web server on 0.0.0.0 and :: v6only": {observed.Observation{Listeners: []observed.Listener{
			tcp("host", "0.0.0.0", 80, observed.V6OnlyNA, "nginx"), tcp("host", "::", 80, observed.V6OnlyYes, "nginx"),
		}}, false},
		"redis on loopback in one container, on a wildcard in another": {observed.Observation{Namespaces: []observed.Namespace{host, web1, web2}, Listeners: []observed.Listener{
			tcp("web1", "127.0.0.1", 6379, observed.V6OnlyNA, "redis-server"), tcp("web2", "0.0.0.0", 6379, observed.V6OnlyNA, "redis-server"),
		}}, true},
		"redis on loopback in both containers": {observed.Observation{Namespaces: []observed.Namespace{host, web1, web2}, Listeners: []observed.Listener{
			tcp("web1", "127.0.0.1", 6379, observed.V6OnlyNA, "redis-server"), tcp("web2", "::1", 6379, observed.V6OnlyYes, "redis-server"),
			tcp("web2", "127.0.0.1", 6379, observed.V6OnlyNA, "redis-server"),
		}}, false},
		"an app on 0.0.0.0 and 127.0.0.1 (SO_REUSEPORT)": {observed.Observation{Listeners: []observed.Listener{
			tcp("host", "0.0.0.0", 8080, observed.V6OnlyNA, "app"), tcp("host", "127.0.0.1", 8080, observed.V6OnlyNA, "app"),
		}}, false},
	} {
		t.Run(name, func(t *testing.T) {
			if dangerous(tc.o) != tc.dangerous {
				t.Fatalf("case mislabelled")
			}
			checkDraft(t, tc.o)
		})
	}
}

// TestDraftUnstableNamespace: a namespace known only by its inode gets a scope that is not in
// the policy (init writes it commented out) and a warning.
func TestDraftUnstableNamespace(t *testing.T) {
	o := observed.Observation{
		Namespaces: []observed.Namespace{{Label: "host", Host: true}, {Label: "net:[4026532301]", Inode: 4026532301}, {Label: "db", Netns: "db"}},
		Listeners:  []observed.Listener{tcp("net:[4026532301]", "127.0.0.1", 9000, observed.V6OnlyNA, "app"), tcp("db", "127.0.0.1", 5432, observed.V6OnlyNA, "postgres")},
	}
	d := audit.DraftPolicy(o)
	if len(d.Policy.Scopes) != 1 || d.Policy.Scopes[0].Name != "db" || d.Policy.Scopes[0].Match[0] != "db" {
		t.Errorf("scopes %+v, want db only", d.Policy.Scopes)
	}
	if len(d.Unstable) != 1 || d.Unstable[0].Name != "netns-4026532301" || len(d.Unstable[0].Services) != 1 || d.Unstable[0].Match[0] != `net:\[4026532301\]` {
		t.Errorf("unstable %+v", d.Unstable)
	}
	if len(d.Warnings) != 1 || !strings.Contains(d.Warnings[0], "net:[4026532301] has no stable name") {
		t.Errorf("warnings %q", d.Warnings)
	}
}

// TestDraftDenyByDefault: a dangerous exposure is declared with its safe class.
func TestDraftDenyByDefault(t *testing.T) {
	d := audit.DraftPolicy(observed.Observation{Listeners: []observed.Listener{
		tcp("host", "0.0.0.0", 6379, observed.V6OnlyNA, "redis-server"), tcp("host", "127.0.0.1", 6379, observed.V6OnlyNA, "redis-server"),
	}})
	s := d.Policy.Services
	if len(s) != 1 || s[0].Access != policy.LocalhostOnly || s[0].Address.IsValid() || s[0].Process != "redis-server" {
		t.Errorf("services %+v, want one localhost_only redis with no address", s)
	}
	if c := d.Comments[policy.HostScope][s[0].Name]; len(c) != 3 || !strings.HasPrefix(c[2], "WARNING: redis") {
		t.Errorf("comments %q", c)
	}
}

// TestDraftOneNamespace: init --netns NAME drafts that namespace's sockets as the top-level
// services, which the audit of that namespace alone holds it to.
func TestDraftOneNamespace(t *testing.T) {
	o := observed.Observation{
		Namespaces: []observed.Namespace{{Label: "db", Netns: "db"}},
		Listeners:  []observed.Listener{tcp("db", "127.0.0.1", 5432, observed.V6OnlyNA, "postgres")},
	}
	d := checkDraft(t, o)
	if len(d.Policy.Scopes) != 0 || len(d.Policy.Services) != 1 {
		t.Errorf("scopes %+v services %+v, want one top-level service", d.Policy.Scopes, d.Policy.Services)
	}
}
