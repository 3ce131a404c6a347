package scan

import (
	"encoding/json"
	"strconv"
	"strings"
)

// The Dockerfile scanner reads instructions (joining continuation lines) and looks at the
// arguments of CMD and ENTRYPOINT, exec form (a JSON array) or shell form: --host, --bind,
// -b, --listen and --address values with --port. A process in a container that binds every
// interface is normal; whether anything outside reaches it is up to its publication, so these
// findings are container context. EXPOSE publishes nothing and is never a finding.

// hostFlags are the options whose value is a host or host:port.
var hostFlags = map[string]bool{"--host": true, "--bind": true, "-b": true, "--listen": true, "--address": true, "--addr": true, "--bind-address": true, "--hostname": false}

func scanDockerfile(name string, src []byte) ([]Finding, []Problem) {
	var out []Finding
	var probs []Problem
	lines := strings.Split(string(src), "\n")
	for i := 0; i < len(lines); i++ {
		start := i + 1
		text := strings.TrimSpace(strings.TrimRight(lines[i], "\r"))
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		for strings.HasSuffix(text, `\`) && i+1 < len(lines) {
			i++
			next := strings.TrimSpace(strings.TrimRight(lines[i], "\r"))
			if strings.HasPrefix(next, "#") {
				continue
			}
			text = strings.TrimSuffix(text, `\`) + " " + next
		}
		instr, rest, _ := strings.Cut(text, " ")
		instr = strings.ToUpper(instr)
		if instr != "CMD" && instr != "ENTRYPOINT" {
			continue
		}
		rest = strings.TrimSpace(rest)
		var args []string
		if strings.HasPrefix(rest, "[") {
			if err := json.Unmarshal([]byte(rest), &args); err != nil {
				probs = append(probs, Problem{File: name, Line: start, Msg: "dockerfile: " + instr + " is not a valid JSON array: " + err.Error()})
				continue
			}
			// sh -c "..." carries a shell command line.
			if len(args) >= 3 && (args[0] == "sh" || args[0] == "/bin/sh" || args[0] == "bash" || args[0] == "/bin/bash") && args[1] == "-c" {
				args = append(args[:2:2], shellWords(args[2])...)
			}
		} else {
			args = shellWords(rest)
		}
		out = append(out, argBinds(name, start, "dockerfile-cmd", args)...)
	}
	for i := range out {
		out[i].Context = ContextContainer
	}
	return out, probs
}

// argBinds finds host options in a command line.
func argBinds(name string, line int, kind string, args []string) []Finding {
	port := 0
	for i, a := range args {
		flag, val, eq := strings.Cut(a, "=")
		if flag == "--port" {
			if !eq && i+1 < len(args) {
				val = args[i+1]
			}
			if n, err := strconv.Atoi(val); err == nil {
				port = n
			}
		}
	}
	var out []Finding
	for i, a := range args {
		flag, val, eq := strings.Cut(a, "=")
		if !hostFlags[flag] {
			continue
		}
		if !eq {
			if i+1 >= len(args) {
				continue
			}
			val = args[i+1]
		}
		host, p := val, port
		if h, ps, err := splitHostPortLoose(val); err == nil {
			host = h
			if n, err := strconv.Atoi(ps); err == nil {
				p = n
			}
		}
		if strings.HasPrefix(host, "unix:") || strings.HasPrefix(host, "/") || strings.HasPrefix(host, "$") {
			continue
		}
		out = append(out, newFinding(name, line, kind, "tcp", host, "0.0.0.0", p))
	}
	return out
}

// splitHostPortLoose splits "h:p", "[v6]:p"; a bare IPv6 address or host has no port.
func splitHostPortLoose(s string) (host, port string, err error) {
	if strings.HasPrefix(s, "[") {
		if i := strings.Index(s, "]:"); i > 0 {
			return s[1:i], s[i+2:], nil
		}
		return strings.Trim(s, "[]"), "", nil
	}
	if strings.Count(s, ":") == 1 {
		h, p, _ := strings.Cut(s, ":")
		return h, p, nil
	}
	return s, "", nil
}

// shellWords splits a shell-form command into words, honouring single and double quotes and
// backslash escapes; it does not expand anything.
func shellWords(s string) []string {
	var out []string
	var cur strings.Builder
	in := false
	var quote rune
	esc := false
	for _, r := range s {
		switch {
		case esc:
			cur.WriteRune(r)
			esc = false
			in = true
		case r == '\\' && quote != '\'':
			esc = true
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, in = r, true
		case r == ' ' || r == '\t' || r == ';' || r == '&' || r == '|':
			if in {
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if in {
		out = append(out, cur.String())
	}
	return out
}
