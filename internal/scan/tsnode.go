package scan

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// tsLang is a language parsed through tree-sitter.
type tsLang string

const (
	langPython tsLang = "python"
	langJS     tsLang = "javascript"
	langTS     tsLang = "typescript"
	langTSX    tsLang = "tsx"
)

// maxDepth bounds the syntax tree kept of one file; deeper nesting is cut and the file named
// as a problem (no real program nests a thousand levels).
const maxDepth = 1000

// tsNode is a syntax node copied out of tree-sitter: its type, the field it fills in its
// parent, its byte range and first line, and its children.
type tsNode struct {
	typ     string
	field   string
	named   bool
	missing bool
	cut     bool // on the root: nesting beyond maxDepth was cut
	start   uint32
	end     uint32
	line    int
	kids    []*tsNode
	parent  *tsNode
}

// link sets every node's parent.
func (n *tsNode) link() {
	stack := []*tsNode{n}
	for len(stack) > 0 {
		x := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, k := range x.kids {
			k.parent = x
			stack = append(stack, k)
		}
	}
}

// text is the node's source.
func (n *tsNode) text(src []byte) string {
	if n == nil || int(n.end) > len(src) || n.start > n.end {
		return ""
	}
	return string(src[n.start:n.end])
}

// get is the child filling a field, or nil.
func (n *tsNode) get(field string) *tsNode {
	if n == nil {
		return nil
	}
	for _, k := range n.kids {
		if k.field == field {
			return k
		}
	}
	return nil
}

// named is the named children (those of a field included), without comments.
func (n *tsNode) args() []*tsNode {
	if n == nil {
		return nil
	}
	var out []*tsNode
	for _, k := range n.kids {
		if k.named && k.typ != "comment" {
			out = append(out, k)
		}
	}
	return out
}

// each calls fn on every node under n, n included, in source order (iteratively: the depth is
// bounded by maxDepth, but recursion is not needed).
func (n *tsNode) each(fn func(*tsNode)) {
	stack := []*tsNode{n}
	for len(stack) > 0 {
		x := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		fn(x)
		for i := len(x.kids) - 1; i >= 0; i-- {
			stack = append(stack, x.kids[i])
		}
	}
}

// enclosing is the nearest ancestor of one of the types, or nil.
func (n *tsNode) enclosing(types ...string) *tsNode {
	for p := n.parent; p != nil; p = p.parent {
		for _, t := range types {
			if p.typ == t {
				return p
			}
		}
	}
	return nil
}

// tsValue is a statically known value: a string, an integer, or unknown; origin is the line
// it comes from when that is not the call's own ("" when it is).
type tsValue struct {
	known   bool
	isNum   bool
	str     string
	num     int
	partial bool // str is only a known prefix (an f-string, "0.0.0.0:" + port)
	none    bool // Python None, JavaScript undefined/null: the argument as if omitted
	line    int
	origin  string
	probe   bool // Python: the value another file's call gives a parameter (python_pkg.go)
}

func numVal(n, line int) tsValue { return tsValue{known: true, isNum: true, num: n, line: line} }

// from is v as read through a name: its origin is the line of r, the definition, when that
// is not the line of use.
func (v tsValue) from(file string, r, use *tsNode) tsValue {
	if v.known && v.origin == "" && r.line != use.line {
		v.origin = fmt.Sprintf("%s:%d", file, r.line)
	}
	return v
}

// truthy is whether a known value decides an `or`/`||`: a non-empty string, a non-zero number.
func (v tsValue) truthy() bool {
	return v.known && !v.none && (v.isNum && v.num != 0 || !v.isNum && v.str != "")
}

// port is the value as a port: a number, or a string of digits.
func (v tsValue) port() (int, bool) {
	if !v.known {
		return 0, false
	}
	if v.isNum {
		return v.num, v.num >= 0 && v.num <= 65535
	}
	p, err := strconv.Atoi(strings.TrimSpace(v.str))
	return p, err == nil && p >= 0 && p <= 65535
}

// commentsOf maps lines to bindguard:allow comments found as comment nodes.
func commentsOf(root *tsNode, src []byte, markers ...string) map[int]comment {
	out := map[int]comment{}
	lineStart := func(off uint32) int {
		i := bytes.LastIndexByte(src[:off], '\n')
		return i + 1
	}
	root.each(func(n *tsNode) {
		if n.typ != "comment" {
			return
		}
		t := n.text(src)
		if !strings.Contains(t, "bindguard:allow") {
			return
		}
		for _, m := range markers {
			t = strings.TrimPrefix(t, m)
		}
		t = strings.TrimSuffix(t, "*/")
		alone := strings.TrimSpace(string(src[lineStart(n.start):n.start])) == ""
		out[n.line] = comment{text: t, alone: alone}
	})
	return out
}

// evalBind evaluates a bind's host and port arguments (nil: absent) with a language's
// evaluator, then makes the finding with staticBind.
func evalBind(val func(*tsNode, int) tsValue, file string, line int, kind, proto string, hostN *tsNode, absent, empty string, portN *tsNode, def int, subject string) (Finding, bool) {
	var host, port *tsValue
	if hostN != nil {
		v := val(hostN, 0)
		host = &v
	}
	if portN != nil {
		v := val(portN, 0)
		port = &v
	}
	return staticBind(file, line, kind, proto, host, absent, empty, port, def, subject)
}

// staticBind makes the finding of a bind whose host and port were evaluated (nil: the argument
// is absent). An absent host is absent; None, undefined, null or "" is empty; a host that is not
// known statically, or is a name other than localhost, gives no finding (ok false). An absent
// port is def; one not known statically is 0.
func staticBind(file string, line int, kind, proto string, host *tsValue, absent, empty string, port *tsValue, def int, subject string) (f Finding, ok bool) {
	h, origin := absent, ""
	if host != nil {
		v := *host
		switch {
		case !v.known || v.isNum || v.partial:
			return Finding{}, false
		case v.none || v.str == "":
			h = empty
		default:
			h = v.str
		}
		origin = v.origin
	}
	if !isAddrLiteral(h) {
		return Finding{}, false
	}
	pt, portOrigin := def, ""
	if port != nil {
		if n, ok := port.port(); ok {
			pt, portOrigin = n, port.origin
		} else {
			pt = 0
		}
	}
	f = newFinding(file, line, kind, policyProto(proto), h, empty, pt)
	f.Origin = originOf(origin, portOrigin)
	f.Subject = subject
	return f, true
}
