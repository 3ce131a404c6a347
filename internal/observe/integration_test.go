package observe_test

import (
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bindguard/bindguard/internal/audit"
	"github.com/bindguard/bindguard/internal/netnstest"
	"github.com/bindguard/bindguard/internal/observe"
	"github.com/bindguard/bindguard/internal/observed"
	"github.com/bindguard/bindguard/internal/proc"
	"github.com/bindguard/bindguard/policy"
)

func TestMain(m *testing.M) {
	netnstest.RunHelper()
	os.Exit(m.Run())
}

// TestHelperListener is the body of helper processes (netnstest.StartListener).
func TestHelperListener(t *testing.T) { netnstest.RunHelper() }

// layout is every kind of socket the issue lists: loopback v4 (two addresses) and v6, an
// address on an interface, the IPv4 wildcard, "::" with and without IPV6_V6ONLY, TCP and UDP on
// one port, and two addresses on one port.
var layout = []string{
	"tcp4:127.0.0.1:7001",
	"tcp4:127.0.0.2:7002",
	"tcp6:[::1]:7003",
	"tcp4:10.1.1.120:7004",
	"tcp4:0.0.0.0:7005",
	"tcp6:[::]:7006:v6only",
	"tcp6:[::]:7007",
	"tcp4:0.0.0.0:7008",
	"udp4:0.0.0.0:7008",
	"tcp4:127.0.0.1:7009",
	"tcp4:10.1.1.120:7009",
	"udp6:[::1]:7010",
}

type sock struct {
	Proto  observed.Protocol
	Addr   string
	V6Only observed.V6Only
}

func newLayoutNS(t *testing.T) *netnstest.NS {
	ns := netnstest.New(t, "bgaudit")
	ns.AddAddress(t, netip.MustParsePrefix("10.1.1.120/24"))
	var specs []netnstest.Spec
	for _, s := range layout {
		specs = append(specs, netnstest.MustSpec(t, s))
	}
	ns.Listen(t, specs...)
	return ns
}

func TestObserveNamespace(t *testing.T) {
	ns := newLayoutNS(t)
	for _, src := range []observe.Source{observe.SourceNetlink, observe.SourceProcfs, observe.SourceAuto} {
		t.Run(string(src), func(t *testing.T) {
			snap, err := observe.Observe(observe.Options{Source: src, Netns: ns.Name})
			if err != nil {
				t.Fatal(err)
			}
			v6 := func(known observed.V6Only) observed.V6Only {
				if src == observe.SourceProcfs {
					return observed.V6OnlyUnknown
				}
				return known
			}
			want := []sock{
				{"tcp", "127.0.0.1:7001", observed.V6OnlyNA},
				{"tcp", "127.0.0.2:7002", observed.V6OnlyNA},
				{"tcp", "[::1]:7003", v6(observed.V6OnlyYes)},
				{"tcp", "10.1.1.120:7004", observed.V6OnlyNA},
				{"tcp", "0.0.0.0:7005", observed.V6OnlyNA},
				{"tcp", "[::]:7006", v6(observed.V6OnlyYes)},
				{"tcp", "[::]:7007", v6(observed.V6OnlyNo)},
				{"tcp", "0.0.0.0:7008", observed.V6OnlyNA},
				{"tcp", "10.1.1.120:7009", observed.V6OnlyNA},
				{"tcp", "127.0.0.1:7009", observed.V6OnlyNA},
				{"udp", "0.0.0.0:7008", observed.V6OnlyNA},
				{"udp", "[::1]:7010", v6(observed.V6OnlyYes)},
			}
			var got []sock
			for _, o := range snap.Sockets {
				got = append(got, sock{o.Protocol, o.AddrPort().String(), o.V6Only})
				if o.Netns != ns.Name {
					t.Errorf("%s: netns %q, want %q", o.Socket, o.Netns, ns.Name)
				}
				if o.Owner != observed.OwnerKnown || len(o.Owners) == 0 || o.Owners[0].PID != os.Getpid() {
					t.Errorf("%s: owner %v %+v, want this test (pid %d)", o.Socket, o.Owner, o.Owners, os.Getpid())
				}
			}
			sortSocks(got)
			sortSocks(want)
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("sockets (-want +got):\n%s", d)
			}
			crossCheckSS(t, ns, snap)
		})
	}
}

