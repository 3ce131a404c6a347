package scan

import (
	"strconv"
	"strings"
)

// The JavaScript and TypeScript scanner reads the syntax tree (tree-sitter) of one file. It
// reads the arguments of listen calls whose first argument is a port (a number, a name or
// property that says port, process.env.PORT || 3000) or an options object, of dgram sockets'
// bind, and of Bun.serve and Deno.serve. Node's omitted host is "::", every interface of both
// families; Fastify's is localhost. Names are followed to their declaration in the file
// (const, let, var, an assignment, a parameter default, a property of an object literal).

// JavaScript bind kinds.
const (
	kindJSListen = "js-listen"
	kindJSDgram  = "js-dgram-bind"
	kindJSServe  = "js-serve"
)

type jsFile struct {
	name    string
	src     []byte
	root    *tsNode
	decls   map[string][]*tsNode
	imports map[string]bool
	out     []Finding
}

func scanJS(l tsLang, name string, src []byte) ([]Finding, []Problem) {
	root, err := parseTS(l, src)
	if err != nil {
		return nil, []Problem{{File: name, Msg: err.Error()}}
	}
	root.link()
	probs := syntaxProblems(name, root, string(l))
	j := &jsFile{name: name, src: src, root: root, decls: map[string][]*tsNode{}, imports: map[string]bool{}}
	j.index()
	root.each(func(n *tsNode) {
		if n.typ == "call_expression" {
			j.call(n)
		}
	})
	if isTestPath(name, l) {
		for i := range j.out {
			j.out[i].Context = ContextTest
		}
	}
	c := commentsOf(root, src, "//", "/*")
	for i := range j.out {
		j.out[i].comments = c
	}
	return j.out, probs
}

func (j *jsFile) index() {
	j.root.each(func(n *tsNode) {
		switch n.typ {
		case "variable_declarator":
			if nm, v := n.get("name"), n.get("value"); nm != nil && v != nil && nm.typ == "identifier" {
				k := nm.text(j.src)
				j.decls[k] = append(j.decls[k], v)
			}
		case "assignment_expression", "assignment_pattern":
			if l, r := n.get("left"), n.get("right"); l != nil && r != nil {
				k := l.text(j.src)
				j.decls[k] = append(j.decls[k], r)
			}
		case "required_parameter", "optional_parameter": // TypeScript: (port: number = 3000)
			if p, v := n.get("pattern"), n.get("value"); p != nil && v != nil {
				k := p.text(j.src)
				j.decls[k] = append(j.decls[k], v)
			}
		case "import_statement":
			if s := n.get("source"); s != nil {
				j.imports[strings.TrimPrefix(jsString(s, j.src).str, "node:")] = true
			}
		case "call_expression":
			if f := n.get("function"); f != nil && f.text(j.src) == "require" {
				if a := n.get("arguments").args(); len(a) == 1 && a[0].typ == "string" {
					j.imports[strings.TrimPrefix(jsString(a[0], j.src).str, "node:")] = true
				}
			}
		}
	})
}

// lookup is the last declaration of name before use, else the first.
func (j *jsFile) lookup(name string, use *tsNode) *tsNode {
	list := j.decls[name]
	var best *tsNode
	for _, r := range list {
		if r.start < use.start && !(use.start >= r.start && use.end <= r.end) {
			best = r
		}
	}
	if best == nil && len(list) > 0 && !(use.start >= list[0].start && use.end <= list[0].end) {
		best = list[0]
	}
	return best
}

// jsUnwrap removes parentheses and TypeScript's type wrappers.
func jsUnwrap(n *tsNode) *tsNode {
	for i := 0; n != nil && i < 50; i++ {
		switch n.typ {
		case "parenthesized_expression", "as_expression", "non_null_expression", "satisfies_expression", "type_assertion":
			a := n.args()
			if len(a) == 0 {
				return n
			}
			if n.typ == "type_assertion" {
				n = a[len(a)-1]
			} else {
				n = a[0]
			}
			continue
		}
		return n
	}
	return n
}

// deref follows names (and properties of object literals) to the expression assigned.
func (j *jsFile) deref(n *tsNode, depth int) *tsNode {
	n = jsUnwrap(n)
	if n == nil || depth > 20 {
		return n
	}
	switch n.typ {
	case "identifier":
		if r := j.lookup(n.text(j.src), n); r != nil {
			return j.deref(r, depth+1)
		}
	case "member_expression":
		if r := j.lookup(n.text(j.src), n); r != nil {
			return j.deref(r, depth+1)
		}
		if o := j.deref(n.get("object"), depth+1); o != nil && o.typ == "object" {
			if v, known := objGet(o, n.get("property").text(j.src), j.src); v != nil && known {
				return j.deref(v, depth+1)
			}
		}
	}
	return n
}

