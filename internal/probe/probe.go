// Package probe checks reachability from the outside in: from the vantage point it runs in (or
// a named network namespace) it connects to every port a policy scope declares on a target host,
// and to an optional range, over TCP and UDP, IPv4 and IPv6, and judges each answer by what the
// policy lets this vantage reach. The audit sees where a service binds; the probe sees whether
// the path to it (firewall, IPAddressAllow=, the network between) keeps out who it should.
//
// The probe is bounded and polite by contract: a target is one host named explicitly (an IP
// literal or a host name, never a prefix or a range of hosts), every probe waits its turn under
// a rate limit and a concurrency limit, each has a timeout, and each is logged at debug level.
// It fails closed: a probe it cannot make is an error, never a guessed state.
package probe

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bindguard/bindguard/policy"
)

// State is what one probe saw.
type State string

// The states, as nmap names them.
const (
	// Open: the TCP handshake completed, or a UDP datagram was answered.
	Open State = "open"
	// Closed: refused (a TCP RST, or an ICMP port unreachable for UDP).
	Closed State = "closed"
	// Filtered: no answer in time, or an ICMP error other than port unreachable.
	Filtered State = "filtered"
	// OpenFiltered: UDP with no reply, which cannot tell an open, silent service from a
	// firewall dropping the datagram.
	OpenFiltered State = "open|filtered"
)

// Verdict is the judgement of one result from this vantage point.
type Verdict string

// The verdicts.
const (
	OK        Verdict = "ok"
	Violation Verdict = "violation"
)

// Defaults of Options.
const (
	DefaultConcurrency = 64
	DefaultRate        = 200
	DefaultTimeout     = time.Second
	// MaxRate is the highest rate Options accept, probes per second.
	MaxRate = 100000
	// MaxAddresses bounds how many addresses of a resolved host name are probed.
	MaxAddresses = 16
)

// Options configure one probe run.
type Options struct {
	// Policy is the validated policy; Scope names the target's scope ("" is the host scope).
	Policy *policy.Policy
	Scope  string
	// Target is one host: an IP literal or a host name (resolved, every address probed).
	Target string
	// Netns is the path of a network namespace to probe from ("" is the caller's own).
	Netns string
	// Ports are extra ports to probe besides the scope's declared ones; an open one that the
	// scope does not declare is a violation (unexpected).
	Ports []PortRange
	// Source, when valid, is the vantage's address for the verdicts instead of the local
	// address of each connection (for a vantage behind NAT).
	Source netip.Addr
	// Concurrency, Rate (probes per second) and Timeout (per probe); zero means the default.
	Concurrency int
	Rate        int
	Timeout     time.Duration
	// Logger gets every probe at debug level; nil discards.
	Logger *slog.Logger
	// Resolve resolves a host name; nil uses the system resolver of the calling process (in
	// its own network namespace, before --from is entered).
	Resolve func(ctx context.Context, host string) ([]netip.Addr, error)
}

// PortRange is a protocol and an inclusive range of ports.
type PortRange struct {
	Protocol policy.Protocol
	Lo, Hi   uint16
}

// Result is one (address, protocol, port) probed.
type Result struct {
	// Service is the declared service on the port ("" for an undeclared port).
	Service  string
	Access   policy.Access
	Protocol policy.Protocol
	Address  netip.Addr
	Port     uint16
	// Source is the vantage's address the verdict was judged by.
	Source  netip.Addr
	State   State
	Verdict Verdict
	Reason  string
	// Contradiction is set when an allow-list service (lan, restricted), whose bind the audit
	// can call valid, is reached from outside its allow list: the audit's verdict is wrong for
	// this path.
	Contradiction bool
}

// Report is the outcome of one run.
type Report struct {
	Target    string
	Scope     string
	Netns     string
	Addresses []netip.Addr
	// Results are every declared port and the undeclared ports found open, sorted by
	// address, protocol and port.
	Results []Result
	// Probes counts every probe sent; Undeclared counts the undeclared ports per state that
	// are not listed in Results (closed and filtered ones, and silent UDP ones).
	Probes     int
	Undeclared map[State]int
}

