package audit

import (
	"cmp"
	"fmt"
	"net/netip"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/bindguard/bindguard/internal/observed"
	"github.com/bindguard/bindguard/policy"
)

// Score deductions (the seed's formula; see docs/audit.md).
const (
	deductExposedLoopbackOnly = 20
	deductOtherInvalid        = 10
	deductUnexpectedWildcard  = 15
)

// key groups services by what they listen on.
type key struct {
	proto policy.Protocol
	port  uint16
}

// Judge is JudgeObservation of listeners alone: the namespaces are taken from their labels
// ("host" or "" being the host's).
func Judge(p *policy.Policy, listeners []observed.Listener) *Report {
	return JudgeObservation(p, observed.Observation{Listeners: listeners})
}

// JudgeObservation compares what was observed with the policy, namespace by namespace: each
// socket is judged by the services of its own namespace's scope (policy.ScopeFor), missing is
// per namespace, and each namespace has its own score and summary. The report's Score is the
// host's (HostScoreRule). A policy of FormatBuiltin (the catalogue) only classifies what
// listens: it never reports missing services, and the score counts only the catalogue services
// that listen.
//
// A namespace a named scope matches owes that scope's services: each one that does not listen
// in it is missing there, whatever other namespaces run. The host's services (the host scope)
// are owed by the host's namespace together with the namespaces no named scope matches, as a
// policy without scopes holds them all: a host service is missing when it listens in none of
// them, and the finding is the host namespace's (the first of them when the host's is not
// audited).
func JudgeObservation(p *policy.Policy, o observed.Observation) *Report {
	spaces := namespacesOf(o)
	byNS := listenersByNS(o.Listeners)
	judged := make([]judgedNS, len(spaces))
	for i, ns := range spaces {
		j := &judged[i]
		j.nsScope = scopeOf(p, ns)
		j.findings, j.tally, j.hidden = judgeSockets(&j.nsScope, byNS[ns.Label])
	}
	// Where each declared protocol and port listens, for missing's reason (only declared
	// services can be missing: the other ports are not kept).
	listensIn := map[key][]string{}
	for _, j := range judged {
		for _, s := range j.svcs {
			listensIn[key{s.Protocol, s.Port}] = nil
		}
	}
	for _, l := range o.Listeners {
		k := key{policy.Protocol(l.Protocol), l.Port}
		ns, declared := listensIn[k]
		if declared && (len(ns) == 0 || (ns[len(ns)-1] != l.Netns && !slices.Contains(ns, l.Netns))) {
			listensIn[k] = append(ns, l.Netns)
		}
	}
	return assemble(p, o, judged, listensIn)
}

// nsScope is a namespace's report header and the services its scope declares.
type nsScope struct {
	nr    NamespaceReport
	svcs  []policy.Service
	byKey map[key][]int // svcs' indexes by protocol and port
	group string        // the namespaces that owe the same services together: "host", or "ns|LABEL"
}

// scopeOf finds ns's scope in p.
func scopeOf(p *policy.Policy, ns observed.Namespace) nsScope {
	name, svcs, matched := p.ScopeFor(policy.NamespaceNames{Host: ns.Host, Label: ns.Label, Netns: ns.Netns, Container: ns.Container})
	s := nsScope{
		nr:    NamespaceReport{Label: ns.Label, Netns: ns.Netns, Container: ns.Container, Host: ns.Host, Scope: name, Matched: matched},
		svcs:  svcs,
		byKey: make(map[key][]int, len(svcs)),
		group: "ns|" + ns.Label,
	}
	if name == policy.HostScope {
		s.group = "host"
	}
	for i, svc := range svcs {
		k := key{svc.Protocol, svc.Port}
		s.byKey[k] = append(s.byKey[k], i)
	}
	return s
}

