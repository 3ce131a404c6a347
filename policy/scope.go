package policy

import (
	"path"
)

// HostScope is the name of the host's own scope: the policy's top-level services, which apply
// to the host's network namespace and to every namespace no named scope matches.
const HostScope = "host"

// Scope is a named part of a policy for containers or network namespaces: the services they
// may run. The policy's globals (trusted proxies, client-IP header, networks, proxy, monitor)
// apply to every scope.
type Scope struct {
	// Name is unique within the policy, matches the service-name pattern and is not "host".
	Name string
	// Match lists what the scope applies to, each a glob (path.Match syntax) over a
	// namespace's names: its LXC container name or container id, its `ip netns` name, or its
	// label as the audit reports it. A namespace is in the scope when any pattern matches any
	// of its names.
	Match []string
	// Services are the scope's declared services, in file order.
	Services []Service
	Pos      Position
}

// NamespaceNames are the names a network namespace is known by, for matching scopes.
type NamespaceNames struct {
	// Host says it is the host's own namespace: the host scope applies, whatever else matches.
	Host bool
	// Label is how the audit reports it ("host", an ip netns name, a container, "net:[N]").
	Label string
	// Netns is its `ip netns` name, if it has one.
	Netns string
	// Container is the LXC name or container id of a process inside it, if any.
	Container string
}

// names lists the non-empty names, for matching.
func (n NamespaceNames) names() []string {
	out := make([]string, 0, 3)
	for _, s := range []string{n.Label, n.Netns, n.Container} {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Matches reports whether the scope applies to the namespace. A malformed pattern matches
// nothing (Validate refuses it).
func (s *Scope) Matches(ns NamespaceNames) bool {
	for _, pat := range s.Match {
		for _, name := range ns.names() {
			if ok, err := path.Match(pat, name); err == nil && ok {
				return true
			}
		}
	}
	return false
}

// ScopeFor returns the name and services of the scope that judges a namespace: the host scope
// for the host's namespace; else the first named scope, in file order, that matches it; else
// the host scope, with matched false (a namespace no scope names is held to the host's
// services, as a policy without scopes holds every namespace).
func (p *Policy) ScopeFor(ns NamespaceNames) (name string, services []Service, matched bool) {
	if ns.Host {
		return HostScope, p.Services, true
	}
	for i := range p.Scopes {
		if p.Scopes[i].Matches(ns) {
			return p.Scopes[i].Name, p.Scopes[i].Services, true
		}
	}
	return HostScope, p.Services, false
}

// Scope returns the named scope; "host" is the policy's top-level services.
func (p *Policy) Scope(name string) (Scope, bool) {
	if name == HostScope {
		return Scope{Name: HostScope, Services: p.Services}, true
	}
	for _, s := range p.Scopes {
		if s.Name == name {
			return s, true
		}
	}
	return Scope{}, false
}
