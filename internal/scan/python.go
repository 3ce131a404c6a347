package scan

import (
	"fmt"
	"net"
	"path"
	"strconv"
	"strings"
)

// The Python scanner reads the syntax tree (tree-sitter) of one file. Only the address
// arguments of calls that bind are read, so a "0.0.0.0" compared against, in a list or in a
// comment is never a finding. Names are followed to their assignment in the enclosing
// function, to a parameter's default, or to a module-level assignment; os.environ.get and
// os.getenv give their default; int() and str() pass through; "a or b" gives b when a is not
// known.

type pyFile struct {
	name string
	src  []byte
	root *tsNode
	// assigns maps a scope (module, function or class node) to its assignments by target.
	assigns map[*tsNode]map[string][]*tsNode
	imports map[string]bool // top-level modules imported (flask, tornado, waitress...)
	out     []Finding

	// The flow across calls (python_flow.go): functions and classes by name, calls by callee
	// text, argparse options by dest, and the element an unpack node stands for.
	funcs     map[string][]*tsNode
	classDefs map[string][]*tsNode
	calls     map[string][]*tsNode
	options   map[string][]pyOption
	optCalls  []*tsNode
	unpackIdx map[*tsNode]int
	hops      []pyHop // the call sites values were read through, in the order taken
	addrHops  []pyHop // those a bind's address came through (bindAddr, for bind)
	lookups   int     // lookups under way (bounds lookup's recursion through callerGiven)

	// Across files (python_pkg.go): unknownHost says a bind's host was not static here (a
	// caller's, perhaps another file's); probe gives parameters of functions the values another
	// file's call passes, and probing keeps only the binds whose host came through them.
	unknownHost bool
	probe       map[*tsNode]map[string]tsValue
	probeNodes  map[*tsNode]tsValue
	probeElems  map[uint32][]tsValue // a tuple argument's elements, by the parameter's start
	probing     bool
	ext         *pyExt
}

func scanPython(name string, src []byte) ([]Finding, []Problem) {
	fs, probs, _ := scanPythonMod(name, src)
	return fs, probs
}

// parsePython parses and indexes one file.
func parsePython(name string, src []byte) (*pyFile, []Problem, error) {
	root, err := parseTS(langPython, src)
	if err != nil {
		return nil, nil, err
	}
	root.link()
	probs := syntaxProblems(name, root, "python")
	p := &pyFile{name: name, src: src, root: root, assigns: map[*tsNode]map[string][]*tsNode{}, imports: map[string]bool{},
		funcs: map[string][]*tsNode{}, classDefs: map[string][]*tsNode{}, calls: map[string][]*tsNode{},
		options: map[string][]pyOption{}, unpackIdx: map[*tsNode]int{}, probeNodes: map[*tsNode]tsValue{}}
	p.index()
	return p, probs, nil
}

// scanPythonMod scans one file and summarises it for calls from other files of its package
// (python_pkg.go).
func scanPythonMod(name string, src []byte) ([]Finding, []Problem, *pyMod) {
	p, probs, err := parsePython(name, src)
	if err != nil {
		return nil, []Problem{{File: name, Msg: err.Error()}}, nil
	}
	root := p.root
	root.each(func(n *tsNode) {
		if n.typ == "call" {
			p.call(n)
		}
	})
	p.classes()
	if isGunicornConf(name) {
		p.gunicorn()
	}
	p.dropFlowedOptions()
	if isTestPath(name, langPython) {
		for i := range p.out {
			p.out[i].Context = ContextTest
		}
	}
	c := commentsOf(root, src, "#")
	for i := range p.out {
		p.out[i].comments = c
	}
	return p.out, probs, p.summary()
}

// syntaxProblems names the first syntax error (the scan still reads the rest of the tree).
func syntaxProblems(name string, root *tsNode, lang string) []Problem {
	var probs []Problem
	if root.cut {
		probs = append(probs, Problem{File: name, Msg: fmt.Sprintf("%s: nesting deeper than %d levels; the deeper code was not scanned", lang, maxDepth)})
	}
	var first *tsNode
	root.each(func(n *tsNode) {
		if first == nil && (n.typ == "ERROR" || n.missing) {
			first = n
		}
	})
	if first != nil {
		probs = append(probs, Problem{File: name, Line: first.line, Msg: lang + ": syntax error; the rest of the file was scanned as far as it parses"})
	}
	return probs
}

func (p *pyFile) scope(n *tsNode) *tsNode {
	if s := n.enclosing("function_definition", "class_definition", "lambda"); s != nil {
		return s
	}
	return p.root
}

