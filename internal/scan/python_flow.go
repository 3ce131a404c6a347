package scan

import (
	"fmt"
	"strconv"
	"strings"
)

// Values that flow across a few calls inside one Python file:
//
//   - argparse options read back through what parse_args returned: args.bind is the default of
//     the option whose dest is bind (add_argument("-b", "--bind") stores into bind; dest= names
//     it), None when the option has no default; the finding's origin is the option's line;
//   - a parameter with no static default takes the argument of the function's one call site in
//     the file (test(bind=args.bind) gives test's bind); a function called from several places,
//     or not called in the file, leaves its parameter unknown, as does an omitted argument;
//   - names unpacked from a tuple (a, b = f(x)) take the element of what f, a function of the
//     file, returns; for loops and next(iter(x)) take an item of x;
//   - socket.getaddrinfo(host, port, ..., flags=AI_PASSIVE) items are (family, type, proto,
//     canonname, sockaddr) whose sockaddr is host and port: a None host with AI_PASSIVE is every
//     interface (0.0.0.0 with glibc's default order, :: for AF_INET6), without it loopback; ""
//     is refused by getaddrinfo (no finding);
//   - a server class named through a parameter's default or a class of the file whose base is a
//     socketserver / http.server / xmlrpc server (ServerClass=ThreadingHTTPServer,
//     class DualStackServer(ThreadingHTTPServer)) binds its first argument.
//
// Every step is bounded by value's depth and deref's steps, so a cycle (a function passing its
// parameter to itself) ends unknown.

// pyOption is an argparse (or optparse) option of the file.
type pyOption struct {
	parser *tsNode // the parser it is added to (its ArgumentParser(...) call, when known)
	opt    string  // the option as written: "--bind", or a positional's name
	line   int     // the add_argument call's line
	def    *tsNode // its default; nil: none given (None)
	store  bool    // it stores a value (action omitted or "store")
}

// Synthetic nodes made by index: "unpack" (element unpackIdx of kids[0]) and "item" (an item of
// the iterable kids[0]). Their range is kids[0]'s, so lookup's ordering by position holds.
const (
	synUnpack = "bindguard-unpack"
	synItem   = "bindguard-item"
	synProbe  = "bindguard-probe" // a parameter's value given by another file's call (probeNodes)
)

func (p *pyFile) synthetic(typ string, of *tsNode, at *tsNode) *tsNode {
	s := &tsNode{typ: typ, named: true, start: at.start, end: at.end, line: at.line, kids: []*tsNode{of}, parent: at.parent}
	return s
}

// indexFlow records, for one node during index, the option definitions, unpacking
// assignments, for loops, function definitions and calls by callee.
func (p *pyFile) indexFlow(n *tsNode) {
	switch n.typ {
	case "assignment":
		l, r := n.get("left"), n.get("right")
		if l == nil || r == nil || (l.typ != "pattern_list" && l.typ != "tuple_pattern" && l.typ != "list_pattern") {
			return
		}
		p.unpackTo(l, r, n)
	case "for_statement":
		l, r := n.get("left"), n.get("right")
		if l == nil || r == nil {
			return
		}
		item := p.synthetic(synItem, r, r)
		if l.typ == "identifier" {
			p.assign(n, l.text(p.src), item)
		} else if l.typ == "pattern_list" || l.typ == "tuple_pattern" || l.typ == "list_pattern" {
			p.unpackTo(l, item, n)
		}
	case "function_definition":
		if nm := n.get("name"); nm != nil {
			p.funcs[nm.text(p.src)] = append(p.funcs[nm.text(p.src)], n)
		}
	case "class_definition":
		if nm := n.get("name"); nm != nil {
			p.classDefs[nm.text(p.src)] = append(p.classDefs[nm.text(p.src)], n)
		}
	case "call":
		fn := n.get("function")
		if fn == nil {
			return
		}
		p.calls[fn.text(p.src)] = append(p.calls[fn.text(p.src)], n)
		if fn.typ == "attribute" {
			if a := fn.get("attribute").text(p.src); a == "add_argument" || a == "add_option" {
				p.optCalls = append(p.optCalls, n) // read once every assignment is indexed
			}
		}
	}
}

func (p *pyFile) assign(at *tsNode, name string, r *tsNode) {
	s := p.scope(at)
	if p.assigns[s] == nil {
		p.assigns[s] = map[string][]*tsNode{}
	}
	p.assigns[s][name] = append(p.assigns[s][name], r)
}

