package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Marshal writes p in the native format. Loading the result gives back the same policy: the
// same services, addresses, ports, access classes and allow lists (Source, Format and
// positions aside). Free text is written as double-quoted strings, so nothing in a description
// can change the YAML around it.
func Marshal(p *Policy) []byte { return MarshalCommented(p, nil, nil) }

// MarshalCommented is Marshal with comments: header lines at the top of the file, and for each
// service named in comments, lines just above its entry: a host service by its name ("redis"), a
// scope's service by scope and name ("web/redis"), a scope itself by its name and a slash
// ("web/"). Comment text is written after "# " one
// line at a time; control characters in it are replaced, so a comment cannot end early and
// inject YAML.
func MarshalCommented(p *Policy, header []string, comments map[string][]string) []byte {
	var b bytes.Buffer
	for _, h := range header {
		writeComment(&b, "", h)
	}
	b.WriteString("version: 1\n")
	trusted := make([]string, 0, len(p.TrustedProxies)+len(p.TrustedZoned))
	for _, t := range p.TrustedProxies {
		trusted = append(trusted, t.String())
	}
	for _, z := range p.TrustedZoned {
		trusted = append(trusted, z.String())
	}
	fmt.Fprintf(&b, "trusted_proxies: %s\n", yamlList(trusted, "  "))
	fmt.Fprintf(&b, "client_ip_header: %s\n", p.ClientIPHeader)
	if len(p.Networks) > 0 {
		b.WriteString("networks:\n")
		for _, n := range p.Networks {
			prefixes := make([]string, len(n.Prefixes))
			for i, pr := range n.Prefixes {
				prefixes[i] = pr.String()
			}
			fmt.Fprintf(&b, "  %s: %s\n", yamlScalar(n.Name), yamlList(prefixes, "    "))
		}
	}
	writeServices(&b, "", p.Services, "", comments)
	if len(p.Scopes) > 0 {
		b.WriteString("scopes:\n")
		for _, sc := range p.Scopes {
			for _, c := range comments[sc.Name+"/"] {
				writeComment(&b, "  ", c)
			}
			fmt.Fprintf(&b, "  - name: %s\n", quote(sc.Name))
			fmt.Fprintf(&b, "    match: %s\n", quotedList(sc.Match))
			writeServices(&b, "    ", sc.Services, sc.Name+"/", comments)
		}
	}
	writeProxy(&b, p.Proxy)
	writeMonitor(&b, p.Monitor)
	writeScan(&b, p.Scan)
	writeProbe(&b, p.Probe)
	writeEnforce(&b, p.Enforce)
	return b.Bytes()
}

// writeServices writes a services: list at indent; comments are looked up by key+name.
func writeServices(b *bytes.Buffer, indent string, svcs []Service, key string, comments map[string][]string) {
	if len(svcs) == 0 {
		b.WriteString(indent + "services: []\n")
		return
	}
	b.WriteString(indent + "services:\n")
	in := indent + "    "
	for _, s := range svcs {
		for _, c := range comments[key+s.Name] {
			writeComment(b, indent+"  ", c)
		}
		fmt.Fprintf(b, "%s  - name: %s\n", indent, yamlScalar(s.Name))
		fmt.Fprintf(b, "%sprotocol: %s\n", in, s.Protocol)
		fmt.Fprintf(b, "%sport: %d\n", in, s.Port)
		if s.Address.IsValid() {
			fmt.Fprintf(b, "%saddress: %s\n", in, yamlScalar(s.Address.String()))
		}
		if s.V6Only {
			b.WriteString(in + "v6only: true\n")
		}
		fmt.Fprintf(b, "%saccess: %s\n", in, s.Access)
		if len(s.Allow) > 0 {
			fmt.Fprintf(b, "%sallow: %s\n", in, yamlList(s.Allow, in+"  "))
		}
		if s.Access == LocalhostOnly && !s.HostCheck {
			b.WriteString(in + "host_check: false\n")
		}
		if s.Process != "" {
			fmt.Fprintf(b, "%sprocess: %s\n", in, quote(s.Process))
		}
		if s.Description != "" {
			fmt.Fprintf(b, "%sdescription: %s\n", in, quote(s.Description))
		}
	}
}

