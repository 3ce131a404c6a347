package audit

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"runtime"
	"testing"

	"github.com/bindguard/bindguard/internal/observed"
	"github.com/bindguard/bindguard/policy"
)

// The judge builds its findings with slabs, caches and appends instead of an allocation and an
// fmt.Sprintf each (scratch). The functions below are the judge as it was before, kept as the
// reference: every finding must be the same, field for field and word for word.

// judge returns the finding for a socket on a declared service's port.
func refJudge(s policy.Service, o observed.Listener) Finding {
	f := refFinding(o)
	name := s.Name
	f.Service = &name
	f.Expected = expected(s)
	exp := f.Actual.Exposure
	where := fmt.Sprintf("%s listens on %s, %s", refOwnerWords(o), addrPort(o.Addr, o.Port), exp.words())
	loopbackOnly := s.Access.LoopbackOnly()

	switch {
	case !s.PermitsBind(o.Addr): // unmaps; "::" is never loopback nor inside an allow list
		f.Status = Invalid
		if loopbackOnly {
			f.Severity = Critical
			f.exposesLoopbackOnly = true
		} else {
			f.Severity = High
		}
		f.Reason = fmt.Sprintf("%s; the policy allows %s", where, s.AllowedWords())
	case s.Address.IsValid() && !sameBinding(s, o):
		f.Status = Invalid
		decl := declWords(s)
		if wider(s, exp) && s.Access.Confined() {
			f.Severity = High
			f.Reason = fmt.Sprintf("%s, wider than the declared %s", where, decl)
		} else {
			f.Severity = Low
			f.Reason = fmt.Sprintf("%s; the policy declares %s", where, decl)
		}
	case s.Process != "" && o.Owner == observed.OwnerKnown && !ownedBy(o.Owners, s.Process):
		f.Status = Invalid
		f.Severity = High
		f.Reason = fmt.Sprintf("%s; the policy expects process %q on this port", where, s.Process)
	default:
		f.Status = Valid
		f.Severity = Info
		f.Reason = fmt.Sprintf("%s, as the policy allows (%s)", where, s.Access)
		if s.Access.TakesAllow() && exp != ExposureLoopback {
			// The audit sees where a socket binds, not the firewall in front of it.
			f.Reason += "; that hosts outside its allow list cannot reach it is not verified (docs/audit.md: verifying reachability)"
		}
	}
	return f
}

// unexpected returns the finding for a socket no service declares.
func refUnexpected(o observed.Listener) Finding {
	f := refFinding(o)
	f.Status = Unexpected
	exp := f.Actual.Exposure
	reason := fmt.Sprintf("%s listens on %s, %s; no service in the policy declares %s port %d", refOwnerWords(o), addrPort(o.Addr, o.Port), exp.words(), o.Protocol, o.Port)
	switch {
	case exp == ExposureLoopback:
		f.Severity = Low
	default:
		f.Severity = High
		if e, ok := policy.LookupCatalogue(policy.Protocol(o.Protocol), o.Port); ok && e.Category.Sensitive() {
			f.Severity = Critical
			reason += fmt.Sprintf("; %s port %d is %s (%s), which must not be reachable from outside", o.Protocol, o.Port, e.Name, e.Category)
		}
	}
	f.Reason = reason
	return f
}

// finding fills the parts every socket finding shares.
func refFinding(o observed.Listener) Finding {
	a := &Actual{
		Address: o.Addr.WithZone("").String(), Port: o.Port, Family: o.Family,
		Exposure: ExposureOf(o.Addr, o.V6Only), Netns: o.Netns,
	}
	switch o.V6Only {
	case observed.V6OnlyYes, observed.V6OnlyNo:
		v := o.V6Only == observed.V6OnlyYes
		a.V6Only = &v
	}
	if o.Owner == observed.OwnerKnown && len(o.Owners) > 0 {
		p := o.Owners[0]
		a.Process = &p
	}
	return Finding{Protocol: policy.Protocol(o.Protocol), Actual: a}
}

