package access

import (
	"fmt"
	"net/http"
	"net/netip"
	"path"
	"slices"
	"strings"

	"github.com/bindguard/bindguard/policy"
)

// Rule is who may use a service or a route: an access class and, for lan and restricted, the
// allow list.
type Rule struct {
	Access policy.Access
	Allow  *PrefixSet
	// HostCheck, for localhost_only, also requires the Host header to name localhost.
	HostCheck bool

	class class // set when the rule is installed
}

// class is an access class as a small number, for a switch without string compares.
type class uint8

const (
	classNone class = iota
	classLocalhost
	classProxy
	classAllow // lan and restricted
	classPublic
)

// classOf maps the policy's reach of a class onto the guard's decisions.
func classOf(a policy.Access) class {
	switch a.Reach() {
	case policy.ReachLocal:
		return classLocalhost
	case policy.ReachProxies:
		return classProxy
	case policy.ReachAllowList:
		return classAllow
	case policy.ReachAnyone:
		return classPublic
	}
	return classNone
}

type route struct {
	prefix string
	rule   Rule
}

// Guard decides, for one service of a policy, whether a request is admitted. Decisions per
// access class, on the client the Resolver finds:
//
//	localhost_only  the client is a loopback address (a request a local proxy forwards for
//	                a remote client is refused); with host_check the Host header must also be
//	                localhost, a 127.0.0.0/8 literal or [::1], optionally with a port
//	proxy_only      the peer is a trusted proxy and its header named the client
//	lan, restricted the client is in the service's allow list
//	public          any client that could be determined
//
// Every class fails closed when the client cannot be determined (see Resolver). Routes set with
// Route override the class for a path prefix. A Guard is safe for concurrent use once built.
type Guard struct {
	service  string
	resolver *Resolver
	base     Rule
	routes   []route // longest prefix first
}

// NewGuard makes the guard of the named service of pol, with pol's trusted proxies (zoned
// entries included) and client-IP header.
func NewGuard(pol *policy.Policy, service string) (*Guard, error) {
	if pol == nil {
		return nil, fmt.Errorf("access: no policy")
	}
	svc, ok := pol.Lookup(service)
	if !ok {
		return nil, fmt.Errorf("access: policy %s declares no service %q", pol.Source, service)
	}
	res, err := newResolver(NewZonedPrefixSet(pol.TrustedProxies, pol.TrustedZoned), pol.ClientIPHeader)
	if err != nil {
		return nil, err
	}
	return &Guard{
		service:  svc.Name,
		resolver: res,
		base:     Rule{Access: svc.Access, Allow: NewZonedPrefixSet(svc.AllowPrefixes, svc.AllowZoned), HostCheck: svc.HostCheck, class: classOf(svc.Access)},
	}, nil
}

// Service is the name of the guarded service.
func (g *Guard) Service() string { return g.service }

// Route makes requests whose path is prefix, or below it when prefix ends in "/", follow rule
// instead of the service's class: the seed's /internal/ is localhost_only inside a service
// otherwise reached through the proxy. The longest matching prefix wins.
func (g *Guard) Route(prefix string, rule Rule) error {
	if !strings.HasPrefix(prefix, "/") || path.Clean(prefix) != strings.TrimSuffix(prefix, "/") && prefix != "/" {
		return fmt.Errorf("access: route %q: want a clean absolute path such as /internal/", prefix)
	}
	if !rule.Access.Valid() {
		return fmt.Errorf("access: route %s: unknown access class %q", prefix, rule.Access)
	}
	if rule.Access.TakesAllow() && rule.Allow.Len() == 0 {
		return fmt.Errorf("access: route %s: %s needs an allow list", prefix, rule.Access)
	}
	rule.class = classOf(rule.Access)
	g.routes = append(g.routes, route{prefix, rule})
	slices.SortStableFunc(g.routes, func(a, b route) int { return len(b.prefix) - len(a.prefix) })
	return nil
}

// Decision is the outcome for one request.
type Decision struct {
	Client  Client
	Allowed bool
	Reason  Reason
	// Access is the class that decided (the service's, or a route's).
	Access policy.Access
}

// Explain is the decision in one sentence with the addresses, for operators (bindguard access
// check, debug logs). It is not meant for the client.
func (d Decision) Explain() string {
	who := "no client"
	if d.Client.Addr.IsValid() {
		who = "client " + d.Client.Addr.String()
		if d.Client.Proxied {
			who += " (via proxy " + d.Client.Peer.String() + ")"
		}
	} else if d.Client.Peer.IsValid() {
		who = "peer " + d.Client.Peer.String()
	}
	if d.Allowed {
		return fmt.Sprintf("%s allowed by %s", who, d.Access)
	}
	return fmt.Sprintf("%s denied by %s: %s", who, d.Access, d.Reason)
}

