package scan

import (
	"net"
	"slices"
	"strconv"
	"strings"
)

// Class bodies that declare a server's listen address as data rather than pass it to a call:
//
//   - a server configuration class (its name or a base names Config, Settings, Setting,
//     Adjustments or Options) whose attribute host, bind, listen, address, bind_address,
//     listen_address (and the _host/_addr variants; a leading underscore is ignored:
//     hypercorn's _bind = ["127.0.0.1:8000"]) is assigned an address literal, a
//     "HOST:PORT" string, a list of them, or a one-argument call wrapping one
//     (waitress: host = _str_marker("0.0.0.0"));
//   - an option class, one whose name = "bind" (host, listen, address) or whose
//     cli = [..., "--bind"] names a listen option, with a default = of the same forms, or a
//     str.format / f-string whose literal host part is an address (gunicorn's Bind setting:
//     default = ['0.0.0.0:{0}'.format(os.environ.get('PORT'))]).
//
// The statements of the body are read through if/else, try and with blocks, not into
// methods or nested classes. "" (a host left to a default elsewhere) and an f-string whose
// host is interpolated (waitress's listen = [f"{host}:{port}"]) are not static and give no
// finding; nor does any attribute of another name (upstream_host, allowed_hosts) or a
// comparison.

// bindAttrs are the attribute names of a configuration class that hold a listen address.
var bindAttrs = map[string]bool{"host": true, "bind": true, "listen": true, "address": true, "addr": true,
	"bind_address": true, "listen_address": true, "bind_host": true, "listen_host": true, "bind_addr": true,
	"listen_addr": true}

// configClassWords mark a class (by its name or a base's) as server configuration.
var configClassWords = []string{"config", "setting", "adjustment", "option"}

func (p *pyFile) classes() {
	p.root.each(func(n *tsNode) {
		if n.typ == "class_definition" {
			p.class(n)
		}
	})
}

// classStatements are the assignments of a class body, through compound statements but not
// into functions or nested classes.
func classStatements(body *tsNode) []*tsNode {
	var out []*tsNode
	var walk func(n *tsNode, depth int)
	walk = func(n *tsNode, depth int) {
		if depth > 50 {
			return
		}
		for _, k := range n.kids {
			switch k.typ {
			case "function_definition", "class_definition", "decorated_definition", "lambda":
			case "expression_statement":
				for _, a := range k.args() {
					if a.typ == "assignment" {
						out = append(out, a)
					}
				}
			case "if_statement", "elif_clause", "else_clause", "try_statement", "except_clause",
				"finally_clause", "with_statement", "block":
				walk(k, depth+1)
			}
		}
	}
	walk(body, 0)
	return out
}

func (p *pyFile) class(c *tsNode) {
	body := c.get("body")
	if body == nil {
		return
	}
	cname := c.get("name").text(p.src)
	words := strings.ToLower(cname + " " + c.get("superclasses").text(p.src))
	config := slices.ContainsFunc(configClassWords, func(w string) bool { return strings.Contains(words, w) })
	stmts := classStatements(body)
	attrs := map[string][]*tsNode{}
	for _, a := range stmts {
		if l := a.get("left"); l != nil && l.typ == "identifier" && a.get("right") != nil {
			attrs[l.text(p.src)] = append(attrs[l.text(p.src)], a.get("right"))
		}
	}
	// An option class: name = "bind" or cli = ["-b", "--bind"].
	opt := ""
	for _, r := range attrs["name"] {
		if v := p.value(r, 0); v.known && !v.isNum && !v.partial && hostOptions[optKey(v.str)] {
			opt = v.str
		}
	}
	for _, r := range attrs["cli"] {
		if d := p.deref(r); d != nil && (d.typ == "list" || d.typ == "tuple") {
			for _, e := range d.args() {
				if v := p.value(e, 0); v.known && !v.isNum && strings.HasPrefix(v.str, "--") && hostOptions[optKey(v.str)] {
					opt = v.str
				}
			}
		}
	}
	if opt != "" {
		for _, r := range attrs["default"] {
			p.classDefault(r, 0, false, "option "+opt+" default (class "+cname+")")
		}
	}
	if !config {
		return
	}
	port := 0
	for _, r := range attrs["port"] {
		if v := p.classValue(r); v.known && !v.partial {
			if n, ok := v.port(); ok {
				port = n
			}
		}
	}
	for _, a := range stmts {
		l := a.get("left")
		if l == nil || l.typ != "identifier" || !bindAttrs[strings.TrimLeft(strings.ToLower(l.text(p.src)), "_")] || a.get("right") == nil {
			continue
		}
		p.classDefault(a.get("right"), port, true, "class "+cname+" attribute "+l.text(p.src))
	}
}

