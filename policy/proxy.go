package policy

import (
	"net/netip"
	"regexp"
	"slices"
	"strings"

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

	// Values written into nginx configuration: nothing that could end a directive, open a
	// block, start a comment or expand a variable.
	urlPathRE    = regexp.MustCompile(`^/[A-Za-z0-9._~/-]*$`)
	serverNameRE = regexp.MustCompile(`^(\*\.)?[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$|^\[?[0-9A-Fa-f:.]+\]?$`)
	filePathRE   = regexp.MustCompile(`^/[A-Za-z0-9._/+@-]+$`)
	sizeRE       = regexp.MustCompile(`^[1-9][0-9]{0,5}[kKmMgG]?$`)
	httpMethods  = []string{"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"}
)

// proxyLocs records where the proxy section's values stand, by field path, and the field path
// of each decoded route (a route with a bad field is still decoded, so indexes match the file,
// but one without a path or service is not).
type proxyLocs struct {
	m      map[string]loc
	routes []string
}

func (pl *proxyLocs) at(path string) loc {
	if l, ok := pl.m[path]; ok {
		return l
	}
	return pl.m["proxy"]
}

func (pl *proxyLocs) set(path string, l loc) { pl.m[path] = l }

// routePath is the field path of the i-th decoded route.
func (pl *proxyLocs) routePath(i int) string {
	if i < len(pl.routes) {
		return pl.routes[i]
	}
	return indexPath("proxy.routes", i)
}

// proxy decodes the proxy section; syntax is checked here, references to services and
// networks by validateProxy.
func (d *decoder) proxy(n ast.Node, path string) (*Proxy, *proxyLocs) {
	o, ok := d.object(n, path, "a mapping (server_names:, https:, routes:, ...)", proxyKeys...)
	if !ok {
		return nil, nil
	}
	px := &Proxy{Pos: o.pos, Rate: 10, Burst: 20, Connections: 10, BodySize: "10m", Timeout: 60}
	pl := &proxyLocs{m: map[string]loc{"proxy": {path: path, pos: o.pos}}}
	for k, e := range o.fields {
		pl.set(o.field(k), loc{path: o.field(k), pos: e.keyPos})
	}
	text := func(n ast.Node, p string, re *regexp.Regexp, what string) (string, bool) {
		s, ok := d.str(n, p)
		if !ok {
			return "", false
		}
		if !re.MatchString(s) || strings.Contains(s, "..") || strings.Contains(s, "//") {
			d.ps.add(posOf(unwrap(n)), p, "%q is not %s", s, what)
			return "", false
		}
		pl.set(p, loc{path: p, pos: posOf(unwrap(n))})
		return s, true
	}
	name := func(key string) string {
		if n, ok := o.get(key); ok {
			s, _ := text(n, o.field(key), nameRE, "a service name of this policy")
			return s
		}
		return ""
	}
	if n, ok := o.get("server_names"); ok {
		strs, locs, _ := d.strList(n, o.field("server_names"), "")
		for i, s := range strs {
			if !serverNameRE.MatchString(s) || strings.Contains(s, "..") {
				d.ps.add(locs[i].pos, locs[i].path, "%q is not a host name or IP address", s)
				continue
			}
			px.ServerNames = append(px.ServerNames, s)
		}
	} else {
		d.ps.add(o.pos, o.field("server_names"), "missing; the names the site answers to, e.g. [example.com, 10.1.1.120]")
	}
	px.HTTP, px.HTTPS = name("http"), name("https")
	if px.HTTPS == "" {
		if _, ok := o.get("https"); !ok {
			d.ps.add(o.pos, o.field("https"), "missing; the public service nginx serves HTTPS as (address and port come from it)")
		}
	}
	for _, f := range []struct {
		key string
		dst *string
	}{{"certificate", &px.Certificate}, {"key", &px.Key}} {
		if n, ok := o.get(f.key); ok {
			*f.dst, _ = text(n, o.field(f.key), filePathRE, "an absolute file path (letters, digits, ._/+@-)")
		} else {
			d.ps.add(o.pos, o.field(f.key), "missing; the TLS %s file nginx reads", f.key)
		}
	}
	if n, ok := o.get("routes"); ok {
		items, _ := d.list(n, o.field("routes"), "")
		for i, item := range items {
			rp := indexPath(o.field("routes"), i)
			if r, ok := d.route(item, rp, text, pl); ok {
				px.Routes = append(px.Routes, r)
				pl.routes = append(pl.routes, rp)
			}
		}
	}
	if n, ok := o.get("blocked"); ok {
		items, _ := d.list(n, o.field("blocked"), "")
		for i, item := range items {
			if s, ok := text(item, indexPath(o.field("blocked"), i), urlPathRE, "a URL path such as /internal/"); ok {
				if s == "/" {
					d.ps.add(posOf(unwrap(item)), indexPath(o.field("blocked"), i), "/ would block the whole site")
					continue
				}
				px.Blocked = append(px.Blocked, s)
			}
		}
	}
	if n, ok := o.get("health"); ok {
		px.Health, _ = text(n, o.field("health"), urlPathRE, "a URL path such as /health")
	}
	for _, f := range []struct {
		key      string
		dst      *int
		min, max int
	}{{"rate", &px.Rate, 1, 65535}, {"burst", &px.Burst, 1, 65535}, {"connections", &px.Connections, 1, 65535}, {"timeout", &px.Timeout, 1, 3600}} {
		if n, ok := o.get(f.key); ok {
			// Read as a port: a plain decimal 1-65535, with the same clear errors.
			if v, ok := d.port(n, o.field(f.key)); ok {
				if int(v) < f.min || int(v) > f.max {
					d.ps.add(posOf(unwrap(n)), o.field(f.key), "%d is out of range %d-%d", v, f.min, f.max)
				} else {
					*f.dst = int(v)
				}
			}
		}
	}
	if n, ok := o.get("body_size"); ok {
		px.BodySize, _ = text(n, o.field("body_size"), sizeRE, "a size such as 10m, 512k or 1g")
		px.BodySize = strings.ToLower(px.BodySize)
	}
	if n, ok := o.get("status"); ok {
		px.Status = d.proxyStatus(n, o.field("status"), text, pl)
	}
	return px, pl
}

