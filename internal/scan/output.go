package scan

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/bindguard/bindguard/internal/audit"
	"github.com/bindguard/bindguard/internal/text"
)

// Rule is one kind of finding, with the help SARIF carries.
type Rule struct {
	ID, Name, Short, Help string
}

// Rules lists every kind, in SARIF order. IDs are stable.
var Rules = []Rule{
	{"BG101", "go-listen", "Go net.Listen, ListenPacket, ListenConfig or tls.Listen binds a network address", "A wildcard or empty host (\":8080\") binds every interface of both families. Bind the address the policy declares, or use bindguard's listen library."},
	{"BG102", "go-http-listen", "Go http.ListenAndServe binds a network address", "An empty host binds every interface. Bind the declared address, e.g. 127.0.0.1:8001, and publish through the proxy."},
	{"BG103", "go-http-server", "Go http.Server{Addr} binds a network address", "The server listens on Addr when started with ListenAndServe; an empty host is every interface."},
	{"BG104", "go-framework", "A Go web framework (gin Run, echo Start) binds a network address", "gin's Run() with no address listens on :8080, every interface."},
	{"BG201", "dockerfile-cmd", "A container's command binds an address", "A wildcard inside a container is normal; what publishes the port (compose ports, hostPort, a Service) decides its reach."},
	{"BG301", "compose-port", "docker compose publishes a port on the host", "\"6379:6379\" publishes on every host interface; write \"127.0.0.1:6379:6379\" (or host_ip) for loopback, or use expose for container networks only."},
	{"BG302", "compose-host-network", "docker compose network_mode: host", "The service shares the host's network: every port it binds is a host port."},
	{"BG401", "k8s-service-lb", "Kubernetes Service of type LoadBalancer", "Public unless an internal-load-balancer annotation or private loadBalancerSourceRanges confine it."},
	{"BG402", "k8s-service-nodeport", "Kubernetes Service of type NodePort", "The port is opened on every node's interfaces."},
	{"BG403", "k8s-external-ip", "Kubernetes Service externalIPs", "Traffic to the external IP on the port reaches the service."},
	{"BG404", "k8s-hostport", "Kubernetes container hostPort", "The port is bound on the node, on hostIP or every interface."},
	{"BG405", "k8s-host-network", "Kubernetes pod with hostNetwork", "The pod's listeners are the node's listeners."},
	{"BG501", "redis-bind", "redis bind", "bind 127.0.0.1 -::1 keeps redis local; a wildcard with protected-mode no serves anyone."},
	{"BG502", "postgres-listen", "PostgreSQL listen_addresses", "'*' listens on every interface; 'localhost' keeps it local."},
	{"BG503", "nginx-listen", "nginx listen", "A port alone listens on every IPv4 interface."},
	{"BG505", "mongod-bind", "mongod net.bindIp or bindIpAll", "bindIpAll or 0.0.0.0 listens on every interface; keep 127.0.0.1 unless the replica set needs more."},
	{"BG506", "sshd-listen", "sshd ListenAddress", "ListenAddress 0.0.0.0 or :: listens on every interface."},
	{"BG504", "systemd-listen", "systemd socket ListenStream/ListenDatagram", "A port alone listens on every interface, IPv4 and IPv6."},
	{"BG601", "py-server-run", "A Python server (Flask, uvicorn, aiohttp, tornado, waitress) binds an address", "Flask's missing or empty host is 127.0.0.1 and uvicorn's default is 127.0.0.1; aiohttp's run_app without a host, tornado's listen without an address and waitress's serve bind every interface. Bind the address the policy declares."},
	{"BG602", "py-listen", "Python socket bind, socketserver, http.server, asyncio or wsgiref binds an address", "(\"\", port) and (\"0.0.0.0\", port) bind every IPv4 interface, (\"::\", port) every IPv6 one; asyncio's host None binds every interface, as does getaddrinfo(None, port, flags=AI_PASSIVE). ::1 and 127.0.0.1 are loopback. A host passed in by the function's one caller in the file is reported at that call."},
	{"BG603", "py-arg-default", "A Python default is a listen address: a command-line option's (argparse, optparse, click), an option class's default or a server configuration class's attribute", "An option --host, --bind or --listen whose default is 0.0.0.0, an option class (gunicorn's Bind: cli = [\"--bind\"], default = \"0.0.0.0:8000\") or a configuration class attribute (waitress's Adjustments: host = \"0.0.0.0\") binds every interface unless the operator says otherwise; default to 127.0.0.1 and let deployments widen it. An option read back and bound in the same file is reported at the bind instead (py-listen), the option as its origin."},
	{"BG604", "gunicorn-bind", "gunicorn configuration bind", "bind = \"0.0.0.0:8000\" listens on every interface; gunicorn's own default is 127.0.0.1:8000."},
	{"BG701", "js-listen", "Node listen (net, http, Express, Koa, Fastify) binds an address", "Node's listen with a port and no host binds ::, every interface of both families; Fastify's default is localhost. Pass the host the policy declares, e.g. listen(3000, '127.0.0.1')."},
	{"BG702", "js-dgram-bind", "Node dgram socket bind", "bind(port) without an address listens on every interface."},
	{"BG703", "js-serve", "Bun.serve or Deno.serve binds an address", "Their default hostname is 0.0.0.0, every IPv4 interface; pass hostname: '127.0.0.1'."},
	{"BG801", "seed-bind", "A service in the seed's policy format (service-bindings.yaml) binds an address", "Each bind_address is judged by the access its own entry declares (localhost_only and nginx_only must be loopback) and then by the policy; convert the file with bindguard policy convert to have it validated."},
}

