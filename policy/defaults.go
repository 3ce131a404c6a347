package policy

// Defaults for the proxy section, used when a policy leaves them out.
const (
	DefaultProxyRate        = 10
	DefaultProxyBurst       = 20
	DefaultProxyConnections = 10
	DefaultProxyBodySize    = "10m"
	DefaultProxyTimeout     = 60
	DefaultStatusPath       = "/nginx-status"
)

// Defaults prepares a Policy built in code for Validate, as Load and Parse prepare a decoded
// one: it is the one defaults step between decoding and validation.
//
// It fills each field that is unset and whose zero value is never valid: a service's Protocol
// (tcp), ClientIPHeader (X-Forwarded-For), and in the proxy section Rate (10), Burst (20),
// Connections (10), BodySize ("10m"), Timeout (60 s) and the status Path ("/nginx-status"). It
// writes a recognised value in its canonical spelling (client_ip_header in any case, BodySize
// in lower case) and leaves anything else as it is, for Validate to report. And it computes the
// derived fields from what they are derived from: each Service's (the host's and every scope's), Route's and ProxyStatus's
// AllowPrefixes from its Allow and the policy's Networks (nil where the list does not resolve;
// Validate says why). Call it again after changing an allow list or the networks: Validate
// refuses AllowPrefixes that disagree with them.
//
// Fields whose zero value is itself meaningful are never filled, so Defaults does not change
// what a valid policy means: an empty TrustedProxies trusts no proxy, and HostCheck false is no
// Host check. (A file that omits trusted_proxies trusts DefaultTrustedProxies, and one that
// omits host_check on a localhost_only service checks the Host: Parse knows what the file left
// out; a Go value cannot say.) Defaults never fails and is idempotent.
func Defaults(p *Policy) { applyDefaults(p, nil) }

// applyDefaults is Defaults with the source map of a decoded policy, which says which fields
// the file wrote: those are never filled, so an explicit `rate: 0` is reported rather than
// replaced.
func applyDefaults(p *Policy, sm *sourceMap) {
	file := sm != nil && !sm.synthetic
	var vals *locs
	if file {
		vals = sm.vals
	}
	wroteTop := func(key string) bool {
		if !file {
			return false
		}
		_, ok := sm.top[key]
		return ok
	}
	if file && !wroteTop("trusted_proxies") {
		p.TrustedProxies = DefaultTrustedProxies()
	}
	if h, known := canonicalHeader(p.ClientIPHeader); known {
		p.ClientIPHeader = h
	} else if p.ClientIPHeader == "" && !wroteTop("client_ip_header") {
		p.ClientIPHeader = HeaderXForwardedFor
	}
	var svcLocs []svcLoc
	if file {
		svcLocs = sm.services
	}
	defaultServices(p.Services, svcLocs, file)
	for j := range p.Scopes {
		var locs []svcLoc
		if file && j < len(sm.scopes) {
			locs = sm.scopes[j].services
		}
		defaultServices(p.Scopes[j].Services, locs, file)
	}
	if px := p.Proxy; px != nil {
		for _, f := range []struct {
			gp  string
			dst *int
			def int
		}{{"proxy.rate", &px.Rate, DefaultProxyRate}, {"proxy.burst", &px.Burst, DefaultProxyBurst}, {"proxy.connections", &px.Connections, DefaultProxyConnections}, {"proxy.timeout", &px.Timeout, DefaultProxyTimeout}} {
			if *f.dst == 0 && !vals.written(f.gp) {
				*f.dst = f.def
			}
		}
		if px.BodySize == "" && !vals.written("proxy.body_size") {
			px.BodySize = DefaultProxyBodySize
		} else if anySizeRE().MatchString(px.BodySize) {
			px.BodySize = toLowerASCII(px.BodySize)
		}
		if st := px.Status; st != nil && st.Path == "" && !vals.written("proxy.status.path") {
			st.Path = DefaultStatusPath
		}
	}
	resolveAll(p, sm)
}

// defaultServices fills a list of services' defaults; locs (nil for a Go value) says which
// fields the file wrote.
func defaultServices(svcs []Service, locs []svcLoc, file bool) {
	for i := range svcs {
		s := &svcs[i]
		wrote := func(field string) bool {
			if !file || i >= len(locs) {
				return false
			}
			_, ok := locs[i].fields[field]
			return ok
		}
		if s.Protocol == "" && !wrote("protocol") {
			s.Protocol = TCP
		}
		if file && !wrote("host_check") {
			s.HostCheck = s.Access == LocalhostOnly
		}
	}
}

// resolveAll computes every AllowPrefixes from its allow list, by the rules (and within the
// budget) validate checks them with; a list that does not resolve gets nil.
func resolveAll(p *Policy, sm *sourceMap) {
	networks := make(map[string]*Network, len(p.Networks))
	for i := range p.Networks {
		if _, dup := networks[p.Networks[i].Name]; !dup {
			networks[p.Networks[i].Name] = &p.Networks[i]
		}
	}
	var badNetworks []string
	if sm != nil {
		badNetworks = sm.badNetworks
	}
	budget := MaxAllowPrefixes
	resolve := func(svcs []Service, locs []svcLoc) {
		for i := range svcs {
			s := &svcs[i]
			scratch := svcLoc{fields: map[string]loc{}, bad: map[string]bool{}}
			if i < len(locs) && !locs[i].ok("access", "allow") {
				s.AllowPrefixes, s.AllowZoned = nil, nil // failed to decode: validate neither resolves nor counts it
				continue
			}
			prefixes, zoned, ok := resolveAllow(nil, s, &scratch, networks, badNetworks, &budget)
			if !ok {
				prefixes, zoned = nil, nil
			}
			s.AllowPrefixes, s.AllowZoned = prefixes, zoned
		}
	}
	var svcLocs []svcLoc
	if sm != nil {
		svcLocs = sm.services
	}
	resolve(p.Services, svcLocs)
	for j := range p.Scopes {
		var locs []svcLoc
		if sm != nil && j < len(sm.scopes) {
			locs = sm.scopes[j].services
		}
		resolve(p.Scopes[j].Services, locs)
	}
	if px := p.Proxy; px != nil {
		for i := range px.Routes {
			r := &px.Routes[i]
			r.AllowPrefixes, _ = resolveProxyAllow(nil, r.Allow, "", nil, networks, &budget)
		}
		if st := px.Status; st != nil {
			st.AllowPrefixes, _ = resolveProxyAllow(nil, st.Allow, "", nil, networks, &budget)
		}
	}
}

func toLowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