type textFunc func(n ast.Node, p string, re *regexp.Regexp, what string) (string, bool)

func (d *decoder) route(n ast.Node, path string, text textFunc, pl *proxyLocs) (Route, bool) {
	o, ok := d.object(n, path, "a route (path:, service:, ...)", routeKeys...)
	if !ok {
		return Route{}, false
	}
	r := Route{Pos: o.pos}
	pl.set(path, loc{path: path, pos: o.pos})
	good := true
	if n, ok := o.get("path"); ok {
		r.Path, ok = text(n, o.field("path"), urlPathRE, "a URL path such as /api/")
		good = good && ok
	} else {
		d.ps.add(o.pos, o.field("path"), "missing")
		good = false
	}
	if n, ok := o.get("service"); ok {
		r.Service, ok = text(n, o.field("service"), nameRE, "a service name of this policy")
		good = good && ok
	} else {
		d.ps.add(o.pos, o.field("service"), "missing; the policy service this path goes to")
		good = false
	}
	if n, ok := o.get("methods"); ok {
		strs, locs, _ := d.strList(n, o.field("methods"), "")
		for i, m := range strs {
			if !slices.Contains(httpMethods, m) {
				d.ps.add(locs[i].pos, locs[i].path, "%q is not one of %s (upper case)", m, strings.Join(httpMethods, ", "))
				continue
			}
			r.Methods = append(r.Methods, m)
		}
	}
	if n, ok := o.get("allow"); ok {
		strs, locs, _ := d.strList(n, o.field("allow"), "")
		r.Allow = strs
		for i, l := range locs {
			pl.set(indexPath(o.field("allow"), i), l)
		}
	}
	for _, f := range []struct {
		key string
		dst *bool
	}{{"upstream_tls", &r.UpstreamTLS}, {"rate_limit", &r.RateLimit}} {
		if n, ok := o.get(f.key); ok {
			*f.dst, _ = d.boolean(n, o.field(f.key))
		}
	}
	return r, good
}

