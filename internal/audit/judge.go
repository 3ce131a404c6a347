package audit

import (
	"cmp"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"

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

// Judge compares the observed sockets with the policy. A policy of FormatBuiltin (the
// catalogue) only classifies what listens: it never reports missing services, and the score
// counts only the catalogue services that listen.
func Judge(p *policy.Policy, listeners []observed.Listener) *Report {
	catalogueMode := p.Format == policy.FormatBuiltin
	byKey := map[key][]int{}
	for i, s := range p.Services {
		k := key{s.Protocol, s.Port}
		byKey[k] = append(byKey[k], i)
	}
	r := &Report{}
	type svcTally struct{ valid, invalid, sockets int }
	tally := make([]svcTally, len(p.Services))
	hidden := false
	for _, o := range listeners {
		if o.Owner == observed.OwnerHidden {
			hidden = true
		}
		cands := byKey[key{policy.Protocol(o.Protocol), o.Port}]
		if len(cands) == 0 {
			r.Findings = append(r.Findings, unexpected(o))
			continue
		}
		i := pick(p.Services, cands, o.Addr)
		f := judge(p.Services[i], o)
		tally[i].sockets++
		if f.Status == Valid {
			tally[i].valid++
		} else {
			tally[i].invalid++
		}
		r.Findings = append(r.Findings, f)
	}
	validServices, expected := 0, 0
	for i, s := range p.Services {
		t := tally[i]
		if catalogueMode && t.sockets == 0 {
			continue
		}
		expected++
		st := ServiceState{Name: s.Name, Protocol: s.Protocol, Port: s.Port, Listening: t.sockets > 0, Compliant: t.valid > 0 && t.invalid == 0}
		if st.Compliant {
			validServices++
		}
		r.Services = append(r.Services, st)
		if t.sockets == 0 {
			r.Findings = append(r.Findings, missing(s))
		}
	}
	score := 100.0
	if expected > 0 {
		score = float64(validServices) / float64(expected) * 100
	}
	for i := range r.Findings {
		f := &r.Findings[i]
		switch f.Status {
		case Valid:
			r.Summary.Valid++
		case Invalid:
			r.Summary.Invalid++
			if f.exposesLoopbackOnly {
				score -= deductExposedLoopbackOnly
			} else {
				score -= deductOtherInvalid
			}
		case Missing:
			r.Summary.Missing++
		case Unexpected:
			r.Summary.Unexpected++
			if f.Actual.Exposure.IsWildcard() {
				score -= deductUnexpectedWildcard
			}
		}
	}
	r.Score = int(max(0, min(100, score)))
	if hidden {
		r.Notes = append(r.Notes, "some sockets' owners are hidden: run bindguard as root (or with CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH) to see every process")
	}
	sortFindings(r.Findings)
	return r
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
func judge(s policy.Service, o observed.Listener) Finding {
	f := finding(o)
	name := s.Name
	f.Service = &name
	f.Expected = expected(s)
	exp := f.Actual.Exposure
	where := fmt.Sprintf("%s listens on %s, %s", ownerWords(o), addrPort(o.Addr, o.Port), exp.words())
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
func unexpected(o observed.Listener) Finding {
	f := finding(o)
	f.Status = Unexpected
	exp := f.Actual.Exposure
	reason := fmt.Sprintf("%s listens on %s, %s; no service in the policy declares %s port %d", ownerWords(o), addrPort(o.Addr, o.Port), exp.words(), o.Protocol, o.Port)
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

// missing returns the finding for a declared service nothing listens for.
func missing(s policy.Service) Finding {
	name := s.Name
	return Finding{
		Status: Missing, Severity: Medium, Service: &name, Protocol: s.Protocol, Expected: expected(s),
		Reason: fmt.Sprintf("%s is declared on %s but nothing listens on %s port %d", s.Name, declWords(s), s.Protocol, s.Port),
	}
}

// finding fills the parts every socket finding shares.
func finding(o observed.Listener) Finding {
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

func expected(s policy.Service) *Expected {
	return &Expected{Port: s.Port, Access: s.Access, Address: s.PermittedAddresses()}
}

// ownerWords names who holds a socket ("nginx (pid 900, unit nginx.service) and 3 more"), or
// says why that is unknown.
func ownerWords(o observed.Listener) string {
	switch o.Owner {
	case observed.OwnerKnown:
		if len(o.Owners) > 0 {
			s := o.Owners[0].Label()
			if n := len(o.Owners) - 1; n > 0 {
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
	return ""
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
