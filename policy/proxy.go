package policy

import (
	"net/netip"

	"github.com/goccy/go-yaml/ast"
)

// Proxy is the front door (nginx) of the host, as `bindguard gen nginx` writes it: where it
// listens, its TLS files, which paths go to which service and who may use them, what it blocks
// or answers itself, its limits, and a status listener for monitoring hosts.
type Proxy struct {
	// ServerNames are the names and addresses the site answers to.
	ServerNames []string
	// HTTP and HTTPS name the policy's services nginx listens as: HTTP redirects to HTTPS.
	HTTP, HTTPS string
	// Certificate and Key are absolute paths of the TLS files.
	Certificate, Key string
	Routes           []Route
	// Blocked are path prefixes answered 404 whatever the route (the seed's /internal/,
	// /admin/, /debug/).
	Blocked []string
	// Health is a path nginx answers itself with 200 "healthy"; empty for none.
	Health string
	// Rate limits, per client address, for routes with RateLimit: requests per second, the
	// burst served at once, and concurrent connections.
	Rate, Burst, Connections int
	// BodySize is client_max_body_size ("10m"); Timeout is the body, header and upstream read
	// timeout in seconds.
	BodySize string
	Timeout  int
	// Status is the monitoring listener, nil when there is none.
	Status *ProxyStatus
	Pos    Position
}

// Route sends a path prefix to a service.
type Route struct {
	Path    string
	Service string
	// Methods allowed besides HEAD (GET implies HEAD); empty allows GET, HEAD, POST, PUT, DELETE.
	Methods []string
	// Allow lists who may use the route (IPs, CIDRs, network names), resolved into
	// AllowPrefixes; empty is everyone.
	Allow         []string
	AllowPrefixes []netip.Prefix
	// UpstreamTLS says the service speaks HTTPS (the seed's frontend).
	UpstreamTLS bool
	// RateLimit applies the proxy's rate and connection limits.
	RateLimit bool
	Pos       Position
}

// ProxyStatus is a listener for monitoring hosts: nginx's stub_status and, optionally, one
// path passed to a service (the seed's /health-detailed).
type ProxyStatus struct {
	// Service names the policy service nginx listens as (the seed's 8080).
	Service string
	// Path of stub_status ("/nginx-status").
	Path          string
	Allow         []string
	AllowPrefixes []netip.Prefix
	// Detail, when set, passes DetailPath to DetailService's DetailUpstream.
	DetailPath, DetailService, DetailUpstream string
}

var (
	proxyKeys  = []string{"server_names", "http", "https", "certificate", "key", "routes", "blocked", "health", "rate", "burst", "connections", "body_size", "timeout", "status"}
	routeKeys  = []string{"path", "service", "methods", "allow", "upstream_tls", "rate_limit"}
	statusKeys = []string{"service", "path", "allow", "detail"}
	detailKeys = []string{"path", "service", "upstream_path"}
)

// proxyDecoder reads the proxy section into Go values as written, recording in at where each
// stands under its Go path (proxy.routes[1].path). What the values must be is validateProxy's
// business, and the defaults are applyDefaults'.
type proxyDecoder struct {
	d  *decoder
	at *locs
}

// str reads the string field key of o, the Go value at gp.
func (pd proxyDecoder) str(o object, key, gp string, dst *string) {
	n, ok := o.get(key)
	if !ok {
		return
	}
	pd.at.set(gp, loc{path: o.field(key), pos: posOf(unwrap(n))})
	s, ok := pd.d.str(n, o.field(key))
	if !ok {
		pd.at.fail(gp)
		return
	}
	*dst = s
}

// list reads the string-list field key of o, the Go value at gp. Items that fail to decode are
// reported and left out; the list is then marked failed, so that it is not also called empty.
func (pd proxyDecoder) list(o object, key, gp string) []string {
	n, ok := o.get(key)
	if !ok {
		return nil
	}
	pd.at.set(gp, loc{path: o.field(key), pos: posOf(unwrap(n))})
	strs, ls, good := pd.d.strList(n, o.field(key), "")
	if !good {
		pd.at.fail(gp)
	}
	for j, l := range ls {
		pd.at.set(indexPath(gp, j), l)
	}
	return strs
}

// number reads the whole-number field key of o, the Go value at gp.
func (pd proxyDecoder) number(o object, key, gp string, dst *int) {
	n, ok := o.get(key)
	if !ok {
		return
	}
	pd.at.set(gp, loc{path: o.field(key), pos: posOf(unwrap(n))})
	v, ok := pd.d.number(n, o.field(key))
	if !ok {
		pd.at.fail(gp)
		return
	}
	*dst = v
}

