package policy

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml/ast"
)

var serviceKeys = []string{"name", "protocol", "port", "address", "v6only", "access", "allow", "host_check", "process", "description"}

// native decodes bindguard's own format. Semantic checks are left to validate.
func (d *decoder) native(root ast.Node) (*Policy, *sourceMap) {
	o, ok := d.object(root, "", "a mapping with version: and services:", nativeKeys...)
	if !ok {
		return nil, nil
	}
	p := &Policy{Format: FormatNative}
	sm := &sourceMap{top: map[string]loc{}, vals: newLocs(), root: o.pos}
	for k, e := range o.fields {
		sm.top[k] = loc{path: k, pos: e.keyPos}
	}

	if n, ok := o.get("version"); ok {
		sm.vals.set("version", loc{path: "version", pos: posOf(unwrap(n))})
		var good bool
		if p.Version, good = d.version(n, "version"); !good {
			sm.vals.fail("version")
		}
	}

	if n, ok := o.get("trusted_proxies"); ok {
		p.TrustedProxies, p.TrustedZoned, sm.trusted, sm.trustedBad = d.trustedList(n, "trusted_proxies", "; write [] to trust no proxy")
	}

	if n, ok := o.get("client_ip_header"); ok {
		sm.vals.set("client_ip_header", loc{path: "client_ip_header", pos: posOf(n)})
		var good bool
		if p.ClientIPHeader, good = d.str(n, "client_ip_header"); !good {
			sm.vals.fail("client_ip_header")
		}
	}

	if n, ok := o.get("networks"); ok {
		entries, _ := d.mapping(n, "networks", "a mapping of network names to prefix lists")
		for _, e := range entries {
			path := joinPath("networks", e.key)
			prefixes, locs, bad := d.prefixList(e.value, path, "")
			if bad {
				sm.badNetworks = append(sm.badNetworks, e.key)
				continue
			}
			p.Networks = append(p.Networks, Network{Name: e.key, Prefixes: prefixes, Pos: e.keyPos})
			sm.networks = append(sm.networks, netLoc{self: loc{path: path, pos: e.keyPos}, entries: locs})
		}
	}

	if n, ok := o.get("services"); ok {
		items, _ := d.list(n, "services", "")
		for i, item := range items {
			if s, sl, ok := d.service(item, indexPath("services", i)); ok {
				p.Services = append(p.Services, s)
				sm.services = append(sm.services, sl)
			}
		}
	}
	if n, ok := o.get("scopes"); ok {
		p.Scopes, sm.scopes = d.scopes(n, "scopes")
	}
	if n, ok := o.get("proxy"); ok {
		p.Proxy = d.proxy(n, "proxy", sm.vals)
	}
	if n, ok := o.get(seedMonitorKey); ok {
		p.Monitor = d.monitor(n, seedMonitorKey, sm.vals)
	}
	if n, ok := o.get(scanKey); ok {
		p.Scan = d.scanRules(n, sm.vals)
	}
	if n, ok := o.get(probeKey); ok {
		p.Probe = d.probeTargets(n, sm.vals)
	}
	if n, ok := o.get(enforceKey); ok {
		p.Enforce = d.enforce(n, enforceKey, sm.vals)
	}
	return p, sm
}

var scopeKeys = []string{"name", "match", "services"}

// scopes decodes a scopes: list, in the main file or a drop-in.
func (d *decoder) scopes(n ast.Node, path string) ([]Scope, []scopeLoc) {
	items, _ := d.list(n, path, "; each scope is a mapping (name:, match:, services:)")
	var (
		out  []Scope
		locs []scopeLoc
	)
	for i, item := range items {
		sp := indexPath(path, i)
		o, ok := d.object(item, sp, "a mapping (name:, match:, services:)", scopeKeys...)
		if !ok {
			continue
		}
		sc := Scope{Pos: o.pos}
		scl := scopeLoc{self: loc{path: sp, pos: o.pos}, fields: map[string]loc{}, bad: map[string]bool{}, misspelled: o.misspelled}
		for k, e := range o.fields {
			scl.fields[k] = loc{path: o.field(k), pos: posOf(unwrap(e.value))}
			if unwrap(e.value) == nil {
				scl.fields[k] = loc{path: o.field(k), pos: e.keyPos}
			}
		}
		if n, ok := o.get("name"); ok {
			if sc.Name, ok = d.str(n, o.field("name")); !ok {
				scl.bad["name"] = true
			}
		}
		if n, ok := o.get("match"); ok {
			if sc.Match, scl.match, ok = d.strList(n, o.field("match"), "; write match: [NAME, GLOB...]"); !ok {
				scl.bad["match"] = true
			}
		}
		if n, ok := o.get("services"); ok {
			svcs, ok := d.list(n, o.field("services"), "")
			if !ok {
				scl.bad["services"] = true
			}
			for j, item := range svcs {
				if s, sl, ok := d.service(item, indexPath(o.field("services"), j)); ok {
					sc.Services = append(sc.Services, s)
					scl.services = append(scl.services, sl)
				}
			}
		}
		out = append(out, sc)
		locs = append(locs, scl)
	}
	return out, locs
}