// TestObserveNamespaceByPath names the namespace by its file instead of its name.
func TestObserveNamespaceByPath(t *testing.T) {
	ns := newLayoutNS(t)
	snap, err := observe.Observe(observe.Options{Netns: ns.Path})
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Sockets) != len(layout) || len(snap.Namespaces) != 1 || snap.Namespaces[0].Label != ns.Name {
		t.Errorf("%d sockets in %+v, want %d in %s", len(snap.Sockets), snap.Namespaces, len(layout), ns.Name)
	}
}

func sortSocks(s []sock) {
	slices.SortFunc(s, func(a, b sock) int { return strings.Compare(string(a.Proto)+a.Addr, string(b.Proto)+b.Addr) })
}

// crossCheckSS compares the socket list with `ss -H -tuln` run in the same namespace.
func crossCheckSS(t *testing.T, ns *netnstest.NS, snap *observe.Snapshot) {
	t.Helper()
	netnstest.RequireTool(t, "ss", "iproute2")
	var fromSS []string
	for _, line := range strings.Split(strings.TrimSpace(ns.Exec(t, "ss", "-H", "-tuln")), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		local := f[4]
		// ss writes "[::]:80", "0.0.0.0:80", "*:80" (dual-stack), "[::ffff:1.2.3.4]:80",
		// and may append "%lo" to an address bound to a device.
		if i := strings.LastIndex(local, "%"); i >= 0 && strings.Contains(local[i:], ":") {
			local = local[:i] + local[strings.LastIndex(local, ":"):]
		}
		local = strings.Replace(local, "*:", "[::]:", 1)
		fromSS = append(fromSS, f[0]+" "+local)
	}
	var ours []string
	for _, o := range snap.Sockets {
		ours = append(ours, fmt.Sprintf("%s %s", o.Protocol, o.AddrPort()))
	}
	slices.Sort(fromSS)
	slices.Sort(ours)
	if d := cmp.Diff(fromSS, ours); d != "" {
		t.Errorf("sockets differ from ss -H -tuln (-ss +bindguard):\n%s", d)
	}
}

