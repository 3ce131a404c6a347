// Package scan finds where code and deployment files bind or publish network listeners, and
// judges each by where it runs and what the policy says: a verdict, not a string match. It
// reads Go through go/ast and go/types, and Dockerfiles, docker compose files, Kubernetes
// manifests, redis.conf, postgresql.conf, nginx and systemd socket units through parsers of
// their own formats. It never runs, fetches or follows anything outside the scanned trees.
//
// Scan walks trees in parallel with a bounded worker pool and a per-file size cap, respects
// .gitignore, skips vendor/, node_modules/ and generated Go files unless asked, never follows
// symbolic links, and never panics on any file: a file it cannot read or parse is reported as
// a problem with its path and line, and the scan goes on.
package scan

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/bindguard/bindguard/internal/audit"
	"github.com/bindguard/bindguard/policy"
)

// Reach is who can connect to a listener as written.
type Reach string

// The reaches, from narrowest to widest.
const (
	// ReachLoopback: local processes only.
	ReachLoopback Reach = "loopback"
	// ReachPod: the container's or pod's own network (a wildcard inside a container that
	// nothing publishes).
	ReachPod Reach = "pod network"
	// ReachPrivate: hosts on private networks (RFC 1918, ULA, link-local, internal load
	// balancers).
	ReachPrivate Reach = "private"
	// ReachPublic: anyone who can route to the host (a wildcard on the host, a public address,
	// a public load balancer).
	ReachPublic Reach = "public"
	// ReachUnknown: a host name the scan cannot resolve.
	ReachUnknown Reach = "unknown"
)

// Context is where the scanned code or file runs.
type Context string

// The contexts.
const (
	// ContextHost: on the host itself (the default for code and host configuration).
	ContextHost Context = "host"
	// ContextContainer: inside a container (a Dockerfile's CMD, a compose service's own
	// process).
	ContextContainer Context = "container"
	// ContextTest: test code (Go _test.go files).
	ContextTest Context = "test"
)

// Status is a finding's verdict.
type Status string

// The verdicts.
const (
	// Reported findings are exposures the policy (or the catalogue) does not permit, or that
	// nothing declares. They are what SARIF and the exit code are made of.
	Reported Status = "reported"
	// Allowed findings bind where they may: loopback, inside a container, in tests, or as a
	// policy's service permits.
	Allowed Status = "allowed"
	// Suppressed findings carry a bindguard:allow comment with a reason.
	Suppressed Status = "suppressed"
)

// Finding is one bind or publication.
type Finding struct {
	// File is the path relative to the scanned root, with forward slashes.
	File string `json:"file"`
	Line int    `json:"line"`
	// Origin is where the address comes from when that is elsewhere ("main.go:12: flag -addr
	// default", "const.go:3"), else "".
	Origin string `json:"origin,omitempty"`
	// Kind names the rule: go-listen, compose-port, k8s-hostport, ... (Rules lists them).
	Kind     string          `json:"kind"`
	Protocol policy.Protocol `json:"protocol"`
	// Address is the bound address as the program means it: "0.0.0.0", "::", "127.0.0.1", "*"
	// for every interface of both families (Go's ":8080"), or a host name.
	Address string `json:"address"`
	// Port is 0 when it is not known statically (or is chosen by the kernel).
	Port    int     `json:"port"`
	Reach   Reach   `json:"reach"`
	Context Context `json:"context"`
	// Subject says what binds or publishes, when the file says it ("compose service redis,
	// container port 6379").
	Subject string `json:"subject,omitempty"`
	// Scope is the policy scope whose services judge the finding, when a scan rule names one.
	Scope string `json:"scope,omitempty"`
	// Service is the policy's (or catalogue's) service matched by protocol and port, if any.
	Service  string         `json:"service,omitempty"`
	Status   Status         `json:"status"`
	Severity audit.Severity `json:"severity"`
	// Why explains the verdict.
	Why string `json:"why"`
	// Note is extra advice, such as a suppression comment that lacks a reason.
	Note string `json:"note,omitempty"`

	// wildcard is set for every-interface binds; addr is the address to judge with.
	wildcard bool
	addr     netip.Addr
	// raw is a finding before judgement: a wildcard inside a container that some publication
	// decides.
	publication bool
	// comments are the file's bindguard:allow comments by line.
	comments map[int]comment
	// declared is the service a seed-format entry declares for this binding (seed.go).
	declared *policy.Service
}

// Problem is a file the scan could not read or parse completely.
type Problem struct {
	File string `json:"file"`
	Line int    `json:"line,omitempty"`
	Msg  string `json:"message"`
}

func (p Problem) String() string {
	if p.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Msg)
	}
	return fmt.Sprintf("%s: %s", p.File, p.Msg)
}

// Result is one scan.
type Result struct {
	// Roots are the scanned paths as given.
	Roots    []string  `json:"roots"`
	Findings []Finding `json:"findings"`
	Problems []Problem `json:"problems"`
	// Files is how many files were read by some scanner.
	Files int `json:"files"`
	// Unscanned lists the languages found in the trees that this build cannot scan, with how
	// many files each ("python: 3 files").
	Unscanned []string `json:"unscanned"`
	// Policy names what judged the findings: a file, or "builtin".
	Policy string `json:"policy"`
}

// Fails reports whether a reported finding is at or above the threshold.
func (r *Result) Fails(threshold audit.Severity) bool {
	for _, f := range r.Findings {
		if f.Status == Reported && f.Severity >= threshold {
			return true
		}
	}
	return false
}

// sortFindings orders findings by file, line, kind, address and port.
func sortFindings(fs []Finding) {
	slices.SortFunc(fs, func(a, b Finding) int {
		return cmp.Or(strings.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line),
			strings.Compare(a.Kind, b.Kind), strings.Compare(a.Address, b.Address), cmp.Compare(a.Port, b.Port))
	})
}

// hostAddr interprets a host as written in a listen address. empty is what an empty host
// means in this format ("*" for Go, "0.0.0.0" for a compose publication).
func hostAddr(host, empty string) (addr string, ip netip.Addr, wildcard bool) {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "" {
		host = empty
	}
	switch host {
	case "*":
		return "*", netip.IPv6Unspecified(), true
	case "localhost":
		return host, netip.MustParseAddr("127.0.0.1"), false
	}
	if i := strings.IndexByte(host, '%'); i >= 0 {
		host = host[:i]
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return host, netip.Addr{}, false
	}
	a = a.Unmap()
	return a.String(), a, a.IsUnspecified()
}

// reachOf is the reach of binding ip on the host.
func reachOf(ip netip.Addr, wildcard bool) Reach {
	switch {
	case wildcard:
		return ReachPublic
	case !ip.IsValid():
		return ReachUnknown
	case ip.IsLoopback():
		return ReachLoopback
	case ip.IsPrivate() || ip.IsLinkLocalUnicast() || isCGNAT(ip):
		return ReachPrivate
	}
	return ReachPublic
}

var cgnat = netip.MustParsePrefix("100.64.0.0/10")

func isCGNAT(ip netip.Addr) bool { return cgnat.Contains(ip) }

// newFinding fills the address fields of a finding from a host as written.
func newFinding(file string, line int, kind string, proto policy.Protocol, host, empty string, port int) Finding {
	addr, ip, wild := hostAddr(host, empty)
	return Finding{File: file, Line: line, Kind: kind, Protocol: proto, Address: addr, Port: port,
		Context: ContextHost, wildcard: wild, addr: ip, Reach: reachOf(ip, wild)}
}

func policyProto(s string) policy.Protocol { return policy.Protocol(s) }