// assemble makes the report from its namespaces' judged sockets (in the order namespacesOf
// gives them, each with its sockets' findings and tally) and where each declared protocol and
// port listens: which namespace owes which services, the missing ones, the scores, summaries,
// warnings and notes, the findings sorted.
func assemble(p *policy.Policy, o observed.Observation, judged []judgedNS, listensIn map[key][]string) *Report {
	r := &Report{Complete: len(o.Unseen) == 0, Unseen: o.Unseen}
	used := map[string]bool{}
	hidden := false
	owner := map[string]bool{} // a group (a named scope's namespace, or the host scope) whose services a namespace owes
	for i := range judged {
		j := &judged[i]
		if j.nr.Matched && !j.nr.Host {
			used[j.nr.Scope] = true
		}
		if !owner[j.group] { // namespacesOf puts the host's first
			owner[j.group] = true
			j.nr.Owed = true
		}
		hidden = hidden || j.hidden
	}
	groupTally := map[string][]svcTally{}
	groupMembers := map[string][]string{}
	for _, j := range judged {
		t := groupTally[j.group]
		if t == nil {
			t = make([]svcTally, len(j.svcs))
		}
		for k, x := range j.tally {
			t[k].valid += x.valid
			t[k].invalid += x.invalid
			t[k].sockets += x.sockets
		}
		groupTally[j.group] = t
		groupMembers[j.group] = append(groupMembers[j.group], j.nr.Label)
	}
	score := 100
	total := 0
	for i := range judged {
		j := &judged[i]
		tally := j.tally
		if j.nr.Owed {
			tally = groupTally[j.group]
		}
		scoreNamespace(p, j, tally, groupMembers[j.group], listensIn)
		total += len(j.findings)
	}
	for i := range judged {
		j := &judged[i]
		switch {
		case len(j.findings) == 0:
		case len(judged) == 1:
			r.Findings = j.findings
		default:
			if r.Findings == nil {
				r.Findings = make([]Finding, 0, total)
			}
			r.Findings = append(r.Findings, j.findings...)
		}
		r.Summary.Valid += j.nr.Summary.Valid
		r.Summary.Invalid += j.nr.Summary.Invalid
		r.Summary.Missing += j.nr.Summary.Missing
		r.Summary.Unexpected += j.nr.Summary.Unexpected
		if i == 0 || j.nr.Score < score {
			score = j.nr.Score
		}
		r.Namespaces = append(r.Namespaces, j.nr)
	}
	r.Score = score
	r.Services = r.Namespaces[0].Services
	if o.AllNamespaces {
		for _, sc := range p.Scopes {
			if !used[sc.Name] {
				r.Warnings = append(r.Warnings, fmt.Sprintf("scope %s matches no audited network namespace (match: %s)", sc.Name, strings.Join(sc.Match, ", ")))
			}
		}
	}
	if hidden {
		r.Notes = append(r.Notes, "some sockets' owners are hidden: run bindguard as root (or with CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH) to see every process")
	}
	sortFindings(r.Findings)
	return r
}

// listenersByNS groups listeners by namespace label, in order; when they are all of one
// namespace (the usual audit) that is the slice itself, not a copy.
func listenersByNS(ls []observed.Listener) map[string][]observed.Listener {
	byNS := map[string][]observed.Listener{}
	if len(ls) == 0 {
		return byNS
	}
	one := true
	for _, l := range ls[1:] {
		if l.Netns != ls[0].Netns {
			one = false
			break
		}
	}
	if one {
		byNS[ls[0].Netns] = ls
		return byNS
	}
	count := map[string]int{}
	for _, l := range ls {
		count[l.Netns]++
	}
	for _, l := range ls {
		if byNS[l.Netns] == nil {
			byNS[l.Netns] = make([]observed.Listener, 0, count[l.Netns])
		}
		byNS[l.Netns] = append(byNS[l.Netns], l)
	}
	return byNS
}

// judgedNS is one namespace while it is judged.
type judgedNS struct {
	nsScope
	findings []Finding
	tally    []svcTally
	hidden   bool // an owner was hidden
}

// svcTally counts a service's sockets and their verdicts.
type svcTally struct{ valid, invalid, sockets int }

// namespacesOf lists the audited namespaces, the host's first: those of the observation, and
// any listener's namespace it does not name (taken from the label alone).
func namespacesOf(o observed.Observation) []observed.Namespace {
	out := slices.Clone(o.Namespaces)
	known := map[string]bool{}
	for _, n := range out {
		known[n.Label] = true
	}
	for _, l := range o.Listeners {
		if !known[l.Netns] {
			known[l.Netns] = true
			out = append(out, observed.Namespace{Label: l.Netns, Host: l.Netns == observed.HostLabel || l.Netns == ""})
		}
	}
	if len(out) == 0 {
		out = []observed.Namespace{{Label: observed.HostLabel, Host: true}}
	}
	slices.SortStableFunc(out, func(a, b observed.Namespace) int {
		switch {
		case a.Host == b.Host:
			return 0
		case a.Host:
			return -1
		}
		return 1
	})
	return out
}

