// Package monitor is `bindguard serve`: it audits on an interval (or follows the kernel's socket
// events and audits as reconciliation), turns the difference between two judgements into drift
// events, keeps them in an embedded store (bbolt) before anything else sees them, and serves the
// latest report, the events, health and Prometheus metrics over HTTP.
package monitor

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/bindguard/bindguard/internal/audit"
)

// Event kinds.
const (
	KindAppeared       = "appeared"        // a finding that was not there before
	KindDisappeared    = "disappeared"     // a valid finding that is gone (after the grace period)
	KindChanged        = "changed"         // same socket, service or port: another status or address
	KindResolved       = "resolved"        // a violation (invalid, unexpected, missing) that is gone
	KindPolicyReloaded = "policy_reloaded" // SIGHUP loaded a new policy
)

// Sources of an event.
const (
	SourceKernel = "kernel" // judged from a kernel socket event
	SourceAudit  = "audit"  // found by a full audit (poll mode, or reconciliation)
)

// Process is the owner an event names.
type Process struct {
	PID  int    `json:"pid"`
	Name string `json:"name,omitempty"`
	Unit string `json:"unit,omitempty"`
}

// Event is one drift event (bindguard.events.v2). ID is assigned by the store: stable and
// increasing. Time is when it happened (the kernel's timestamp for a kernel event, the audit's
// start for a polled one), JudgedAt when bindguard judged it and StoredAt when the transaction
// that made it durable was written (the commit's fsync follows; nothing is exported before it
// returns). Events migrated from a v1 store have no JudgedAt or StoredAt.
type Event struct {
	ID       uint64    `json:"id"`
	Time     time.Time `json:"time"`
	JudgedAt time.Time `json:"judged_at,omitzero"`
	StoredAt time.Time `json:"stored_at,omitzero"`
	Kind     string    `json:"kind"`
	Source   string    `json:"source,omitempty"`
	// Netns is the namespace's label; empty only for policy_reloaded, which concerns all.
	Netns    string `json:"netns"`
	Protocol string `json:"protocol,omitempty"`
	Address  string `json:"address,omitempty"`
	// OldAddress is the address before, for a changed event whose socket moved.
	OldAddress string   `json:"old_address,omitempty"`
	Port       uint16   `json:"port,omitempty"`
	Service    string   `json:"service,omitempty"`
	OldStatus  string   `json:"old_status,omitempty"`
	NewStatus  string   `json:"new_status,omitempty"`
	Severity   string   `json:"severity,omitempty"`
	Process    *Process `json:"process,omitempty"`
	Reason     string   `json:"reason,omitempty"`
	// Denial is what a denied event (serve --enforce) adds.
	Denial *Denial `json:"denial,omitempty"`
}

// drifted is an event being derived: missing marks a missing service's finding.
type drifted struct {
	Event
	missing bool
}

// EventV1 is an event as bindguard.events.v1 has it (/api/v1/events).
type EventV1 struct {
	ID        uint64    `json:"id"`
	Time      time.Time `json:"time"`
	Kind      string    `json:"kind"`
	Netns     string    `json:"netns,omitempty"`
	Protocol  string    `json:"protocol,omitempty"`
	Address   string    `json:"address,omitempty"`
	Port      uint16    `json:"port,omitempty"`
	Service   string    `json:"service,omitempty"`
	OldStatus string    `json:"old_status,omitempty"`
	NewStatus string    `json:"new_status,omitempty"`
	Severity  string    `json:"severity,omitempty"`
	Process   *Process  `json:"process,omitempty"`
	Reason    string    `json:"reason,omitempty"`
}

// V1 is the event as v1 readers know it: v1 has no resolved kind (it is a disappearance) and no
// latency fields; a missing service's event has no netns.
func (e Event) V1() EventV1 {
	v := EventV1{ID: e.ID, Time: e.Time, Kind: e.Kind, Netns: e.Netns, Protocol: e.Protocol, Address: e.Address, Port: e.Port,
		Service: e.Service, OldStatus: e.OldStatus, NewStatus: e.NewStatus, Severity: e.Severity, Process: e.Process, Reason: e.Reason}
	if v.Kind == KindResolved {
		v.Kind = KindDisappeared
	}
	if e.NewStatus == string(audit.Missing) && e.Kind == KindAppeared || e.OldStatus == string(audit.Missing) && e.Kind == KindResolved {
		v.Netns = ""
	}
	return v
}

