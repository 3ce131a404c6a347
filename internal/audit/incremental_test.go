package audit_test

import (
	"cmp"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/bindguard/bindguard/internal/audit"
	"github.com/bindguard/bindguard/internal/observed"
	"github.com/bindguard/bindguard/policy"
)

// groupKey is a socket's group for the incremental judge: its protocol and port.
type groupKey struct {
	proto observed.Protocol
	port  uint16
}

// inGroupOrder lists the sockets by group (protocol, then port), each group's in its order:
// the order Incremental's report is JudgeObservation's of.
func inGroupOrder(groups map[groupKey][]observed.Listener) []observed.Listener {
	keys := slices.SortedFunc(maps.Keys(groups), func(a, b groupKey) int {
		return cmp.Or(cmp.Compare(a.proto, b.proto), cmp.Compare(a.port, b.port))
	})
	var out []observed.Listener
	for _, k := range keys {
		out = append(out, groups[k]...)
	}
	return out
}

// randomSocket is a socket of one of a few ports, addresses, namespaces and owners, so that
// sockets meet the policy's services in every way (valid, invalid, unexpected, shared ports,
// several namespaces of one scope, a namespace known only from its sockets, hidden owners).
func randomSocket(r *rand.Rand) observed.Listener {
	ports := []uint16{22, 53, 80, 6379, 7777}
	addrs := []string{"0.0.0.0", "127.0.0.1", "::", "::1", "10.0.0.5"}
	labels := []string{"host", "c1", "c2", "other", "stray"}
	owners := []string{"sshd", "redis-server", "nginx", "", "python3"}
	proto := policy.TCP
	if r.IntN(4) == 0 {
		proto = policy.UDP
	}
	v6 := observed.V6OnlyNA
	addr := addrs[r.IntN(len(addrs))]
	if netip.MustParseAddr(addr).Is6() {
		v6 = []observed.V6Only{observed.V6OnlyNo, observed.V6OnlyYes}[r.IntN(2)]
	}
	l := obs(proto, addr, ports[r.IntN(len(ports))], v6, owners[r.IntN(len(owners))])
	l.Netns = labels[r.IntN(len(labels))]
	l.Inode = r.Uint64()
	return l
}

// TestIncrementalMatchesJudge changes random groups of random sockets, many times, and checks
// after each change that the incremental report is exactly the whole judgement's.
func TestIncrementalMatchesJudge(t *testing.T) {
	for _, name := range []string{"scoped", "builtin"} {
		t.Run(name, func(t *testing.T) {
			p := scoped(t)
			if name == "builtin" {
				p = policy.Builtin()
			}
			spaces := []observed.Namespace{
				{Label: "host", Host: true},
				{Label: "c1", Container: "c1"},
				{Label: "c2", Container: "c2"},
				{Label: "other", Netns: "other"},
			}
			for seed := range uint64(20) {
				r := rand.New(rand.NewPCG(seed, 7))
				base := observed.Observation{Namespaces: spaces, AllNamespaces: seed%2 == 0}
				if seed%5 == 4 {
					base.Namespaces = nil // every namespace known from its sockets only
					base.Unseen = []string{"a namespace could not be entered"}
				}
				groups := map[groupKey][]observed.Listener{}
				for range r.IntN(12) {
					l := randomSocket(r)
					k := groupKey{l.Protocol, l.Port}
					groups[k] = append(groups[k], l)
				}
				o := base
				o.Listeners = inGroupOrder(groups)
				inc := audit.NewIncremental(p, o)
				check := func(step int) {
					t.Helper()
					want := audit.JudgeObservation(p, o)
					got := inc.Report()
					if reflect.DeepEqual(want, got) {
						return
					}
					if diff := gocmp.Diff(want, got, cmpopts.EquateEmpty(), gocmp.AllowUnexported(audit.Finding{})); diff != "" {
						t.Fatalf("seed %d step %d: incremental report differs (-judge +incremental):\n%s", seed, step, diff)
					}
				}
				check(0)
				for step := 1; step <= 30; step++ {
					// Replace one group: add, remove or change its sockets.
					l := randomSocket(r)
					k := groupKey{l.Protocol, l.Port}
					var ls []observed.Listener
					switch r.IntN(3) {
					case 0: // the group goes
					case 1:
						ls = append(slices.Clone(groups[k]), l)
					default:
						for range 1 + r.IntN(3) {
							m := randomSocket(r)
							m.Protocol, m.Port = k.proto, k.port
							ls = append(ls, m)
						}
					}
					if len(ls) == 0 {
						delete(groups, k)
					} else {
						groups[k] = ls
					}
					inc.Set(k.proto, k.port, ls)
					o.Listeners = inGroupOrder(groups)
					check(step)
				}
			}
		})
	}
}

// BenchmarkIncremental: 10,000 listeners judged whole, against one group changed and the
// report assembled, and against building the incremental judgement from scratch.
func BenchmarkIncremental(b *testing.B) {
	p := policy.Builtin()
	groups := map[groupKey][]observed.Listener{}
	for i := range 10000 {
		l := obs(policy.TCP, "0.0.0.0", uint16(10000+i), observed.V6OnlyNA, fmt.Sprintf("p%d", i))
		groups[groupKey{l.Protocol, l.Port}] = []observed.Listener{l}
	}
	o := observed.Observation{Listeners: inGroupOrder(groups)}
	b.Run("judge", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			audit.JudgeObservation(p, o)
		}
	})
	b.Run("set+report", func(b *testing.B) {
		inc := audit.NewIncremental(p, o)
		l := obs(policy.TCP, "127.0.0.1", 6379, observed.V6OnlyNA, "redis-server")
		b.ReportAllocs()
		for b.Loop() {
			inc.Set(l.Protocol, l.Port, []observed.Listener{l})
			inc.Report()
		}
	})
	b.Run("new+report", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			audit.NewIncremental(p, o).Report()
		}
	})
}