func (p *pyFile) index() {
	defer func() {
		for _, c := range p.optCalls {
			p.option(c, c.get("function").get("attribute").line)
		}
	}()
	p.root.each(func(n *tsNode) {
		p.indexFlow(n)
		switch n.typ {
		case "assignment":
			l, r := n.get("left"), n.get("right")
			if l == nil || r == nil {
				return
			}
			s := p.scope(n)
			if p.assigns[s] == nil {
				p.assigns[s] = map[string][]*tsNode{}
			}
			k := l.text(p.src)
			p.assigns[s][k] = append(p.assigns[s][k], r)
		case "as_pattern": // with socket.socket(...) as s
			v, a := n.args(), n.get("alias")
			if len(v) == 0 || a == nil {
				return
			}
			s := p.scope(n)
			if p.assigns[s] == nil {
				p.assigns[s] = map[string][]*tsNode{}
			}
			k := a.text(p.src)
			p.assigns[s][k] = append(p.assigns[s][k], v[0])
		case "import_statement", "import_from_statement":
			for _, k := range n.args() {
				t := k.text(p.src)
				if k.typ == "aliased_import" {
					t = k.get("name").text(p.src)
				}
				if k.field == "module_name" || n.typ == "import_statement" {
					p.imports[strings.Split(t, ".")[0]] = true
				}
			}
		}
	})
}

// lookup is the expression last assigned to name before use, in use's function (or its
// parameter default), its class (for self.X and cls.X) or the module.
//
// Values a caller gives are not static here: a method's parameters, defaults included (the
// class's users pass them: twisted's Port(interface="")), an attribute a method assigns
// (self.interface = interface shadows the class's interface = ""), and a parameter's value
// normalised under a condition (if host == "": host = None) — unless the one call site of the
// function in the file gives the argument (python_flow.go).
func (p *pyFile) lookup(name string, use *tsNode) *tsNode {
	if p.lookups > 200 {
		return nil // a chain of conditional assignments evaluated through each other
	}
	p.lookups++
	defer func() { p.lookups-- }()
	// The assignments before the use, in order.
	before := func(list []*tsNode) []*tsNode {
		var out []*tsNode
		for _, r := range list {
			if r.start < use.start {
				out = append(out, r)
			}
		}
		return out
	}
	first := func(list []*tsNode) *tsNode {
		if len(list) > 0 {
			return list[0]
		}
		return nil
	}
	if rest, ok := strings.CutPrefix(name, "self."); ok || strings.HasPrefix(name, "cls.") {
		if !ok {
			rest = strings.TrimPrefix(name, "cls.")
		}
		c := use.enclosing("class_definition")
		if c == nil {
			return nil
		}
		// self.X = ... in a method: the instance's attribute, over the class's.
		var inMethods []*tsNode
		c.each(func(n *tsNode) {
			if n.typ == "assignment" && n.get("left").text(p.src) == name && n.get("right") != nil {
				inMethods = append(inMethods, n.get("right"))
			}
		})
		switch {
		case len(inMethods) == 1:
			return inMethods[0]
		case len(inMethods) > 1:
			return nil
		}
		if b := before(p.assigns[c][rest]); len(b) > 0 {
			return b[len(b)-1]
		}
		return first(p.assigns[c][rest])
	}
	for s := p.scope(use); ; s = p.scope(s) {
		b := before(p.assigns[s][name])
		// In a probe, a value the other file's call gives is taken as it is, not as a
		// normalisation under a condition might change it (if host == "": host = None).
		for p.probing && len(b) > 0 && s.typ == "function_definition" && conditional(b[len(b)-1], use, s) && p.probeGiven(b[:len(b)-1], s, name) {
			b = b[:len(b)-1]
		}
		if len(b) > 0 {
			r := b[len(b)-1]
			if s.typ == "function_definition" && conditional(r, use, s) && p.callerGiven(b[:len(b)-1], s, name) {
				return nil
			}
			return r
		}
		if s.typ == "function_definition" {
			method := isMethod(s)
			for i, prm := range s.get("parameters").args() {
				if paramName(prm, p.src) != name {
					continue
				}
				if pv, ok := p.probe[s]; ok {
					// Another file's call of this function: its argument, or this default.
					if v, ok := pv[name]; ok {
						return p.probeNode(prm, v)
					}
				}
				// A function's parameter with a default has it (a method's is its callers');
				// one whose default is None (or with none) leaves the address to the caller
				// (asyncio's start_server(host=None)): the argument of the function's one call
				// site in the file, else not static.
				if v := prm.get("value"); v != nil && v.typ != "none" && !method {
					return v
				}
				return p.callSiteArg(s, i, name)
			}
		}
		// A name assigned only below its use (a module name assigned below the function that
		// uses it, a loop-carried name): the first assignment.
		if r := first(p.assigns[s][name]); r != nil {
			return r
		}
		if s == p.root {
			return nil
		}
	}
}