// service decodes one native service entry.
func (d *decoder) service(n ast.Node, path string) (Service, svcLoc, bool) {
	keys := serviceKeys
	if d.catalogue {
		keys = append(slices.Clip(keys), "category")
	}
	o, ok := d.object(n, path, "a mapping (name:, port:, access:, ...)", keys...)
	if !ok {
		return Service{}, svcLoc{}, false
	}
	if d.catalogue {
		var c string
		if n, ok := o.get("category"); ok {
			c, _ = d.str(n, o.field("category"))
		}
		d.categories = append(d.categories, Category(c))
	}
	s := Service{Pos: o.pos}
	sl := svcLoc{self: loc{path: path, pos: o.pos}, fields: map[string]loc{}, bad: map[string]bool{}}
	for k, e := range o.fields {
		sl.fields[k] = loc{path: o.field(k), pos: posOf(unwrap(e.value))}
		if unwrap(e.value) == nil {
			sl.fields[k] = loc{path: o.field(k), pos: e.keyPos}
		}
	}
	sl.misspelled = o.misspelled

	if n, ok := o.get("name"); ok {
		if s.Name, ok = d.str(n, o.field("name")); !ok {
			sl.fail("name")
		}
	}
	if n, ok := o.get("protocol"); ok {
		v, ok := d.str(n, o.field("protocol"))
		s.Protocol = Protocol(v)
		if !ok {
			sl.fail("protocol")
		}
	}
	if n, ok := o.get("port"); ok {
		if s.Port, ok = d.port(n, o.field("port")); !ok {
			sl.fail("port")
		}
	}
	if n, ok := o.get("address"); ok {
		if s.Address, ok = d.addr(n, o.field("address")); !ok {
			sl.fail("address")
		}
	}
	if n, ok := o.get("v6only"); ok {
		if s.V6Only, ok = d.boolean(n, o.field("v6only")); !ok {
			sl.fail("v6only")
		}
	}
	if n, ok := o.get("access"); ok {
		v, ok := d.str(n, o.field("access"))
		s.Access = Access(v)
		if !ok {
			sl.fail("access")
		}
	}
	if n, ok := o.get("allow"); ok {
		s.Allow, sl.allow, ok = d.strList(n, o.field("allow"), "")
		if !ok {
			sl.fail("allow")
		}
	}
	if n, ok := o.get("host_check"); ok {
		if s.HostCheck, ok = d.boolean(n, o.field("host_check")); !ok {
			sl.fail("host_check")
		}
	}
	if n, ok := o.get("process"); ok {
		if s.Process, ok = d.str(n, o.field("process")); !ok {
			sl.fail("process")
		}
	}
	if n, ok := o.get("description"); ok {
		if s.Description, ok = d.str(n, o.field("description")); !ok {
			sl.fail("description")
		}
	}
	return s, sl, true
}

// version reads the format version as written: a plain decimal number (validate says which
// versions are supported).
func (d *decoder) version(n ast.Node, path string) (int, bool) {
	n = unwrap(n)
	if v, ok := n.(*ast.IntegerNode); ok {
		text := v.GetToken().Value
		if decimalRE().MatchString(text) && (len(text) == 1 || text[0] != '0') && len(text) < 10 {
			n, _ := strconv.Atoi(text)
			return n, true
		}
		d.ps.add(posOf(n), path, "unsupported version %s; this bindguard reads version 1", text)
		return 0, false
	}
	if n != nil {
		d.ps.add(posOf(n), path, "must be the number 1, got %s", describe(n))
	}
	return 0, false
}

// addr reads an IP literal.
func (d *decoder) addr(n ast.Node, path string) (netip.Addr, bool) {
	s, ok := d.str(n, path)
	if !ok {
		return netip.Addr{}, false
	}
	a, err := parseAddr(s)
	if err != nil {
		d.ps.add(posOf(unwrap(n)), path, "%v", err)
		return netip.Addr{}, false
	}
	return a, true
}

// strList reads a list of strings with the place of each.
func (d *decoder) strList(n ast.Node, path, hint string) ([]string, []loc, bool) {
	items, ok := d.list(n, path, hint)
	if !ok {
		return nil, nil, false
	}
	out := make([]string, 0, len(items))
	locs := make([]loc, 0, len(items))
	good := true
	for i, item := range items {
		p := indexPath(path, i)
		s, ok := d.str(item, p)
		if !ok {
			good = false
			continue
		}
		out = append(out, s)
		locs = append(locs, loc{path: p, pos: posOf(unwrap(item))})
	}
	return out, locs, good
}

// prefixList reads a list of IP literals and CIDRs, zones refused. bad reports a list that
// could not be read whole; what could be read is returned all the same.
func (d *decoder) prefixList(n ast.Node, path, hint string) (prefixes []netip.Prefix, locs []loc, bad bool) {
	prefixes, _, locs, bad = d.addrList(n, path, hint, false)
	return prefixes, locs, bad
}

// canonicalHeader matches a client-IP header name case-insensitively.
func canonicalHeader(s string) (string, bool) {
	for _, h := range []string{HeaderXForwardedFor, HeaderForwarded, HeaderXRealIP} {
		if strings.EqualFold(s, h) {
			return h, true
		}
	}
	return "", false
}