// boolean reads the boolean field key of o.
func (pd proxyDecoder) boolean(o object, key string, dst *bool) {
	if n, ok := o.get(key); ok {
		*dst, _ = pd.d.boolean(n, o.field(key))
	}
}

// proxy decodes the proxy section, written at path.
func (d *decoder) proxy(n ast.Node, path string, at *locs) *Proxy {
	o, ok := d.object(n, path, "a mapping (server_names:, https:, routes:, ...)", proxyKeys...)
	if !ok {
		return nil
	}
	pd := proxyDecoder{d: d, at: at}
	px := &Proxy{Pos: o.pos}
	at.set("proxy", loc{path: path, pos: o.pos})
	px.ServerNames = pd.list(o, "server_names", "proxy.server_names")
	pd.str(o, "http", "proxy.http", &px.HTTP)
	pd.str(o, "https", "proxy.https", &px.HTTPS)
	pd.str(o, "certificate", "proxy.certificate", &px.Certificate)
	pd.str(o, "key", "proxy.key", &px.Key)
	if n, ok := o.get("routes"); ok {
		at.set("proxy.routes", loc{path: o.field("routes"), pos: posOf(unwrap(n))})
		items, _ := d.list(n, o.field("routes"), "")
		for i, item := range items {
			gp := indexPath("proxy.routes", len(px.Routes))
			if r, ok := pd.route(item, indexPath(o.field("routes"), i), gp); ok {
				px.Routes = append(px.Routes, r)
			}
		}
	}
	px.Blocked = pd.list(o, "blocked", "proxy.blocked")
	pd.str(o, "health", "proxy.health", &px.Health)
	pd.number(o, "rate", "proxy.rate", &px.Rate)
	pd.number(o, "burst", "proxy.burst", &px.Burst)
	pd.number(o, "connections", "proxy.connections", &px.Connections)
	pd.str(o, "body_size", "proxy.body_size", &px.BodySize)
	pd.number(o, "timeout", "proxy.timeout", &px.Timeout)
	if n, ok := o.get("status"); ok {
		px.Status = pd.status(n, o.field("status"))
	}
	return px
}

// route decodes one route, written at path, as the Go value at gp. It reports false for an item
// that is not a mapping.
func (pd proxyDecoder) route(n ast.Node, path, gp string) (Route, bool) {
	o, ok := pd.d.object(n, path, "a route (path:, service:, ...)", routeKeys...)
	if !ok {
		return Route{}, false
	}
	r := Route{Pos: o.pos}
	pd.at.set(gp, loc{path: path, pos: o.pos})
	pd.str(o, "path", gp+".path", &r.Path)
	pd.str(o, "service", gp+".service", &r.Service)
	r.Methods = pd.list(o, "methods", gp+".methods")
	r.Allow = pd.list(o, "allow", gp+".allow")
	pd.boolean(o, "upstream_tls", &r.UpstreamTLS)
	pd.boolean(o, "rate_limit", &r.RateLimit)
	return r, true
}

// status decodes the status listener, written at path.
func (pd proxyDecoder) status(n ast.Node, path string) *ProxyStatus {
	o, ok := pd.d.object(n, path, "a mapping (service:, allow:, ...)", statusKeys...)
	if !ok {
		return nil
	}
	st := &ProxyStatus{}
	pd.at.set("proxy.status", loc{path: path, pos: o.pos})
	pd.str(o, "service", "proxy.status.service", &st.Service)
	pd.str(o, "path", "proxy.status.path", &st.Path)
	st.Allow = pd.list(o, "allow", "proxy.status.allow")
	if n, ok := o.get("detail"); ok {
		if do, ok := pd.d.object(n, o.field("detail"), "a mapping (path:, service:, upstream_path:)", detailKeys...); ok {
			pd.at.set("proxy.status.detail", loc{path: o.field("detail"), pos: do.pos})
			pd.str(do, "path", "proxy.status.detail.path", &st.DetailPath)
			pd.str(do, "service", "proxy.status.detail.service", &st.DetailService)
			pd.str(do, "upstream_path", "proxy.status.detail.upstream_path", &st.DetailUpstream)
		} else {
			pd.at.set("proxy.status.detail", loc{path: o.field("detail"), pos: posOf(unwrap(n))})
			pd.at.fail("proxy.status.detail")
		}
	}
	return st
}