// isMethod says whether a function is defined in a class body.
func isMethod(fn *tsNode) bool {
	b := fn.parent
	if b != nil && b.typ == "decorated_definition" {
		b = b.parent
	}
	return b != nil && b.typ == "block" && b.parent != nil && b.parent.typ == "class_definition"
}

// conditional says whether assignment r (in function s) runs only under a condition that does
// not also hold the use: an if, elif or else branch, an except clause, a loop body.
func conditional(r, use, s *tsNode) bool {
	var holdsUse map[*tsNode]bool // use's ancestors, made once (nesting may be 1,000 deep)
	for a := r.parent; a != nil && a != s; a = a.parent {
		switch a.typ {
		case "if_statement", "elif_clause", "else_clause", "except_clause", "for_statement", "while_statement", "conditional_expression":
			if holdsUse == nil {
				holdsUse = map[*tsNode]bool{}
				for u := use.parent; u != nil; u = u.parent {
					holdsUse[u] = true
				}
			}
			if !holdsUse[a] {
				return true
			}
		}
	}
	return false
}

// callerGiven says whether the value reaching before a conditional assignment (the previous
// assignments prev, else the parameter) is the caller's: a parameter of s without a static
// default, or unpacked from one.
func (p *pyFile) callerGiven(prev []*tsNode, s *tsNode, name string) bool {
	isParam := func(n string) bool {
		for _, prm := range s.get("parameters").args() {
			if paramName(prm, p.src) == n {
				v := prm.get("value")
				return v == nil || v.typ == "none" || isMethod(s)
			}
		}
		return false
	}
	if len(prev) == 0 {
		return isParam(name)
	}
	r := prev[len(prev)-1]
	if r.typ == synUnpack {
		r = r.kids[0]
	}
	return r.typ == "identifier" && isParam(r.text(p.src)) && p.lookup(r.text(p.src), r) == nil
}

// probeGiven says whether the value reaching before a conditional assignment (prev, else the
// parameter) is a parameter of s the probe gives, or unpacked from one.
func (p *pyFile) probeGiven(prev []*tsNode, s *tsNode, name string) bool {
	pv := p.probe[s]
	if pv == nil {
		return false
	}
	if len(prev) == 0 {
		_, ok := pv[name]
		return ok
	}
	r := prev[len(prev)-1]
	if r.typ == synUnpack {
		r = r.kids[0]
	}
	_, ok := pv[r.text(p.src)]
	return r.typ == "identifier" && ok
}

// deref follows names to the expression they were assigned.
func (p *pyFile) deref(n *tsNode) *tsNode {
	for i := 0; n != nil && i < 20; i++ {
		switch n.typ {
		case "parenthesized_expression":
			if a := n.args(); len(a) == 1 {
				n = a[0]
				continue
			}
		case "identifier", "attribute":
			if r := p.lookup(n.text(p.src), n); r != nil {
				n = r
				continue
			}
		case synUnpack:
			if e := p.element(n.kids[0], p.unpackIdx[n], 0); e != nil {
				n = e
				continue
			}
		}
		return n
	}
	return n
}

