package audit

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/bindguard/bindguard/internal/observed"
	"github.com/bindguard/bindguard/policy"
)

// Draft is the policy `bindguard init` writes from what listens now: the host's namespace's
// sockets as the top-level services, and a scope per other namespace that has a stable name.
type Draft struct {
	// Policy holds the host's services and the scopes of namespaces with a stable name. Call
	// policy.Defaults before policy.Validate, as for any policy built in code.
	Policy *policy.Policy
	// Comments are the lines to write above each service: by scope name (policy.HostScope
	// for the top-level services), then service name.
	Comments map[string]map[string][]string
	// Unstable are the scopes of namespaces known only by an inode, which does not survive a
	// reboot: to be written commented out, for the operator to give them a stable name.
	Unstable []policy.Scope
	// About says, by scope name, which namespace a scope was drafted from.
	About map[string]string
	// Warnings are for the operator (standard error): each unstable namespace.
	Warnings []string
}

// DraftPolicy drafts a deny-by-default policy declaring every socket of the observation, one
// scope per namespace besides the host's (an observation of one namespace alone is drafted as
// the top-level services). It always validates (policy.Validate, after policy.Defaults), whatever
// listens: per namespace and (protocol, port) it declares one service per distinct address
// when those cannot overlap, else one service with no address. A socket of a catalogue
// database, cache or control API (policy.Category.Sensitive) that listens beyond loopback is
// declared with its safe class (localhost_only, no address), so the audit right after still
// flags it; every other socket is declared as it listens (localhost_only on loopback, else
// public), so the audit right after reports nothing else. Each service names its owning
// process when every socket of it has the same one.
func DraftPolicy(o observed.Observation) *Draft {
	d := &Draft{
		Policy: &policy.Policy{
			Source: "init", Format: policy.FormatNative, Version: 1,
			TrustedProxies: policy.DefaultTrustedProxies(), ClientIPHeader: policy.HeaderXForwardedFor,
		},
		Comments: map[string]map[string][]string{},
		About:    map[string]string{},
	}
	byNS := map[string][]observed.Listener{}
	for _, l := range o.Listeners {
		byNS[l.Netns] = append(byNS[l.Netns], l)
	}
	scopeNames := map[string]bool{policy.HostScope: true}
	spaces := namespacesOf(o)
	for _, ns := range spaces {
		svcs, comments := draftServices(byNS[ns.Label])
		// One namespace alone (init --netns NAME) is drafted as the top-level services: the
		// audit of that one namespace holds it to them (JudgeObservation).
		if ns.Host || len(spaces) == 1 {
			d.Policy.Services = append(d.Policy.Services, svcs...)
			d.Comments[policy.HostScope] = comments
			continue
		}
		match := cmp.Or(ns.Container, ns.Netns, ns.Label)
		base := scopeName(match, ns.Inode)
		if !ns.Stable() {
			base = fmt.Sprintf("netns-%d", ns.Inode)
		}
		name := uniqueScope(scopeNames, base)
		sc := policy.Scope{Name: name, Match: []string{escapeGlob(match)}, Services: svcs}
		d.Comments[name] = comments
		about := "netns " + ns.Label
		if ns.Container != "" && ns.Container != ns.Label {
			about += ", container " + ns.Container
		}
		d.About[name] = about
		if !ns.Stable() {
			d.Unstable = append(d.Unstable, sc)
			d.Warnings = append(d.Warnings, fmt.Sprintf("netns %s has no stable name (only its inode, which does not survive a reboot): its scope %s is written commented out; name it (ip netns attach NAME PID) or match it by container, then uncomment it", ns.Label, name))
			continue
		}
		d.Policy.Scopes = append(d.Policy.Scopes, sc)
	}
	return d
}

// addrSockets are the sockets of one (protocol, port) at one address.
type addrSockets struct {
	addr    netip.Addr
	sockets []observed.Listener
}