func TestJudgeNamespace(t *testing.T) {
	ns := newLayoutNS(t)
	pol, err := policy.Parse("layout.yaml", []byte(`version: 1
networks:
  lan: [10.1.1.0/24]
services:
  - {name: lo4, protocol: tcp, port: 7001, address: 127.0.0.1, access: localhost_only}
  - {name: lo4b, protocol: tcp, port: 7002, address: 127.0.0.1, access: localhost_only}
  - {name: lo6, protocol: tcp, port: 7003, address: "::1", access: localhost_only}
  - {name: lanapp, protocol: tcp, port: 7004, address: 10.1.1.120, access: lan, allow: [lan]}
  - {name: db, protocol: tcp, port: 7005, access: localhost_only}
  - {name: web6, protocol: tcp, port: 7006, address: "::", v6only: true, access: public}
  - {name: web6only, protocol: tcp, port: 7007, address: "::", v6only: true, access: public}
  - {name: dns, protocol: udp, port: 7008, address: 0.0.0.0, access: public}
  - {name: api, protocol: tcp, port: 7009, address: 127.0.0.1, access: proxy_only}
  - {name: gone, protocol: tcp, port: 7011, address: 127.0.0.1, access: localhost_only}
`))
	if err != nil {
		t.Fatal(err)
	}
	snap, err := observe.Observe(observe.Options{Source: observe.SourceNetlink, Netns: ns.Name})
	if err != nil {
		t.Fatal(err)
	}
	rep := audit.Judge(pol, snap.Sockets)
	type row struct {
		Status   audit.Status
		Severity audit.Severity
		Service  string
		Where    string
		Exposure audit.Exposure
	}
	var got []row
	for _, f := range rep.Findings {
		r := row{Status: f.Status, Severity: f.Severity, Service: f.ServiceName()}
		if f.Actual != nil {
			r.Where = fmt.Sprintf("%s %s:%d", f.Protocol, f.Actual.Address, f.Actual.Port)
			r.Exposure = f.Actual.Exposure
			if f.Actual.Process == nil || f.Actual.Process.PID != os.Getpid() {
				t.Errorf("%s: process %+v, want this test", r.Where, f.Actual.Process)
			}
		}
		got = append(got, r)
	}
	want := []row{
		{audit.Invalid, audit.Critical, "db", "tcp 0.0.0.0:7005", audit.ExposureWildcardV4},
		{audit.Invalid, audit.Critical, "api", "tcp 10.1.1.120:7009", audit.ExposurePrivate},
		{audit.Unexpected, audit.High, "", "tcp 0.0.0.0:7008", audit.ExposureWildcardV4},
		{audit.Missing, audit.Medium, "gone", "", ""},
		{audit.Invalid, audit.Low, "lo4b", "tcp 127.0.0.2:7002", audit.ExposureLoopback},
		// Wider than declared (dual-stack, not v6only), but the class is public: low.
		{audit.Invalid, audit.Low, "web6only", "tcp :::7007", audit.ExposureDualStack},
		{audit.Unexpected, audit.Low, "", "udp ::1:7010", audit.ExposureLoopback},
		{audit.Valid, audit.Info, "lo4", "tcp 127.0.0.1:7001", audit.ExposureLoopback},
		{audit.Valid, audit.Info, "lo6", "tcp ::1:7003", audit.ExposureLoopback},
		{audit.Valid, audit.Info, "lanapp", "tcp 10.1.1.120:7004", audit.ExposurePrivate},
		{audit.Valid, audit.Info, "web6", "tcp :::7006", audit.ExposureWildcardV6},
		{audit.Valid, audit.Info, "api", "tcp 127.0.0.1:7009", audit.ExposureLoopback},
		{audit.Valid, audit.Info, "dns", "udp 0.0.0.0:7008", audit.ExposureWildcardV4},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("findings (-want +got):\n%s", d)
	}
	// 6 of 10 services valid (lo4, lo6, lanapp, web6, dns; api has an invalid socket too) = 50,
	// minus 20 (db) minus 20 (api) minus 10 (web6only) minus 10 (lo4b) minus 15 (unexpected
	// tcp 0.0.0.0:7008): clamped to 0.
	if rep.Score != 0 {
		t.Errorf("score %d, want 0", rep.Score)
	}
}