// unpackTo records a, b = r: element by element when r is a literal of the same length, else
// as unpack nodes.
func (p *pyFile) unpackTo(l, r, at *tsNode) {
	targets := l.args()
	var lit []*tsNode
	if r.typ == "expression_list" || r.typ == "tuple" || r.typ == "list" {
		lit = r.args()
	}
	for i, t := range targets {
		if t.typ != "identifier" && t.typ != "attribute" {
			continue
		}
		if len(lit) == len(targets) {
			p.assign(at, t.text(p.src), lit[i])
			continue
		}
		u := p.synthetic(synUnpack, r, r)
		p.unpackIdx[u] = i
		p.assign(at, t.text(p.src), u)
	}
}

// option records add_argument(...): its dest, default and action.
func (p *pyFile) option(call *tsNode, line int) {
	pos, kw := pyArgs(call.get("arguments"), p.src)
	o := pyOption{parser: p.parserOf(call.get("function").get("object")), line: line, def: kw["default"], store: true}
	if a := kw["action"]; a != nil {
		v := p.value(a, 0)
		o.store = v.known && !v.isNum && v.str == "store"
	}
	dest, short := "", ""
	for _, a := range pos {
		v := p.value(a, 0)
		if !v.known || v.isNum || v.partial {
			return // an option name not known statically: no dest known
		}
		switch {
		case strings.HasPrefix(v.str, "--"):
			if dest == "" || strings.HasPrefix(o.opt, "-") && !strings.HasPrefix(o.opt, "--") {
				dest, o.opt = strings.ReplaceAll(v.str[2:], "-", "_"), v.str
			}
		case strings.HasPrefix(v.str, "-"):
			if short == "" {
				short = v.str
			}
		default:
			dest, o.opt = v.str, v.str // a positional argument
		}
	}
	if dest == "" && short != "" {
		dest, o.opt = strings.ReplaceAll(short[1:], "-", "_"), short
	}
	if d := kw["dest"]; d != nil {
		v := p.value(d, 0)
		if !v.known || v.isNum || v.partial {
			return
		}
		dest = v.str
	}
	if dest == "" {
		return
	}
	p.options[dest] = append(p.options[dest], o)
}

// optionValue is args.DEST where args is what parse_args returned: the option's default, or
// None when it has none; the origin names the option.
func (p *pyFile) optionValue(n *tsNode, depth int) tsValue {
	obj, attr := n.get("object"), n.get("attribute")
	if obj == nil || attr == nil {
		return tsValue{}
	}
	parser, ok := p.parsedArgs(obj, depth+1)
	if !ok {
		return tsValue{}
	}
	opts := p.options[attr.text(p.src)]
	if len(opts) > 1 {
		// Several options store into the name: the one added to this parser.
		var mine []pyOption
		for _, o := range opts {
			if parser != nil && o.parser == parser {
				mine = append(mine, o)
			}
		}
		opts = mine
	}
	if len(opts) != 1 || !opts[0].store {
		return tsValue{}
	}
	o := opts[0]
	if o.def == nil {
		return tsValue{known: true, none: true, line: o.line,
			origin: fmt.Sprintf("%s:%d: option %s has no default (None)", p.name, o.line, o.opt)}
	}
	v := p.value(o.def, depth+1)
	if v.known {
		v.origin = fmt.Sprintf("%s:%d: option %s default", p.name, o.line, o.opt)
	}
	return v
}

// parserOf is the parser an option is added to or parse_args is called on: the
// ArgumentParser(...) (OptionParser(...)) call its receiver was assigned, through argument
// groups; nil when not known.
func (p *pyFile) parserOf(recv *tsNode) *tsNode {
	for i := 0; recv != nil && i < 5; i++ {
		r := p.deref(recv)
		if r == nil || r.typ != "call" {
			return nil
		}
		fn := r.get("function")
		if fn != nil && fn.typ == "attribute" {
			switch fn.get("attribute").text(p.src) {
			case "add_argument_group", "add_mutually_exclusive_group", "add_option_group":
				recv = fn.get("object")
				continue
			}
		}
		return r
	}
	return nil
}