// ownerWords names who holds a socket ("nginx (pid 900, unit nginx.service) and 3 more"), or
// says why that is unknown.
func refOwnerWords(o observed.Listener) string {
	switch o.Owner {
	case observed.OwnerKnown:
		if len(o.Owners) > 0 {
			// One process may hold a socket in several descriptors (or threads): count
			// processes, not entries.
			s := o.Owners[0].Label()
			pids := map[int]bool{o.Owners[0].PID: true}
			for _, p := range o.Owners[1:] {
				pids[p.PID] = true
			}
			if n := len(pids) - 1; n > 0 {
				s += fmt.Sprintf(" and %d more", n)
			}
			return s
		}
	case observed.OwnerHidden:
		return "a process whose files bindguard may not read (owner hidden)"
	case observed.OwnerKernel:
		return "the kernel"
	case observed.OwnerUnknown:
		return "an unknown owner (its /proc/net line has no readable inode)"
	}
	return "a process not visible here (another PID namespace, or it has just closed the socket)"
}

// TestScratchJudgeMatchesReference judges random sockets (every owner state, shared and
// repeated owners, IPv4, IPv6, mapped and zoned addresses, declared, sensitive and other ports)
// both ways, one scratch for all of them as in an audit, and wants identical findings.
func TestScratchJudgeMatchesReference(t *testing.T) {
	p, err := policy.Parse("t.yaml", []byte(`version: 1
networks:
  lan: [192.168.1.0/24]
services:
  - {name: redis, protocol: tcp, port: 6379, address: 127.0.0.1, access: localhost_only, process: redis-server}
  - {name: dns, protocol: udp, port: 53, address: 127.0.0.1, access: localhost_only}
  - {name: web, protocol: tcp, port: 443, address: "::", access: public}
  - {name: web6, protocol: tcp, port: 8443, address: "::", v6only: true, access: public}
  - {name: lanapp, protocol: tcp, port: 9000, access: lan, allow: [lan]}
  - {name: zabbix, protocol: tcp, port: 10050, address: 192.168.1.5, access: restricted, allow: [192.168.1.9]}
  - {name: sshd, protocol: tcp, port: 22, access: public, process: sshd}
`))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(14, 4))
	addrs := []string{"127.0.0.1", "127.0.0.53", "0.0.0.0", "::", "::1", "::ffff:127.0.0.1", "::ffff:0.0.0.0", "10.0.0.1", "192.168.1.5", "192.168.1.7", "8.8.8.8", "fe80::1%eth0", "fe80::1%lo", "2001:db8::1"}
	ports := []uint16{22, 53, 443, 5432, 6379, 8443, 9000, 10050, 3306, 8080, 11211, 1}
	procs := []observed.Process{
		{PID: 1, Name: "systemd", Unit: "init.scope"},
		{PID: 900, Name: "redis-server", Exe: "/usr/bin/redis-server", Unit: "redis.service", User: "redis"},
		{PID: 901, Name: "nginx", Unit: "nginx.service", ContainerPID: 7},
		{PID: 902, Name: "", Container: "abc123def456", Unit: "docker-abc123def456.scope"},
		{PID: 903, Name: "sshd", Exe: "/usr/sbin/sshd", ContainerPID: 903},
		{PID: 904, Name: "a-very-long-process-name", Exe: "/opt/x/bin/a-very-long-process-name", Container: "web1", Unit: "x.service"},
	}
	sc := newScratch(nil)
	for i := range 5000 {
		a := netip.MustParseAddr(addrs[rng.IntN(len(addrs))])
		fam := observed.IPv4
		v6 := observed.V6OnlyNA
		if a.Is6() {
			fam = observed.IPv6
			v6 = []observed.V6Only{observed.V6OnlyYes, observed.V6OnlyNo, observed.V6OnlyUnknown}[rng.IntN(3)]
		}
		proto := observed.TCP
		if rng.IntN(4) == 0 {
			proto = observed.UDP
		}
		o := observed.Listener{Socket: observed.Socket{Protocol: proto, Family: fam, Addr: a, Port: ports[rng.IntN(len(ports))], V6Only: v6, Inode: uint64(i + 1)}, Netns: []string{"host", "web1"}[rng.IntN(2)]}
		o.Owner = observed.OwnerState(rng.IntN(5))
		if o.Owner == observed.OwnerKnown {
			for range 1 + rng.IntN(3) {
				o.Owners = append(o.Owners, procs[rng.IntN(len(procs))])
			}
		}
		var got, want Finding
		cands := []int{}
		for k, s := range p.Services {
			if s.Protocol == policy.Protocol(o.Protocol) && s.Port == o.Port {
				cands = append(cands, k)
			}
		}
		if len(cands) == 0 {
			got, want = sc.unexpected(o), refUnexpected(o)
		} else {
			s := p.Services[pick(p.Services, cands, o.Addr)]
			got, want = sc.judge(s, o), refJudge(s, o)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("socket %+v:\n got  %+v %+v\n want %+v %+v", o, got, *got.Actual, want, *want.Actual)
		}
	}
	if len(sc.labels) > len(procs) || len(sc.addrs) > len(addrs) {
		t.Errorf("caches hold %d labels and %d addresses, want at most %d and %d", len(sc.labels), len(sc.addrs), len(procs), len(addrs))
	}
}