// writeProxy writes the proxy section; every value in it was checked against a safe pattern
// when the policy was loaded, and is quoted all the same.
func writeProxy(b *bytes.Buffer, px *Proxy) {
	if px == nil {
		return
	}
	b.WriteString("proxy:\n")
	fmt.Fprintf(b, "  server_names: %s\n", quotedList(px.ServerNames))
	if px.HTTP != "" {
		fmt.Fprintf(b, "  http: %s\n", quote(px.HTTP))
	}
	fmt.Fprintf(b, "  https: %s\n", quote(px.HTTPS))
	fmt.Fprintf(b, "  certificate: %s\n  key: %s\n", quote(px.Certificate), quote(px.Key))
	if len(px.Routes) > 0 {
		b.WriteString("  routes:\n")
		for _, r := range px.Routes {
			fmt.Fprintf(b, "    - path: %s\n      service: %s\n", quote(r.Path), quote(r.Service))
			if len(r.Methods) > 0 {
				fmt.Fprintf(b, "      methods: %s\n", quotedList(r.Methods))
			}
			if len(r.Allow) > 0 {
				fmt.Fprintf(b, "      allow: %s\n", quotedList(r.Allow))
			}
			if r.UpstreamTLS {
				b.WriteString("      upstream_tls: true\n")
			}
			if r.RateLimit {
				b.WriteString("      rate_limit: true\n")
			}
		}
	}
	if len(px.Blocked) > 0 {
		fmt.Fprintf(b, "  blocked: %s\n", quotedList(px.Blocked))
	}
	if px.Health != "" {
		fmt.Fprintf(b, "  health: %s\n", quote(px.Health))
	}
	fmt.Fprintf(b, "  rate: %d\n  burst: %d\n  connections: %d\n  body_size: %s\n  timeout: %d\n",
		px.Rate, px.Burst, px.Connections, quote(px.BodySize), px.Timeout)
	if st := px.Status; st != nil {
		fmt.Fprintf(b, "  status:\n    service: %s\n    path: %s\n    allow: %s\n", quote(st.Service), quote(st.Path), quotedList(st.Allow))
		if st.DetailPath != "" || st.DetailService != "" || st.DetailUpstream != "" {
			fmt.Fprintf(b, "    detail:\n      path: %s\n      service: %s\n      upstream_path: %s\n",
				quote(st.DetailPath), quote(st.DetailService), quote(st.DetailUpstream))
		}
	}
}

// writeMonitor writes the monitor section.
func writeMonitor(b *bytes.Buffer, m *Monitor) {
	if m == nil {
		return
	}
	if m.Redis == "" {
		b.WriteString("monitor: {}\n") // "monitor:" alone would read back as null
		return
	}
	b.WriteString("monitor:\n")
	fmt.Fprintf(b, "  redis: %s\n", quote(m.Redis))
}

func quotedList(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// writeComment writes one comment line, control characters replaced.
func writeComment(b *bytes.Buffer, indent, text string) {
	text = strings.Map(func(r rune) rune {
		if UnsafeRune(r) || r == 0xfeff {
			return '?'
		}
		return r
	}, strings.ToValidUTF8(text, "?"))
	b.WriteString(indent)
	if text == "" {
		b.WriteString("#\n")
		return
	}
	b.WriteString("# " + text + "\n")
}

// yamlList writes a short list in flow style and a long one in block style.
func yamlList(items []string, indent string) string {
	if len(items) == 0 {
		return "[]"
	}
	quoted := make([]string, len(items))
	for i, it := range items {
		quoted[i] = yamlScalar(it)
	}
	if len(items) <= 8 {
		return "[" + strings.Join(quoted, ", ") + "]"
	}
	return "\n" + indent + "- " + strings.Join(quoted, "\n"+indent+"- ")
}

// yamlScalar writes names, IPs and CIDRs plain where YAML reads them back as the same string,
// and quoted otherwise (IPv6 literals, which contain ':').
func yamlScalar(s string) string {
	if nameRE().MatchString(s) && s[0] >= 'a' && s[0] <= 'z' && !yamlKeywords[s] {
		return s
	}
	if _, err := netip.ParsePrefix(s); err == nil && !strings.Contains(s, ":") {
		return s
	}
	if _, err := netip.ParseAddr(s); err == nil && !strings.Contains(s, ":") {
		return s
	}
	return quote(s)
}

// yamlKeywords are plain words YAML 1.1 or 1.2 read as something other than a string.
var yamlKeywords = map[string]bool{"null": true, "true": true, "false": true, "yes": true, "no": true, "on": true, "off": true, "y": true, "n": true, "nan": true, "inf": true}

// quote writes s as a JSON string, which is also a YAML double-quoted scalar.
func quote(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return strconv.Quote(s)
	}
	return strings.TrimSuffix(b.String(), "\n")
}