// Violations counts the results whose verdict is a violation.
func (r *Report) Violations() int {
	n := 0
	for _, res := range r.Results {
		if res.Verdict == Violation {
			n++
		}
	}
	return n
}

// ParseTarget checks that s names exactly one host, as policy.ParseHost does: an IP literal
// (IPv4-mapped is unmapped) or a host name, never prefixes, ranges, lists, wildcards or
// addresses that are not one host, so the probe never sweeps a network.
func ParseTarget(s string) (addr netip.Addr, host string, err error) {
	addr, host, err = policy.ParseHost(s)
	if err != nil {
		return netip.Addr{}, "", fmt.Errorf("probe: %w", err)
	}
	return addr, host, nil
}

// ParsePorts reads a port list: comma-separated ports or ranges, each optionally prefixed by
// "tcp:" or "udp:" (TCP when not), as "1-1024,udp:53,udp:123".
func ParsePorts(s string) ([]PortRange, error) {
	var out []PortRange
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		proto := policy.TCP
		if p, rest, ok := strings.Cut(item, ":"); ok {
			switch p {
			case "tcp":
				proto = policy.TCP
			case "udp":
				proto = policy.UDP
			default:
				return nil, fmt.Errorf("probe: ports %q: protocol %q is not tcp or udp", item, p)
			}
			item = rest
		}
		loS, hiS, isRange := strings.Cut(item, "-")
		lo, err := parsePort(loS)
		if err != nil {
			return nil, fmt.Errorf("probe: ports: %w", err)
		}
		hi := lo
		if isRange {
			if hi, err = parsePort(hiS); err != nil {
				return nil, fmt.Errorf("probe: ports: %w", err)
			}
			if hi < lo {
				return nil, fmt.Errorf("probe: ports: range %d-%d runs backwards", lo, hi)
			}
		}
		out = append(out, PortRange{Protocol: proto, Lo: lo, Hi: hi})
	}
	return out, nil
}

func parsePort(s string) (uint16, error) {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 || strconv.FormatUint(n, 10) != s {
		return 0, fmt.Errorf("%q is not a port 1-65535", s)
	}
	return uint16(n), nil
}

// job is one probe to make.
type job struct {
	svc  *policy.Service
	addr netip.Addr
	prot policy.Protocol
	port uint16
}

// outcome is what the dialer saw.
type outcome struct {
	state  State
	local  netip.Addr // the connection's local address, when known
	detail string     // why: "connection refused", "no answer in 1s", ...
}

// dialer makes single probes from the vantage; the Linux one is in probe_linux.go.
type dialer interface {
	probe(ctx context.Context, prot policy.Protocol, to netip.AddrPort, timeout time.Duration) (outcome, error)
	// source is the local address the vantage would use to reach addr (no packet is sent).
	source(addr netip.Addr) (netip.Addr, error)
	close()
}

