package policy

import (
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"sync"
)

var (
	// Values written into nginx configuration: nothing that could end a directive, open a
	// block, start a comment or expand a variable.
	urlPathRE    = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^/[A-Za-z0-9._~/-]*$`) })
	serverNameRE = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^(\*\.)?[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$|^\[?[0-9A-Fa-f:.]+\]?$`)
	})
	filePathRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^/[A-Za-z0-9._/+@-]+$`) })
	// sizeRE is a size as Validate accepts it, in canonical lower case; anySizeRE also matches
	// the upper-case spellings a file may use, which applyDefaults lowers.
	sizeRE      = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[1-9][0-9]{0,5}[kmg]?$`) })
	anySizeRE   = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[1-9][0-9]{0,5}[kKmMgG]?$`) })
	httpMethods = []string{"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"}
)

// What the proxy's patterns accept, in words for messages.
const (
	whatService = "a service name of this policy"
	whatFile    = "an absolute file path (letters, digits, ._/+@-)"
)

// proxyCheck validates one proxy section: at says where its values stand (nil for a Policy
// built in code).
type proxyCheck struct {
	ps *problems
	at *locs
}

// text checks the string at Go path gp against re, and against ".." and "//" (path
// traversal and nginx's merge_slashes). It reports false, having said why, when s is refused,
// and also when s failed to decode.
func (c proxyCheck) text(gp, s string, re *regexp.Regexp, what string) bool {
	if c.at.failed(gp) {
		return false
	}
	if !re.MatchString(s) || strings.Contains(s, "..") || strings.Contains(s, "//") {
		l := c.at.at(gp)
		c.ps.add(l.pos, l.path, "%q is not %s", s, what)
		return false
	}
	return true
}

// required checks a value that must be given: it reports "missing" when it is empty and was
// not written (written and empty is the pattern's business). It reports whether the value is
// there to be checked.
func (c proxyCheck) required(gp string, empty bool, msg string) bool {
	if c.at.failed(gp) {
		return false
	}
	if empty && !c.at.written(gp) {
		l := c.at.at(gp)
		c.ps.add(l.pos, l.path, "%s", msg)
		return false
	}
	return true
}

// optional reports whether an optional string value is there to be checked: given, or written
// (an empty string written is refused by its pattern).
func (c proxyCheck) optional(gp, s string) bool {
	return !c.at.failed(gp) && (s != "" || c.at.written(gp))
}

// validateProxy checks the proxy section: every value nginx configuration is written from
// against a safe pattern, ranges, required fields, references to services and networks, paths
// listed once. The checks are the same for a decoded policy and one built in code; a decoded one
// is reported at its file positions. Nothing is written to p.
//
// derived says to check that AllowPrefixes agrees with Allow (a decoded policy's was just
// computed from it).
func validateProxy(ps *problems, p *Policy, at *locs, networks map[string]*Network, budget *int, derived bool) {
	px := p.Proxy
	if px == nil {
		return
	}
	c := proxyCheck{ps: ps, at: at}

	// Values, one by one.
	if c.required("proxy.server_names", len(px.ServerNames) == 0, "missing; the names the site answers to, e.g. [example.com, 10.1.1.120]") {
		if len(px.ServerNames) == 0 {
			l := at.at("proxy.server_names")
			ps.add(l.pos, l.path, "must name at least one host name or address")
		}
	}
	for i, s := range px.ServerNames {
		if gp := indexPath("proxy.server_names", i); !serverNameRE().MatchString(s) || strings.Contains(s, "..") {
			l := at.at(gp)
			ps.add(l.pos, l.path, "%q is not a host name or IP address", s)
		}
	}
	httpOK := c.optional("proxy.http", px.HTTP) && c.text("proxy.http", px.HTTP, nameRE(), whatService)
	httpsOK := c.required("proxy.https", px.HTTPS == "", "missing; the public service nginx serves HTTPS as (address and port come from it)") &&
		c.text("proxy.https", px.HTTPS, nameRE(), whatService)
	for _, f := range []struct{ key, val string }{{"certificate", px.Certificate}, {"key", px.Key}} {
		gp := "proxy." + f.key
		if c.required(gp, f.val == "", "missing; the TLS "+f.key+" file nginx reads") {
			c.text(gp, f.val, filePathRE(), whatFile)
		}
	}
	routeOK := make([]bool, len(px.Routes))
	for i, r := range px.Routes {
		rp := indexPath("proxy.routes", i)
		pathOK := c.required(rp+".path", r.Path == "", "missing") && c.text(rp+".path", r.Path, urlPathRE(), "a URL path such as /api/")
		svcOK := c.required(rp+".service", r.Service == "", "missing; the policy service this path goes to") &&
			c.text(rp+".service", r.Service, nameRE(), whatService)
		routeOK[i] = pathOK && svcOK
		for j, m := range r.Methods {
			if !slices.Contains(httpMethods, m) {
				l := at.at(indexPath(rp+".methods", j))
				ps.add(l.pos, l.path, "%q is not one of %s (upper case)", m, strings.Join(httpMethods, ", "))
			}
		}
	}
	blockedOK := make([]bool, len(px.Blocked))
	for i, b := range px.Blocked {
		gp := indexPath("proxy.blocked", i)
		if !c.text(gp, b, urlPathRE(), "a URL path such as /internal/") {
			continue
		}
		if b == "/" {
			l := at.at(gp)
			ps.add(l.pos, l.path, "/ would block the whole site")
			continue
		}
		blockedOK[i] = true
	}
	if c.optional("proxy.health", px.Health) {
		c.text("proxy.health", px.Health, urlPathRE(), "a URL path such as /health")
	}
	for _, f := range []struct {
		key      string
		val      int
		min, max int
	}{{"rate", px.Rate, 1, 65535}, {"burst", px.Burst, 1, 65535}, {"connections", px.Connections, 1, 65535}, {"timeout", px.Timeout, 1, 3600}} {
		gp := "proxy." + f.key
		if at.failed(gp) {
			continue
		}
		l := at.at(gp)
		switch {
		case f.val < 1 || f.val > 65535:
			ps.add(l.pos, l.path, "%d is out of range 1-65535", f.val)
		case f.val < f.min || f.val > f.max:
			ps.add(l.pos, l.path, "%d is out of range %d-%d", f.val, f.min, f.max)
		}
	}
	c.text("proxy.body_size", px.BodySize, sizeRE(), "a size such as 10m, 512k or 1g")
	var statusOK, detailOK, detailSvcOK bool
	if st := px.Status; st != nil {
		statusOK = c.required("proxy.status.service", st.Service == "", "missing; the policy service nginx listens as for status (e.g. 8080)") &&
			c.text("proxy.status.service", st.Service, nameRE(), whatService)
		c.text("proxy.status.path", st.Path, urlPathRE(), "a URL path such as /nginx-status")
		if c.required("proxy.status.allow", len(st.Allow) == 0, "missing; the monitoring hosts that may read the status") && len(st.Allow) == 0 {
			l := at.at("proxy.status.allow")
			ps.add(l.pos, l.path, "must name at least one monitoring host")
		}
		if !at.failed("proxy.status.detail") && (at.written("proxy.status.detail") || st.DetailPath != "" || st.DetailService != "" || st.DetailUpstream != "") {
			detailOK = true
			for _, f := range []struct {
				key, val string
				re       *regexp.Regexp
				what     string
			}{{"path", st.DetailPath, urlPathRE(), "a URL path"}, {"service", st.DetailService, nameRE(), whatService}, {"upstream_path", st.DetailUpstream, urlPathRE(), "a URL path"}} {
				gp := "proxy.status.detail." + f.key
				ok := c.required(gp, f.val == "", "missing") && c.text(gp, f.val, f.re, f.what)
				if f.key == "service" {
					detailSvcOK = ok
				}
			}
		}
	}

	// References: services that exist and have an address nginx can reach, allow lists that
	// resolve, paths listed once.
	svc := func(name, gp string, public bool) {
		l := at.at(gp)
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
	if httpOK && px.HTTP != "" {
		svc(px.HTTP, "proxy.http", true)
	}
	if httpsOK {
		svc(px.HTTPS, "proxy.https", true)
	}
	if httpOK && httpsOK && px.HTTP != "" && px.HTTP == px.HTTPS {
		l := at.at("proxy.http")
		ps.add(l.pos, l.path, "http and https cannot be the same service")
	}
	paths := map[string]int{}
	for i := range px.Routes {
		if !routeOK[i] {
			continue
		}
		r := &px.Routes[i]
		rp := indexPath("proxy.routes", i)
		if first, dup := paths[r.Path]; dup {
			l := at.at(rp + ".path")
			ps.add(l.pos, l.path, "path %s is routed twice (first in %s)", r.Path, at.at(indexPath("proxy.routes", first)).path)
		} else {
			paths[r.Path] = i
		}
		svc(r.Service, rp+".service", false)
		want, ok := resolveProxyAllow(ps, r.Allow, rp+".allow", at, networks, budget)
		checkResolved(ps, at.at(rp+".allow"), r.AllowPrefixes, want, ok && derived)
	}
	for i, b := range px.Blocked {
		if _, routed := paths[b]; routed && blockedOK[i] {
			l := at.at(indexPath("proxy.blocked", i))
			ps.add(l.pos, l.path, "%s is both routed and blocked", b)
		}
	}
	if st := px.Status; st != nil {
		if statusOK {
			svc(st.Service, "proxy.status.service", true)
			if (httpOK && st.Service == px.HTTP) || (httpsOK && st.Service == px.HTTPS) {
				l := at.at("proxy.status.service")
				ps.add(l.pos, l.path, "the status listener needs a service of its own, not the site's %s", st.Service)
			}
		}
		if detailOK && detailSvcOK {
			svc(st.DetailService, "proxy.status.detail.service", false)
		}
		want, ok := resolveProxyAllow(ps, st.Allow, "proxy.status.allow", at, networks, budget)
		checkResolved(ps, at.at("proxy.status.allow"), st.AllowPrefixes, want, ok && derived)
	}
}

// resolveProxyAllow expands a route's or the status listener's IPs, CIDRs and network names,
// reporting (when ps is not nil) entries that are none of them. It reports ok false when any
// entry failed. budget is what is left of MaxAllowPrefixes for the whole policy.
func resolveProxyAllow(ps *problems, allow []string, path string, at *locs, networks map[string]*Network, budget *int) (out []netip.Prefix, ok bool) {
	ok = true
	report := func(gp, format string, args ...any) {
		ok = false
		if ps != nil {
			l := at.at(gp)
			ps.add(l.pos, l.path, format, args...)
		}
	}
	for i, a := range allow {
		gp := indexPath(path, i)
		if n, isNet := networks[a]; isNet {
			*budget -= len(n.Prefixes)
			if *budget < 0 {
				report(gp, "allow lists expand to more than %d prefixes in total (MaxAllowPrefixes); name fewer or smaller networks", MaxAllowPrefixes)
				return nil, false
			}
			out = append(out, n.Prefixes...)
			continue
		}
		pf, err := parsePrefix(a)
		if err != nil {
			report(gp, "%q is neither a network of this policy nor an IP or CIDR: %v", a, err)
			continue
		}
		if err := checkPrefix(pf); err != nil {
			report(gp, "%v", err)
			continue
		}
		out = append(out, pf)
	}
	if !ok {
		return nil, false
	}
	return out, true
}

// checkResolved reports derived prefixes that do not agree with the allow list they come from:
// a Policy built in code whose Allow or Networks changed after Defaults.
func checkResolved(ps *problems, l loc, have []netip.Prefix, want []netip.Prefix, ok bool) {
	if ok && !slices.Equal(have, want) {
		ps.add(l.pos, l.path, "AllowPrefixes does not match the allow list; call policy.Defaults after changing an allow list or the networks")
	}
}