// TestParallelJudgeMatchesSerial: an audit of many sockets is judged in parallel chunks; the
// report must be the one judging them in one goroutine gives.
func TestParallelJudgeMatchesSerial(t *testing.T) {
	p, err := policy.Parse("t.yaml", []byte(`version: 1
services:
  - {name: redis, protocol: tcp, port: 6379, address: 127.0.0.1, access: localhost_only, process: redis-server}
  - {name: web, protocol: tcp, port: 443, address: "::", access: public}
`))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(14, 5))
	var ls []observed.Listener
	for i := range 3*minJudgeChunk + 17 {
		a := netip.AddrFrom4([4]byte{127, 0, 0, byte(rng.IntN(3))})
		if rng.IntN(5) == 0 {
			a = netip.IPv4Unspecified()
		}
		port := uint16(1024 + rng.IntN(4000))
		switch rng.IntN(10) {
		case 0:
			port = 6379
		case 1:
			port = 443
		}
		o := observed.Listener{Socket: observed.Socket{Protocol: observed.TCP, Family: observed.IPv4, Addr: a, Port: port, V6Only: observed.V6OnlyNA, Inode: uint64(i + 1)}, Netns: "host", Owner: observed.OwnerKnown,
			Owners: []observed.Process{{PID: 100 + rng.IntN(50), Name: []string{"redis-server", "nginx", "x"}[rng.IntN(3)]}}}
		if i == 2*minJudgeChunk+3 {
			o.Owner, o.Owners = observed.OwnerHidden, nil // in the last chunk only
		}
		ls = append(ls, o)
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	serial := Judge(p, ls)
	runtime.GOMAXPROCS(4)
	if n := min(runtime.GOMAXPROCS(0), maxJudgeChunks, len(ls)/minJudgeChunk); n < 2 {
		t.Fatalf("%d chunks: the test does not judge in parallel", n)
	}
	parallel := Judge(p, ls)
	if !reflect.DeepEqual(serial, parallel) {
		t.Errorf("parallel judging differs: summary %+v score %d notes %q, serial %+v %d %q", parallel.Summary, parallel.Score, parallel.Notes, serial.Summary, serial.Score, serial.Notes)
		for i := range serial.Findings {
			if !reflect.DeepEqual(serial.Findings[i], parallel.Findings[i]) {
				t.Fatalf("finding %d: %+v, serial %+v", i, parallel.Findings[i], serial.Findings[i])
			}
		}
	}
	if len(serial.Notes) == 0 {
		t.Error("the hidden owner in the last chunk was not noted")
	}
}
