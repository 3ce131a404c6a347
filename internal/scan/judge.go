package scan

import (
	"fmt"
	"strings"

	"github.com/bindguard/bindguard/internal/audit"
	"github.com/bindguard/bindguard/policy"
)

// judge gives findings their verdict by a policy (or the built-in catalogue). What a class
// permits is asked of policy (Service.PermitsBind, Service.BindRefusal), never re-derived.
type judge struct {
	p    *policy.Policy
	name string
}

// service is the host scope's service declared for the finding's protocol and port.
func (j judge) service(f *Finding) (policy.Service, bool) {
	if f.Port <= 0 || f.Port > 65535 {
		return policy.Service{}, false
	}
	services := j.p.Services
	if f.Scope != "" && f.Scope != policy.HostScope {
		sc, _ := j.p.Scope(f.Scope)
		services = sc.Services
	}
	for _, s := range services {
		if s.Protocol == f.Protocol && int(s.Port) == f.Port {
			return s, true
		}
	}
	return policy.Service{}, false
}

// applyRule sets the context and scope a policy's scan: rule gives the finding's file.
func (j judge) applyRule(f *Finding) {
	r, ok := j.p.ScanRuleFor(f.File)
	if !ok {
		return
	}
	if r.Context != "" {
		f.Context = Context(r.Context)
	}
	if r.Scope != "" && r.Scope != policy.HostScope {
		f.Scope = r.Scope
	}
}

// verdict sets Status, Severity and Why.
func (j judge) verdict(f *Finding) {
	if f.Scope != "" {
		j.name += " (scope " + f.Scope + ")"
	}
	switch {
	case f.Context == ContextTest:
		f.Status, f.Severity, f.Why = Allowed, audit.Info, "test code"
		return
	case judgeDeclared(f, j.p.Format == policy.FormatBuiltin):
		return
	case f.Context == ContextContainer && !f.publication && (f.wildcard || f.Reach == ReachPublic):
		f.Status, f.Severity, f.Reach = Allowed, audit.Info, ReachPod
		f.Why = "binds every interface inside its container, which is normal there; only a publication (compose ports, a hostPort, a Service) exposes it beyond the container"
		return
	case f.Reach == ReachLoopback:
		f.Status, f.Severity, f.Why = Allowed, audit.Info, "loopback only"
		if s, ok := j.service(f); ok {
			f.Service = s.Name
		}
		return
	}
	where := "every interface"
	if !f.wildcard {
		where = f.Address
	}
	if f.publication && f.wildcard {
		where = "every host interface"
	}
	s, ok := j.service(f)
	if !ok {
		f.Status = Reported
		f.Severity = audit.Low
		if f.Reach == ReachPublic {
			f.Severity = audit.Medium
		}
		switch {
		case f.Port == 0:
			f.Why = fmt.Sprintf("listens on %s (%s reach) on a port not known statically; %s cannot match it to a service", where, f.Reach, j.name)
		case f.Reach == ReachUnknown:
			f.Why = fmt.Sprintf("listens on host name %q, which the scan does not resolve, and %s declares no %s/%d service", f.Address, j.name, f.Protocol, f.Port)
		default:
			f.Why = fmt.Sprintf("listens on %s (%s reach) and %s declares no %s/%d service", where, f.Reach, j.name, f.Protocol, f.Port)
		}
		return
	}
	f.Service = s.Name
	if !f.addr.IsValid() {
		f.Status, f.Severity = Reported, audit.Low
		f.Why = fmt.Sprintf("listens on host name %q, which the scan does not resolve; %s's %s allows %s", f.Address, j.name, s.Name, s.AllowedWords())
		return
	}
	if s.PermitsBind(f.addr) {
		f.Status, f.Severity = Allowed, audit.Info
		f.Why = fmt.Sprintf("%s's service %s (%s) may bind %s", j.name, s.Name, s.Access, where)
		return
	}
	f.Status = Reported
	f.Severity = audit.High
	if f.Reach == ReachPublic {
		f.Severity = audit.Critical
	}
	f.Why = fmt.Sprintf("binds %s (%s reach), but %s's service %s: %s", where, f.Reach, j.name, s.Name, s.BindRefusal(f.addr))
}

// suppress applies a bindguard:allow comment: with a reason it suppresses a reported finding
// of its kind; without one it does not, and the finding says so.
func suppress(f *Finding, comments map[int]comment) {
	for _, line := range []int{f.Line, f.Line - 1} {
		c, ok := comments[line]
		if !ok || (line != f.Line && !c.alone) {
			continue
		}
		kind, reason, ok := parseAllow(c.text)
		if !ok || kind != f.Kind {
			continue
		}
		if reason == "" {
			f.Note = fmt.Sprintf("bindguard:allow at line %d has no reason and does not suppress; write \"bindguard:allow %s -- REASON\"", line, f.Kind)
			return
		}
		if f.Status == Reported {
			f.Status = Suppressed
			f.Why += "; suppressed: " + reason
		}
		return
	}
}

// comment is a comment's text, and whether it stands alone on its line (only then does it
// apply to the line below).
type comment struct {
	text  string
	alone bool
}

// parseAllow reads "bindguard:allow KIND -- REASON" out of a comment's text.
func parseAllow(text string) (kind, reason string, ok bool) {
	_, rest, found := strings.Cut(text, "bindguard:allow")
	if !found {
		return "", "", false
	}
	before, after, hasSep := strings.Cut(rest, "--")
	fields := strings.Fields(before)
	if len(fields) != 1 {
		return "", "", false
	}
	if !hasSep {
		return fields[0], "", true
	}
	return fields[0], strings.TrimSpace(after), true
}

// hashComments maps line numbers to the text of comments that start with one of the
// markers, for formats whose comments run to the end of the line. Only comments that mention
// bindguard:allow are kept.
func hashComments(src []byte, markers ...string) map[int]comment {
	out := map[int]comment{}
	for i, line := range strings.Split(string(src), "\n") {
		at := strings.Index(line, "bindguard:allow")
		if at < 0 {
			continue
		}
		for _, m := range markers {
			if j := strings.Index(line, m); j >= 0 && j < at {
				out[i+1] = comment{text: line[j+len(m):], alone: strings.TrimSpace(line[:j]) == ""}
				break
			}
		}
	}
	return out
}
