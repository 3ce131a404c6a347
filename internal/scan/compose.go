package scan

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/bindguard/bindguard/policy"
	"github.com/goccy/go-yaml/ast"
)

// The compose scanner reads services' ports (short and long syntax), host_ip and network_mode.
// A published port without a host IP binds every host interface (Docker publishes on 0.0.0.0
// and ::); "127.0.0.1:6379:6379" binds loopback. expose publishes nothing, and a service
// without ports is reachable only on its container networks: neither is a finding.

func scanCompose(name string, src []byte) ([]Finding, []Problem) {
	docs, p := parseYAML(name, "compose", src)
	if p != nil {
		return nil, []Problem{*p}
	}
	var out []Finding
	for _, doc := range docs {
		for _, svc := range pairs(get(doc, "services")) {
			sname := scalar(svc.Key)
			body := unwrap(svc.Value)
			if nm := get(body, "network_mode"); scalar(nm) == "host" {
				f := newFinding(name, lineOf(nm), "compose-host-network", "tcp", "*", "*", 0)
				f.publication = true
				f.Subject = fmt.Sprintf("compose service %s shares the host's network: every port it binds is on the host", sname)
				out = append(out, f)
			}
			for _, port := range items(get(body, "ports")) {
				out = append(out, composePort(name, sname, port)...)
			}
		}
	}
	return out, nil
}

func composePort(file, svc string, n ast.Node) []Finding {
	var ip, published, target, proto string
	line := lineOf(n)
	if m := pairs(n); m != nil {
		ip, published, target, proto = scalar(get(n, "host_ip")), scalar(get(n, "published")), scalar(get(n, "target")), scalar(get(n, "protocol"))
		if t := get(n, "target"); t != nil {
			line = lineOf(t)
		}
	} else {
		s := scalar(n)
		s, proto, _ = strings.Cut(s, "/")
		if strings.HasPrefix(s, "[") {
			end := strings.Index(s, "]:")
			if end < 0 {
				return nil
			}
			ip, s = s[1:end], s[end+2:]
		}
		parts := strings.Split(s, ":")
		switch len(parts) {
		case 1:
			target = parts[0]
		case 2:
			published, target = parts[0], parts[1]
		default:
			ip = strings.Join(parts[:len(parts)-2], ":")
			published, target = parts[len(parts)-2], parts[len(parts)-1]
		}
	}
	pr := policy.Protocol("tcp")
	if strings.EqualFold(proto, "udp") {
		pr = "udp"
	}
	port := firstPort(published)
	f := newFinding(file, line, "compose-port", pr, ip, "0.0.0.0", port)
	f.publication = true
	if published == "" {
		f.Subject = fmt.Sprintf("compose service %s publishes container port %s on a random host port", svc, target)
	} else {
		f.Subject = fmt.Sprintf("compose service %s publishes container port %s as host port %s", svc, target, published)
	}
	return []Finding{f}
}

// firstPort is a port, or the first of a range ("8000-8010"); 0 when unknown.
func firstPort(s string) int {
	s, _, _ = strings.Cut(s, "-")
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 0 || n > 65535 {
		return 0
	}
	return n
}