// Entry is what the monitor remembers of one finding between judgements.
type Entry struct {
	Netns    string   `json:"netns,omitempty"`
	Protocol string   `json:"protocol"`
	Address  string   `json:"address,omitempty"`
	Port     uint16   `json:"port"`
	Service  string   `json:"service,omitempty"`
	Status   string   `json:"status"`
	Severity string   `json:"severity"`
	Process  *Process `json:"process,omitempty"`
	Reason   string   `json:"reason"`
}

// State is a judgement's findings by key: "sock|NETNS|PROTO|ADDR|PORT" for a socket,
// "missing|NETNS|SERVICE|PROTO|PORT" for a missing service.
type State map[string]Entry

// sockKey is the state key of a socket.
func sockKey(netns, proto, addr string, port uint16) string {
	return fmt.Sprintf("sock|%s|%s|%s|%d", netns, proto, addr, port)
}

func isMissingKey(k string) bool { return strings.HasPrefix(k, "missing|") }

// StateOf keys a report's findings. A missing service's finding belongs to its own namespace
// (the judge says which), else to hostNetns.
func StateOf(r *audit.Report, hostNetns string) State {
	s := State{}
	for i := range r.Findings {
		f := &r.Findings[i]
		e := Entry{Protocol: string(f.Protocol), Service: f.ServiceName(), Status: string(f.Status), Severity: f.Severity.String(), Reason: f.Reason}
		var key string
		if a := f.Actual; a != nil {
			e.Netns, e.Address, e.Port = a.Netns, a.Address, a.Port
			if a.Process != nil {
				e.Process = &Process{PID: a.Process.PID, Name: a.Process.Name, Unit: a.Process.Unit}
			}
			key = sockKey(a.Netns, string(f.Protocol), a.Address, a.Port)
		} else {
			e.Netns = cmp.Or(f.Netns, hostNetns)
			if f.Expected != nil {
				e.Port = f.Expected.Port
				e.Address = f.Expected.Address
			}
			key = fmt.Sprintf("missing|%s|%s|%s|%d", e.Netns, e.Service, f.Protocol, e.Port)
		}
		s[key] = e
	}
	return s
}

// Drift turns successive judgements into events. It remembers the state it last reported and,
// for the grace period, sockets of declared services that went away: a service restarting within
// Grace raises nothing; one that does not come back is reported when the period ends. The zero
// value has no grace period.
type Drift struct {
	Grace time.Duration
	// gone: when each carried (reported, no longer seen) socket was first missed.
	gone map[string]time.Time
}