func optKey(s string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimLeft(s, "-")), "_", "-")
}

// classDefault reports an address value (or each of a list's) assigned in a class body; port
// is the class's own port attribute, for a bare host. A configuration attribute (attr) is
// reported only when it is every interface or loopback (allowed): a settings class's host may
// as well be a database's address, which a specific address more likely is.
func (p *pyFile) classDefault(r *tsNode, port int, attr bool, subject string) {
	items := []*tsNode{r}
	if d := p.deref(r); d != nil && (d.typ == "list" || d.typ == "tuple") {
		items = d.args()
	}
	for _, it := range items {
		v := p.classValue(it)
		host, pt, hasPort, ok := addrDefault(v)
		if !ok {
			continue
		}
		if !hasPort {
			pt = port
		}
		f := newFinding(p.name, it.line, kindPyArg, "tcp", host, "0.0.0.0", pt)
		if attr && !f.wildcard && f.Reach != ReachLoopback {
			continue
		}
		f.Origin = originOf(v.origin, "")
		f.Subject = subject
		p.out = append(p.out, f)
	}
}

// classValue is value, through a one-argument wrapper call (_str_marker("0.0.0.0"),
// Field("0.0.0.0")) and str.format or %-formatting, whose literal prefix is kept (partial).
func (p *pyFile) classValue(n *tsNode) tsValue {
	for i := 0; n != nil && n.typ == "call" && i < 5; i++ {
		fn := n.get("function")
		pos, kw := pyArgs(n.get("arguments"), p.src)
		if fn != nil && fn.typ == "attribute" && fn.get("attribute").text(p.src) == "format" {
			if o := fn.get("object"); o != nil && o.typ == "string" {
				return formatPrefix(pyString(o, p.src), "{")
			}
			return tsValue{}
		}
		name := fn.text(p.src)
		if strings.HasSuffix(name, "environ.get") || strings.HasSuffix(name, "getenv") || name == "int" || name == "str" {
			break
		}
		if len(pos) != 1 || len(kw) != 0 || n.get("arguments").typ != "argument_list" {
			return tsValue{}
		}
		n = pos[0]
	}
	if n != nil && n.typ == "binary_operator" {
		if op := n.get("operator"); op != nil && op.text(p.src) == "%" {
			if l := n.get("left"); l != nil && l.typ == "string" {
				return formatPrefix(pyString(l, p.src), "%")
			}
			return tsValue{}
		}
	}
	return p.value(n, 0)
}

// formatPrefix cuts a format string at its first placeholder.
func formatPrefix(v tsValue, mark string) tsValue {
	if !v.known || v.isNum {
		return tsValue{}
	}
	if i := strings.Index(v.str, mark); i >= 0 {
		v.str, v.partial = v.str[:i], true
		if v.str == "" {
			return tsValue{}
		}
	}
	return v
}

// addrDefault reads an option's or attribute's default: "HOST", "HOST:PORT" (":PORT" is every
// interface), "[V6]:PORT", or a known prefix "HOST:" of a formatted string. The port of a
// formatted string is unknown (0) even when digits precede the placeholder ("[::]:80%d" is
// not port 80); so is a port that is not a number from 0 to 65535. Host names other than
// localhost, "", None and numbers are not addresses.
func addrDefault(v tsValue) (host string, port int, hasPort, ok bool) {
	if !v.known || v.isNum || v.none || v.str == "" {
		return "", 0, false, false
	}
	s := v.str
	portOf := func(pt string) int {
		n, err := strconv.Atoi(pt)
		if v.partial || err != nil || n < 0 || n > 65535 {
			return 0
		}
		return n
	}
	switch {
	case strings.HasPrefix(s, "["):
		h, rest, closed := strings.Cut(s[1:], "]")
		if !closed {
			return "", 0, false, false // "[::" + ...: the host is not all known
		}
		host = h
		switch {
		case strings.HasPrefix(rest, ":"):
			hasPort, port = true, portOf(rest[1:])
		case rest != "":
			return "", 0, false, false
		case v.partial:
			hasPort = true // "[::]" + what follows: a port, unknown
		}
	case !v.partial && net.ParseIP(s) != nil:
		host = s // a bare address, IPv6 included
	default:
		h, pt, found := strings.Cut(s, ":")
		switch {
		case !found && v.partial:
			return "", 0, false, false // "0.0.0" + ...: the host is not all known
		case !found:
			host = s
		case strings.Contains(pt, ":"):
			return "", 0, false, false // an unbracketed IPv6 prefix: ambiguous
		default:
			host, hasPort, port = h, true, portOf(pt)
			if host == "" {
				host = "0.0.0.0"
			}
		}
	}
	if !isAddrLiteral(host) {
		return "", 0, false, false
	}
	return host, port, hasPort, true
}