// judgeSockets judges one namespace's sockets by its scope's services; it reports whether an
// owner was hidden. Many sockets are judged in parallel chunks (each socket's finding depends
// on it and the services alone), and the findings kept in the sockets' order.
func judgeSockets(s *nsScope, listeners []observed.Listener) ([]Finding, []svcTally, bool) {
	chunks := min(runtime.GOMAXPROCS(0), maxJudgeChunks, max(1, len(listeners)/minJudgeChunk))
	if chunks <= 1 {
		return judgeChunk(s, listeners)
	}
	type part struct {
		tally  []svcTally
		hidden bool
	}
	// Each chunk judges into its own range of one slice (a finding per socket, in order), so
	// the findings are not copied together afterwards (at 50,000 sockets that copy was 5 MiB
	// more at the audit's peak).
	findings := make([]Finding, len(listeners))
	parts := make([]part, chunks)
	var wg sync.WaitGroup
	for c := range chunks {
		lo, hi := c*len(listeners)/chunks, (c+1)*len(listeners)/chunks
		wg.Go(func() {
			p := &parts[c]
			p.tally, p.hidden = judgeInto(s, listeners[lo:hi], findings[lo:hi])
		})
	}
	wg.Wait()
	tally := make([]svcTally, len(s.svcs))
	hidden := false
	for _, p := range parts {
		for i, t := range p.tally {
			tally[i].valid += t.valid
			tally[i].invalid += t.invalid
			tally[i].sockets += t.sockets
		}
		hidden = hidden || p.hidden
	}
	return findings, tally, hidden
}

// Parallel judging: chunks of at least minJudgeChunk sockets, at most maxJudgeChunks of them.
const (
	minJudgeChunk  = 2048
	maxJudgeChunks = 8
)

// judgeChunk judges sockets in order.
func judgeChunk(s *nsScope, listeners []observed.Listener) ([]Finding, []svcTally, bool) {
	findings := make([]Finding, len(listeners))
	tally, hidden := judgeInto(s, listeners, findings)
	return findings, tally, hidden
}

// judgeInto judges listeners[i] into dst[i].
func judgeInto(s *nsScope, listeners []observed.Listener, dst []Finding) ([]svcTally, bool) {
	tally := make([]svcTally, len(s.svcs))
	hidden := false
	sc := newScratch(listeners)
	for k, o := range listeners {
		hidden = hidden || o.Owner == observed.OwnerHidden
		f, i := s.judgeSocket(sc, o)
		if i >= 0 {
			tally[i].add(f.Status)
		}
		dst[k] = f
	}
	return tally, hidden
}

// judgeSocket judges one socket by the scope's services: its finding, and the index of the
// service it was judged by (-1 when none has its protocol and port: unexpected).
func (s *nsScope) judgeSocket(sc *scratch, o observed.Listener) (Finding, int) {
	cands := s.byKey[key{policy.Protocol(o.Protocol), o.Port}]
	if len(cands) == 0 {
		return sc.unexpected(o), -1
	}
	i := pick(s.svcs, cands, o.Addr)
	return sc.judge(s.svcs[i], o), i
}

func (t *svcTally) add(st Status) {
	t.sockets++
	if st == Valid {
		t.valid++
	} else {
		t.invalid++
	}
}

// scratch is what judging one namespace's sockets shares across them, so that a finding costs
// few allocations: its Actual, owner and v6only come from slabs sized for every socket, and
// the strings many findings repeat (an address, an owner's label) are made once.
type scratch struct {
	actuals []Actual
	procs   map[observed.Process]*observed.Process // one copy per distinct owner, shared
	bools   []bool
	addrs   map[netip.Addr]string
	labels  map[labelKey]string
	sens    map[key]string // the sensitive catalogue entry's words of a protocol and port, "" when none
	buf     []byte
}

// labelKey is what observed.Process.Label reads.
type labelKey struct {
	name, unit, container string
	pid, containerPID     int
}

func newScratch(listeners []observed.Listener) *scratch {
	return &scratch{
		actuals: make([]Actual, 0, len(listeners)), procs: map[observed.Process]*observed.Process{},
		addrs: map[netip.Addr]string{}, labels: map[labelKey]string{}, sens: map[key]string{},
	}
}

// actual returns a new Actual from the slab (a new slab when it is full: the Actuals handed
// out stay where they are).
func (sc *scratch) actual() *Actual {
	if len(sc.actuals) == cap(sc.actuals) {
		sc.actuals = make([]Actual, 0, max(16, cap(sc.actuals)))
	}
	sc.actuals = sc.actuals[:len(sc.actuals)+1]
	return &sc.actuals[len(sc.actuals)-1]
}