// Step returns the events that lead from prev (the state last reported) to next (the state just
// judged), the state now to report (next, with the sockets still in their grace period), and
// when the earliest grace period ends (zero when none is running).
func (d *Drift) Step(prev, next State, now time.Time) (events []Event, reported State, deadline time.Time) {
	if d.gone == nil {
		d.gone = map[string]time.Time{}
	}
	reported = maps.Clone(next)
	if reported == nil {
		reported = State{}
	}
	// Services (netns, name, protocol, port) that still have a socket in next.
	type svcKey struct {
		netns, name, proto string
		port               uint16
	}
	seen := map[svcKey]bool{}
	for k, e := range next {
		if !isMissingKey(k) && e.Service != "" {
			seen[svcKey{e.Netns, e.Service, e.Protocol, e.Port}] = true
		}
	}
	for k := range d.gone {
		if _, back := next[k]; back {
			delete(d.gone, k)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(prev)) {
		p := prev[k]
		if _, still := next[k]; still || isMissingKey(k) || p.Service == "" || d.Grace <= 0 {
			continue
		}
		sk := svcKey{p.Netns, p.Service, p.Protocol, p.Port}
		since, ok := d.gone[k]
		if !ok {
			since = now
		}
		if seen[sk] || now.Sub(since) >= d.Grace {
			delete(d.gone, k) // replaced by another socket of the service, or the period is over
			continue
		}
		d.gone[k] = since
		reported[k] = p
		delete(reported, fmt.Sprintf("missing|%s|%s|%s|%d", p.Netns, p.Service, p.Protocol, p.Port))
		if end := since.Add(d.Grace); deadline.IsZero() || end.Before(deadline) {
			deadline = end
		}
	}
	return Diff(prev, reported, now), reported, deadline
}

// Diff returns the events that lead from prev to next, in key order: a socket of a service
// replaced by another of the same service and port (in one namespace) is one changed event with
// both addresses; a declared service that starts or stops listening is one changed event from or
// to missing, on its socket; a violation that is gone is a resolution (severity info).
func Diff(prev, next State, now time.Time) []Event {
	var out []drifted
	for _, k := range slices.Sorted(maps.Keys(next)) {
		n := next[k]
		p, had := prev[k]
		switch {
		case !had:
			out = append(out, event(now, k, KindAppeared, "", n))
		case p.Status != n.Status:
			out = append(out, event(now, k, KindChanged, p.Status, n))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(prev)) {
		if _, still := next[k]; !still {
			p := prev[k]
			e := event(now, k, KindDisappeared, p.Status, p)
			e.NewStatus = ""
			if e.missing {
				e.Reason = fmt.Sprintf("service %s listens again", p.Service)
			} else {
				e.Reason = fmt.Sprintf("%s %s:%d in %s no longer listens", p.Protocol, p.Address, p.Port, p.Netns)
			}
			out = append(out, e)
		}
	}
	out = pairMissing(pairMoved(out))
	events := make([]Event, len(out))
	for i := range out {
		e := &out[i]
		if e.Kind == KindDisappeared && e.OldStatus != string(audit.Valid) {
			e.Kind, e.Severity = KindResolved, audit.Info.String()
			if !e.missing {
				e.Reason = fmt.Sprintf("resolved: the %s listener %s:%d (%s) in %s is gone", e.OldStatus, e.Address, e.Port, e.Protocol, e.Netns)
			}
		}
		events[i] = e.Event
	}
	return events
}

// pairMoved merges a service's socket going and another socket of the same service, protocol
// and port coming, in one namespace, into one changed event: "redis: invalid -> valid,
// 0.0.0.0 -> 127.0.0.1".
func pairMoved(events []drifted) []drifted {
	drop := make([]bool, len(events))
	for i := range events {
		a := &events[i]
		if a.Kind != KindAppeared || a.missing || a.Service == "" {
			continue
		}
		for j := range events {
			g := events[j]
			if drop[j] || g.Kind != KindDisappeared || g.missing || g.Service != a.Service || g.Netns != a.Netns || g.Protocol != a.Protocol || g.Port != a.Port {
				continue
			}
			a.Kind, a.OldStatus, a.OldAddress = KindChanged, g.OldStatus, g.Address
			a.Reason = fmt.Sprintf("%s: %s -> %s, %s -> %s; %s", a.Service, g.OldStatus, a.NewStatus, g.Address, a.Address, a.Reason)
			drop[j] = true
			break
		}
	}
	var out []drifted
	for i, e := range events {
		if !drop[i] {
			out = append(out, e)
		}
	}
	return out
}

// pairMissing turns a declared service going from missing to listening (or back) into one
// "changed" event on its socket, instead of a missing finding disappearing and a socket
// appearing.
func pairMissing(events []drifted) []drifted {
	drop := make([]bool, len(events))
	merged := map[int]drifted{} // socket event index -> the changed event replacing it
	for i, e := range events {
		if e.Service == "" || !e.missing || e.Kind == KindChanged {
			continue
		}
		for j, o := range events {
			if _, taken := merged[j]; taken || j == i || o.Service != e.Service || o.Protocol != e.Protocol || o.Netns != e.Netns || o.missing || o.Kind == e.Kind || o.Kind == KindChanged {
				continue
			}
			c := o // the socket side carries netns, address and owner
			c.Kind = KindChanged
			if e.Kind == KindDisappeared { // missing -> listening
				c.OldStatus = string(audit.Missing)
			} else { // listening -> missing
				c.NewStatus, c.Severity, c.Reason = string(audit.Missing), e.Severity, e.Reason
			}
			merged[j], drop[i] = c, true
			break
		}
	}
	var out []drifted
	for i, e := range events {
		switch c, ok := merged[i]; {
		case ok:
			out = append(out, c)
		case !drop[i]:
			out = append(out, e)
		}
	}
	return out
}

func event(now time.Time, key, kind, old string, e Entry) drifted {
	return drifted{Event{Time: now, Kind: kind, Netns: e.Netns, Protocol: e.Protocol, Address: e.Address, Port: e.Port,
		Service: e.Service, OldStatus: old, NewStatus: e.Status, Severity: e.Severity, Process: e.Process, Reason: e.Reason},
		isMissingKey(key)}
}
