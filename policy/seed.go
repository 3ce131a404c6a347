package policy

import (
	"net/netip"
	"strings"

	"github.com/goccy/go-yaml/ast"
)

// The seed's config/service-bindings.yaml groups services under headings (external_access,
// internal_services, database_services, monitoring_integration) and writes each binding as
// "ADDRESS:PORT":
//
//	internal_services:
//	  frontend_service:
//	    bind_address: "127.0.0.1:8443"
//	    protocol: "HTTPS"
//	    access: "nginx_only"
//
// The nginx entry has http_port and https_port instead of bind_address and no access: it sits
// under external_access, which makes it public.

var seedServiceKeys = []string{"bind_address", "http_port", "https_port", "protocol", "access", "allowed_hosts", "description"}

// seedAccess maps the seed's access names, and bindguard's own, to access classes.
var seedAccess = map[string]Access{
	"localhost_only":     LocalhostOnly,
	"nginx_only":         ProxyOnly,
	"proxy_only":         ProxyOnly,
	"lan_access":         LAN,
	"lan":                LAN,
	"zabbix_only":        Restricted,
	"zabbix_server_only": Restricted,
	"restricted":         Restricted,
	"external_access":    Public,
	"public":             Public,
}

// seedProxyKey is the top-level key of the proxy section in a seed file: bindguard's addition,
// so that the seed's own file can describe its nginx front door.
const seedProxyKey = "proxy"

// seedPublicGroup is the seed's heading whose services are reachable from anywhere.
const seedPublicGroup = "external_access"

func (d *decoder) seed(root ast.Node) (*Policy, *sourceMap) {
	groups, ok := d.mapping(root, "", "a mapping")
	if !ok {
		return nil, nil
	}
	// The seed format has no version, trusted_proxies or client_ip_header: it is version 1, and
	// the defaults step gives it the default proxies and header.
	p := &Policy{Format: FormatSeed, Version: 1}
	sm := &sourceMap{top: map[string]loc{}, vals: newLocs(), root: posOf(unwrap(root))}
	for _, g := range groups {
		if g.key == seedProxyKey {
			p.Proxy = d.proxy(g.value, seedProxyKey, sm.vals)
			continue
		}
		if g.key == seedMonitorKey {
			p.Monitor = d.monitor(g.value, seedMonitorKey, sm.vals)
			continue
		}
		entries, _ := d.mapping(g.value, joinPath("", g.key), "a mapping of service names to bindings")
		for _, e := range entries {
			for _, s := range d.seedService(g.key, e) {
				p.Services = append(p.Services, s.svc)
				sm.services = append(sm.services, s.loc)
			}
		}
	}
	return p, sm
}

type seedSvc struct {
	svc Service
	loc svcLoc
}

// seedService decodes one seed entry into one service, or two for http_port/https_port.
func (d *decoder) seedService(group string, e entry) []seedSvc {
	path := joinPath(joinPath("", group), e.key)
	o, ok := d.object(e.value, path, "a mapping (bind_address:, protocol:, access:, ...)", seedServiceKeys...)
	if !ok {
		return nil
	}
	base := Service{Name: e.key, Pos: e.keyPos}
	fields := map[string]loc{}
	bad := map[string]bool{}
	fieldLoc := func(seedKey string) loc {
		n, _ := o.get(seedKey)
		return loc{path: o.field(seedKey), pos: posOf(unwrap(n))}
	}

	if n, ok := o.get("protocol"); ok {
		fields["protocol"] = fieldLoc("protocol")
		if v, ok := d.str(n, o.field("protocol")); ok {
			switch strings.ToUpper(v) {
			case "HTTP", "HTTPS", "TCP":
				base.Protocol = TCP
			case "UDP":
				base.Protocol = UDP
			default:
				d.ps.add(fields["protocol"].pos, o.field("protocol"), "%q is not a seed protocol (HTTP, HTTPS, TCP or UDP)", v)
				bad["protocol"] = true
			}
		} else {
			bad["protocol"] = true
		}
	}

	if n, ok := o.get("access"); ok {
		fields["access"] = fieldLoc("access")
		if v, ok := d.str(n, o.field("access")); ok {
			if a, known := seedAccess[v]; known {
				base.Access = a
			} else {
				base.Access = Access(v) // validate names the accepted values
			}
		} else {
			bad["access"] = true
		}
	} else if group == seedPublicGroup {
		base.Access = Public
	} else {
		d.ps.add(o.pos, o.field("access"), "missing; outside %s a seed service must say who may reach it (localhost_only, nginx_only, zabbix_server_only, ...)", seedPublicGroup)
		bad["access"] = true
	}

	var allowLocs []loc
	if n, ok := o.get("allowed_hosts"); ok {
		fields["allow"] = fieldLoc("allowed_hosts")
		if base.Allow, allowLocs, ok = d.strList(n, o.field("allowed_hosts"), ""); !ok {
			bad["allow"] = true
		}
	}
	if n, ok := o.get("description"); ok {
		fields["description"] = fieldLoc("description")
		if base.Description, ok = d.str(n, o.field("description")); !ok {
			bad["description"] = true
		}
	}
	return d.seedBinds(o, base, fields, bad, allowLocs)
}

