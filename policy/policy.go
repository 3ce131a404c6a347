package policy

import (
	"net/netip"
	"slices"
)

// Protocol is a transport protocol a service listens on.
type Protocol string

// The transport protocols a policy can declare.
const (
	TCP Protocol = "tcp"
	UDP Protocol = "udp"
)

// Access is an access class: who may reach a service, and therefore where it may bind.
//
//	class           may bind                                   may be reached by
//	localhost_only  loopback only (127.0.0.0/8, ::1)           local processes
//	proxy_only      loopback only                              the trusted proxies only
//	lan             loopback, or an address inside its allow   clients in its allow list
//	public          anything, wildcard included                anyone
//	restricted      anything the service states                only the hosts in its allow list
type Access string

// The access classes. The seed format's names map onto them: nginx_only is ProxyOnly,
// zabbix_only and zabbix_server_only are Restricted, lan_access is LAN and external_access is
// Public.
const (
	LocalhostOnly Access = "localhost_only"
	ProxyOnly     Access = "proxy_only"
	LAN           Access = "lan"
	Restricted    Access = "restricted"
	Public        Access = "public"
)

// Accesses lists every access class, from the most to the least confined.
func Accesses() []Access {
	return []Access{LocalhostOnly, ProxyOnly, LAN, Restricted, Public}
}

// Valid reports whether a is one of the defined access classes.
func (a Access) Valid() bool { return slices.Contains(Accesses(), a) }

// Format names the syntax a policy was read from.
type Format string

// The formats a policy can come from.
const (
	// FormatNative is bindguard's own format, with `version: 1`.
	FormatNative Format = "native"
	// FormatSeed is the seed project's config/service-bindings.yaml layout.
	FormatSeed Format = "seed"
	// FormatBuiltin is the embedded catalogue of well-known services.
	FormatBuiltin Format = "builtin"
)

// Client-IP headers a policy can name in client_ip_header.
const (
	HeaderXForwardedFor = "X-Forwarded-For"
	HeaderForwarded     = "Forwarded"
	HeaderXRealIP       = "X-Real-IP"
)

// DefaultTrustedProxies returns the proxies trusted when a policy does not say: the loopback
// addresses 127.0.0.1 and ::1, where a local nginx connects from.
func DefaultTrustedProxies() []netip.Prefix {
	return []netip.Prefix{
		netip.PrefixFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), 32),
		netip.PrefixFrom(netip.IPv6Loopback(), 128),
	}
}

// Position is a place in a policy file, 1-based. The zero Position means "not from a file".
type Position struct {
	Line   int
	Column int
}

// Policy is a validated policy: every service a host may run, where it may bind, and who may
// reach it. Values returned by Load, Parse and Builtin are valid; a Policy built by hand should
// be checked with Validate before use.
type Policy struct {
	// Source is the file the policy was read from ("builtin" for the catalogue).
	Source string
	// Format is the syntax the policy was read from.
	Format Format
	// Version is the native format's version (1). A seed file reads as version 1.
	Version int
	// TrustedProxies are the peers whose client-IP header is believed. Empty trusts none. A
	// peer with an IPv6 zone (fe80::1%eth0) is inside them when its address is, whatever the
	// interface.
	TrustedProxies []netip.Prefix
	// TrustedZoned are the trusted_proxies entries that name a zone (fe80::1%eth0): they trust
	// the address on that interface only.
	TrustedZoned []ZonedPrefix
	// ClientIPHeader is the one header believed from a trusted proxy: X-Forwarded-For,
	// Forwarded or X-Real-IP.
	ClientIPHeader string
	// Networks are the named prefix lists services can use in their allow lists.
	Networks []Network
	// Services are the declared services of the host scope, in file order: the host's own
	// network namespace, and every namespace no scope matches.
	Services []Service
	// Scopes are the named scopes for containers and network namespaces (ScopeFor).
	Scopes []Scope
	// Proxy is the front door `bindguard gen nginx` writes, nil when the policy has none.
	Proxy *Proxy
	// Monitor configures `bindguard serve`, nil when the policy says nothing of it.
	Monitor *Monitor
	// Scan maps path globs to where `bindguard scan` takes their files to run (policy/scan.go).
	Scan []ScanRule
	// Probe lists the hosts serve's /probe endpoint answers for (policy/probe.go).
	Probe []ProbeTarget
	// Enforce configures `bindguard enforce`, nil when the policy says nothing of it (deny,
	// no guarded ranges).
	Enforce *Enforce
}

// Network is a named list of prefixes, usable by name in a service's allow list.
type Network struct {
	Name     string
	Prefixes []netip.Prefix
	Pos      Position
}

// Service is one declared listener.
type Service struct {
	// Name is unique within the policy and matches [a-z0-9][a-z0-9_.-]{0,62}.
	Name     string
	Protocol Protocol
	Port     uint16
	// Address is the IP the service must bind. The zero Addr means any address its access class
	// allows. It is never IPv4-mapped and never has a zone.
	Address netip.Addr
	// V6Only, only with Address "::", says the socket sets IPV6_V6ONLY. Without it "::" is
	// dual-stack and also accepts IPv4, overlapping 0.0.0.0.
	V6Only bool
	Access Access
	// Allow is the allow list as written: IP literals, CIDRs and network names.
	Allow []string
	// AllowPrefixes is Allow resolved to prefixes, network names expanded. An address with an
	// IPv6 zone is inside them when the address is, whatever the interface.
	AllowPrefixes []netip.Prefix
	// AllowZoned are the Allow entries that name a zone (fe80::1%eth0, fe80::%eth0/64): they
	// admit the address on that interface only.
	AllowZoned []ZonedPrefix
	// HostCheck, for localhost_only services, requires the HTTP Host header to name localhost,
	// a 127.0.0.0/8 literal or [::1] (defence against DNS rebinding).
	HostCheck bool
	// Process is the expected process name, if the policy names one.
	Process     string
	Description string
	// Pos is where the service is declared.
	Pos Position
}

// Lookup returns the service with the given name.
func (p *Policy) Lookup(name string) (Service, bool) {
	for _, s := range p.Services {
		if s.Name == name {
			return s, true
		}
	}
	return Service{}, false
}

// Network returns the named network.
func (p *Policy) Network(name string) (Network, bool) {
	for _, n := range p.Networks {
		if n.Name == name {
			return n, true
		}
	}
	return Network{}, false
}

// IsDualStack reports whether the service's declared address is the IPv6 wildcard without
// IPV6_V6ONLY, which accepts IPv4 connections as well.
func (s Service) IsDualStack() bool {
	return s.Address.IsValid() && s.Address == netip.IPv6Unspecified() && !s.V6Only
}