// Request is what a decision reads from an HTTP request.
type Request struct {
	RemoteAddr string
	Host       string
	Path       string
	Header     http.Header
}

// Check decides for an HTTP request.
func (g *Guard) Check(r *http.Request) Decision {
	p := ""
	if r.URL != nil {
		p = r.URL.Path
	}
	return g.Decide(Request{RemoteAddr: r.RemoteAddr, Host: r.Host, Path: p, Header: r.Header})
}

// Decide decides for a request. With routes, the rule of the path as sent and the rule of the
// cleaned path (what a router serves after removing "..", "." and "//") must both admit it.
func (g *Guard) Decide(req Request) (d Decision) {
	d.Access = g.base.Access
	if reason := g.resolver.resolve(req.RemoteAddr, req.Header, &d.Client); reason != ReasonNone {
		d.Reason = reason
		return d
	}
	rule := g.ruleFor(req.Path)
	g.apply(&d, rule, req.Host)
	if d.Allowed && len(g.routes) > 0 && needsClean(req.Path) {
		if r2 := g.ruleFor(cleanPath(req.Path)); r2 != rule {
			g.apply(&d, r2, req.Host)
		}
	}
	return d
}

// needsClean reports whether path.Clean would change p: it does not start with "/", or holds
// "//", a "." or ".." segment.
func needsClean(p string) bool {
	if p == "" || p[0] != '/' {
		return true
	}
	for i := 1; i < len(p); i++ {
		if p[i-1] != '/' {
			continue
		}
		switch {
		case p[i] == '/':
			return true
		case p[i] == '.':
			rest := p[i+1:]
			if rest == "" || rest[0] == '/' || rest[0] == '.' && (len(rest) == 1 || rest[1] == '/') {
				return true
			}
		}
	}
	return false
}

func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	c := path.Clean("/" + p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}

func (g *Guard) ruleFor(p string) *Rule {
	for i := range g.routes {
		r := &g.routes[i]
		if p == r.prefix || strings.HasSuffix(r.prefix, "/") && strings.HasPrefix(p, r.prefix) ||
			!strings.HasSuffix(r.prefix, "/") && strings.HasPrefix(p, r.prefix+"/") {
			return &r.rule
		}
	}
	return &g.base
}

// apply decides by rule for the client already in d.
func (g *Guard) apply(d *Decision, rule *Rule, host string) {
	d.Access, d.Reason = rule.Access, ReasonNone
	a := d.Client.Addr
	switch rule.class {
	case classLocalhost:
		switch {
		case a.Zone() != "" || !a.IsLoopback():
			d.Reason = ReasonNotLoopback
		case rule.HostCheck && !LocalHost(host):
			d.Reason = ReasonBadHost
		}
	case classProxy:
		if !d.Client.Proxied {
			d.Reason = ReasonNotProxied
		}
	case classAllow:
		if !rule.Allow.Contains(a) {
			d.Reason = ReasonNotAllowed
		}
	case classPublic:
	default:
		d.Reason = ReasonNotAllowed
	}
	d.Allowed = d.Reason == ReasonNone
}

// LocalHost reports whether an HTTP Host header names this host by loopback: "localhost", a
// 127.0.0.0/8 literal or "[::1]", each optionally with a port. Anything else — another name
// that may resolve to 127.0.0.1 (DNS rebinding), 0.0.0.0, an empty Host — is refused.
func LocalHost(host string) bool {
	h := host
	bracketed := strings.HasPrefix(host, "[")
	if bracketed {
		end := strings.IndexByte(host, ']')
		if end < 0 || !validPortSuffix(host[end+1:]) {
			return false
		}
		h = host[1:end]
	} else if i := strings.IndexByte(host, ':'); i >= 0 {
		if !validPortSuffix(host[i:]) {
			return false // a second colon, or a port that is not 1-5 digits
		}
		h = host[:i]
	}
	if strings.EqualFold(h, "localhost") {
		return true
	}
	a, ok := parseIP(h, false)
	if !ok {
		return false
	}
	if a.Is4() {
		return a.IsLoopback()
	}
	// IPv6 only in brackets: [::1] or [::1]:port
	return a == netip.IPv6Loopback() && bracketed
}