// parsedArgs says whether n is (through names, parameters and local functions' returns) what
// an argument parser's parse_args returned, and which parser (nil: not known).
func (p *pyFile) parsedArgs(n *tsNode, depth int) (*tsNode, bool) {
	n = p.deref(n)
	if n == nil || depth > 30 {
		return nil, false
	}
	switch n.typ {
	case "call":
		fn := n.get("function")
		if fn != nil && fn.typ == "attribute" {
			a := fn.get("attribute").text(p.src)
			if a == "parse_args" || a == "parse_intermixed_args" {
				return p.parserOf(fn.get("object")), true
			}
			return nil, false
		}
		for _, r := range p.returns(n) {
			if parser, ok := p.parsedArgs(r, depth+1); ok {
				return parser, true
			}
		}
	case synUnpack:
		// args, rest = parser.parse_known_args(), options, args = optparse's parse_args(), or a
		// local function returning one.
		if p.unpackIdx[n] == 0 {
			return p.knownArgs(n.kids[0], depth+1)
		}
	}
	return nil, false
}

// knownArgs says whether n returns (namespace, rest): argparse's parse_known_args, optparse's
// parse_args, or a local function's call returning one; and the parser.
func (p *pyFile) knownArgs(n *tsNode, depth int) (*tsNode, bool) {
	c := p.deref(n)
	if c == nil || c.typ != "call" || depth > 30 {
		return nil, false
	}
	if fn := c.get("function"); fn != nil && fn.typ == "attribute" {
		a := fn.get("attribute").text(p.src)
		if strings.HasPrefix(a, "parse_known") || a == "parse_args" {
			return p.parserOf(fn.get("object")), true
		}
		return nil, false
	}
	for _, r := range p.returns(c) {
		if parser, ok := p.knownArgs(r, depth+1); ok {
			return parser, true
		}
	}
	return nil, false
}

// returns are the expressions a call's callee returns, when it is one function of the file.
func (p *pyFile) returns(call *tsNode) []*tsNode {
	fn := call.get("function")
	if fn == nil || fn.typ != "identifier" {
		return nil
	}
	defs := p.funcs[fn.text(p.src)]
	if len(defs) != 1 {
		return nil
	}
	var out []*tsNode
	body := defs[0].get("body")
	body.each(func(k *tsNode) {
		if k.typ == "return_statement" && k.enclosing("function_definition", "lambda") == defs[0] {
			if a := k.args(); len(a) == 1 {
				out = append(out, a[0])
			}
		}
	})
	return out
}

// element is the i-th element of a tuple-valued expression: a literal, or the one tuple a
// function of the file returns.
func (p *pyFile) element(n *tsNode, i int, depth int) *tsNode {
	n = p.deref(n)
	if n == nil || depth > 10 {
		return nil
	}
	switch n.typ {
	case "tuple", "expression_list", "list":
		if a := n.args(); i < len(a) {
			return a[i]
		}
	case "call":
		rs := p.returns(n)
		if len(rs) == 1 {
			return p.element(rs[0], i, depth+1)
		}
	}
	return nil
}

// itemOf is the iterable n is an item of: a for loop's variable, next(iter(x)), next(x), x[0].
func (p *pyFile) itemOf(n *tsNode) *tsNode {
	n = p.deref(n)
	if n == nil {
		return nil
	}
	switch n.typ {
	case synItem:
		return n.kids[0]
	case "call":
		if n.get("function").text(p.src) != "next" {
			return nil
		}
		pos, _ := pyArgs(n.get("arguments"), p.src)
		if len(pos) != 1 {
			return nil
		}
		x := pos[0]
		if x.typ == "call" && x.get("function").text(p.src) == "iter" {
			if a, _ := pyArgs(x.get("arguments"), p.src); len(a) == 1 {
				return a[0]
			}
			return nil
		}
		return x
	case "subscript":
		if s := n.get("subscript"); s != nil && s.typ == "integer" && s.text(p.src) == "0" {
			return n.get("value")
		}
	}
	return nil
}

// callSiteArg is the argument the one call of fn in the file passes for its parameter i
// (name): nil when fn is called from no place or several, or the argument is omitted.
func (p *pyFile) callSiteArg(fn *tsNode, i int, name string) *tsNode {
	nm := fn.get("name").text(p.src)
	callee := nm
	method := isMethod(fn)
	var calls []*tsNode
	if method {
		calls = append(append(calls, p.calls["self."+nm]...), p.calls["cls."+nm]...)
		i-- // self
	} else {
		if len(p.funcs[nm]) != 1 {
			return nil
		}
		calls = p.calls[callee]
	}
	if len(calls) != 1 || i < 0 {
		return nil
	}
	pos, kw := pyArgs(calls[0].get("arguments"), p.src)
	// A keyword given by name is the argument whatever **kw holds (both would be a TypeError);
	// otherwise **kw may hold it, and after *argv positions are unknown.
	a := kw[name]
	if a == nil && kw["**"] == nil {
		splat := false
		for _, x := range calls[0].get("arguments").args() {
			splat = splat || x.typ == "list_splat"
		}
		if !splat {
			a = argAt(pos, kw, i, name)
		}
	}
	if a != nil {
		p.hops = append(p.hops, pyHop{site: calls[0], fn: fn})
	}
	return a
}

