package policy

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"
)

var nameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`) })

// Lengths of free-text fields.
const (
	maxProcessLen     = 255
	maxDescriptionLen = 1024
)

// validate applies every semantic and safety rule to a policy, decoded (sm from the decoder, for
// positions and for values that failed to decode) or built in code (sm nil). It never writes to
// p: derived fields are computed again and compared.
func validate(ps *problems, p *Policy, sm *sourceMap) {
	if sm == nil {
		sm = syntheticMap(p)
	}
	validateTop(ps, p, sm)
	validateTrusted(ps, p, sm)
	networks := validateNetworks(ps, p, sm)
	budget := MaxAllowPrefixes
	validateServices(ps, p, p.Services, sm.services, "", networks, sm, &budget)
	checkOverlaps(ps, p.Services, sm.services)
	validateScopes(ps, p, sm, networks, &budget)
	validateProxy(ps, p, sm.vals, networks, &budget, sm.synthetic)
	validateMonitor(ps, p, sm.vals)
	validateScan(ps, p, sm.vals)
	validateProbe(ps, p, sm.vals)
	validateEnforce(ps, p, sm.vals)
}

// validateServices checks a list of services, the host's or a scope's (named in scope): each
// service's rules and that names are unique in the list.
func validateServices(ps *problems, p *Policy, svcs []Service, locs []svcLoc, scope string, networks map[string]*Network, sm *sourceMap, budget *int) {
	names := make(map[string]int, len(svcs))
	for i := range svcs {
		s, sl := &svcs[i], &locs[i]
		if !sm.synthetic {
			checkRequired(ps, s, sl)
		}
		if first, dup := names[s.Name]; dup && sl.ok("name") {
			l := sl.at("name")
			if scope == "" {
				ps.add(l.pos, l.path, "duplicate service name %q (first at line %d); names must be unique", s.Name, svcs[first].Pos.Line)
			} else {
				ps.add(l.pos, l.path, "duplicate service name %q (first at line %d); names must be unique within scope %q", s.Name, svcs[first].Pos.Line, scope)
			}
		} else if sl.ok("name") {
			names[s.Name] = i
		}
		validateService(ps, p, s, sl, networks, sm.badNetworks, budget, sm.synthetic)
	}
}

// validateTop checks the policy's own fields. A native file must write version and services; a
// Go value always has them.
func validateTop(ps *problems, p *Policy, sm *sourceMap) {
	_, wroteVersion := sm.top["version"]
	_, wroteServices := sm.top["services"]
	switch {
	case !wroteVersion && p.Format == FormatNative:
		ps.add(sm.root, "version", "missing; a native policy starts with `version: 1`")
	case sm.vals.failed("version"):
	case p.Version != 1:
		l := sm.vals.at("version")
		ps.add(l.pos, l.path, "unsupported version %d; this bindguard reads version 1", p.Version)
	}
	if !wroteServices && p.Format == FormatNative {
		ps.add(sm.root, "services", "missing; list the services this host may run (services: [] declares none)")
	}
	if h, known := canonicalHeader(p.ClientIPHeader); !sm.vals.failed("client_ip_header") && (!known || h != p.ClientIPHeader) {
		l := sm.vals.at("client_ip_header")
		ps.add(l.pos, l.path, "%q is not supported; use X-Forwarded-For, Forwarded or X-Real-IP", p.ClientIPHeader)
	}
}

func validateTrusted(ps *problems, p *Policy, sm *sourceMap) {
	if sm.trustedBad {
		return
	}
	for i, t := range p.TrustedProxies {
		if err := checkPrefix(t); err != nil {
			ps.add(sm.trusted[i].pos, sm.trusted[i].path, "%v", err)
		}
	}
	if sm.synthetic { // decoded zoned entries were checked as they were read
		for i, z := range p.TrustedZoned {
			if err := checkZoned(z); err != nil {
				ps.add(Position{}, indexPath("trusted_proxies", len(p.TrustedProxies)+i), "%v", err)
			}
		}
	}
	if fam := coversFamily(p.TrustedProxies); fam != "" {
		l := sm.top["trusted_proxies"]
		ps.add(l.pos, "trusted_proxies", "trusts every %s address: any client could then claim any IP; list only your proxies' addresses", fam)
	}
}

// checkPrefix applies parsePrefix's rules to a prefix built in code.
func checkPrefix(p netip.Prefix) error {
	switch {
	case !p.IsValid():
		return fmt.Errorf("invalid prefix")
	case p.Addr().Zone() != "":
		return fmt.Errorf("%s has an IPv6 zone; zones are not accepted", p)
	case p.Addr().Is4In6():
		return fmt.Errorf("%s is IPv4-mapped; write the IPv4 prefix", p)
	case p.Masked() != p:
		return fmt.Errorf("%s has host bits set; did you mean %s?", p, p.Masked())
	}
	return nil
}

// checkAddr applies parseAddr's rules to an address built in code.
func checkAddr(a netip.Addr) error {
	switch {
	case a.Zone() != "":
		return fmt.Errorf("%s has an IPv6 zone; zones are not accepted", a)
	case a.Is4In6():
		return fmt.Errorf("%s is IPv4-mapped; write it as %s", a, a.Unmap())
	}
	return nil
}

// validateNetworks checks names and prefixes and returns the networks by name.
func validateNetworks(ps *problems, p *Policy, sm *sourceMap) map[string]*Network {
	byName := make(map[string]*Network, len(p.Networks))
	for i := range p.Networks {
		n, l := &p.Networks[i], sm.networks[i]
		if !nameRE().MatchString(n.Name) {
			ps.add(l.self.pos, l.self.path, "network name %q must match [a-z0-9][a-z0-9_.-]{0,62}", n.Name)
		}
		if first, dup := byName[n.Name]; dup {
			ps.add(l.self.pos, l.self.path, "duplicate network name (first at line %d)", first.Pos.Line)
			continue
		}
		byName[n.Name] = n
		if len(n.Prefixes) == 0 && len(l.entries) == 0 {
			ps.add(l.self.pos, l.self.path, "a network must list at least one prefix")
		}
		for j, pr := range n.Prefixes {
			if err := checkPrefix(pr); err != nil {
				ps.add(l.entries[j].pos, l.entries[j].path, "%v", err)
			}
		}
	}
	return byName
}

// checkRequired reports the fields a decoded service must write and did not. (A Service built
// in code always has them: its zero values are refused by validateService.)
func checkRequired(ps *problems, s *Service, sl *svcLoc) {
	for _, f := range []struct {
		field, why string
		zero       bool
	}{
		{"name", "every service needs a unique name", s.Name == ""},
		{"port", "every service listens on a port 1-65535", s.Port == 0},
		{"access", "say who may reach it: localhost_only, proxy_only, lan, restricted or public", s.Access == ""},
	} {
		if _, wrote := sl.fields[f.field]; wrote || !f.zero || !sl.ok(f.field) {
			continue
		}
		if !sl.misspelled[f.field] {
			ps.add(sl.self.pos, joinPath(sl.self.path, f.field), "missing; %s", f.why)
		}
		sl.fail(f.field)
	}
}

// validateService checks one service; s is read, never written. derived says to check that
// AllowPrefixes agrees with Allow (a decoded policy's was just computed from it).
func validateService(ps *problems, p *Policy, s *Service, sl *svcLoc, networks map[string]*Network, badNetworks []string, budget *int, derived bool) {
	if sl.ok("name") && !nameRE().MatchString(s.Name) {
		l := sl.at("name")
		ps.add(l.pos, l.path, "%q is not a valid service name: use [a-z0-9][a-z0-9_.-]{0,62} (lowercase letters, digits, _ . -)", s.Name)
	}
	if sl.ok("protocol") && s.Protocol != TCP && s.Protocol != UDP {
		l := sl.at("protocol")
		ps.add(l.pos, l.path, "%q must be tcp or udp", s.Protocol)
		sl.fail("protocol")
	}
	if sl.ok("port") && s.Port == 0 {
		l := sl.at("port")
		ps.add(l.pos, l.path, "0 is out of range 1-65535")
		sl.fail("port")
	}
	if sl.ok("address") && s.Address.IsValid() {
		if err := checkAddr(s.Address); err != nil {
			l := sl.at("address")
			ps.add(l.pos, l.path, "%v", err)
			sl.fail("address")
		}
	}
	if sl.ok("address", "v6only") && s.V6Only && s.Address != netip.IPv6Unspecified() {
		l := sl.at("v6only")
		ps.add(l.pos, l.path, "applies only to address \"::\" (the IPv6 wildcard)")
	}
	if !sl.ok("access") {
		return
	}
	if !s.Access.Valid() {
		l := sl.at("access")
		msg := fmt.Sprintf("%q is not an access class: use localhost_only, proxy_only, lan, restricted or public", s.Access)
		known := make([]string, 0, len(seedAccess))
		for name := range seedAccess {
			known = append(known, name)
		}
		slices.Sort(known)
		if sug := suggest(string(s.Access), known); sug != "" {
			msg = fmt.Sprintf("%q is not an access class; did you mean %s?", s.Access, sug)
		}
		if a, ok := seedAccess[string(s.Access)]; ok && p.Format != FormatSeed {
			msg = fmt.Sprintf("%q is the seed format's name; in this format write %s", s.Access, a)
		}
		ps.add(l.pos, l.path, "%s", msg)
		return
	}
	if _, explicit := sl.fields["host_check"]; (explicit || s.HostCheck) && s.Access != LocalhostOnly && sl.ok("host_check") {
		l := sl.at("host_check")
		ps.add(l.pos, l.path, "applies only to localhost_only services")
	}
	if s.Access == ProxyOnly && len(p.TrustedProxies) == 0 && len(p.TrustedZoned) == 0 {
		l := sl.at("access")
		ps.add(l.pos, l.path, "proxy_only needs trusted_proxies, and they are empty: no proxy could ever reach this service")
	}
	resolved := *s
	if sl.ok("allow") {
		var ok bool
		if resolved.AllowPrefixes, resolved.AllowZoned, ok = resolveAllow(ps, s, sl, networks, badNetworks, budget); ok && derived {
			checkResolved(ps, sl.at("allow"), s.AllowPrefixes, resolved.AllowPrefixes, true)
			if !slices.Equal(s.AllowZoned, resolved.AllowZoned) {
				l := sl.at("allow")
				ps.add(l.pos, l.path, "AllowZoned does not match the allow list; call policy.Defaults after changing an allow list")
			}
		}
	}
	if sl.ok("address", "allow") && s.Address.IsValid() && !resolved.PermitsBind(s.Address) {
		l := sl.at("address")
		switch s.Access.Bind() {
		case BindLoopbackOrAllow:
			ps.add(l.pos, l.path, "%s is outside the service's allow list; a lan service binds loopback or an address inside its LAN (use restricted or public for a wildcard)", describeAddr(s.Address, s.V6Only))
		default:
			ps.add(l.pos, l.path, "%s is not a loopback address; a %s service must bind 127.0.0.0/8 or ::1", describeAddr(s.Address, s.V6Only), s.Access)
		}
	}
	if sl.ok("process") && s.Process != "" {
		checkText(ps, sl.at("process"), s.Process, maxProcessLen)
	} else if _, set := sl.fields["process"]; set && sl.ok("process") {
		l := sl.at("process")
		ps.add(l.pos, l.path, "is empty; leave it out to accept any process")
	}
	if sl.ok("description") {
		checkText(ps, sl.at("description"), s.Description, maxDescriptionLen)
	}
}

// checkText checks a free-text field: at most max bytes of UTF-8 with no UnsafeRune.
func checkText(ps *problems, l loc, s string, max int) {
	if len(s) > max {
		ps.add(l.pos, l.path, "is %d bytes long; the limit is %d", len(s), max)
	}
	if !utf8.ValidString(s) {
		ps.add(l.pos, l.path, "is not valid UTF-8")
		return
	}
	for _, r := range s {
		if UnsafeRune(r) {
			ps.add(l.pos, l.path, "%s", unsafeRuneMsg(r))
			return
		}
	}
}

// resolveAllow checks a service's allow list against its class and expands network names,
// reporting to ps (nil: report nothing). It returns the prefixes, nil for classes without an
// allow list, and false when the list does not resolve. s is read, never written.
//
// budget is what is left of MaxAllowPrefixes for the whole policy.
func resolveAllow(ps *problems, s *Service, sl *svcLoc, networks map[string]*Network, badNetworks []string, budget *int) ([]netip.Prefix, []ZonedPrefix, bool) {
	if !s.Access.TakesAllow() {
		if len(s.Allow) > 0 {
			l := sl.at("allow")
			ps.add(l.pos, l.path, "applies only to lan and restricted services; %s", s.Access.Admits())
			return nil, nil, false
		}
		return nil, nil, true
	}
	if len(s.Allow) == 0 {
		l := sl.at("allow")
		ps.add(l.pos, l.path, "a %s service needs an allow list: the IPs, CIDRs or networks that may reach it", s.Access)
		return nil, nil, false
	}
	var prefixes []netip.Prefix
	if n, isNet := networks[s.Allow[0]]; isNet && len(s.Allow) == 1 {
		// The common case, allow: [lan], shares the network's prefixes instead of copying them.
		prefixes = n.Prefixes[:len(n.Prefixes):len(n.Prefixes)]
	}
	ok := true
	var zoned []ZonedPrefix
	seen := make(map[string]int, len(s.Allow))
	for i, entry := range s.Allow {
		l := sl.at("allow")
		if i < len(sl.allow) {
			l = sl.allow[i]
		}
		if first, dup := seen[entry]; dup {
			ps.add(l.pos, l.path, "%q is listed twice (first as allow[%d])", entry, first)
			ok = false
			continue
		}
		seen[entry] = i
		if n, isNet := networks[entry]; isNet {
			*budget -= len(n.Prefixes)
			if *budget < 0 {
				ps.add(l.pos, l.path, "allow lists expand to more than %d prefixes in total (MaxAllowPrefixes); name fewer or smaller networks", MaxAllowPrefixes)
				sl.fail("allow")
				return nil, nil, false
			}
			if len(s.Allow) > 1 {
				prefixes = append(prefixes, n.Prefixes...)
			}
			continue
		}
		if slices.Contains(badNetworks, entry) {
			ok = false // the network's own problem is reported
			continue
		}
		if isZoned(entry) {
			z, err := parseZonedPrefix(entry)
			if err != nil {
				ps.add(l.pos, l.path, "%v", err)
				ok = false
				continue
			}
			zoned = append(zoned, z)
			continue
		}
		if strings.ContainsAny(entry, ".:/") {
			pr, err := parsePrefix(entry)
			if err != nil {
				ps.add(l.pos, l.path, "%v", err)
				ok = false
				continue
			}
			prefixes = append(prefixes, pr)
			continue
		}
		msg := fmt.Sprintf("%q is neither an IP, a CIDR nor a defined network", entry)
		names := make([]string, 0, len(networks))
		for name := range networks {
			names = append(names, name)
		}
		slices.Sort(names)
		if sug := suggest(entry, names); sug != "" {
			msg += fmt.Sprintf("; did you mean %q?", sug)
		} else if len(names) > 0 {
			msg += " (networks: " + strings.Join(names, ", ") + ")"
		} else {
			msg += " (no networks are defined)"
		}
		ps.add(l.pos, l.path, "%s", msg)
		ok = false
	}
	if !ok {
		sl.fail("allow")
		return nil, nil, false
	}
	if fam := coversFamily(prefixes); fam != "" {
		l := sl.at("allow")
		ps.add(l.pos, l.path, "allows every %s address; that is access: public, so say so", fam)
		sl.fail("allow")
		return nil, nil, false
	}
	return prefixes, zoned, true
}

// bindGroup tracks the services declared on one (protocol, port), to find overlapping binds in
// one pass.
type bindGroup struct {
	any, omitted, wild4, dual, wild6, spec4, spec6 int
	exact                                          map[netip.Addr]int
}

// checkOverlaps reports services that would compete for the same socket: the same (protocol,
// address, port), a wildcard that includes another's address, or a service without a fixed
// address sharing its port, within one list of services (the host's or a scope's). O(n).
func checkOverlaps(ps *problems, svcs []Service, locs []svcLoc) {
	type key struct {
		proto Protocol
		port  uint16
	}
	groups := make(map[key]*bindGroup)
	for i := range svcs {
		s, sl := &svcs[i], &locs[i]
		if !sl.ok("protocol", "port", "address", "v6only") || s.Port == 0 {
			continue
		}
		k := key{s.Protocol, s.Port}
		g := groups[k]
		if g == nil {
			g = &bindGroup{any: -1, omitted: -1, wild4: -1, dual: -1, wild6: -1, spec4: -1, spec6: -1, exact: map[netip.Addr]int{}}
			groups[k] = g
		}
		a := s.Address
		other, why := -1, ""
		first := func(cands ...int) int {
			for _, c := range cands {
				if c >= 0 {
					return c
				}
			}
			return -1
		}
		switch {
		case g.omitted >= 0:
			other, why = g.omitted, "it declares no address, so it may take any"
		case !a.IsValid():
			other, why = g.any, "this service declares no address, so it may take any"
		case g.exact[a] > 0:
			other, why = g.exact[a]-1, "the same protocol, address and port"
		case a == netip.IPv4Unspecified():
			other = first(g.dual, g.spec4)
			why = "0.0.0.0 includes every IPv4 address"
			if other == g.dual {
				why = "a dual-stack :: also takes IPv4"
			}
		case a == netip.IPv6Unspecified() && !s.V6Only:
			other, why = g.any, ":: without v6only is dual-stack and takes every IPv4 and IPv6 address"
		case a == netip.IPv6Unspecified():
			other, why = first(g.spec6), ":: takes every IPv6 address"
		case a.Is4():
			other, why = first(g.wild4, g.dual), "its wildcard includes "+a.String()
		default:
			other, why = first(g.wild6, g.dual), "its wildcard includes "+a.String()
		}
		if other >= 0 {
			o := svcs[other]
			l := sl.at("address")
			if !a.IsValid() {
				l = sl.at("port")
			}
			where := ""
			if o.Pos.Line > 0 {
				where = fmt.Sprintf(" (line %d)", o.Pos.Line)
			}
			ps.add(l.pos, l.path, "%s port %d overlaps service %q%s: %s", s.Protocol, s.Port, o.Name, where, why)
		}
		set := func(slot *int) {
			if *slot < 0 {
				*slot = i
			}
		}
		set(&g.any)
		switch {
		case !a.IsValid():
			set(&g.omitted)
		case a == netip.IPv4Unspecified():
			set(&g.wild4)
		case a == netip.IPv6Unspecified() && !s.V6Only:
			set(&g.dual)
		case a == netip.IPv6Unspecified():
			set(&g.wild6)
		case a.Is4():
			set(&g.spec4)
		default:
			set(&g.spec6)
		}
		if a.IsValid() && g.exact[a] == 0 {
			g.exact[a] = i + 1
		}
	}
}
