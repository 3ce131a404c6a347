// Package audit judges observed listening sockets against a policy. It is pure: no I/O, no
// clock, no globals; the same input always gives the same report.
//
// Each (network namespace, protocol, address, port) is one finding: valid, invalid (the
// service's port is bound at an exposure its access class forbids, wider than declared, at
// another address, or by another process), missing (declared, not listening) or unexpected
// (listening, not declared). Every finding has a severity and a reason in plain words; the
// report has the seed's 0-100 score (see docs/audit.md).
package audit

import (
	"encoding"
	"fmt"
	"net/netip"
	"strings"

	"github.com/bindguard/bindguard/internal/observed"
	"github.com/bindguard/bindguard/policy"
)

// Status is a finding's verdict.
type Status string

// The statuses.
const (
	Valid      Status = "valid"
	Invalid    Status = "invalid"
	Missing    Status = "missing"
	Unexpected Status = "unexpected"
)

// Statuses lists every status, in report order.
func Statuses() []Status { return []Status{Invalid, Unexpected, Missing, Valid} }

// Severity orders findings; the zero value is Info.
type Severity int

// The severities, from least to most severe.
const (
	Info Severity = iota
	Low
	Medium
	High
	Critical
)

var severityNames = [...]string{"info", "low", "medium", "high", "critical"}

// Severities lists every severity, most severe first.
func Severities() []Severity { return []Severity{Critical, High, Medium, Low, Info} }

func (s Severity) String() string {
	if s < Info || s > Critical {
		return fmt.Sprintf("severity(%d)", int(s))
	}
	return severityNames[s]
}

// ParseSeverity reads "info", "low", "medium", "high" or "critical".
func ParseSeverity(s string) (Severity, error) {
	for i, n := range severityNames {
		if n == s {
			return Severity(i), nil
		}
	}
	return 0, fmt.Errorf("unknown severity %q (want one of %s)", s, strings.Join(severityNames[:], ", "))
}

var (
	_ encoding.TextMarshaler   = Severity(0)
	_ encoding.TextUnmarshaler = (*Severity)(nil)
)

// MarshalText writes the severity's name.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a severity's name.
func (s *Severity) UnmarshalText(b []byte) error {
	v, err := ParseSeverity(string(b))
	if err == nil {
		*s = v
	}
	return err
}

// Exposure is who can reach a socket, judged from its address alone.
type Exposure string

// The exposures.
const (
	ExposureLoopback   Exposure = "loopback"
	ExposureLinkLocal  Exposure = "link-local"
	ExposurePrivate    Exposure = "private"
	ExposurePublic     Exposure = "public"
	ExposureWildcardV4 Exposure = "wildcard-v4"
	ExposureWildcardV6 Exposure = "wildcard-v6"
	ExposureDualStack  Exposure = "wildcard-dual-stack"
)

// IsWildcard reports whether the socket listens on every interface of a family.
func (e Exposure) IsWildcard() bool {
	return e == ExposureWildcardV4 || e == ExposureWildcardV6 || e == ExposureDualStack
}

// words is how a reason describes an exposure.
func (e Exposure) words() string {
	switch e {
	case ExposureLoopback:
		return "loopback"
	case ExposureLinkLocal:
		return "a link-local address"
	case ExposurePrivate:
		return "a private address"
	case ExposurePublic:
		return "a public address"
	case ExposureWildcardV4:
		return "all IPv4 interfaces"
	case ExposureWildcardV6:
		return "all IPv6 interfaces"
	case ExposureDualStack:
		return "all IPv4 and IPv6 interfaces"
	}
	return string(e)
}

// ExposureOf classifies an address. IPv4-mapped addresses are judged as their IPv4 address;
// "::" is dual-stack unless v6only is known to be set.
func ExposureOf(addr netip.Addr, v6only observed.V6Only) Exposure {
	a := addr.Unmap().WithZone("")
	switch {
	case a == netip.IPv4Unspecified():
		return ExposureWildcardV4
	case a == netip.IPv6Unspecified():
		if v6only == observed.V6OnlyYes {
			return ExposureWildcardV6
		}
		return ExposureDualStack
	case a.IsLoopback():
		return ExposureLoopback
	case a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast(), a.IsInterfaceLocalMulticast():
		return ExposureLinkLocal
	case a.IsPrivate():
		return ExposurePrivate
	}
	return ExposurePublic
}

// Expected is what the policy declares for a finding's service.
type Expected struct {
	// Address is the declared address, or, when the service declares none, what its class
	// permits: "loopback", "loopback or LAN", "any".
	Address string        `json:"address"`
	Port    uint16        `json:"port"`
	Access  policy.Access `json:"access"`
}