// Run probes the target from the vantage and judges every answer.
func Run(ctx context.Context, o Options) (*Report, error) {
	if o.Policy == nil {
		return nil, errors.New("probe: no policy")
	}
	scopeName := cmp.Or(o.Scope, policy.HostScope)
	scope, ok := o.Policy.Scope(scopeName)
	if !ok {
		return nil, fmt.Errorf("probe: the policy has no scope %q", scopeName)
	}
	addr, host, err := ParseTarget(o.Target)
	if err != nil {
		return nil, err
	}
	conc := cmp.Or(o.Concurrency, DefaultConcurrency)
	rate := cmp.Or(o.Rate, DefaultRate)
	timeout := cmp.Or(o.Timeout, DefaultTimeout)
	if conc < 1 || rate < 1 || rate > MaxRate || timeout <= 0 {
		return nil, fmt.Errorf("probe: concurrency and timeout must be positive, and the rate 1-%d per second", MaxRate)
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	addrs := []netip.Addr{addr}
	if host != "" {
		if addrs, err = resolve(ctx, o, host); err != nil {
			return nil, err
		}
	}
	d, err := newDialer(o.Netns)
	if err != nil {
		return nil, err
	}
	defer d.close()

	jobs := plan(scope.Services, addrs, o.Ports)
	sources := make(map[netip.Addr]netip.Addr, len(addrs))
	for _, a := range addrs {
		if o.Source.IsValid() {
			sources[a] = o.Source.Unmap()
			continue
		}
		src, err := d.source(a)
		if err != nil {
			return nil, fmt.Errorf("probe: no route from this vantage to %s: %w", a, err)
		}
		sources[a] = src
	}

	rep := &Report{Target: o.Target, Scope: scopeName, Netns: o.Netns, Addresses: addrs, Undeclared: map[State]int{}}
	results := make([]Result, len(jobs))
	errs := make([]error, len(jobs))
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
loop:
	for i, j := range jobs {
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
		}
		select {
		case <-ctx.Done():
			break loop
		case sem <- struct{}{}:
		}
		rep.Probes++
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			to := netip.AddrPortFrom(j.addr, j.port)
			out, err := d.probe(ctx, j.prot, to, timeout)
			if err != nil {
				errs[i] = fmt.Errorf("probe: %s/%s: %w", j.prot, to, err)
				cancel()
				return
			}
			log.Debug("probe", "protocol", string(j.prot), "address", j.addr.String(), "port", j.port, "state", string(out.state), "detail", out.detail)
			src := sources[j.addr]
			if out.local.IsValid() && !o.Source.IsValid() {
				src = out.local
			}
			results[i] = judge(o.Policy, j, src, out)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil && rep.Probes < len(jobs) {
		return nil, fmt.Errorf("probe: stopped after %d of %d probes: %w", rep.Probes, len(jobs), err)
	}
	for i, r := range results {
		if jobs[i].svc == nil && r.Verdict != Violation {
			rep.Undeclared[r.State]++
			continue
		}
		rep.Results = append(rep.Results, r)
	}
	return rep, nil
}

func resolve(ctx context.Context, o Options, host string) ([]netip.Addr, error) {
	fn := o.Resolve
	if fn == nil {
		fn = systemResolve
	}
	got, err := fn(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("probe: resolve %s: %w", host, err)
	}
	seen := map[netip.Addr]bool{}
	var addrs []netip.Addr
	for _, a := range got {
		a = a.Unmap()
		if seen[a] || !a.IsValid() || a.IsUnspecified() || a.IsMulticast() {
			continue
		}
		seen[a] = true
		addrs = append(addrs, a)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("probe: %s has no address to probe", host)
	}
	if len(addrs) > MaxAddresses {
		return nil, fmt.Errorf("probe: %s resolves to %d addresses, more than %d: name one address", host, len(addrs), MaxAddresses)
	}
	slices.SortFunc(addrs, func(a, b netip.Addr) int { return a.Compare(b) })
	return addrs, nil
}

// plan lists the probes: every declared port of the scope (once per protocol and port) on
// every address, then the extra ports not declared, sorted by address, protocol and port.
func plan(svcs []policy.Service, addrs []netip.Addr, extra []PortRange) []job {
	type key struct {
		prot policy.Protocol
		port uint16
	}
	declared := map[key]*policy.Service{}
	for i := range svcs {
		s := &svcs[i]
		k := key{cmp.Or(s.Protocol, policy.TCP), s.Port}
		if _, dup := declared[k]; !dup {
			declared[k] = s
		}
	}
	want := map[key]bool{}
	for k := range declared {
		want[k] = true
	}
	for _, r := range extra {
		for p := uint32(r.Lo); p <= uint32(r.Hi); p++ {
			want[key{r.Protocol, uint16(p)}] = true // #nosec G115 -- p runs from Lo to Hi, both uint16
		}
	}
	keys := make([]key, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b key) int {
		return cmp.Or(strings.Compare(string(a.prot), string(b.prot)), cmp.Compare(a.port, b.port))
	})
	var jobs []job
	for _, a := range addrs {
		for _, k := range keys {
			jobs = append(jobs, job{svc: svcForAddr(svcs, declared[k], k.prot, k.port, a), addr: a, prot: k.prot, port: k.port})
		}
	}
	return jobs
}