// process is the finding's copy of its owner, shared by the findings of every socket the same
// process owns (a server holds hundreds; each had its own copy: 7 MiB at 50,000 sockets).
// Findings never change their Actual's process.
func (sc *scratch) process(p observed.Process) *observed.Process {
	if q, ok := sc.procs[p]; ok {
		return q
	}
	q := new(observed.Process)
	*q = p
	sc.procs[p] = q
	return q
}

func (sc *scratch) bool(v bool) *bool {
	if len(sc.bools) == cap(sc.bools) {
		sc.bools = make([]bool, 0, max(64, 2*cap(sc.bools)))
	}
	sc.bools = append(sc.bools, v)
	return &sc.bools[len(sc.bools)-1]
}

// addr is a.WithZone("").String(), made once per address.
func (sc *scratch) addr(a netip.Addr) string {
	s, ok := sc.addrs[a]
	if !ok {
		s = a.WithZone("").String()
		sc.addrs[a] = s
	}
	return s
}

// label is p.Label(), made once per process.
func (sc *scratch) label(p observed.Process) string {
	k := labelKey{name: p.Name, unit: p.Unit, container: p.Container, pid: p.PID, containerPID: p.ContainerPID}
	s, ok := sc.labels[k]
	if !ok {
		s = p.Label()
		sc.labels[k] = s
	}
	return s
}

// appendWhere appends "OWNER listens on ADDR:PORT, EXPOSURE", the start of every socket's reason.
func (sc *scratch) appendWhere(b []byte, o observed.Listener, exp Exposure) []byte {
	b = sc.appendOwnerWords(b, o)
	b = append(b, " listens on "...)
	b = netip.AddrPortFrom(o.Addr.WithZone(""), o.Port).AppendTo(b)
	b = append(b, ", "...)
	return append(b, exp.words()...)
}

// scoreNamespace fills a namespace's services, missing findings, summary and score. tally is
// its scope's services' tally over the namespaces that owe them together (members) when it
// owes them, else its own.
func scoreNamespace(p *policy.Policy, j *judgedNS, tally []svcTally, members []string, listensIn map[key][]string) {
	nr := &j.nr
	catalogueMode := p.Format == policy.FormatBuiltin
	validServices, expected := 0, 0
	for i, s := range j.svcs {
		t := tally[i]
		if (catalogueMode || !nr.Owed) && t.sockets == 0 {
			continue
		}
		expected++
		st := ServiceState{Netns: nr.Label, Scope: nr.Scope, Name: s.Name, Protocol: s.Protocol, Port: s.Port, Listening: t.sockets > 0, Compliant: t.valid > 0 && t.invalid == 0}
		if st.Compliant {
			validServices++
		}
		nr.Services = append(nr.Services, st)
		if t.sockets == 0 {
			j.findings = append(j.findings, missing(s, members, listensIn[key{s.Protocol, s.Port}]))
		}
	}
	score := 100.0
	if expected > 0 {
		score = float64(validServices) / float64(expected) * 100
	}
	for i := range j.findings {
		f := &j.findings[i]
		f.Netns = nr.Label
		switch f.Status {
		case Valid:
			nr.Summary.Valid++
		case Invalid:
			nr.Summary.Invalid++
			if f.exposesLoopbackOnly {
				score -= deductExposedLoopbackOnly
			} else {
				score -= deductOtherInvalid
			}
		case Missing:
			nr.Summary.Missing++
		case Unexpected:
			nr.Summary.Unexpected++
			if f.Actual.Exposure.IsWildcard() {
				score -= deductUnexpectedWildcard
			}
		}
	}
	nr.Score = int(max(0, min(100, score)))
}

// pick chooses which of the candidate services (same protocol and port) a socket belongs to:
// the one declaring exactly its address, else one declaring no address, else the first.
func pick(svcs []policy.Service, cands []int, addr netip.Addr) int {
	a := addr.Unmap().WithZone("")
	for _, i := range cands {
		if svcs[i].Address == a {
			return i
		}
	}
	for _, i := range cands {
		if !svcs[i].Address.IsValid() {
			return i
		}
	}
	return cands[0]
}