// seedBinds reads bind_address, or http_port and https_port, into one service per binding.
func (d *decoder) seedBinds(o object, base Service, fields map[string]loc, bad map[string]bool, allowLocs []loc) []seedSvc {
	type bind struct{ key, suffix string }
	var binds []bind
	_, hasBind := o.get("bind_address")
	for _, b := range []bind{{"http_port", "_http"}, {"https_port", "_https"}} {
		if _, ok := o.get(b.key); ok {
			binds = append(binds, b)
		}
	}
	switch {
	case hasBind && len(binds) > 0:
		d.ps.add(o.fields["bind_address"].keyPos, o.field("bind_address"), "cannot be combined with http_port/https_port")
		return nil
	case hasBind:
		binds = []bind{{"bind_address", ""}}
	case len(binds) == 0:
		d.ps.add(o.pos, o.field("bind_address"), "missing; a seed service needs bind_address: \"ADDRESS:PORT\"")
		return nil
	}

	out := make([]seedSvc, 0, len(binds))
	for _, b := range binds {
		s := base
		s.Name = base.Name + b.suffix
		sl := svcLoc{self: loc{path: o.path, pos: o.pos}, fields: map[string]loc{}, bad: map[string]bool{}, allow: allowLocs}
		for k, v := range fields {
			sl.fields[k] = v
		}
		for k, v := range bad {
			sl.bad[k] = v
		}
		n, _ := o.get(b.key)
		l := loc{path: o.field(b.key), pos: posOf(unwrap(n))}
		sl.fields["name"] = loc{path: o.path, pos: o.pos}
		sl.fields["address"], sl.fields["port"] = l, l
		if a, port, ok := d.seedAddrPort(n, l); ok {
			s.Address, s.Port = a, port
		} else {
			sl.fail("address")
			sl.fail("port")
		}
		out = append(out, seedSvc{svc: s, loc: sl})
	}
	return out
}

// seedAddrPort reads "ADDRESS:PORT", IPv6 as "[ADDRESS]:PORT".
func (d *decoder) seedAddrPort(n ast.Node, l loc) (netip.Addr, uint16, bool) {
	s, ok := d.str(n, l.path)
	if !ok {
		return netip.Addr{}, 0, false
	}
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		d.ps.add(l.pos, l.path, "%q must be \"ADDRESS:PORT\"", s)
		return netip.Addr{}, 0, false
	}
	host, portText := s[:i], s[i+1:]
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	} else if strings.Contains(host, ":") {
		d.ps.add(l.pos, l.path, "%q: write an IPv6 address with its port as \"[ADDRESS]:PORT\"", s)
		return netip.Addr{}, 0, false
	}
	a, err := parseAddr(host)
	if err != nil {
		d.ps.add(l.pos, l.path, "%v", err)
		return netip.Addr{}, 0, false
	}
	port, ok := d.portText(portText, l.pos, l.path)
	return a, port, ok
}

// SeedAccess is the access class a seed-format entry declares: its access name (the seed's
// own names or bindguard's), or with none, public under external_access. ok is false for a
// name the format does not know, or no name outside external_access.
func SeedAccess(group, name string) (Access, bool) {
	if name == "" {
		return Public, group == seedPublicGroup
	}
	a, ok := seedAccess[name]
	return a, ok
}