// draftServices declares the sockets of one namespace.
func draftServices(ls []observed.Listener) ([]policy.Service, map[string][]string) {
	type pkey struct {
		proto policy.Protocol
		port  uint16
	}
	groups := map[pkey][]observed.Listener{}
	var keys []pkey
	for _, l := range ls {
		if l.Port == 0 {
			continue // not bound to a port: nothing to declare
		}
		k := pkey{policy.Protocol(l.Protocol), l.Port}
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], l)
	}
	slices.SortFunc(keys, func(a, b pkey) int { return cmp.Or(cmp.Compare(a.proto, b.proto), cmp.Compare(a.port, b.port)) })
	var svcs []policy.Service
	comments := map[string][]string{}
	names := map[string]bool{}
	for _, k := range keys {
		g := groups[k]
		entry, known := policy.LookupCatalogue(k.proto, k.port)
		var byAddr []addrSockets
		exposed, loopbackOnly := false, true
		for _, l := range g {
			a := l.Addr.Unmap().WithZone("")
			if ExposureOf(a, l.V6Only) != ExposureLoopback {
				exposed, loopbackOnly = true, false
			}
			i := slices.IndexFunc(byAddr, func(x addrSockets) bool { return x.addr == a })
			if i < 0 {
				byAddr = append(byAddr, addrSockets{addr: a})
				i = len(byAddr) - 1
			}
			byAddr[i].sockets = append(byAddr[i].sockets, l)
		}
		slices.SortFunc(byAddr, func(a, b addrSockets) int { return a.addr.Compare(b.addr) })
		base := ""
		switch {
		case known:
			base = entry.Name
		default:
			for _, l := range g {
				if l.Owner == observed.OwnerKnown && len(l.Owners) > 0 {
					if base = serviceName(l.Owners[0].Name); base != "" {
						break
					}
				}
			}
		}
		if base == "" {
			base = fmt.Sprintf("%s-%d", k.proto, k.port)
		}
		add := func(svc policy.Service, socks []observed.Listener, notes []string) {
			svc.Protocol, svc.Port = k.proto, k.port
			svc.Name = uniqueName(names, base, k.proto, k.port)
			svc.Process = commonProcess(socks)
			if known {
				svc.Description = entry.Description
			}
			var seen []string
			for _, l := range socks {
				seen = append(seen, fmt.Sprintf("seen: %s on %s %s", draftOwnerWords(l), l.Protocol, netip.AddrPortFrom(l.Addr.WithZone(""), l.Port)))
			}
			svcs = append(svcs, svc)
			comments[svc.Name] = append(seen, notes...)
		}
		switch {
		case known && entry.Category.Sensitive() && exposed:
			// Deny by default: the safe class, so the audit keeps flagging the exposure.
			add(policy.Service{Access: policy.LocalhostOnly, HostCheck: true}, g, []string{fmt.Sprintf(
				"WARNING: %s (%s) listens beyond loopback now; it is declared localhost_only, so the audit flags it until it is rebound to 127.0.0.1", entry.Name, entry.Category)})
		case overlapping(byAddr):
			// Addresses that would overlap as separate services (a wildcard beside one of its
			// addresses, a dual-stack "::" beside anything): one service with no address.
			if loopbackOnly {
				add(policy.Service{Access: policy.LocalhostOnly, HostCheck: true}, g, nil)
			} else {
				add(policy.Service{Access: policy.Public}, g, []string{"review: public means anyone may reach it; narrow it to lan or restricted with an allow list, and declare its addresses"})
			}
		default:
			for _, as := range byAddr {
				svc := policy.Service{Address: as.addr}
				var notes []string
				if as.addr == netip.IPv6Unspecified() {
					svc.V6Only = allV6Only(as.sockets)
				}
				if as.addr.IsLoopback() {
					svc.Access, svc.HostCheck = policy.LocalhostOnly, true
				} else {
					svc.Access = policy.Public
					notes = append(notes, "review: public means anyone may reach it; narrow it to lan or restricted with an allow list")
				}
				add(svc, as.sockets, notes)
			}
		}
	}
	return svcs, comments
}