// judge returns the finding for a socket on a declared service's port.
func (sc *scratch) judge(s policy.Service, o observed.Listener) Finding {
	f := sc.finding(o)
	name := s.Name
	f.Service = &name
	f.Expected = expected(s)
	exp := f.Actual.Exposure
	sc.buf = sc.appendWhere(sc.buf[:0], o, exp)
	where := string(sc.buf)
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
		b := append(sc.buf, ", as the policy allows ("...)
		b = append(append(b, s.Access...), ')')
		if s.Access.TakesAllow() && exp != ExposureLoopback {
			// The audit sees where a socket binds, not the firewall in front of it.
			b = append(b, "; that hosts outside its allow list cannot reach it is not verified (docs/audit.md: verifying reachability)"...)
		}
		sc.buf = b
		f.Reason = string(b)
	}
	return f
}

// sameBinding reports whether the socket is exactly the declared binding. A declared "::" with
// v6only needs a socket known to be v6only; a declared dual-stack "::" accepts either.
func sameBinding(s policy.Service, o observed.Listener) bool {
	a := o.Addr.Unmap().WithZone("")
	if a != s.Address {
		return false
	}
	if a == netip.IPv6Unspecified() && s.V6Only {
		return o.V6Only == observed.V6OnlyYes
	}
	return true
}

// wider reports whether a socket of exposure e accepts connections the declared binding would
// not: a wildcard where a single address is declared, or IPv4 too through a dual-stack "::".
func wider(s policy.Service, e Exposure) bool {
	d := ExposureOf(s.Address, v6onlyOf(s))
	switch {
	case e == d:
		return false
	case e == ExposureDualStack:
		return true
	case e == ExposureWildcardV4:
		return !d.IsWildcard() && s.Address.Is4()
	case e == ExposureWildcardV6:
		return !d.IsWildcard() && s.Address.Is6()
	}
	return false
}

func v6onlyOf(s policy.Service) observed.V6Only {
	if s.V6Only {
		return observed.V6OnlyYes
	}
	return observed.V6OnlyNo
}

// ownedBy reports whether any owner is the named process: its name (comm, which the kernel
// truncates to 15 bytes) or its executable's base name.
func ownedBy(owners []observed.Process, name string) bool {
	short := name
	if len(short) > 15 {
		short = short[:15]
	}
	for _, p := range owners {
		if p.Name == name || p.Name == short || (p.Exe != "" && filepath.Base(p.Exe) == name) {
			return true
		}
	}
	return false
}

// unexpected returns the finding for a socket no service declares.
func (sc *scratch) unexpected(o observed.Listener) Finding {
	f := sc.finding(o)
	f.Status = Unexpected
	exp := f.Actual.Exposure
	b := sc.appendWhere(sc.buf[:0], o, exp)
	b = append(b, "; no service in the policy declares "...)
	b = append(b, o.Protocol...)
	b = append(b, " port "...)
	b = strconv.AppendUint(b, uint64(o.Port), 10)
	switch {
	case exp == ExposureLoopback:
		f.Severity = Low
	default:
		f.Severity = High
		if words := sc.sensitive(policy.Protocol(o.Protocol), o.Port); words != "" {
			f.Severity = Critical
			b = append(b, words...)
		}
	}
	sc.buf = b
	f.Reason = string(b)
	return f
}

// sensitive returns what an unexpected socket's reason adds when the catalogue names its
// protocol and port as a sensitive service ("" when it does not), looked up once per port.
func (sc *scratch) sensitive(proto policy.Protocol, port uint16) string {
	k := key{proto, port}
	words, ok := sc.sens[k]
	if !ok {
		if e, found := policy.LookupCatalogue(proto, port); found && e.Category.Sensitive() {
			words = fmt.Sprintf("; %s port %d is %s (%s), which must not be reachable from outside", proto, port, e.Name, e.Category)
		}
		sc.sens[k] = words
	}
	return words
}

// missing returns the finding for a declared service nothing listens for in the namespaces
// that owe it (members, the first being the finding's); elsewhere lists the namespaces where
// something listens on its protocol and port.
func missing(s policy.Service, members []string, elsewhere []string) Finding {
	name := s.Name
	where := nsWords(members[0])
	if len(members) > 1 {
		where += fmt.Sprintf(" nor in the %d other namespaces no scope names", len(members)-1)
	}
	reason := fmt.Sprintf("%s is declared on %s but nothing listens on %s port %d in %s", s.Name, declWords(s), s.Protocol, s.Port, where)
	var others []string
	for _, e := range elsewhere {
		if !slices.Contains(members, e) {
			others = append(others, nsWords(e))
		}
	}
	if len(others) > 0 {
		reason += fmt.Sprintf(" (it does in %s)", strings.Join(others, ", "))
	}
	return Finding{
		Status: Missing, Severity: Medium, Service: &name, Protocol: s.Protocol, Expected: expected(s), Netns: members[0],
		Reason: reason,
	}
}