// value evaluates an expression to a string or integer when it is static.
func (p *pyFile) value(n *tsNode, depth int) tsValue {
	if n == nil || depth > 30 {
		return tsValue{}
	}
	switch n.typ {
	case "string":
		return pyString(n, p.src)
	case "concatenated_string", "binary_operator":
		var parts []*tsNode
		if n.typ == "binary_operator" {
			if op := n.get("operator"); op == nil || op.text(p.src) != "+" {
				return tsValue{}
			}
			parts = []*tsNode{n.get("left"), n.get("right")}
		} else {
			parts = n.args()
		}
		return concat(parts, func(k *tsNode) tsValue { return p.value(k, depth+1) })
	case "integer":
		v, err := strconv.ParseInt(strings.ReplaceAll(n.text(p.src), "_", ""), 0, 64)
		if err != nil {
			return tsValue{}
		}
		return numVal(int(v), n.line)
	case "none":
		return tsValue{known: true, none: true, line: n.line}
	case "parenthesized_expression":
		if a := n.args(); len(a) == 1 {
			return p.value(a[0], depth+1)
		}
	case "identifier", "attribute":
		r := p.lookup(n.text(p.src), n)
		if r == nil {
			if n.typ == "attribute" {
				return p.optionValue(n, depth)
			}
			return tsValue{}
		}
		v := p.value(r, depth+1)
		return v.from(p.name, r, n)
	case synUnpack:
		if e := p.element(n.kids[0], p.unpackIdx[n], 0); e != nil {
			return p.value(e, depth+1)
		}
	case synProbe:
		return p.probeNodes[n]
	case "boolean_operator":
		if op := n.get("operator"); op != nil && op.text(p.src) == "or" {
			l := p.value(n.get("left"), depth+1)
			if l.truthy() {
				return l
			}
			if !l.known && p.fromCaller(n.get("left")) {
				// host or "": the caller's host, its default only when it passes none.
				return tsValue{}
			}
			return p.value(n.get("right"), depth+1)
		}
	case "conditional_expression":
		// "::" if ipv6 else "0.0.0.0": every interface either way is every interface (the
		// else branch's); anything else depends on the condition.
		if a := n.args(); len(a) == 3 {
			x, y := p.value(a[0], depth+1), p.value(a[2], depth+1)
			if x.known && y.known && !x.isNum && !y.isNum && !x.partial && !y.partial && !x.none && !y.none {
				if _, _, wx := hostAddr(x.str, "0.0.0.0"); wx {
					if _, _, wy := hostAddr(y.str, "0.0.0.0"); wy {
						return y
					}
				}
			}
		}
	case "call":
		fn := n.get("function").text(p.src)
		args := n.get("arguments")
		pos, kw := pyArgs(args, p.src)
		switch {
		case fn == "int" || fn == "str":
			if len(pos) == 1 {
				return p.value(pos[0], depth+1)
			}
		case strings.HasSuffix(fn, "environ.get") || strings.HasSuffix(fn, "getenv"):
			d := kw["default"]
			if len(pos) >= 2 {
				d = pos[1]
			}
			if d != nil {
				v := p.value(d, depth+1)
				if v.known && v.origin == "" {
					v.origin = fmt.Sprintf("%s:%d: default of %s", p.name, n.line, fn)
				}
				return v
			}
		case strings.HasSuffix(fn, ".get") || strings.HasSuffix(fn, ".pop") || fn == "getattr":
			// kw.get("host", "0.0.0.0"), settings.pop(...), getattr(opts, "host", "0.0.0.0"),
			// configparser's get(section, option, fallback=...): the default, when it is an
			// address or a number (configparser's second argument is an option's name).
			d := kw["fallback"]
			switch {
			case fn == "getattr" && len(pos) == 3:
				d = pos[2]
			case fn != "getattr" && len(pos) == 2 && d == nil:
				d = pos[1]
			}
			if d != nil && (p.isHostLiteral(d) || d.typ == "integer") {
				v := p.value(d, depth+1)
				if v.origin == "" {
					v.origin = fmt.Sprintf("%s:%d: default of %s", p.name, n.line, fn)
				}
				return v
			}
		}
	}
	return tsValue{}
}

// concat joins static parts; a known prefix followed by unknown parts is partial.
func concat(parts []*tsNode, val func(*tsNode) tsValue) tsValue {
	var b strings.Builder
	out := tsValue{known: true}
	for _, k := range parts {
		v := val(k)
		if !v.known || v.none {
			if b.Len() == 0 {
				return tsValue{}
			}
			out.partial = true
			break
		}
		if v.isNum {
			b.WriteString(strconv.Itoa(v.num))
		} else {
			b.WriteString(v.str)
		}
		if out.origin == "" {
			out.origin = v.origin
		}
		if v.partial {
			out.partial = true
			break
		}
	}
	out.str = b.String()
	return out
}