// objGet is the value of an object literal's key; known is false when a spread
// ({...defaults, host: null, ...options}) after the key, or anywhere when the key is absent,
// may set it.
func objGet(o *tsNode, key string, src []byte) (v *tsNode, known bool) {
	known = true
	for _, p := range o.args() {
		switch p.typ {
		case "pair":
			k := p.get("key")
			kt := k.text(src)
			if k != nil && k.typ == "string" {
				kt = jsString(k, src).str
			}
			if kt == key {
				v, known = p.get("value"), true
			}
		case "shorthand_property_identifier":
			if p.text(src) == key {
				v, known = p, true
			}
		case "spread_element":
			known = false
		}
	}
	return v, known
}

func jsString(n *tsNode, src []byte) tsValue {
	var b strings.Builder
	partial := false
	for _, k := range n.kids {
		switch k.typ {
		case "string_fragment":
			b.WriteString(k.text(src))
		case "escape_sequence":
			if u, err := strconv.Unquote(`"` + k.text(src) + `"`); err == nil {
				b.WriteString(u)
			}
		case "template_substitution":
			partial = true
		}
		if partial {
			break
		}
	}
	if partial && b.Len() == 0 {
		return tsValue{}
	}
	return tsValue{known: true, str: b.String(), partial: partial, line: n.line}
}

func (j *jsFile) value(n *tsNode, depth int) tsValue {
	n = jsUnwrap(n)
	if n == nil || depth > 30 {
		return tsValue{}
	}
	switch n.typ {
	case "string", "template_string":
		return jsString(n, j.src)
	case "number":
		t := strings.ReplaceAll(n.text(j.src), "_", "")
		if v, err := strconv.ParseInt(t, 0, 64); err == nil {
			return numVal(int(v), n.line)
		}
		if f, err := strconv.ParseFloat(t, 64); err == nil && f == float64(int(f)) {
			return numVal(int(f), n.line)
		}
	case "undefined", "null":
		return tsValue{known: true, none: true, line: n.line}
	case "identifier", "member_expression", "shorthand_property_identifier":
		if n.typ == "identifier" && n.text(j.src) == "undefined" {
			return tsValue{known: true, none: true, line: n.line}
		}
		var r *tsNode
		if n.typ == "shorthand_property_identifier" {
			r = j.lookup(n.text(j.src), n)
		} else {
			r = j.deref(n, 0)
			if r == n {
				r = nil
			}
		}
		if r == nil {
			return tsValue{}
		}
		v := j.value(r, depth+1)
		return v.from(j.name, r, n)
	case "binary_expression":
		op := n.get("operator").text(j.src)
		switch op {
		case "||", "??":
			l := j.value(n.get("left"), depth+1)
			if l.truthy() {
				return l
			}
			return j.value(n.get("right"), depth+1)
		case "+":
			return concat([]*tsNode{n.get("left"), n.get("right")}, func(k *tsNode) tsValue { return j.value(k, depth+1) })
		}
	case "call_expression":
		fn := n.get("function").text(j.src)
		a := n.get("arguments").args()
		if (fn == "parseInt" || fn == "Number" || fn == "String" || fn == "Number.parseInt") && len(a) >= 1 {
			return j.value(a[0], depth+1)
		}
	}
	return tsValue{}
}

// portLike says whether an expression is a port: a number, a numeric string, or a name or
// property that says port (so history.listen(cb) or emitter.listen(handler) are not).
func (j *jsFile) portLike(n *tsNode) bool {
	n = jsUnwrap(n)
	if n == nil {
		return false
	}
	if v := j.value(n, 0); v.known && !v.none {
		_, ok := v.port()
		return ok
	}
	switch n.typ {
	case "identifier", "member_expression":
		return strings.Contains(strings.ToLower(n.text(j.src)), "port")
	case "binary_expression":
		return j.portLike(n.get("left")) || j.portLike(n.get("right"))
	case "call_expression":
		a := n.get("arguments").args()
		return len(a) > 0 && j.portLike(a[0])
	}
	return false
}

func (j *jsFile) isFastify(obj *tsNode) bool {
	if !j.imports["fastify"] {
		return false
	}
	o := j.deref(obj, 0)
	t := strings.ToLower(obj.text(j.src))
	if o != nil && o.typ == "call_expression" {
		t += " " + strings.ToLower(o.get("function").text(j.src))
		if f := j.deref(o.get("function"), 0); f != nil {
			t += " " + strings.ToLower(f.text(j.src))
		}
	}
	return strings.Contains(t, "fastify") || !(j.imports["express"] || j.imports["http"] || j.imports["https"] || j.imports["net"] || j.imports["koa"] || j.imports["http2"])
}