func ruleFor(kind string) (int, Rule) {
	for i, r := range Rules {
		if r.Name == kind {
			return i, r
		}
	}
	return -1, Rule{ID: "BG000", Name: kind}
}

// Visible returns the findings a report shows: reported ones, or all with all.
func (r *Result) Visible(all bool) []Finding {
	out := []Finding{}
	for _, f := range r.Findings {
		if all || f.Status == Reported {
			out = append(out, f)
		}
	}
	return out
}

// WriteTable writes a table of findings. File names and values read from the scanned files
// (a subject, an origin) are the scanned tree's author's: their control characters, bidirectional
// overrides and invalid UTF-8 are written as "?" (text.Sanitize), so a file named with a
// newline or a terminal escape cannot forge a line; the JSON and SARIF keep them, escaped.
func WriteTable(w io.Writer, r *Result, all bool) error {
	fs := r.Visible(all)
	fmt.Fprintf(w, "bindguard scan against %s: %d files, %d findings shown (%d reported)\n", safe(r.Policy), r.Files, len(fs), len(r.Visible(false)))
	for _, u := range r.Unscanned {
		fmt.Fprintf(w, "not scanned: %s\n", safe(u))
	}
	for _, p := range r.Problems {
		fmt.Fprintf(w, "problem: %s\n", safe(p.String()))
	}
	if len(fs) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STATUS\tSEVERITY\tLOCATION\tKIND\tADDRESS\tREACH\tWHY")
	for _, f := range fs {
		loc := f.File + ":" + strconv.Itoa(f.Line)
		if f.Origin != "" {
			loc += " (" + f.Origin + ")"
		}
		why := f.Why
		if f.Subject != "" {
			why = f.Subject + "; " + why
		}
		if f.Note != "" {
			why += " [" + f.Note + "]"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", f.Status, f.Severity, safe(loc), f.Kind, safe(string(f.Protocol)+"/"+hostPort(f)), f.Reach, safe(why))
	}
	return tw.Flush()
}

func safe(s string) string { return text.Sanitize(s, '?') }

// sarifURI is a relative path as the relative URI reference SARIF's artifactLocation.uri must
// be: each segment percent-encoded (a space, "#", "?" and "%" in a file name would otherwise end
// or corrupt the path), and "./" before a first segment holding ":", which would read as a
// scheme.
func sarifURI(p string) string {
	u := (&url.URL{Path: filepath.ToSlash(p)}).EscapedPath()
	if first, _, _ := strings.Cut(u, "/"); strings.Contains(first, ":") {
		u = "./" + u
	}
	return u
}

func hostPort(f Finding) string {
	p := "?"
	if f.Port > 0 {
		p = strconv.Itoa(f.Port)
	}
	if f.Address == "*" || !isV6(f.Address) {
		return f.Address + ":" + p
	}
	return "[" + f.Address + "]:" + p
}

func isV6(s string) bool {
	for _, c := range s {
		if c == ':' {
			return true
		}
	}
	return false
}

// WriteJSON writes the bindguard.scan.v1 document.
func WriteJSON(w io.Writer, r *Result, all bool) error {
	doc := struct {
		Schema string `json:"schema"`
		*Result
	}{"bindguard.scan.v1", &Result{Roots: r.Roots, Findings: r.Visible(all), Problems: r.Problems, Files: r.Files, Unscanned: r.Unscanned, Policy: r.Policy}}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

// sarifLevel maps a severity to a SARIF level.
func sarifLevel(s audit.Severity) string {
	switch {
	case s >= audit.High:
		return "error"
	case s >= audit.Medium:
		return "warning"
	}
	return "note"
}

// WriteSARIF writes SARIF 2.1.0 with the reported findings only. category is
// automationDetails.id; version is the tool's version.
func WriteSARIF(w io.Writer, r *Result, category, version string) error {
	type msg struct {
		Text string `json:"text"`
	}
	rules := make([]map[string]any, len(Rules))
	for i, ru := range Rules {
		rules[i] = map[string]any{
			"id": ru.ID, "name": ru.Name,
			"shortDescription":     msg{ru.Short},
			"fullDescription":      msg{ru.Short + ". " + ru.Help},
			"help":                 msg{ru.Help},
			"helpUri":              "https://github.com/bindguard/bindguard/blob/main/docs/scan.md#what-it-reads",
			"defaultConfiguration": map[string]string{"level": "warning"},
		}
	}
	results := []map[string]any{}
	for _, f := range r.Visible(false) {
		idx, ru := ruleFor(f.Kind)
		text := f.Why
		if f.Subject != "" {
			text = f.Subject + "; " + text
		}
		sum := sha256.Sum256([]byte(f.Kind + "\x00" + f.File + "\x00" + string(f.Protocol) + "\x00" + f.Address + "\x00" + strconv.Itoa(f.Port) + "\x00" + f.Subject))
		res := map[string]any{
			"ruleId": ru.ID, "level": sarifLevel(f.Severity), "message": msg{text},
			"locations": []any{map[string]any{"physicalLocation": map[string]any{
				"artifactLocation": map[string]any{"uri": sarifURI(f.File), "uriBaseId": "%SRCROOT%"},
				"region":           map[string]any{"startLine": max(f.Line, 1)},
			}}},
			"partialFingerprints": map[string]string{"bindguardFinding/v1": hex.EncodeToString(sum[:16])},
			"properties":          map[string]any{"reach": f.Reach, "address": f.Address, "port": f.Port, "severity": f.Severity.String(), "context": f.Context},
		}
		if idx >= 0 {
			res["ruleIndex"] = idx
		}
		results = append(results, res)
	}
	doc := map[string]any{
		"$schema": "https://json.schemastore.org/sarif-2.1.0.json",
		"version": "2.1.0",
		"runs": []any{map[string]any{
			"tool": map[string]any{"driver": map[string]any{
				"name": "bindguard", "version": version, "informationUri": "https://github.com/bindguard/bindguard", "rules": rules,
			}},
			"automationDetails": map[string]string{"id": category},
			"results":           results,
		}},
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}