// overlapping reports whether services at these addresses (one protocol and port) would
// overlap: a dual-stack "::" beside any other address, 0.0.0.0 beside an IPv4 address, or a
// v6only "::" beside an IPv6 address.
func overlapping(byAddr []addrSockets) bool {
	if len(byAddr) < 2 {
		return false
	}
	var wild4, wild6, spec4, spec6, dual bool
	for _, as := range byAddr {
		switch {
		case as.addr == netip.IPv4Unspecified():
			wild4 = true
		case as.addr == netip.IPv6Unspecified():
			if allV6Only(as.sockets) {
				wild6 = true
			} else {
				dual = true
			}
		case as.addr.Is4():
			spec4 = true
		default:
			spec6 = true
		}
	}
	return dual || (wild4 && spec4) || (wild6 && spec6)
}

// allV6Only reports whether every socket is known to be v6only.
func allV6Only(ls []observed.Listener) bool {
	for _, l := range ls {
		if l.V6Only != observed.V6OnlyYes {
			return false
		}
	}
	return len(ls) > 0
}

// commonProcess is the process name every socket with a known owner is held by, or "" when
// they differ, none is known, or the name could not be written in a policy.
func commonProcess(ls []observed.Listener) string {
	name := ""
	for _, l := range ls {
		if l.Owner == observed.OwnerKnown && len(l.Owners) > 0 && l.Owners[0].Name != "" {
			name = l.Owners[0].Name
			break
		}
	}
	if name == "" || len(name) > 255 || !utf8.ValidString(name) || strings.ContainsFunc(name, policy.UnsafeRune) {
		return ""
	}
	for _, l := range ls {
		if l.Owner == observed.OwnerKnown && len(l.Owners) > 0 && !ownedBy(l.Owners, name) {
			return ""
		}
	}
	return name
}

// draftOwnerWords names a socket's owner for init's comments.
func draftOwnerWords(o observed.Listener) string {
	switch {
	case o.Owner == observed.OwnerKnown && len(o.Owners) > 0:
		pr := o.Owners[0]
		w := pr.Label()
		if pr.User != "" {
			w += ", user " + pr.User
		}
		if pr.Exe != "" {
			w += ", " + pr.Exe
		}
		return w
	case o.Owner == observed.OwnerHidden:
		return "an owner hidden from this user (run as root)"
	case o.Owner == observed.OwnerKernel:
		return "the kernel"
	case o.Owner == observed.OwnerUnknown:
		return "an unknown owner (unreadable /proc/net inode)"
	}
	return "an unknown owner"
}

// serviceName turns a process or namespace name into a policy name ([a-z0-9][a-z0-9_.-]{0,62}).
func serviceName(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '_', r == '.', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	n := strings.TrimLeft(b.String(), "_.-")
	if len(n) > 40 {
		n = n[:40]
	}
	return n
}

// uniqueName returns base, or base with the protocol and port, or with a counter as well.
func uniqueName(used map[string]bool, base string, proto policy.Protocol, port uint16) string {
	name := base
	if used[name] {
		name = fmt.Sprintf("%s-%s%d", base, proto, port)
	}
	for i := 2; used[name]; i++ {
		name = fmt.Sprintf("%s-%s%d-%d", base, proto, port, i)
	}
	used[name] = true
	return name
}

// scopeName is a scope's name from what it matches, else from the namespace's inode.
func scopeName(match string, inode uint64) string {
	if n := strings.TrimRight(serviceName(match), "_.-"); n != "" {
		return n
	}
	return fmt.Sprintf("netns-%d", inode)
}

// uniqueScope returns base, or base with a counter.
func uniqueScope(used map[string]bool, base string) string {
	name := base
	for i := 2; used[name]; i++ {
		name = fmt.Sprintf("%s-%d", base, i)
	}
	used[name] = true
	return name
}

// escapeGlob makes a name a path.Match pattern that matches only itself.
func escapeGlob(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
