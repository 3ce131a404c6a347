package scan

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml/ast"

	"github.com/bindguard/bindguard/internal/audit"
	"github.com/bindguard/bindguard/policy"
)

// The seed's own policy format (config/service-bindings.yaml): services grouped under
// headings, each with bind_address "ADDRESS:PORT" (or the nginx entry's http_port and
// https_port) and the access it declares. Each binding is a finding, judged first by the
// entry's own access (a localhost_only service written as 0.0.0.0:8001 contradicts itself,
// whatever else says), then as every finding is, by the policy.

// seedBindKeys are the keys of an entry that hold a binding.
var seedBindKeys = []string{"bind_address", "http_port", "https_port"}

// scanSeed reads a YAML document in the seed's format; ok is false when doc is not one (no
// group holds an entry with a binding).
func scanSeed(file string, doc ast.Node) (out []Finding, ok bool) {
	for _, g := range pairs(doc) {
		group := scalar(g.Key)
		for _, e := range pairs(unwrap(g.Value)) {
			body := unwrap(e.Value)
			if pairs(body) == nil {
				continue
			}
			for _, key := range seedBindKeys {
				n := get(body, key)
				if n == nil {
					continue
				}
				ok = true
				if f, good := seedFinding(file, group, scalar(e.Key), key, body, n); good {
					out = append(out, f)
				}
			}
		}
	}
	return out, ok
}

// seedFinding is the finding of one binding; good is false when the value is no ADDRESS:PORT
// (the policy loader names that error).
func seedFinding(file, group, name, key string, body, n ast.Node) (Finding, bool) {
	v := scalar(n)
	i := strings.LastIndexByte(v, ':')
	if i <= 0 {
		return Finding{}, false
	}
	host := strings.TrimSuffix(strings.TrimPrefix(v[:i], "["), "]")
	port, err := strconv.Atoi(v[i+1:])
	if err != nil || port < 1 || port > 65535 {
		return Finding{}, false
	}
	proto := policy.TCP
	if strings.EqualFold(scalar(get(body, "protocol")), "udp") {
		proto = policy.UDP
	}
	f := newFinding(file, lineOf(n), "seed-bind", proto, host, "0.0.0.0", port)
	f.Subject = fmt.Sprintf("seed policy entry %s.%s (%s)", group, name, key)
	access := scalar(get(body, "access"))
	if a, known := policy.SeedAccess(group, access); known {
		f.declared = &policy.Service{Name: name, Protocol: proto, Port: uint16(port), Access: a} // #nosec G115 -- checked above
	}
	return f, true
}

// judgeDeclared holds a seed entry to its own declared access: a binding its class does not
// permit is reported whatever the policy says; one it permits is allowed when the judge has no
// policy but the built-in catalogue (the file is the operator's own declaration, and outranks
// the catalogue's guess for the port). True when it decided.
func judgeDeclared(f *Finding, builtin bool) bool {
	s := f.declared
	if s == nil || !f.addr.IsValid() {
		return false
	}
	where := f.Address
	if f.wildcard {
		where = "every interface"
	}
	if s.PermitsBind(f.addr) {
		if !builtin || f.Reach == ReachLoopback {
			return false
		}
		f.Status, f.Severity, f.Service = Allowed, audit.Info, s.Name
		f.Why = fmt.Sprintf("the entry itself declares %s, which may bind %s (judged by the file, as no policy was given)", s.Access, where)
		return true
	}
	f.Status, f.Severity, f.Service = Reported, audit.High, s.Name
	if f.Reach == ReachPublic {
		f.Severity = audit.Critical
	}
	f.Why = fmt.Sprintf("binds %s (%s reach), but the entry itself declares %s: %s", where, f.Reach, s.Access, s.BindRefusal(f.addr))
	return true
}