// nsWords names a namespace in a reason: "the host's network namespace", "netns web1".
func nsWords(label string) string {
	if label == observed.HostLabel || label == "" {
		return "the host's network namespace"
	}
	return "netns " + label
}

// finding fills the parts every socket finding shares.
func (sc *scratch) finding(o observed.Listener) Finding {
	a := sc.actual()
	*a = Actual{
		Address: sc.addr(o.Addr), Port: o.Port, Family: o.Family,
		Exposure: ExposureOf(o.Addr, o.V6Only), Netns: o.Netns,
	}
	switch o.V6Only {
	case observed.V6OnlyYes, observed.V6OnlyNo:
		a.V6Only = sc.bool(o.V6Only == observed.V6OnlyYes)
	}
	if o.Owner == observed.OwnerKnown && len(o.Owners) > 0 {
		a.Process = sc.process(o.Owners[0])
	}
	return Finding{Protocol: policy.Protocol(o.Protocol), Actual: a}
}

func expected(s policy.Service) *Expected {
	return &Expected{Port: s.Port, Access: s.Access, Address: s.PermittedAddresses()}
}

// appendOwnerWords appends who holds a socket ("nginx (pid 900, unit nginx.service) and 3
// more"), or why that is unknown.
func (sc *scratch) appendOwnerWords(b []byte, o observed.Listener) []byte {
	switch o.Owner {
	case observed.OwnerKnown:
		if len(o.Owners) > 0 {
			b = append(b, sc.label(o.Owners[0])...)
			// One process may hold a socket in several descriptors (or threads): count
			// processes, not entries.
			if len(o.Owners) == 1 {
				return b
			}
			pids := map[int]bool{o.Owners[0].PID: true}
			for _, p := range o.Owners[1:] {
				pids[p.PID] = true
			}
			if n := len(pids) - 1; n > 0 {
				b = append(b, " and "...)
				b = strconv.AppendInt(b, int64(n), 10)
				b = append(b, " more"...)
			}
			return b
		}
	case observed.OwnerHidden:
		return append(b, "a process whose files bindguard may not read (owner hidden)"...)
	case observed.OwnerKernel:
		return append(b, "the kernel"...)
	case observed.OwnerUnknown:
		return append(b, "an unknown owner (its /proc/net line has no readable inode)"...)
	}
	return append(b, "a process not visible here (another PID namespace, or it has just closed the socket)"...)
}

func declWords(s policy.Service) string {
	if !s.Address.IsValid() {
		return fmt.Sprintf("%s %s port %d", s.AllowedWords(), s.Protocol, s.Port)
	}
	d := addrPort(s.Address, s.Port)
	if s.Address == netip.IPv6Unspecified() {
		if s.V6Only {
			d += " (v6only)"
		} else {
			d += " (dual-stack)"
		}
	}
	return d
}

func addrPort(a netip.Addr, port uint16) string {
	return netip.AddrPortFrom(a.WithZone(""), port).String()
}

// statusRank orders statuses worst first.
// statusRank is the position of s in Statuses, without Statuses' allocation: the sort calls it
// for every comparison.
func statusRank(s Status) int {
	switch s {
	case Invalid:
		return 0
	case Unexpected:
		return 1
	case Missing:
		return 2
	}
	return 3
}

// sortFindings orders findings worst first: severity, status, then namespace, protocol, port
// and address.
func sortFindings(fs []Finding) {
	slices.SortStableFunc(fs, func(a, b Finding) int {
		c := cmp.Or(
			cmp.Compare(b.Severity, a.Severity),
			cmp.Compare(statusRank(a.Status), statusRank(b.Status)),
			cmp.Compare(netnsOf(a), netnsOf(b)),
			cmp.Compare(a.Protocol, b.Protocol),
			cmp.Compare(portOf(a), portOf(b)),
			cmp.Compare(addrOf(a), addrOf(b)),
		)
		if c != 0 {
			return c
		}
		return cmp.Compare(a.ServiceName(), b.ServiceName())
	})
}

func netnsOf(f Finding) string {
	if f.Actual != nil {
		return f.Actual.Netns
	}
	return f.Netns
}

func portOf(f Finding) uint16 {
	if f.Actual != nil {
		return f.Actual.Port
	}
	return f.Expected.Port
}

func addrOf(f Finding) string {
	if f.Actual != nil {
		return f.Actual.Address
	}
	return ""
}