func (d *decoder) proxyStatus(n ast.Node, path string, text textFunc, pl *proxyLocs) *ProxyStatus {
	o, ok := d.object(n, path, "a mapping (service:, allow:, ...)", statusKeys...)
	if !ok {
		return nil
	}
	st := &ProxyStatus{Path: "/nginx-status"}
	pl.set(path, loc{path: path, pos: o.pos})
	if n, ok := o.get("service"); ok {
		st.Service, _ = text(n, o.field("service"), nameRE, "a service name of this policy")
	} else {
		d.ps.add(o.pos, o.field("service"), "missing; the policy service nginx listens as for status (e.g. 8080)")
	}
	if n, ok := o.get("path"); ok {
		st.Path, _ = text(n, o.field("path"), urlPathRE, "a URL path such as /nginx-status")
	}
	if n, ok := o.get("allow"); ok {
		strs, locs, _ := d.strList(n, o.field("allow"), "")
		st.Allow = strs
		for i, l := range locs {
			pl.set(indexPath(o.field("allow"), i), l)
		}
		if len(strs) == 0 && len(locs) == 0 {
			d.ps.add(posOf(unwrap(n)), o.field("allow"), "must name at least one monitoring host")
		}
	} else {
		d.ps.add(o.pos, o.field("allow"), "missing; the monitoring hosts that may read the status")
	}
	if n, ok := o.get("detail"); ok {
		if do, ok := d.object(n, o.field("detail"), "a mapping (path:, service:, upstream_path:)", detailKeys...); ok {
			pl.set(o.field("detail"), loc{path: o.field("detail"), pos: do.pos})
			for _, f := range []struct {
				key  string
				dst  *string
				re   *regexp.Regexp
				what string
			}{{"path", &st.DetailPath, urlPathRE, "a URL path"}, {"service", &st.DetailService, nameRE, "a service name of this policy"}, {"upstream_path", &st.DetailUpstream, urlPathRE, "a URL path"}} {
				if n, ok := do.get(f.key); ok {
					*f.dst, _ = text(n, do.field(f.key), f.re, f.what)
				} else {
					d.ps.add(do.pos, do.field(f.key), "missing")
				}
			}
		}
	}
	return st
}

// validateProxy checks the proxy section's references: services that exist and have an
// address nginx can reach, allow lists that resolve, paths listed once.
func validateProxy(ps *problems, p *Policy, pl *proxyLocs, networks map[string]*Network) {
	px := p.Proxy
	if px == nil {
		return
	}
	if pl == nil {
		pl = &proxyLocs{m: map[string]loc{"proxy": {path: "proxy"}}}
	}
	svc := func(name, path string, public bool) {
		if name == "" {
			return
		}
		l := pl.at(path)
		s, ok := p.Lookup(name)
		switch {
		case !ok:
			ps.add(l.pos, l.path, "no service %q in this policy", name)
		case s.Protocol != TCP:
			ps.add(l.pos, l.path, "service %s is %s; nginx proxies tcp", name, s.Protocol)
		case !s.Address.IsValid() && public:
			ps.add(l.pos, l.path, "service %s declares no address for nginx to listen on", name)
		case !s.Address.IsValid():
			ps.add(l.pos, l.path, "service %s declares no address for nginx to proxy to", name)
		}
	}
	svc(px.HTTP, "proxy.http", true)
	svc(px.HTTPS, "proxy.https", true)
	if px.HTTP != "" && px.HTTP == px.HTTPS {
		l := pl.at("proxy.http")
		ps.add(l.pos, l.path, "http and https cannot be the same service")
	}
	paths := map[string]int{}
	for i := range px.Routes {
		r := &px.Routes[i]
		rp := pl.routePath(i)
		if first, dup := paths[r.Path]; dup {
			l := pl.at(rp + ".path")
			ps.add(l.pos, l.path, "path %s is routed twice (first in %s)", r.Path, pl.routePath(first))
		} else {
			paths[r.Path] = i
		}
		svc(r.Service, rp+".service", false)
		r.AllowPrefixes = resolveProxyAllow(ps, r.Allow, rp+".allow", pl, networks)
	}
	for i, b := range px.Blocked {
		if _, routed := paths[b]; routed {
			l := pl.at(indexPath("proxy.blocked", i))
			ps.add(l.pos, l.path, "%s is both routed and blocked", b)
		}
	}
	if st := px.Status; st != nil {
		svc(st.Service, "proxy.status.service", true)
		if st.Service != "" && (st.Service == px.HTTP || st.Service == px.HTTPS) {
			l := pl.at("proxy.status.service")
			ps.add(l.pos, l.path, "the status listener needs a service of its own, not the site's %s", st.Service)
		}
		svc(st.DetailService, "proxy.status.detail.service", false)
		st.AllowPrefixes = resolveProxyAllow(ps, st.Allow, "proxy.status.allow", pl, networks)
	}
}

// resolveProxyAllow expands IPs, CIDRs and network names.
func resolveProxyAllow(ps *problems, allow []string, path string, pl *proxyLocs, networks map[string]*Network) []netip.Prefix {
	var out []netip.Prefix
	for i, a := range allow {
		l := pl.at(indexPath(path, i))
		if n, ok := networks[a]; ok {
			out = append(out, n.Prefixes...)
			continue
		}
		pf, err := parsePrefix(a)
		if err != nil {
			ps.add(l.pos, l.path, "%q is neither a network of this policy nor an IP or CIDR: %v", a, err)
			continue
		}
		if err := checkPrefix(pf); err != nil {
			ps.add(l.pos, l.path, "%v", err)
			continue
		}
		out = append(out, pf)
	}
	return out
}
