package audit

import (
	"cmp"
	"maps"
	"slices"

	"github.com/bindguard/bindguard/internal/observed"
	"github.com/bindguard/bindguard/policy"
)

// Incremental is a judgement kept group by group (a protocol and port, in every namespace),
// for a watcher that learns a few sockets at a time: Set judges only the group it is given,
// and Report assembles the whole report from what each group's sockets were judged to be.
// The report is the one JudgeObservation makes of the same observation with its listeners in
// group order (protocol, then port; each group's in the order Set got them), at the cost of
// assembling it (the scores, the missing services, the sort) rather than judging every socket
// again (`go test ./internal/audit -bench Incremental`, 10,000 listeners: 4-5 ms and 50
// allocations after one group changed, against 22-28 ms and 40,000 allocations for the
// whole judgement, which runs in parallel chunks). Building one from scratch costs about twice
// the whole judgement: do it off the hot path.
//
// The observation's namespaces must have distinct labels (as an observer gives them).
//
// An Incremental is for one goroutine.
type Incremental struct {
	p      *policy.Policy
	o      observed.Observation // the namespaces and what was unseen; no listeners
	scopes map[string]*nsScope  // by namespace label
	keys   []key                // the groups' keys in order (protocol, then port)
	groups []incGroup           // keys' groups
}

// incGroup is one protocol and port: its sockets, and each namespace's share judged, in the
// order of the namespace's first socket in the group.
type incGroup struct {
	parts []incPart
}

type incPart struct {
	label    string
	findings []Finding
	tally    []svcCount // the services with a socket here
	hidden   bool
}

// svcCount is a service's tally in one group, by the service's index in its scope.
type svcCount struct {
	svc int
	svcTally
}

// NewIncremental judges o (its namespaces and listeners) against p, group by group.
func NewIncremental(p *policy.Policy, o observed.Observation) *Incremental {
	in := &Incremental{p: p, o: o, scopes: map[string]*nsScope{}}
	in.o.Listeners = nil
	for _, ns := range o.Namespaces {
		if _, ok := in.scopes[ns.Label]; !ok {
			s := scopeOf(p, ns)
			in.scopes[ns.Label] = &s
		}
	}
	byGroup := map[key][]observed.Listener{}
	for _, l := range o.Listeners {
		k := key{policy.Protocol(l.Protocol), l.Port}
		byGroup[k] = append(byGroup[k], l)
	}
	// One scratch for the whole build, as a whole judgement has, and the groups placed in
	// order once (a scratch and a sorted insert per group cost 5 times the judgement at
	// 10,000 listeners).
	sc := newScratch(o.Listeners)
	in.keys = slices.SortedFunc(maps.Keys(byGroup), compareKeys)
	in.groups = make([]incGroup, len(in.keys))
	for i, k := range in.keys {
		in.groups[i] = in.judgeGroup(byGroup[k], sc)
	}
	return in
}

// Set replaces the sockets of the group protocol/port (in every namespace) with ls, which must
// all be of that protocol and port; an empty ls removes the group.
func (in *Incremental) Set(protocol observed.Protocol, port uint16, ls []observed.Listener) {
	in.set(key{policy.Protocol(protocol), port}, ls)
}

func compareKeys(a, b key) int {
	return cmp.Or(cmp.Compare(a.proto, b.proto), cmp.Compare(a.port, b.port))
}

func (in *Incremental) set(k key, ls []observed.Listener) {
	i, found := slices.BinarySearchFunc(in.keys, k, compareKeys)
	switch {
	case len(ls) == 0:
		if found {
			in.keys = slices.Delete(in.keys, i, i+1)
			in.groups = slices.Delete(in.groups, i, i+1)
		}
	case found:
		in.groups[i] = in.judgeGroup(ls, newScratch(ls))
	default:
		in.keys = slices.Insert(in.keys, i, k)
		in.groups = slices.Insert(in.groups, i, in.judgeGroup(ls, newScratch(ls)))
	}
}

// judgeGroup judges one group's sockets, each by its namespace's scope.
func (in *Incremental) judgeGroup(ls []observed.Listener, sc *scratch) incGroup {
	var g incGroup
	for _, l := range ls {
		pi := slices.IndexFunc(g.parts, func(p incPart) bool { return p.label == l.Netns })
		if pi < 0 {
			pi = len(g.parts)
			g.parts = append(g.parts, incPart{label: l.Netns})
		}
		part := &g.parts[pi]
		f, svc := in.scope(l.Netns).judgeSocket(sc, l)
		part.findings = append(part.findings, f)
		part.hidden = part.hidden || l.Owner == observed.OwnerHidden
		if svc >= 0 {
			ci := slices.IndexFunc(part.tally, func(c svcCount) bool { return c.svc == svc })
			if ci < 0 {
				ci = len(part.tally)
				part.tally = append(part.tally, svcCount{svc: svc})
			}
			part.tally[ci].add(f.Status)
		}
	}
	return g
}

// scope is the scope of the namespace labelled label: one of the observation's, or one known
// only from a socket's label (as namespacesOf takes it).
func (in *Incremental) scope(label string) *nsScope {
	s, ok := in.scopes[label]
	if !ok {
		sc := scopeOf(in.p, observed.Namespace{Label: label, Host: label == observed.HostLabel || label == ""})
		s = &sc
		in.scopes[label] = s
	}
	return s
}

// Report assembles the report of every group's sockets as they were last Set.
func (in *Incremental) Report() *Report {
	// The namespaces, as namespacesOf finds them: the observation's, then those known only
	// from sockets, in the order of their first socket.
	o := in.o
	seen := map[string]bool{}
	for _, ns := range o.Namespaces {
		seen[ns.Label] = true
	}
	var stubs []observed.Listener
	for _, g := range in.groups {
		for _, part := range g.parts {
			if !seen[part.label] {
				seen[part.label] = true
				stubs = append(stubs, observed.Listener{Netns: part.label})
			}
		}
	}
	o.Listeners = stubs
	spaces := namespacesOf(o)
	o.Listeners = nil
	judged := make([]judgedNS, len(spaces))
	at := make(map[string]int, len(spaces))
	declared := map[key]bool{} // the services' groups: where missing's reason looks
	for i, ns := range spaces {
		j := &judged[i]
		j.nsScope = *in.scope(ns.Label)
		j.tally = make([]svcTally, len(j.svcs))
		at[ns.Label] = i
		for _, s := range j.svcs {
			declared[key{s.Protocol, s.Port}] = true
		}
	}
	count := make([]int, len(spaces))
	for _, g := range in.groups {
		for _, part := range g.parts {
			count[at[part.label]] += len(part.findings)
		}
	}
	for i := range judged {
		judged[i].findings = make([]Finding, 0, count[i]+len(judged[i].svcs)) // and room for the missing
	}
	listensIn := make(map[key][]string, len(declared))
	for gi, g := range in.groups {
		k := in.keys[gi]
		if declared[k] {
			for _, part := range g.parts {
				listensIn[k] = append(listensIn[k], part.label)
			}
		}
		for _, part := range g.parts {
			j := &judged[at[part.label]]
			j.findings = append(j.findings, part.findings...)
			for _, c := range part.tally {
				t := &j.tally[c.svc]
				t.valid += c.valid
				t.invalid += c.invalid
				t.sockets += c.sockets
			}
			j.hidden = j.hidden || part.hidden
		}
	}
	return assemble(in.p, o, judged, listensIn)
}

// Policy is the policy it judges by.
func (in *Incremental) Policy() *policy.Policy { return in.p }