// pyHop is a call site a value was read through, into the function fn.
type pyHop struct{ site, fn *tsNode }

// outerHop is the call site, among those taken, that is inside none of the functions entered.
func outerHop(hops []pyHop) *tsNode {
	for _, h := range hops {
		inner := false
		for _, g := range hops {
			for a := h.site.parent; a != nil; a = a.parent {
				if a == g.fn {
					inner = true
				}
			}
		}
		if !inner {
			return h.site
		}
	}
	return nil
}

// splatArgs are the arguments the one call site passes for fn's *name parameter (at index i).
func (p *pyFile) splatArgs(fn *tsNode, i int) []*tsNode {
	nm := fn.get("name").text(p.src)
	if len(p.funcs[nm]) != 1 || len(p.calls[nm]) != 1 {
		return nil
	}
	call := p.calls[nm][0]
	for _, a := range call.get("arguments").args() {
		if a.typ == "list_splat" || a.typ == "dictionary_splat" {
			return nil
		}
	}
	pos, _ := pyArgs(call.get("arguments"), p.src)
	if i > len(pos) {
		return nil
	}
	p.hops = append(p.hops, pyHop{site: call, fn: fn})
	return pos[i:]
}

// paramName is a parameter's name ("" for *args, **kw and the bare * and /).
func paramName(prm *tsNode, src []byte) string {
	switch prm.typ {
	case "identifier":
		return prm.text(src)
	case "default_parameter", "typed_default_parameter":
		return prm.get("name").text(src)
	case "typed_parameter":
		if a := prm.args(); len(a) > 0 && a[0].typ == "identifier" {
			return a[0].text(src)
		}
	}
	return ""
}

// pyAddr is a socket address: a (host, port[, flowinfo, scope]) tuple, or what getaddrinfo
// resolved (gai).
type pyAddr struct {
	host, port *tsNode
	v6         bool // a 4-tuple, or getaddrinfo of AF_INET6
	gai        bool
	passive    bool
}

// addrOf reads a socket address expression.
func (p *pyFile) addrOf(n *tsNode) (pyAddr, bool) {
	n = p.deref(n)
	if n == nil {
		return pyAddr{}, false
	}
	if n.typ == "tuple" {
		el := n.args()
		if len(el) < 2 || len(el) > 4 {
			return pyAddr{}, false
		}
		return pyAddr{host: el[0], port: el[1], v6: len(el) == 4}, true
	}
	// sockaddr of a getaddrinfo item: element 4.
	if n.typ != synUnpack || p.unpackIdx[n] != 4 {
		if n.typ == "subscript" {
			if s := n.get("subscript"); s != nil && s.text(p.src) == "4" {
				return p.gaiAddr(p.itemOf(n.get("value")))
			}
		}
		return pyAddr{}, false
	}
	return p.gaiAddr(p.itemOf(n.kids[0]))
}

// gaiAddr reads socket.getaddrinfo(host, port, family, type, proto, flags) (the iterable an
// item came from).
func (p *pyFile) gaiAddr(it *tsNode) (pyAddr, bool) {
	c := p.deref(it)
	if c == nil || c.typ != "call" {
		return pyAddr{}, false
	}
	if fn := c.get("function").text(p.src); fn != "getaddrinfo" && !strings.HasSuffix(fn, ".getaddrinfo") {
		return pyAddr{}, false
	}
	args := c.get("arguments")
	var pos []*tsNode
	for _, a := range args.args() {
		switch a.typ {
		case "keyword_argument", "dictionary_splat":
		case "list_splat":
			// getaddrinfo(*address): the function's *address parameter, from its call site.
			v := a.args()
			if len(v) != 1 || v[0].typ != "identifier" {
				return pyAddr{}, false
			}
			fn := a.enclosing("function_definition")
			if fn == nil {
				return pyAddr{}, false
			}
			found := false
			for i, prm := range fn.get("parameters").args() {
				if prm.typ == "list_splat_pattern" && prm.args()[0].text(p.src) == v[0].text(p.src) {
					pos = append(pos, p.splatArgs(fn, i)...)
					found = true
				}
			}
			if !found {
				return pyAddr{}, false
			}
		default:
			pos = append(pos, a)
		}
	}
	_, kw := pyArgs(args, p.src)
	host, port := argAt(pos, kw, 0, "host"), argAt(pos, kw, 1, "port")
	if host == nil || port == nil {
		return pyAddr{}, false
	}
	a := pyAddr{host: host, port: port, gai: true}
	if f := argAt(pos, kw, 2, "family"); f != nil && strings.Contains(f.text(p.src), "AF_INET6") {
		a.v6 = true
	}
	if f := argAt(pos, kw, 5, "flags"); f != nil && strings.Contains(f.text(p.src), "AI_PASSIVE") {
		a.passive = true
	}
	return a, true
}

