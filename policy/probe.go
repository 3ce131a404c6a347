package policy

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/goccy/go-yaml/ast"
)

// ProbeTarget is one host `bindguard serve` answers /probe for: the multi-target exporter
// endpoint probes only the hosts the policy (or serve's --probe.target flags) declares, never a
// host whoever reaches it names.
type ProbeTarget struct {
	// Target is one host: an IP address or a host name (ParseHost), never a prefix or a range.
	Target string
	// Scope names the scope whose services are probed on the target; "" is the host's.
	Scope string
	// Ports are extra ranges probed besides the scope's declared ports (an open one is an
	// undeclared port); a range without a protocol is TCP.
	Ports []PortRange
	Pos   Position
}

// MaxProbeTargets is how many targets the probe section may list.
const MaxProbeTargets = 256

// MaxProbeRanges is how many extra port ranges one probe target may list.
const MaxProbeRanges = 16

const probeKey = "probe"

var probeKeys = []string{"target", "scope", "ports"}

// ParseHost checks that s names exactly one host: an IP literal (brackets allowed around IPv6;
// IPv4-mapped is unmapped), or an RFC 1123 host name (a name's address is returned invalid).
// It refuses prefixes, ranges, lists, wildcards and addresses that are not one host
// (unspecified, multicast, broadcast), and a zone anywhere but on a link-local address.
func ParseHost(s string) (netip.Addr, string, error) {
	if s == "" {
		return netip.Addr{}, "", errors.New("no target: name one host")
	}
	if strings.ContainsAny(s, "/,* \t\n") {
		return netip.Addr{}, "", fmt.Errorf("target %q is not one host: name a single IP address or host name (no prefixes, ranges, lists or wildcards)", s)
	}
	trimmed := strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	if a, err := netip.ParseAddr(trimmed); err == nil {
		a = a.Unmap()
		switch {
		case a.Zone() != "" && !a.IsLinkLocalUnicast():
			return netip.Addr{}, "", fmt.Errorf("target %q: a zone only belongs on a link-local address", s)
		case a.IsUnspecified(), a.IsMulticast(), a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
			return netip.Addr{}, "", fmt.Errorf("target %s is not one host", a)
		}
		return a, "", nil
	}
	if !validHostName(s) {
		return netip.Addr{}, "", fmt.Errorf("target %q is neither an IP address nor a host name (ranges of hosts such as 10.0.0.1-9 are refused)", s)
	}
	return netip.Addr{}, s, nil
}

// CanonicalHost is the form targets are compared in: an address as netip prints it, a name in
// lower case without a final dot. s should have passed ParseHost.
func CanonicalHost(s string) string {
	if a, _, err := ParseHost(s); err == nil && a.IsValid() {
		return a.String()
	}
	return strings.ToLower(strings.TrimSuffix(s, "."))
}

// validHostName accepts RFC 1123 host names whose last label is neither all digits nor has a
// hyphen (so "10.0.0.1-9" is not taken for a name).
func validHostName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	labels := strings.Split(s, ".")
	for _, l := range labels {
		if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	last := labels[len(labels)-1]
	return strings.ContainsFunc(last, func(r rune) bool { return r < '0' || r > '9' }) && !strings.ContainsRune(last, '-')
}

// probeTargets decodes the probe: list.
func (d *decoder) probeTargets(n ast.Node, at *locs) []ProbeTarget {
	out := []ProbeTarget{}
	d.eachObject(n, probeKey, "(target:, scope:, ports:)", probeKeys, at, func(o object, key string) {
		t := ProbeTarget{Pos: o.pos}
		d.strFields(o, key, at, strField{"target", &t.Target}, strField{"scope", &t.Scope})
		if v, ok := o.get("ports"); ok {
			ports, locs, good := d.strList(v, o.field("ports"), "; write ports: [RANGE...], as 8000-8100 or udp/53")
			at.set(key+".ports", loc{path: o.field("ports"), pos: posOf(unwrap(v))})
			if !good {
				at.fail(key + ".ports")
			}
			for j, s := range ports {
				r, err := ParsePortRange(s)
				if err != nil {
					d.ps.add(locs[j].pos, locs[j].path, "%s (a range is 8000-8100, tcp/6000-6999 or udp/53)", err)
					at.fail(key + ".ports")
					continue
				}
				at.set(fmt.Sprintf("%s.ports[%d]", key, len(t.Ports)), locs[j])
				t.Ports = append(t.Ports, r)
			}
		}
		out = append(out, t)
	})
	return out
}

// validateProbe checks the probe targets: one host each, a scope the policy declares, valid
// port ranges, no target declared twice for the same scope.
func validateProbe(ps *problems, p *Policy, at *locs) {
	if len(p.Probe) > MaxProbeTargets {
		l := at.at(probeKey)
		ps.add(l.pos, l.path, "%d probe targets: at most %d", len(p.Probe), MaxProbeTargets)
	}
	seen := map[[2]string]int{}
	for i, t := range p.Probe {
		key := fmt.Sprintf("probe[%d]", i)
		if !at.failed(key + ".target") {
			l := at.at(key + ".target")
			if t.Target == "" {
				l = at.at(key)
				ps.add(l.pos, l.path, "a probe target needs target: HOST")
			} else if _, _, err := ParseHost(t.Target); err != nil {
				ps.add(l.pos, l.path, "%s", err)
			}
		}
		if t.Scope != "" && t.Scope != HostScope && !at.failed(key+".scope") {
			if _, ok := p.Scope(t.Scope); !ok {
				l := at.at(key + ".scope")
				ps.add(l.pos, l.path, "no scope is named %q", t.Scope)
			}
		}
		scope := t.Scope
		if scope == "" {
			scope = HostScope
		}
		k := [2]string{CanonicalHost(t.Target), scope}
		if j, dup := seen[k]; dup && t.Target != "" {
			l := at.at(key)
			ps.add(l.pos, l.path, "target %s with scope %s is declared already (probe[%d])", t.Target, scope, j)
		} else {
			seen[k] = i
		}
		if at.failed(key + ".ports") {
			continue
		}
		if len(t.Ports) > MaxProbeRanges {
			l := at.at(key + ".ports")
			ps.add(l.pos, l.path, "%d port ranges: at most %d", len(t.Ports), MaxProbeRanges)
		}
		for j, r := range t.Ports {
			if r.Protocol != "" && r.Protocol != TCP && r.Protocol != UDP || r.Lo == 0 || r.Hi < r.Lo {
				l := at.at(fmt.Sprintf("%s.ports[%d]", key, j))
				ps.add(l.pos, l.path, "range %s: want tcp or udp, 1 <= first <= last", r)
			}
		}
	}
}

// writeProbe writes the probe section.
func writeProbe(b *bytes.Buffer, targets []ProbeTarget) {
	if len(targets) == 0 {
		return
	}
	b.WriteString("probe:\n")
	for _, t := range targets {
		fmt.Fprintf(b, "  - target: %s\n", quote(t.Target))
		if t.Scope != "" {
			fmt.Fprintf(b, "    scope: %s\n", quote(t.Scope))
		}
		if len(t.Ports) > 0 {
			ports := make([]string, len(t.Ports))
			for i, r := range t.Ports {
				ports[i] = r.String()
			}
			fmt.Fprintf(b, "    ports: %s\n", quotedList(ports))
		}
	}
}