func TestObserveAllNamespaces(t *testing.T) {
	a := netnstest.New(t, "bgall")
	b := netnstest.New(t, "bgall")
	a.Listen(t, netnstest.MustSpec(t, "tcp4:127.0.0.1:7201"))
	pid := b.StartListener(t, "TestHelperListener", netnstest.MustSpec(t, "tcp4:0.0.0.0:7202"), netnstest.MustSpec(t, "udp6:[::]:7203:v6only"))
	snap, err := observe.Observe(observe.Options{Netns: observe.NetnsAll})
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]observed.Listener{}
	for _, o := range snap.Sockets {
		found[o.Netns+" "+o.Socket.String()] = o
	}
	if o, ok := found[a.Name+" tcp 127.0.0.1:7201"]; !ok || o.Owners[0].PID != os.Getpid() {
		t.Errorf("namespace %s: tcp 127.0.0.1:7201 not found with this test as owner: %+v", a.Name, o)
	}
	for _, k := range []string{" tcp 0.0.0.0:7202", " udp [::]:7203"} {
		o, ok := found[b.Name+k]
		if !ok {
			t.Errorf("namespace %s:%s not found; have %v", b.Name, k, keys(found))
			continue
		}
		if o.Owner != observed.OwnerKnown || o.Owners[0].PID != pid {
			t.Errorf("%s%s: owner %+v, want the helper (pid %d)", b.Name, k, o.Owners, pid)
		}
	}
	if o := found[b.Name+" udp [::]:7203"]; o.V6Only != observed.V6OnlyYes {
		t.Errorf("udp [::]:7203 v6only = %v, want yes", o.V6Only)
	}
	labels := map[string]bool{}
	for _, ns := range snap.Namespaces {
		labels[ns.Label] = true
	}
	if !labels[a.Name] || !labels[b.Name] {
		t.Errorf("namespaces %v lack %s or %s", labels, a.Name, b.Name)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestOwnerScanBPF: the kernel-side owner scan (a BPF task_file iterator) finds exactly what the
// /proc scan finds, for sockets of this process and of another one, in every namespace.
func TestOwnerScanBPF(t *testing.T) {
	ns := newLayoutNS(t)
	pid := ns.StartListener(t, "TestHelperListener", netnstest.MustSpec(t, "tcp4:127.0.0.1:7301"), netnstest.MustSpec(t, "udp6:[::]:7302:v6only"))
	var snaps []*observe.Snapshot
	for _, scan := range []proc.OwnerScan{proc.OwnerScanProcfs, proc.OwnerScanBPF} {
		snap, err := observe.Observe(observe.Options{Netns: observe.NetnsAll, OwnerScan: scan})
		if err != nil {
			t.Fatalf("owner scan %s: %v (the bpf scan needs root and a kernel with BTF and BPF iterators)", scan, err)
		}
		if snap.OwnerScan != scan {
			t.Errorf("owner scan %s ran as %s", scan, snap.OwnerScan)
		}
		snaps = append(snaps, snap)
	}
	owners := func(s *observe.Snapshot) map[string][]int {
		m := map[string][]int{}
		for _, o := range s.Sockets {
			k := o.Netns + " " + o.Socket.String()
			m[k] = []int{}
			for _, p := range o.Owners {
				m[k] = append(m[k], p.PID)
			}
		}
		return m
	}
	procfs, bpf := owners(snaps[0]), owners(snaps[1])
	// Sockets opened or closed between the two scans by other processes of the host are not
	// comparable; every socket of the test's namespace is.
	for k, v := range procfs {
		if strings.HasPrefix(k, ns.Name+" ") && !slices.Equal(v, bpf[k]) {
			t.Errorf("%s: owners %v by procfs, %v by bpf", k, v, bpf[k])
		}
	}
	for k, want := range map[string]int{" tcp 127.0.0.1:7301": pid, " udp [::]:7302": pid, " tcp 127.0.0.1:7001": os.Getpid()} {
		if got := bpf[ns.Name+k]; len(got) != 1 || got[0] != want {
			t.Errorf("%s%s: bpf owners %v, want [%d]", ns.Name, k, got, want)
		}
	}
	// The process details come from /proc either way.
	for _, o := range snaps[1].Sockets {
		if o.Netns == ns.Name && (len(o.Owners) == 0 || o.Owners[0].Name == "" || o.Owners[0].Exe == "") {
			t.Errorf("%s %s: owner without name or exe: %+v", o.Netns, o.Socket, o.Owners)
		}
	}
}

func TestOwnerScanBPFNeedsRealProc(t *testing.T) {
	_, err := observe.Observe(observe.Options{ProcRoot: "../../testdata/proc/basic", NetnsDir: "../../testdata/proc/no-netns", OwnerScan: proc.OwnerScanBPF})
	if err == nil || !strings.Contains(err.Error(), "reads the kernel") {
		t.Errorf("bpf owner scan over a fixture tree: %v, want an error that it reads the kernel", err)
	}
}