// pyString is a string literal's value; an f-string's is its literal prefix (partial).
func pyString(n *tsNode, src []byte) tsValue {
	var b strings.Builder
	partial := false
	for _, k := range n.kids {
		switch k.typ {
		case "string_content":
			s := k.text(src)
			if strings.ContainsRune(s, '\\') {
				if u, err := strconv.Unquote(`"` + strings.ReplaceAll(s, `"`, `\"`) + `"`); err == nil {
					s = u
				}
			}
			b.WriteString(s)
		case "interpolation":
			partial = true
		case "escape_sequence":
			if u, err := strconv.Unquote(`"` + k.text(src) + `"`); err == nil {
				b.WriteString(u)
			}
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

// pyArgs splits an argument list into positional arguments and keywords.
func pyArgs(args *tsNode, src []byte) (pos []*tsNode, kw map[string]*tsNode) {
	kw = map[string]*tsNode{}
	for _, a := range args.args() {
		switch a.typ {
		case "keyword_argument":
			kw[a.get("name").text(src)] = a.get("value")
		case "dictionary_splat":
			// **kwargs: any keyword may be in it, so no default is known.
			kw["**"] = a
		case "list_splat":
			// *args: nothing static.
		default:
			pos = append(pos, a)
		}
	}
	return pos, kw
}

func argAt(pos []*tsNode, kw map[string]*tsNode, i int, name string) *tsNode {
	if v, ok := kw[name]; ok {
		return v
	}
	if i >= 0 && i < len(pos) {
		return pos[i]
	}
	return nil
}

// Python bind kinds.
const (
	kindPyListen    = "py-listen"
	kindPyServer    = "py-server-run"
	kindPyArg       = "py-arg-default"
	kindGunicornCfg = "gunicorn-bind"
)

// pyServerTuple are callables whose first argument is an (host, port) address.
var pyServerTuple = map[string]string{
	"TCPServer": "tcp", "ThreadingTCPServer": "tcp", "ForkingTCPServer": "tcp",
	"UDPServer": "udp", "ThreadingUDPServer": "udp", "ForkingUDPServer": "udp",
	"HTTPServer": "tcp", "ThreadingHTTPServer": "tcp", "SimpleXMLRPCServer": "tcp",
	"DocXMLRPCServer": "tcp", "WSGIServer": "tcp", "create_server": "tcp",
}

func (p *pyFile) call(n *tsNode) {
	fnNode := n.get("function")
	fn := fnNode.text(p.src)
	name, obj := fn, ""
	p.hops = p.hops[:0]
	line := n.line
	if fnNode != nil && fnNode.typ == "attribute" {
		name = fnNode.get("attribute").text(p.src)
		obj = fnNode.get("object").text(p.src)
		if a := fnNode.get("attribute"); a != nil {
			line = a.line
		}
	}
	pos, kw := pyArgs(n.get("arguments"), p.src)
	switch {
	case name == "run" && (obj == "uvicorn" || fn == "run" && p.imports["uvicorn"] && !p.imports["flask"]), name == "Config" && obj == "uvicorn":
		// uvicorn: 127.0.0.1:8000 by default; "" binds every IPv4 interface.
		p.bind(line, kindPyServer, "tcp", argAt(nil, kw, -1, "host"), "127.0.0.1", "0.0.0.0", argAt(nil, kw, -1, "port"), 8000, "uvicorn")
	case kw["**"] != nil && kw["host"] == nil && kw["address"] == nil &&
		!((name == "create_server" || name == "start_server") && len(pos) >= 2):
		// (asyncio's create_server(factory, host, port, **kw): a positional host is not in kw,
		// which would be a TypeError.)
		// f(app, **kw): the host may be in kw; nothing is known statically.
	case name == "run_app":
		// aiohttp: no host is every interface, port 8080.
		p.bindHosts(line, kindPyServer, argAt(nil, kw, -1, "host"), "*", argAt(nil, kw, -1, "port"), 8080, "aiohttp run_app")
	case name == "TCPSite":
		p.bindHosts(line, kindPyServer, argAt(pos, kw, 1, "host"), "*", argAt(pos, kw, 2, "port"), 8080, "aiohttp TCPSite")
	case (name == "run" || name == "run_server") && kw["host"] != nil:
		// Flask (and Sanic, Dash, flask-socketio, bottle): a missing or empty host is 127.0.0.1.
		def := 0
		if p.imports["flask"] {
			def = 5000
		}
		p.bind(line, kindPyServer, "tcp", kw["host"], "127.0.0.1", "127.0.0.1", kw["port"], def, "")
	case (name == "run" || name == "run_server") && len(pos) > 0 && p.isHostLiteral(pos[0]) && (len(pos) > 1 || kw["port"] != nil || p.imports["flask"]):
		def := 0
		if p.imports["flask"] {
			def = 5000
		}
		p.bind(line, kindPyServer, "tcp", pos[0], "127.0.0.1", "127.0.0.1", argAt(pos, kw, 1, "port"), def, "")
	case name == "listen" && p.imports["tornado"] && len(pos) > 0 && p.tornadoListen(obj, n, pos[0]):
		// tornado: address "" (the default) is every interface.
		p.bind(line, kindPyServer, "tcp", argAt(pos, kw, 1, "address"), "*", "*", pos[0], 0, "tornado listen")
	case name == "serve" && p.imports["waitress"] && kw["listen"] == nil:
		p.bind(line, kindPyServer, "tcp", kw["host"], "0.0.0.0", "0.0.0.0", kw["port"], 8080, "waitress serve")
	case name == "bind" && len(pos) == 1 && len(kw) == 0:
		p.sockBind(line, obj, pos[0])
	case len(pos) > 0 && p.serverProto(fnNode, name, 0) != "":
		proto := p.serverProto(fnNode, name, 0)
		p.hops = p.hops[:0] // the calls the class came through are not the host's
		a, ok := p.addrOf(pos[0])
		if !ok {
			return
		}
		family := ""
		if f := kw["family"]; f != nil {
			family = f.text(p.src)
		}
		p.bindAddr(line, kindPyListen, proto, a, family, name)
	case (name == "create_server" || name == "start_server" || name == "create_datagram_endpoint") && (argAt(pos, kw, 1, "host") != nil || argAt(pos, kw, 2, "port") != nil) && kw["sock"] == nil:
		// asyncio: host None is every interface.
		p.bindHosts(line, kindPyListen, argAt(pos, kw, 1, "host"), "*", argAt(pos, kw, 2, "port"), 0, "asyncio "+name)
	case (name == "start_http_server" || name == "start_wsgi_server") && (obj == "prometheus_client" || obj == "" && p.imports["prometheus_client"]):
		// prometheus_client: addr="0.0.0.0" unless given.
		p.bind(line, kindPyServer, "tcp", argAt(pos, kw, 1, "addr"), "0.0.0.0", "0.0.0.0", argAt(pos, kw, 0, "port"), 0, "prometheus_client "+name)
	case name == "make_server" || name == "run_simple":
		// wsgiref make_server(host, port, app), werkzeug run_simple(hostname, port, app).
		// None is no host for either (socket's bind refuses it).
		if len(pos) >= 2 && !p.value(pos[0], 0).none {
			p.bind(line, kindPyListen, "tcp", pos[0], "0.0.0.0", "0.0.0.0", pos[1], 0, name)
		}
	case isServerClassName(name) && serverHostKw(kw) != nil:
		p.serverKw(line, name, kw)
	case name == "add_argument" || name == "option" || name == "add_option":
		p.argDefault(line, pos, kw)
	}
}

// tornadoListen: app.listen(port, address=...) on a tornado application or server, not a
// socket's listen(backlog) nor another library's listen((host, port)).
func (p *pyFile) tornadoListen(obj string, use, port *tsNode) bool {
	if strings.Contains(strings.ToLower(obj), "sock") {
		return false
	}
	if r := p.lookup(obj, use); r != nil && r.typ == "call" && strings.Contains(r.get("function").text(p.src), "socket") {
		return false
	}
	if v := p.value(port, 0); v.known {
		_, ok := v.port()
		return ok && v.isNum
	}
	return port.typ == "identifier" && strings.Contains(strings.ToLower(port.text(p.src)), "port") ||
		port.typ == "attribute" && strings.Contains(strings.ToLower(port.get("attribute").text(p.src)), "port")
}

// isHostLiteral says whether an expression is statically an IP address, "localhost" or "".
func (p *pyFile) isHostLiteral(n *tsNode) bool {
	v := p.value(n, 0)
	if !v.known || v.isNum || v.partial || v.none {
		return false
	}
	return v.str == "" || v.str == "localhost" || net.ParseIP(strings.Trim(v.str, "[]")) != nil
}

// bind records a bind of host (absent: absent; "" or None: empty) and port (absent: def).
// A host passed in by the one call of the enclosing function (python_flow.go) is reported at
// that call, the outermost one when it went through several: the caller's call is the site.
func (p *pyFile) bind(line int, kind, proto string, hostN *tsNode, absent, empty string, portN *tsNode, def int, subject string) {
	var host, port *tsValue
	start := len(p.hops)
	if hostN != nil {
		v := p.value(hostN, 0)
		host = &v
		if !v.known {
			p.unknownHost = true
		}
	}
	if p.probing && (host == nil || !host.probe) {
		return // only the binds whose host the other file's call gives
	}
	// The calls the host came through: those its address came through (bindAddr), and those
	// its evaluation took now; not those a port or a callee was read through.
	site := outerHop(append(append([]pyHop(nil), p.addrHops...), p.hops[start:]...))
	if portN != nil {
		v := p.value(portN, 0)
		port = &v
	}
	f, ok := staticBind(p.name, line, kind, proto, host, absent, empty, port, def, subject)
	if !ok {
		return
	}
	if site != nil {
		f.Line = site.line
		if f.Origin == fmt.Sprintf("%s:%d", p.name, site.line) {
			f.Origin = "" // the value is the call's own argument
		}
		f.Subject = fmt.Sprintf("%s at line %d, through this call", subject, line)
	}
	p.out = append(p.out, f)
}

// bindHosts is bind for APIs whose host may be a list of hosts.
func (p *pyFile) bindHosts(line int, kind string, hostN *tsNode, absent string, portN *tsNode, def int, subject string) {
	if d := p.deref(hostN); d != nil && (d.typ == "list" || d.typ == "tuple") {
		for _, h := range d.args() {
			p.bind(line, kind, "tcp", h, absent, absent, portN, def, subject)
		}
		return
	}
	p.bind(line, kind, "tcp", hostN, absent, absent, portN, def, subject)
}

// sockBind reads sock.bind((host, port)); the socket's family and type come from where the
// receiver was created (socket.socket(AF_INET6, SOCK_DGRAM)), when that is in the file.
func (p *pyFile) sockBind(line int, obj string, arg *tsNode) {
	p.hops = p.hops[:0]
	a, ok := p.addrOf(arg)
	if !ok {
		return
	}
	proto, family := "tcp", ""
	if obj != "" {
		if r := p.lookup(obj, arg); r != nil && r.typ == "call" {
			txt := r.get("arguments").text(p.src)
			if strings.Contains(txt, "SOCK_DGRAM") {
				proto = "udp"
			}
			if strings.Contains(txt, "AF_UNIX") {
				return
			}
			family = txt
		}
	}
	if proto == "tcp" && p.freePortProbe(obj, arg, a) {
		return
	}
	p.bindAddr(line, kindPyListen, proto, a, family, "socket bind")
}

// freePortProbe says whether sock.bind(("", 0)) on a TCP socket only picks a free port: the
// function asks the socket's name and never listens on it, hands it on or keeps it (zmq's
// select_random_ports binds, reads getsockname and closes). A TCP socket that is bound and
// never listens accepts nothing.
func (p *pyFile) freePortProbe(obj string, arg *tsNode, a pyAddr) bool {
	if obj == "" || strings.ContainsAny(obj, ".()[]") {
		return false
	}
	if v := p.value(a.port, 0); !v.known || !v.isNum || v.num != 0 {
		return false
	}
	fn := arg.enclosing("function_definition")
	if fn == nil {
		return false
	}
	named, listens, escapes := false, false, false
	fn.each(func(n *tsNode) {
		switch n.typ {
		case "call":
			f := n.get("function")
			if f == nil || f.typ != "attribute" || f.get("object").text(p.src) != obj {
				// The socket handed to another call (a server, a list) may be listened on there.
				for _, x := range n.get("arguments").args() {
					if x.typ == "identifier" && x.text(p.src) == obj {
						escapes = true
					}
				}
				return
			}
			switch f.get("attribute").text(p.src) {
			case "getsockname":
				named = true
			case "listen", "accept", "detach", "dup", "makefile", "fileno":
				listens = true
			}
		case "return_statement", "yield", "assignment", "keyword_argument", "list", "tuple", "dictionary", "set":
			// return sock, self.s = sock, [sock]: the socket outlives the function.
			n.each(func(k *tsNode) {
				if k.typ != "identifier" || k.text(p.src) != obj || k.field == "left" ||
					k.parent != nil && k.parent.typ == "attribute" && k.field == "object" {
					return // the socket assigned, or one of its methods
				}
				escapes = true
			})
		}
	})
	return named && !listens && !escapes
}

// hostOptions are the command-line option names whose default is a listen address.
var hostOptions = map[string]bool{"host": true, "bind": true, "b": false, "listen": true, "address": true,
	"addr": true, "bind-address": true, "listen-address": true, "bind-host": true, "listen-host": true, "bind-addr": true, "listen-addr": true}

// argDefault reads argparse add_argument("--host", default=...) and click.option.
func (p *pyFile) argDefault(line int, pos []*tsNode, kw map[string]*tsNode) {
	d := kw["default"]
	if d == nil {
		return
	}
	opt := ""
	for _, a := range pos {
		v := p.value(a, 0)
		if !v.known || v.isNum || !strings.HasPrefix(v.str, "--") {
			continue
		}
		k := strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(v.str, "--")), "_", "-")
		if hostOptions[k] {
			opt = v.str
		}
	}
	if opt == "" {
		return
	}
	v := p.value(d, 0)
	host, port, _, ok := addrDefault(v)
	if !ok {
		return
	}
	f := newFinding(p.name, line, kindPyArg, "tcp", host, "0.0.0.0", port)
	f.Origin = originOf(v.origin, "")
	f.Subject = "option " + opt + " default"
	p.out = append(p.out, f)
}

// isGunicornConf: gunicorn.conf.py, gunicorn_conf.py, gunicorn_config.py, gunicorn*.py.
func isGunicornConf(name string) bool {
	b := strings.ToLower(path.Base(name))
	return strings.HasPrefix(b, "gunicorn") && strings.HasSuffix(b, ".py")
}

// gunicorn reads a gunicorn configuration file's module-level bind = "HOST:PORT" or a list.
func (p *pyFile) gunicorn() {
	for _, r := range p.assigns[p.root]["bind"] {
		if r.enclosing("function_definition", "class_definition") != nil {
			continue
		}
		r := r
		items := []*tsNode{r}
		if d := p.deref(r); d != nil && (d.typ == "list" || d.typ == "tuple") {
			items = d.args()
		}
		for _, it := range items {
			v := p.value(it, 0)
			if !v.known || v.isNum || strings.HasPrefix(v.str, "unix:") || strings.HasPrefix(v.str, "fd://") {
				continue
			}
			s := strings.TrimPrefix(v.str, "tcp://")
			host, port := s, 8000
			if strings.HasPrefix(s, "[") {
				h, rest, _ := strings.Cut(s[1:], "]")
				host = h
				if pt, err := strconv.Atoi(strings.TrimPrefix(rest, ":")); err == nil {
					port = pt
				} else if v.partial || rest != "" {
					port = 0
				}
			} else if h, pt, ok := strings.Cut(s, ":"); ok {
				host = h
				if n, err := strconv.Atoi(pt); err == nil {
					port = n
				} else {
					port = 0
				}
			} else if v.partial {
				continue
			}
			if host == "" {
				host = "0.0.0.0"
			}
			if !isAddrLiteral(host) {
				continue
			}
			f := newFinding(p.name, r.line, kindGunicornCfg, "tcp", host, "0.0.0.0", port)
			f.Origin = originOf(v.origin, "")
			f.Subject = "gunicorn bind"
			p.out = append(p.out, f)
		}
	}
}

// isAddrLiteral: an IP address (brackets allowed), "*" or "localhost": host names are not
// judged (they may be a client's target as well as a bind).
func isAddrLiteral(h string) bool {
	h = strings.Trim(h, "[]")
	if i := strings.IndexByte(h, '%'); i >= 0 {
		h = h[:i]
	}
	return h == "*" || h == "localhost" || net.ParseIP(h) != nil
}

func originOf(host, port string) string {
	if host != "" {
		return host
	}
	return port
}

// isTestPath says whether a file is test code by its name: test_*.py, *_test.py, conftest.py,
// or for JavaScript and TypeScript *.test.* and *.spec.*, or any file under tests/, test/ or
// __tests__/.
func isTestPath(name string, l tsLang) bool {
	b := path.Base(name)
	for _, d := range strings.Split(path.Dir(name), "/") {
		if d == "tests" || d == "test" || d == "__tests__" {
			return true
		}
	}
	if l == langPython {
		return strings.HasPrefix(b, "test_") || strings.HasSuffix(b, "_test.py") || b == "conftest.py"
	}
	return strings.Contains(b, ".test.") || strings.Contains(b, ".spec.")
}

// serverHostKeys are the keywords that name a server class's listen host.
var serverHostKeys = []string{"host", "address", "hostname", "interface", "bind_address", "listen_address",
	"bind_host", "listen_host", "bind_addr", "listen_addr"}

func serverHostKw(kw map[string]*tsNode) *tsNode {
	for _, k := range serverHostKeys {
		if v := kw[k]; v != nil {
			return v
		}
	}
	return nil
}

// isServerClassName: a class-like name (capitalised) ending in Server: DNSServer,
// UDPRegistryServer.
func isServerClassName(name string) bool {
	return len(name) > len("Server") && name[0] >= 'A' && name[0] <= 'Z' && strings.HasSuffix(name, "Server")
}

// serverKw reads XServer(..., host=H, port=P) for a server class the scanner does not know
// (dnslib's DNSServer(resolver, address="", port=53), rpyc's UDPRegistryServer(host="0.0.0.0")):
// "" is every IPv4 interface, as socketserver means it; None is the library's own default,
// unknown here, so no finding. A name with UDP or Datagram, or a DNS server not given tcp=True,
// is UDP.
func (p *pyFile) serverKw(line int, name string, kw map[string]*tsNode) {
	h := serverHostKw(kw)
	if v := p.value(h, 0); !v.known || v.none {
		p.unknownHost = p.unknownHost || !v.known
		return
	}
	proto := "tcp"
	if strings.Contains(name, "UDP") || strings.Contains(name, "Udp") || strings.Contains(name, "Datagram") {
		proto = "udp"
	}
	if strings.HasPrefix(name, "DNS") {
		proto = "udp"
		if t := kw["tcp"]; t != nil && t.text(p.src) == "True" {
			proto = "tcp"
		}
	}
	p.bind(line, kindPyListen, proto, h, "0.0.0.0", "0.0.0.0", kw["port"], 0, name)
}

// fromCaller says whether an expression is what the caller of the enclosing function passed:
// a parameter (or an item or attribute of one) that is not static here.
func (p *pyFile) fromCaller(n *tsNode) bool {
	for i := 0; n != nil && i < 10; i++ {
		switch n.typ {
		case "subscript":
			n = n.get("value")
			continue
		case "attribute":
			if strings.HasPrefix(n.text(p.src), "self.") {
				return false
			}
			n = n.get("object")
			continue
		case "identifier":
			fn := n.enclosing("function_definition")
			if fn == nil || p.lookup(n.text(p.src), n) != nil {
				return false
			}
			for _, prm := range fn.get("parameters").args() {
				if paramName(prm, p.src) == n.text(p.src) {
					return true
				}
			}
		}
		return false
	}
	return false
}