// Actual is the observed socket of a finding.
type Actual struct {
	Address  string            `json:"address"`
	Port     uint16            `json:"port"`
	Family   observed.Family   `json:"family"`
	V6Only   *bool             `json:"v6only"`
	Exposure Exposure          `json:"exposure"`
	Netns    string            `json:"netns"`
	Process  *observed.Process `json:"process"`
}

// Finding is one verdict.
type Finding struct {
	Status   Status          `json:"status"`
	Severity Severity        `json:"severity"`
	Service  *string         `json:"service"`
	Protocol policy.Protocol `json:"protocol"`
	Expected *Expected       `json:"expected"`
	Actual   *Actual         `json:"actual"`
	Reason   string          `json:"reason"`
	// Netns labels the namespace the finding is about, missing ones too (Actual.Netns
	// repeats it for a socket). The v2 document writes it; v1 has only Actual's.
	Netns string `json:"-"`
	// exposesLoopbackOnly: an invalid finding that puts a loopback-only service beyond
	// loopback (the score's 20-point deduction).
	exposesLoopbackOnly bool
}

// ServiceName returns the service's name, or "".
func (f *Finding) ServiceName() string {
	if f.Service == nil {
		return ""
	}
	return *f.Service
}

// Summary counts findings by status.
type Summary struct {
	Valid      int `json:"valid"`
	Invalid    int `json:"invalid"`
	Missing    int `json:"missing"`
	Unexpected int `json:"unexpected"`
}

// Count returns the count for a status.
func (s Summary) Count(st Status) int {
	switch st {
	case Valid:
		return s.Valid
	case Invalid:
		return s.Invalid
	case Missing:
		return s.Missing
	case Unexpected:
		return s.Unexpected
	}
	return 0
}

// ServiceState is the verdict on one declared service, for per-service metrics.
type ServiceState struct {
	// Netns and Scope say where it was judged: the namespace's label and the scope's name.
	Netns    string
	Scope    string
	Name     string
	Protocol policy.Protocol
	Port     uint16
	// Compliant: it listens, and every socket on its port is valid.
	Compliant bool
	// Listening: something listens on its protocol and port.
	Listening bool
}

// NamespaceReport is the verdict on one audited network namespace.
type NamespaceReport struct {
	Label     string
	Netns     string
	Container string
	Host      bool
	// Scope is the name of the policy scope that judged it ("host" for the policy's
	// top-level services); Matched is false when no named scope matched it, so that it was
	// held to the host's services without owing them (see docs/audit.md: scopes).
	Scope   string
	Matched bool
	// Owed says the scope's missing services are this namespace's findings: each namespace a
	// named scope matches owes its scope's services; the host's services are owed by the
	// host's namespace (else the first audited) together with the namespaces no named scope
	// matches, so a host service listening in any of them is not missing.
	Owed    bool
	Score   int
	Summary Summary
	// Services are its scope's services the score counts.
	Services []ServiceState
}

// Report is the result of an audit.
type Report struct {
	Findings []Finding
	// Summary counts every namespace's findings.
	Summary Summary
	// Score is the host's score: the lowest of the audited namespaces' scores (HostScoreRule).
	Score int
	// Services lists the declared services of the primary namespace (the host's when it was
	// audited, else the first) that its score counts: every service of its scope; with the
	// built-in catalogue only those that listen. Namespaces has every namespace's.
	Services []ServiceState
	// Namespaces has one entry per audited namespace, the host's first.
	Namespaces []NamespaceReport
	// Notes are hints for the operator, such as how to see hidden owners.
	Notes []string
	// Warnings are the judge's: a policy scope that matched no audited namespace.
	Warnings []string
	// Complete is false when something could not be observed; Unseen says what.
	Complete bool
	Unseen   []string
}

// HostScoreRule states how Report.Score is made, for reports and docs.
const HostScoreRule = "the host's score is the lowest score of its audited network namespaces"

// Primary is the report of the primary namespace (the host's when audited, else the first).
func (r *Report) Primary() *NamespaceReport {
	if len(r.Namespaces) == 0 {
		return nil
	}
	return &r.Namespaces[0]
}

// Worst returns the highest severity among non-valid findings, and false when there is none.
func (r *Report) Worst() (Severity, bool) {
	worst, any := Info, false
	for _, f := range r.Findings {
		if f.Status == Valid {
			continue
		}
		if !any || f.Severity > worst {
			worst, any = f.Severity, true
		}
	}
	return worst, any
}

// Fails reports whether any non-valid finding is at or above threshold.
func (r *Report) Fails(threshold Severity) bool {
	worst, any := r.Worst()
	return any && worst >= threshold
}
