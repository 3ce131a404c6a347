package policy

import (
	"fmt"
	"net/netip"
	"strings"
)

// This file is the one meaning of the access classes. Every layer (the audit, listen, access,
// the generators, init) asks these methods what a class allows; no other package switches on
// an Access value. A class added to Accesses without a row in classes fails TestClassTable,
// and a switch on the class outside this package fails TestNoClassSwitchOutsidePolicy.

// BindScope is where a class lets a service bind.
type BindScope uint8

// The bind scopes.
const (
	// BindNone is the scope of an unknown class: nothing may be bound (fail closed).
	BindNone BindScope = iota
	// BindLoopback: 127.0.0.0/8 and ::1 only (localhost_only, proxy_only).
	BindLoopback
	// BindLoopbackOrAllow: loopback, or an address inside the service's allow list; never a
	// wildcard (lan).
	BindLoopbackOrAllow
	// BindAnywhere: any address, wildcards included (restricted, public).
	BindAnywhere
)

// Reach is who a class lets reach a service.
type Reach uint8

// The reaches.
const (
	// ReachNobody is the reach of an unknown class (fail closed).
	ReachNobody Reach = iota
	// ReachLocal: local processes only, by a loopback client address (localhost_only).
	ReachLocal
	// ReachProxies: the trusted proxies only (proxy_only).
	ReachProxies
	// ReachAllowList: the hosts and prefixes of the service's allow list (lan, restricted).
	ReachAllowList
	// ReachAnyone: every client (public).
	ReachAnyone
)

// classDef is one row of the class table.
type classDef struct {
	bind  BindScope
	reach Reach
	// allowed is how an audit reason names what the class allows to bind ("the policy allows
	// ..."); for lan the allow list follows in parentheses.
	allowed string
	// refusal says why a forbidden address is refused, after "CLASS ".
	refusal string
	// permitted names the addresses a service that declares none may take.
	permitted string
	// clients names who may reach it, for tables.
	clients string
	// admits says who it admits, for messages about allow lists.
	admits string
}

var classes = map[Access]classDef{
	LocalhostOnly: {
		bind: BindLoopback, reach: ReachLocal,
		allowed: "localhost only", refusal: "allows loopback addresses only (127.0.0.0/8, ::1)",
		permitted: "loopback", clients: "local processes", admits: "localhost_only admits local processes only",
	},
	ProxyOnly: {
		bind: BindLoopback, reach: ReachProxies,
		allowed: "the proxy only, on loopback", refusal: "allows loopback addresses only (127.0.0.0/8, ::1)",
		permitted: "loopback", clients: "trusted proxies only", admits: "proxy_only admits the trusted_proxies only",
	},
	LAN: {
		bind: BindLoopbackOrAllow, reach: ReachAllowList,
		allowed: "loopback or its LAN addresses", refusal: "allows loopback or an address inside its allow list",
		permitted: "loopback or LAN",
	},
	Restricted: {
		bind: BindAnywhere, reach: ReachAllowList,
		allowed: "restricted", permitted: "any",
	},
	Public: {
		bind: BindAnywhere, reach: ReachAnyone,
		allowed: "public", permitted: "any", clients: "anyone", admits: "public admits anyone",
	},
}

// def is the class's row; an unknown class gets the zero row, which permits nothing.
func (a Access) def() classDef { return classes[a] }

// Bind returns where services of this class may bind.
func (a Access) Bind() BindScope { return a.def().bind }

// Reach returns who may reach services of this class.
func (a Access) Reach() Reach { return a.def().reach }

// LoopbackOnly reports whether the class confines services to loopback addresses
// (localhost_only and proxy_only).
func (a Access) LoopbackOnly() bool { return a.Bind() == BindLoopback }

// TakesAllow reports whether services of this class need an allow list (lan and restricted).
func (a Access) TakesAllow() bool { return a.Reach() == ReachAllowList }

// Confined reports whether the class limits who may reach a service: every class but public.
// A service of a confined class that listens wider than it declares is a serious finding.
func (a Access) Confined() bool { return a.Valid() && a.Reach() != ReachAnyone }

// Admits says in words who the class admits, for messages ("" for lan and restricted, whose
// allow list says it).
func (a Access) Admits() string { return a.def().admits }

// PermitsBind reports whether the service's access class allows it to bind addr. It does not
// compare with the declared Address: it answers "could a service of this class and allow list
// listen there". IPv4-mapped addresses are judged as their IPv4 address; zones are ignored.
//
// localhost_only and proxy_only permit loopback only; lan permits loopback and addresses inside
// its allow list, never a wildcard; restricted and public permit anything. An unknown class
// permits nothing.
func (s Service) PermitsBind(addr netip.Addr) bool {
	addr = addr.Unmap().WithZone("")
	switch s.Access.Bind() {
	case BindLoopback:
		return addr.IsLoopback()
	case BindLoopbackOrAllow:
		if addr.IsLoopback() {
			return true
		}
		for _, p := range s.AllowPrefixes {
			if p.Contains(addr) {
				return true
			}
		}
		return false
	case BindAnywhere:
		return addr.IsValid()
	}
	return false
}

// BindRefusal says why the service's class forbids binding addr, as "CLASS allows ...". Call
// it when PermitsBind(addr) is false.
func (s Service) BindRefusal(addr netip.Addr) string {
	d := s.Access.def()
	if d.refusal == "" {
		return fmt.Sprintf("%s does not allow %s", s.Access, addr)
	}
	msg := fmt.Sprintf("%s %s", s.Access, d.refusal)
	if d.bind == BindLoopbackOrAllow && addr.IsUnspecified() {
		msg += ", never a wildcard"
	}
	return msg
}

// AllowedWords says what the service's class allows it to bind, for audit reasons: "localhost
// only", "loopback or its LAN addresses (lan)".
func (s Service) AllowedWords() string {
	d := s.Access.def()
	if d.allowed == "" {
		return string(s.Access)
	}
	if d.bind == BindLoopbackOrAllow {
		return d.allowed + " (" + shortList(s.Allow, 3) + ")"
	}
	return d.allowed
}

// PermittedAddresses names what a service may bind when it declares no address: "loopback",
// "loopback or LAN" or "any". With a declared address, it is that address.
func (s Service) PermittedAddresses() string {
	if s.Address.IsValid() {
		return s.Address.String()
	}
	return s.Access.def().permitted
}

// ClientWords says who may reach the service: "local processes", "trusted proxies only",
// "anyone", or "" for a class whose allow list says it.
func (s Service) ClientWords() string { return s.Access.def().clients }

// ReachPrefixes returns the client addresses that may reach s over the network: loopback
// ("localhost" is the caller's to add), the trusted proxies that are not loopback for
// proxy_only, the allow list for lan and restricted. anyone is true for public, with no
// prefixes; an unknown class reaches nobody.
func (p *Policy) ReachPrefixes(s Service) (prefixes []netip.Prefix, anyone bool) {
	switch s.Access.Reach() {
	case ReachAnyone:
		return nil, true
	case ReachProxies:
		for _, t := range p.TrustedProxies {
			if !t.Addr().IsLoopback() {
				prefixes = append(prefixes, t)
			}
		}
	case ReachAllowList:
		prefixes = append(prefixes, s.AllowPrefixes...)
	}
	return prefixes, false
}

// shortList joins items, naming only the first n and how many more there are.
func shortList(items []string, n int) string {
	if len(items) > n {
		return strings.Join(items[:n], ", ") + fmt.Sprintf(" and %d more", len(items)-n)
	}
	return strings.Join(items, ", ")
}
