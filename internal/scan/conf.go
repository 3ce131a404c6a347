package scan

import (
	"strconv"
	"strings"
)

// Scanners for line-oriented server configuration: redis.conf, postgresql.conf, nginx and
// systemd socket units. Each reads its format's directives (comments stripped, values
// unquoted); none matches text inside comments.

// confLines yields (line number, fields) for directives, '#' comments removed.
func confLines(src []byte, fn func(line int, text string)) {
	for i, l := range strings.Split(string(src), "\n") {
		if j := strings.IndexByte(l, '#'); j >= 0 {
			l = l[:j]
		}
		if l = strings.TrimSpace(strings.TrimRight(l, "\r")); l != "" {
			fn(i+1, l)
		}
	}
}

// scanRedis reads bind (each address; "*" and "0.0.0.0" are every interface; a leading "-"
// makes an address optional) and port. protected-mode no with a bind to every interface is
// said in the finding.
func scanRedis(name string, src []byte) ([]Finding, []Problem) {
	port := 6379
	var binds []Finding
	protected := true
	confLines(src, func(line int, text string) {
		f := strings.Fields(text)
		switch strings.ToLower(f[0]) {
		case "port":
			if len(f) > 1 {
				if n, err := strconv.Atoi(f[1]); err == nil {
					port = n
				}
			}
		case "protected-mode":
			protected = !(len(f) > 1 && strings.EqualFold(f[1], "no"))
		case "bind":
			for _, a := range f[1:] {
				a = strings.Trim(strings.TrimPrefix(a, "-"), `"`)
				if a == "::*" {
					a = "*"
				}
				binds = append(binds, newFinding(name, line, "redis-bind", "tcp", a, "*", 0))
			}
		}
	})
	for i := range binds {
		binds[i].Port = port
		if !protected && binds[i].wildcard {
			binds[i].Subject = "protected-mode no: redis answers clients on every interface without a password"
		}
	}
	return binds, nil
}

// scanPostgres reads listen_addresses (a comma-separated list; "*" is every interface) and
// port.
func scanPostgres(name string, src []byte) ([]Finding, []Problem) {
	port := 5432
	var out []Finding
	confLines(src, func(line int, text string) {
		k, v, ok := strings.Cut(text, "=")
		if !ok {
			k, v, _ = strings.Cut(text, " ")
		}
		k = strings.TrimSpace(k)
		v = strings.Trim(strings.TrimSpace(v), `'"`)
		switch k {
		case "port":
			if n, err := strconv.Atoi(v); err == nil {
				port = n
			}
		case "listen_addresses":
			for _, a := range strings.Split(v, ",") {
				if a = strings.TrimSpace(a); a != "" {
					out = append(out, newFinding(name, line, "postgres-listen", "tcp", a, "*", 0))
				}
			}
		}
	})
	for i := range out {
		out[i].Port = port
	}
	return out, nil
}

// scanNginx reads listen directives: "listen 80", "listen 127.0.0.1:8080", "listen [::]:443
// ssl", "listen 53 udp". A port alone binds every IPv4 interface; unix: sockets are skipped.
func scanNginx(name string, src []byte) ([]Finding, []Problem) {
	var out []Finding
	confLines(src, func(line int, text string) {
		for _, stmt := range strings.FieldsFunc(text, func(r rune) bool { return r == ';' || r == '{' || r == '}' }) {
			f := strings.Fields(stmt)
			if len(f) < 2 || f[0] != "listen" || strings.HasPrefix(f[1], "unix:") {
				continue
			}
			var host, port string
			if _, err := strconv.Atoi(f[1]); err == nil {
				port = f[1]
			} else if host, port, _ = splitHostPortLoose(f[1]); port == "" {
				port = "80" // an address alone listens on port 80
			}
			proto := "tcp"
			for _, opt := range f[2:] {
				if opt == "udp" || opt == "quic" {
					proto = "udp"
				}
			}
			n, _ := strconv.Atoi(port)
			out = append(out, newFinding(name, line, "nginx-listen", policyProto(proto), host, "0.0.0.0", n))
		}
	})
	return out, nil
}

// scanSystemd reads ListenStream= and ListenDatagram= of socket units: a port alone is every
// interface (dual-stack); paths and abstract sockets are not network listeners.
func scanSystemd(name string, src []byte) ([]Finding, []Problem) {
	var out []Finding
	for i, l := range strings.Split(string(src), "\n") {
		l = strings.TrimSpace(strings.TrimRight(l, "\r"))
		if l == "" || l[0] == '#' || l[0] == ';' {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		proto := "tcp"
		switch k {
		case "ListenStream":
		case "ListenDatagram":
			proto = "udp"
		default:
			continue
		}
		if v == "" || v[0] == '/' || v[0] == '@' {
			continue
		}
		host, port := "", v
		if _, err := strconv.Atoi(v); err != nil {
			host, port, _ = splitHostPortLoose(v)
		}
		n, err := strconv.Atoi(port)
		if err != nil {
			continue
		}
		out = append(out, newFinding(name, i+1, "systemd-listen", policyProto(proto), host, "*", n))
	}
	return out, nil
}

// scanMongo reads a mongod.conf (YAML): net.bindIp (a comma-separated list), net.bindIpAll
// and net.port (default 27017).
func scanMongo(name string, src []byte) ([]Finding, []Problem) {
	docs, p := parseYAML(name, "mongod", src)
	if p != nil {
		return nil, []Problem{*p}
	}
	var out []Finding
	for _, doc := range docs {
		n := get(doc, "net")
		port := 27017
		if v := firstPort(scalar(get(n, "port"))); v > 0 {
			port = v
		}
		if all := get(n, "bindIpAll"); scalar(all) == "true" {
			out = append(out, newFinding(name, lineOf(all), "mongod-bind", "tcp", "*", "*", port))
		}
		if b := get(n, "bindIp"); b != nil {
			for _, a := range strings.Split(scalar(b), ",") {
				if a = strings.TrimSpace(a); a != "" && !strings.HasPrefix(a, "/") {
					out = append(out, newFinding(name, lineOf(b), "mongod-bind", "tcp", a, "*", port))
				}
			}
		}
	}
	return out, nil
}

// scanSSHD reads sshd_config ListenAddress (host, host:port or [v6]:port; Port, default 22,
// for those without one). Without ListenAddress sshd listens on every interface, which the
// scan does not report: the file says nothing about it.
func scanSSHD(name string, src []byte) ([]Finding, []Problem) {
	port := 22
	var out []Finding
	var portless []int
	confLines(src, func(line int, text string) {
		f := strings.Fields(text)
		if len(f) < 2 {
			return
		}
		switch strings.ToLower(f[0]) {
		case "match":
			port = -1 // Match blocks cannot set ListenAddress; stop reading Port after one.
		case "port":
			if n, err := strconv.Atoi(f[1]); err == nil && port != -1 {
				port = n
			}
		case "listenaddress":
			host, ps := f[1], ""
			if strings.HasPrefix(host, "[") || strings.Count(host, ":") == 1 {
				host, ps, _ = splitHostPortLoose(host)
			}
			fd := newFinding(name, line, "sshd-listen", "tcp", host, "*", firstPort(ps))
			if ps == "" {
				portless = append(portless, len(out))
			}
			out = append(out, fd)
		}
	})
	if port < 0 {
		port = 22
	}
	for _, i := range portless {
		out[i].Port = port
	}
	return out, nil
}