// svcForAddr picks the service a probe of (prot, port) at addr belongs to: one declaring
// exactly that address, else the first declared on the port.
func svcForAddr(svcs []policy.Service, first *policy.Service, prot policy.Protocol, port uint16, addr netip.Addr) *policy.Service {
	for i := range svcs {
		s := &svcs[i]
		if cmp.Or(s.Protocol, policy.TCP) == prot && s.Port == port && s.Address == addr {
			return s
		}
	}
	return first
}

// MayReach reports whether a client at src may reach s by the policy, and says who may. A
// loopback source is the target host itself, whose local processes reach every service (the
// probe verifies the network's reach, not the host's own); otherwise the policy's
// ReachPrefixes decide: the allow list for lan and restricted, the non-loopback trusted
// proxies for proxy_only, nobody else for localhost_only, everyone for public.
func MayReach(p *policy.Policy, s policy.Service, src netip.Addr) (bool, string) {
	src = src.Unmap().WithZone("")
	if src.IsLoopback() {
		return true, "the host itself (loopback)"
	}
	prefixes, anyone := p.ReachPrefixes(s)
	if anyone {
		return true, "anyone"
	}
	for _, pr := range prefixes {
		if pr.Contains(src) {
			return true, pr.String()
		}
	}
	return false, ""
}

// judge turns a probe's outcome into a result with its verdict and reason.
func judge(p *policy.Policy, j job, src netip.Addr, out outcome) Result {
	r := Result{Protocol: j.prot, Address: j.addr, Port: j.port, Source: src, State: out.state, Verdict: OK}
	where := fmt.Sprintf("%s/%s", j.prot, netip.AddrPortFrom(j.addr, j.port))
	if j.svc == nil {
		if out.state == Open {
			r.Verdict = Violation
			r.Reason = fmt.Sprintf("%s is open from %s and the scope declares no service on it (unexpected)", where, src)
		} else {
			r.Reason = fmt.Sprintf("%s is %s (%s); nothing is declared on it", where, out.state, out.detail)
		}
		return r
	}
	s := *j.svc
	r.Service, r.Access = s.Name, s.Access
	may, by := MayReach(p, s, src)
	if src.Unmap().WithZone("") == j.addr.WithZone("") {
		may, by = true, "the host itself (its own address)" // a probe of one's own address never leaves the host
	}
	who := s.ClientWords()
	if who == "" {
		who = "its allow list (" + strings.Join(s.Allow, ", ") + ")"
	}
	switch {
	case out.state == Open && may:
		r.Reason = fmt.Sprintf("%s %s is open from %s, which it admits (%s)", s.Access, s.Name, src, by)
	case out.state == Open:
		r.Verdict = Violation
		r.Reason = fmt.Sprintf("%s %s is reachable from %s on %s; the policy admits %s only", s.Access, s.Name, src, where, who)
		if s.Access.TakesAllow() {
			r.Contradiction = true
			r.Reason += "; this contradicts the audit, which judges its bind and cannot see that nothing between keeps out hosts outside its allow list (bindguard gen nftables closes it)"
		}
	case may:
		r.Reason = fmt.Sprintf("%s %s may be reached from %s but %s is %s (%s)", s.Access, s.Name, src, where, out.state, out.detail)
	case out.state == OpenFiltered:
		r.Reason = fmt.Sprintf("%s %s: no reply from %s (%s), so open cannot be told from filtered; the policy admits %s only", s.Access, s.Name, where, out.detail, who)
	default:
		r.Reason = fmt.Sprintf("%s %s is %s from %s (%s), as the policy wants: it admits %s only", s.Access, s.Name, out.state, src, out.detail, who)
	}
	return r
}