func (j *jsFile) call(n *tsNode) {
	fn := jsUnwrap(n.get("function"))
	if fn == nil || fn.typ != "member_expression" {
		return
	}
	prop := fn.get("property")
	if prop == nil { // cut at maxDepth: the member expression kept without its children
		return
	}
	name, obj := prop.text(j.src), fn.get("object")
	args := n.get("arguments").args()
	line := prop.line
	switch {
	case name == "listen" && len(args) > 0:
		j.listen(line, obj, args)
	case name == "bind" && len(args) > 0 && j.imports["dgram"]:
		j.dgram(line, obj, args)
	case name == "serve" && (obj.text(j.src) == "Bun" || obj.text(j.src) == "Deno") && len(args) > 0:
		def := 3000
		if obj.text(j.src) == "Deno" {
			def = 8000
		}
		o := j.deref(args[0], 0)
		if o == nil || o.typ != "object" {
			if o != nil && isFunc(o) && obj.text(j.src) == "Deno" {
				j.emit(line, kindJSServe, "tcp", nil, "0.0.0.0", nil, def, "Deno.serve")
			}
			return
		}
		if u, _ := objGet(o, "unix", j.src); u != nil {
			return
		}
		if pth, _ := objGet(o, "path", j.src); pth != nil {
			return
		}
		h, hk := objGet(o, "hostname", j.src)
		pt, _ := objGet(o, "port", j.src)
		if !hk {
			return
		}
		j.emit(line, kindJSServe, "tcp", h, "0.0.0.0", pt, def, obj.text(j.src)+".serve")
	}
}

// createdServer says whether the receiver is an http/https/net/tls createServer(...) result.
func (j *jsFile) createdServer(obj *tsNode) bool {
	o := j.deref(obj, 0)
	if o == nil || o.typ != "call_expression" {
		return false
	}
	f := o.get("function")
	return f != nil && f.typ == "member_expression" && f.get("property").text(j.src) == "createServer"
}

func isFunc(n *tsNode) bool {
	return n != nil && (n.typ == "arrow_function" || n.typ == "function_expression" || n.typ == "function")
}

func (j *jsFile) listen(line int, obj *tsNode, args []*tsNode) {
	fastify := j.isFastify(obj)
	omitted, subject := "::", "node listen"
	if fastify {
		omitted, subject = "localhost", "fastify listen"
	}
	a0 := j.deref(args[0], 0)
	if a0 != nil && a0.typ == "object" {
		if pth, pk := objGet(a0, "path", j.src); pth != nil || !pk {
			return // a unix socket or named pipe, or options spread in
		}
		h, hk := objGet(a0, "host", j.src)
		pt, _ := objGet(a0, "port", j.src)
		if !hk {
			return
		}
		j.emit(line, kindJSListen, "tcp", h, omitted, pt, 0, subject)
		return
	}
	if isFunc(a0) && j.createdServer(obj) {
		// server.listen(callback): a port the kernel picks, on every interface.
		j.emit(line, kindJSListen, "tcp", nil, omitted, nil, 0, subject)
		return
	}
	if !j.portLike(args[0]) {
		return
	}
	var host *tsNode
	if len(args) > 1 {
		h := jsUnwrap(args[1])
		d := j.deref(h, 0)
		switch {
		case isFunc(d):
		case d != nil && d.typ == "identifier" && d == h && !hostName(h.text(j.src)):
			// An unknown name that does not say host: a callback or a backlog.
		case d != nil && d.typ == "number":
			// backlog
		default:
			host = args[1]
		}
	}
	j.emit(line, kindJSListen, "tcp", host, omitted, args[0], 0, subject)
}

// hostName says whether a name suggests a host or address.
func hostName(s string) bool {
	s = strings.ToLower(s)
	for _, w := range []string{"host", "addr", "bind", "interface", "ip"} {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}

func (j *jsFile) dgram(line int, obj *tsNode, args []*tsNode) {
	omitted := "::"
	if o := j.deref(obj, 0); o != nil && o.typ == "call_expression" {
		if strings.Contains(o.text(j.src), "udp4") {
			omitted = "0.0.0.0"
		} else if !strings.Contains(o.get("function").text(j.src), "createSocket") {
			return
		}
	} else {
		return
	}
	a0 := j.deref(args[0], 0)
	if a0 != nil && a0.typ == "object" {
		h, hk := objGet(a0, "address", j.src)
		pt, _ := objGet(a0, "port", j.src)
		if hk {
			j.emit(line, kindJSDgram, "udp", h, omitted, pt, 0, "dgram bind")
		}
		return
	}
	if !j.portLike(args[0]) {
		return
	}
	var host *tsNode
	if len(args) > 1 && !isFunc(j.deref(args[1], 0)) {
		host = args[1]
	}
	j.emit(line, kindJSDgram, "udp", host, omitted, args[0], 0, "dgram bind")
}

// emit records a bind: host absent, undefined, null or "" is omitted; a host not known
// statically is not reported.
func (j *jsFile) emit(line int, kind, proto string, hostN *tsNode, omitted string, portN *tsNode, def int, subject string) {
	if f, ok := evalBind(j.value, j.name, line, kind, proto, hostN, omitted, omitted, portN, def, subject); ok {
		j.out = append(j.out, f)
	}
}