// bindAddr records a bind of a socket address; family is the text naming the socket's family.
func (p *pyFile) bindAddr(line int, kind, proto string, a pyAddr, family, subject string) {
	p.addrHops = append(p.addrHops[:0], p.hops...)
	defer func() { p.addrHops = p.addrHops[:0] }()
	v6 := a.v6 || strings.Contains(family, "AF_INET6")
	hv := p.value(a.host, 0)
	if !hv.known {
		p.unknownHost = true
		return
	}
	var empty string
	switch {
	case a.gai && hv.none && a.passive && v6:
		empty = "::"
	case a.gai && hv.none && a.passive:
		empty = "0.0.0.0" // the first of 0.0.0.0 and :: in glibc's default order
	case a.gai && hv.none && v6:
		empty = "::1"
	case a.gai && hv.none:
		empty = "127.0.0.1"
	case a.gai && !hv.isNum && hv.str == "":
		return // getaddrinfo refuses "" (gaierror)
	case hv.none:
		return // a (None, port) tuple is a TypeError, not a bind
	case v6:
		empty = "::"
	default:
		empty = "0.0.0.0"
	}
	p.bind(line, kind, proto, a.host, empty, empty, a.port, 0, subject)
}

// serverProto is the protocol of a server class called by name: one of pyServerTuple, through a
// parameter's default or a class of the file whose base (transitively) is one.
func (p *pyFile) serverProto(fnNode *tsNode, name string, depth int) string {
	if pr := pyServerTuple[name]; pr != "" || depth > 4 || fnNode == nil {
		return pr
	}
	if fnNode.typ == "identifier" {
		if r := p.lookup(name, fnNode); r != nil && (r.typ == "identifier" || r.typ == "attribute") && r != fnNode {
			if pr := p.serverProto(r, lastName(r, p.src), depth+1); pr != "" {
				return pr
			}
		}
	}
	if fnNode.typ != "identifier" && fnNode.typ != "attribute" {
		return ""
	}
	defs := p.classDefs[name]
	if len(defs) != 1 {
		return ""
	}
	for _, b := range defs[0].get("superclasses").args() {
		if b.typ == "identifier" || b.typ == "attribute" {
			if pr := p.serverProto(b, lastName(b, p.src), depth+1); pr != "" {
				return pr
			}
		}
	}
	return ""
}

func lastName(n *tsNode, src []byte) string {
	if n.typ == "attribute" {
		return n.get("attribute").text(src)
	}
	return n.text(src)
}

// dropFlowedOptions removes a py-arg-default finding of an option whose value is reported at
// the bind it flows into (that finding names the option as its origin), and repeats.
func (p *pyFile) dropFlowedOptions() {
	flowed := map[int]bool{}
	for _, f := range p.out {
		if f.Kind == kindPyArg || !strings.Contains(f.Origin, ": option ") {
			continue
		}
		rest, ok := strings.CutPrefix(f.Origin, p.name+":")
		if !ok {
			continue
		}
		l, _, _ := strings.Cut(rest, ":")
		if n, err := strconv.Atoi(l); err == nil {
			flowed[n] = true
		}
	}
	// The same bind found twice (make_server's own rule and the bind inside it read through
	// its call) is one finding.
	type key struct {
		line       int
		kind, addr string
		port       int
	}
	seen := map[key]bool{}
	out := p.out[:0]
	for _, f := range p.out {
		k := key{f.Line, f.Kind, f.Address, f.Port}
		if seen[k] || f.Kind == kindPyArg && flowed[f.Line] && strings.HasPrefix(f.Subject, "option ") {
			continue
		}
		seen[k] = true
		out = append(out, f)
	}
	p.out = out
}
