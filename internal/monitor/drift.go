// Package monitor is `bindguard serve`: it audits on an interval, turns the difference between
// two audits into drift events, keeps them in an embedded store (bbolt) before anything else
// sees them, and serves the latest report, the events, health and Prometheus metrics over HTTP.
package monitor

import (
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
	KindDisappeared    = "disappeared"     // a finding that is gone
	KindChanged        = "changed"         // same socket (or missing service), another status
	KindPolicyReloaded = "policy_reloaded" // SIGHUP loaded a new policy
)

// Process is the owner an event names.
type Process struct {
	PID  int    `json:"pid"`
	Name string `json:"name,omitempty"`
	Unit string `json:"unit,omitempty"`
}

// Event is one drift event. ID is assigned by the store: stable and increasing.
type Event struct {
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

// Entry is what the monitor remembers of one finding between audits.
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

// State is an audit's findings by key: (netns, protocol, address, port) for a socket, the
// service for a missing one.
type State map[string]Entry

// StateOf keys a report's findings.
func StateOf(r *audit.Report) State {
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
			key = fmt.Sprintf("sock|%s|%s|%s|%d", a.Netns, f.Protocol, a.Address, a.Port)
		} else {
			if f.Expected != nil {
				e.Port = f.Expected.Port
				e.Address = f.Expected.Address
			}
			key = fmt.Sprintf("missing|%s|%s|%d", e.Service, f.Protocol, e.Port)
		}
		s[key] = e
	}
	return s
}

// Diff returns the events that lead from prev to next, in key order.
func Diff(prev, next State, now time.Time) []Event {
	var out []Event
	keys := slices.Sorted(maps.Keys(next))
	for _, k := range keys {
		n := next[k]
		p, had := prev[k]
		switch {
		case !had:
			out = append(out, event(now, KindAppeared, "", n))
		case p.Status != n.Status:
			out = append(out, event(now, KindChanged, p.Status, n))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(prev)) {
		if _, still := next[k]; !still {
			p := prev[k]
			e := event(now, KindDisappeared, p.Status, p)
			e.NewStatus = ""
			if strings.HasPrefix(k, "missing|") {
				e.Reason = fmt.Sprintf("service %s listens again", p.Service)
			} else {
				e.Reason = fmt.Sprintf("%s %s:%d in %s no longer listens", p.Protocol, p.Address, p.Port, p.Netns)
			}
			out = append(out, e)
		}
	}
	return pairMissing(out)
}

// pairMissing turns a declared service going from missing to listening (or back) into one
// "changed" event on its socket, instead of a missing finding disappearing and a socket
// appearing.
func pairMissing(events []Event) []Event {
	isMissing := func(e Event) bool { return e.Netns == "" && (e.NewStatus == "missing" || e.OldStatus == "missing") }
	drop := make([]bool, len(events))
	merged := map[int]Event{} // socket event index -> the changed event replacing it
	for i, e := range events {
		if e.Service == "" || !isMissing(e) || e.Kind == KindChanged {
			continue
		}
		for j, o := range events {
			if _, taken := merged[j]; taken || j == i || o.Service != e.Service || o.Protocol != e.Protocol || isMissing(o) || o.Kind == e.Kind || o.Kind == KindChanged {
				continue
			}
			c := o // the socket side carries netns, address and owner
			c.Kind = KindChanged
			if e.Kind == KindDisappeared { // missing -> listening
				c.OldStatus = "missing"
			} else { // listening -> missing
				c.NewStatus, c.Severity, c.Reason = "missing", e.Severity, e.Reason
			}
			merged[j], drop[i] = c, true
			break
		}
	}
	var out []Event
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

func event(now time.Time, kind, old string, e Entry) Event {
	return Event{Time: now, Kind: kind, Netns: e.Netns, Protocol: e.Protocol, Address: e.Address, Port: e.Port,
		Service: e.Service, OldStatus: old, NewStatus: e.Status, Severity: e.Severity, Process: e.Process, Reason: e.Reason}
}
