package scan

import (
	"fmt"
	"go/ast"
	"go/constant"
	"go/parser"
	"go/scanner"
	"go/token"
	"go/types"
	"net"
	"path"
	"regexp"
	"strconv"
	"strings"

	"golang.org/x/tools/go/ast/astutil"

	"github.com/bindguard/bindguard/policy"
)

// The Go scanner parses each package directory with go/parser and type-checks it with
// go/types against an importer that never reads or fetches anything: every import is an empty
// package, so references into it stay unresolved (their errors are ignored) while the
// package's own constants, across its files, get their values. Calls are recognised by the
// import path their package name resolves to.

// emptyImporter gives every import path an empty, complete package.
type emptyImporter struct{ pkgs map[string]*types.Package }

var majorVersion = regexp.MustCompile(`^v[0-9]+$`)

func (e emptyImporter) Import(p string) (*types.Package, error) {
	if pkg, ok := e.pkgs[p]; ok {
		return pkg, nil
	}
	name := path.Base(p)
	if majorVersion.MatchString(name) {
		name = path.Base(path.Dir(p))
	}
	name = strings.TrimPrefix(strings.ReplaceAll(name, "-", "_"), "go_")
	pkg := types.NewPackage(p, name)
	pkg.MarkComplete()
	e.pkgs[p] = pkg
	return pkg, nil
}

// goPkg is one type-checked package.
type goPkg struct {
	fset  *token.FileSet
	info  *types.Info
	root  string
	file  *ast.File
	names map[*ast.File]string
	// assigns are the expressions assigned to each variable (declarations, :=, =, and
	// flag.StringVar's default).
	assigns map[types.Object][]assigned
	// declType is a variable's declared type expression or its initialising composite
	// literal's type, for recognising receivers syntactically.
	declType map[types.Object]ast.Expr
	// initCall is the call a variable was initialised from (gin.Default(), echo.New()).
	initCall map[types.Object]*ast.CallExpr
	out      []Finding
	// steps bounds the work of one address's evaluation; busy holds the variables being
	// evaluated, so cycles end.
	steps int
	busy  map[types.Object]bool
}

// maxEvalSteps bounds the expressions visited to evaluate one address.
const maxEvalSteps = 10000

type assigned struct {
	e ast.Expr
	// flag is "-name" when e is a flag's default.
	flag string
}

func scanGoDir(u unit, o Options) ([]Finding, []Problem, int) {
	fset := token.NewFileSet()
	byPkg := map[string][]*ast.File{}
	names := map[*ast.File]string{}
	srcs := map[*ast.File][]byte{}
	var probs []Problem
	n, total := 0, 0
	for _, name := range u.files {
		r := rel(u.root, name)
		src, err := readCapped(name, o.MaxFileSize)
		if err != nil {
			probs = append(probs, Problem{File: r, Msg: err.Error()})
			continue
		}
		if total += len(src); total > MaxPackageBytes {
			probs = append(probs, Problem{File: r, Msg: fmt.Sprintf("its package directory holds more than %d bytes of Go; skipped", MaxPackageBytes)})
			continue
		}
		n++
		f, err := parser.ParseFile(fset, name, src, parser.ParseComments|parser.SkipObjectResolution)
		if err != nil {
			p := Problem{File: r, Msg: "go: " + err.Error()}
			if el, ok := err.(scanner.ErrorList); ok && len(el) > 0 {
				p.Line, p.Msg = el[0].Pos.Line, "go: "+el[0].Msg
			}
			probs = append(probs, p)
			if f == nil {
				continue
			}
		}
		if !o.IncludeGenerated && ast.IsGenerated(f) {
			continue
		}
		names[f] = r
		srcs[f] = src
		byPkg[f.Name.Name] = append(byPkg[f.Name.Name], f)
	}
	var out []Finding
	for pkgName, files := range byPkg {
		info := &types.Info{
			Types: map[ast.Expr]types.TypeAndValue{},
			Defs:  map[*ast.Ident]types.Object{},
			Uses:  map[*ast.Ident]types.Object{},
		}
		conf := types.Config{Importer: emptyImporter{pkgs: map[string]*types.Package{}}, Error: func(error) {}, FakeImportC: true}
		_, _ = conf.Check(pkgName, fset, files, info)
		g := &goPkg{fset: fset, info: info, root: u.root, names: names,
			assigns: map[types.Object][]assigned{}, declType: map[types.Object]ast.Expr{}, initCall: map[types.Object]*ast.CallExpr{}}
		for _, f := range files {
			g.collectAssigns(f)
		}
		for _, f := range files {
			g.file = f
			start := len(g.out)
			ast.Inspect(f, g.visit)
			comments := goComments(fset, f, srcs[f])
			test := strings.HasSuffix(names[f], "_test.go")
			for i := start; i < len(g.out); i++ {
				g.out[i].comments = comments
				if test {
					g.out[i].Context = ContextTest
				}
			}
		}
		out = append(out, g.out...)
	}
	return out, probs, n
}

// pkgOf returns the import path an identifier names, if it names an imported package.
func (g *goPkg) pkgOf(e ast.Expr) string {
	id, ok := e.(*ast.Ident)
	if !ok {
		return ""
	}
	if pn, ok := g.info.Uses[id].(*types.PkgName); ok {
		return pn.Imported().Path()
	}
	for _, imp := range g.file.Imports {
		p, _ := strconv.Unquote(imp.Path.Value)
		name := path.Base(p)
		if imp.Name != nil {
			name = imp.Name.Name
		}
		if name == id.Name {
			return p
		}
	}
	return ""
}

// callee splits a call into its package path (or "" for a method) and function name.
func (g *goPkg) callee(c *ast.CallExpr) (pkg, name string, recv ast.Expr) {
	sel, ok := c.Fun.(*ast.SelectorExpr)
	if !ok {
		if id, ok := c.Fun.(*ast.Ident); ok {
			return "", id.Name, nil
		}
		return "", "", nil
	}
	if p := g.pkgOf(sel.X); p != "" {
		return p, sel.Sel.Name, nil
	}
	return "", sel.Sel.Name, sel.X
}

func (g *goPkg) obj(e ast.Expr) types.Object {
	for {
		switch x := e.(type) {
		case *ast.ParenExpr:
			e = x.X
			continue
		case *ast.StarExpr:
			e = x.X
			continue
		case *ast.UnaryExpr:
			if x.Op == token.AND {
				e = x.X
				continue
			}
		case *ast.Ident:
			if o := g.info.Uses[x]; o != nil {
				return o
			}
			return g.info.Defs[x]
		}
		return nil
	}
}

func (g *goPkg) collectAssigns(f *ast.File) {
	g.file = f
	ast.Inspect(f, func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.ValueSpec:
			for i, id := range x.Names {
				o := g.info.Defs[id]
				if o == nil {
					continue
				}
				if x.Type != nil {
					g.declType[o] = x.Type
				}
				if len(x.Values) == len(x.Names) {
					g.record(o, x.Values[i])
				}
			}
		case *ast.AssignStmt:
			if len(x.Lhs) != len(x.Rhs) {
				return true
			}
			for i, l := range x.Lhs {
				var o types.Object
				if id, ok := l.(*ast.Ident); ok {
					o = g.info.Defs[id]
					if o == nil {
						o = g.info.Uses[id]
					}
				}
				if o != nil {
					g.record(o, x.Rhs[i])
				}
			}
		case *ast.CallExpr:
			pkg, name, _ := g.callee(x)
			if (pkg == "flag" || pkg == "github.com/spf13/pflag") && (name == "StringVar" || name == "StringVarP") && len(x.Args) >= 3 {
				def := x.Args[2]
				if name == "StringVarP" && len(x.Args) >= 4 {
					def = x.Args[3]
				}
				if o := g.obj(x.Args[0]); o != nil {
					g.assigns[o] = append(g.assigns[o], assigned{e: def, flag: flagName(x.Args[1])})
				}
			}
		}
		return true
	})
}

func flagName(e ast.Expr) string {
	if l, ok := e.(*ast.BasicLit); ok {
		if s, err := strconv.Unquote(l.Value); err == nil {
			return "-" + s
		}
	}
	return "a flag"
}

func (g *goPkg) record(o types.Object, e ast.Expr) {
	g.assigns[o] = append(g.assigns[o], assigned{e: e})
	switch v := e.(type) {
	case *ast.CompositeLit:
		g.declType[o] = v.Type
	case *ast.UnaryExpr:
		if cl, ok := v.X.(*ast.CompositeLit); ok && v.Op == token.AND {
			g.declType[o] = cl.Type
		}
	case *ast.CallExpr:
		g.initCall[o] = v
	}
}

// isType reports whether a type expression is pkg.Name (or a pointer to it).
func (g *goPkg) isType(e ast.Expr, pkg, name string) bool {
	if s, ok := e.(*ast.StarExpr); ok {
		e = s.X
	}
	sel, ok := e.(*ast.SelectorExpr)
	return ok && sel.Sel.Name == name && g.pkgOf(sel.X) == pkg
}

// value is an evaluated string and where it came from.
type value struct {
	s      string
	origin token.Pos
	note   string
}

const maxEvalDepth = 16

// evalTop evaluates one address or network argument within the step budget.
func (g *goPkg) evalTop(e ast.Expr) (value, bool) {
	g.steps = maxEvalSteps
	if g.busy == nil {
		g.busy = map[types.Object]bool{}
	}
	return g.eval(e, 0)
}

// eval evaluates a string expression statically.
func (g *goPkg) eval(e ast.Expr, depth int) (value, bool) {
	g.steps--
	if depth > maxEvalDepth || e == nil || g.steps < 0 {
		return value{}, false
	}
	if tv, ok := g.info.Types[e]; ok && tv.Value != nil {
		v := value{}
		switch tv.Value.Kind() {
		case constant.String:
			v.s = constant.StringVal(tv.Value)
		case constant.Int:
			v.s = tv.Value.ExactString()
		default:
			return value{}, false
		}
		v.origin = g.constOrigin(e)
		return v, true
	}
	switch x := e.(type) {
	case *ast.BasicLit:
		if x.Kind == token.STRING {
			s, err := strconv.Unquote(x.Value)
			return value{s: s}, err == nil
		}
		if x.Kind == token.INT {
			return value{s: x.Value}, true
		}
	case *ast.ParenExpr:
		return g.eval(x.X, depth+1)
	case *ast.StarExpr:
		return g.eval(x.X, depth+1)
	case *ast.BinaryExpr:
		if x.Op != token.ADD {
			return value{}, false
		}
		a, ok1 := g.eval(x.X, depth+1)
		b, ok2 := g.eval(x.Y, depth+1)
		if !ok1 || !ok2 {
			return value{}, false
		}
		return value{s: a.s + b.s, origin: orPos(a.origin, b.origin), note: orStr(a.note, b.note)}, true
	case *ast.Ident:
		o := g.obj(x)
		if o == nil || g.busy[o] {
			return value{}, false
		}
		g.busy[o] = true
		defer delete(g.busy, o)
		for _, a := range g.assigns[o] {
			if v, ok := g.eval(a.e, depth+1); ok {
				if !v.origin.IsValid() {
					v.origin = a.e.Pos()
				}
				if a.flag != "" {
					v.note = "flag " + a.flag + " default"
				}
				return v, true
			}
		}
	case *ast.CallExpr:
		pkg, name, _ := g.callee(x)
		switch {
		case pkg == "net" && name == "JoinHostPort" && len(x.Args) == 2:
			h, ok1 := g.eval(x.Args[0], depth+1)
			p, ok2 := g.eval(x.Args[1], depth+1)
			if ok1 && ok2 {
				return value{s: net.JoinHostPort(h.s, p.s), origin: orPos(h.origin, p.origin), note: orStr(h.note, p.note)}, true
			}
		case pkg == "fmt" && name == "Sprintf" && len(x.Args) >= 1:
			f, ok := g.eval(x.Args[0], depth+1)
			if !ok {
				return value{}, false
			}
			args := make([]any, 0, len(x.Args)-1)
			v := value{origin: f.origin}
			for _, a := range x.Args[1:] {
				av, ok := g.eval(a, depth+1)
				if !ok {
					return value{}, false
				}
				if tv, ok := g.info.Types[a]; ok && tv.Value != nil && tv.Value.Kind() == constant.Int {
					n, _ := strconv.ParseInt(av.s, 10, 64)
					args = append(args, n)
				} else if l, ok := a.(*ast.BasicLit); ok && l.Kind == token.INT {
					n, _ := strconv.ParseInt(av.s, 0, 64)
					args = append(args, n)
				} else {
					args = append(args, av.s)
				}
				v.origin, v.note = orPos(v.origin, av.origin), orStr(v.note, av.note)
			}
			v.s = fmt.Sprintf(f.s, args...)
			if strings.Contains(v.s, "%!") {
				return value{}, false
			}
			return v, true
		case (pkg == "flag" || pkg == "github.com/spf13/pflag") && (name == "String" || name == "StringP") && len(x.Args) >= 2:
			def := x.Args[1]
			if name == "StringP" && len(x.Args) >= 3 {
				def = x.Args[2]
			}
			if v, ok := g.eval(def, depth+1); ok {
				v.note = "flag " + flagName(x.Args[0]) + " default"
				if !v.origin.IsValid() {
					v.origin = def.Pos()
				}
				return v, true
			}
		case pkg == "cmp" && name == "Or":
			for _, a := range x.Args {
				if v, ok := g.eval(a, depth+1); ok && v.s != "" {
					if !v.origin.IsValid() {
						v.origin = a.Pos()
					}
					v.note = "default when the environment sets nothing"
					return v, true
				}
			}
		case pkg == "" && len(x.Args) == 2 && strings.Contains(strings.ToLower(name), "env"):
			// getEnv("ADDR", ":8080"): the fallback of an environment lookup helper.
			if v, ok := g.eval(x.Args[1], depth+1); ok {
				if !v.origin.IsValid() {
					v.origin = x.Args[1].Pos()
				}
				v.note = "default when the environment sets nothing"
				return v, true
			}
		}
	}
	return value{}, false
}

func orPos(a, b token.Pos) token.Pos {
	if a.IsValid() {
		return a
	}
	return b
}

func orStr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// visit finds binds.
func (g *goPkg) visit(n ast.Node) bool {
	switch x := n.(type) {
	case *ast.CallExpr:
		g.call(x)
	case *ast.AssignStmt:
		// srv.Addr = "..." on an http.Server variable.
		if len(x.Lhs) == len(x.Rhs) {
			for i, l := range x.Lhs {
				sel, ok := l.(*ast.SelectorExpr)
				if !ok || sel.Sel.Name != "Addr" {
					continue
				}
				if o := g.obj(sel.X); o != nil && g.isType(g.declType[o], "net/http", "Server") {
					g.add(x, x.Rhs[i], "go-http-server", "tcp", true)
				}
			}
		}
	case *ast.CompositeLit:
		if g.isType(x.Type, "net/http", "Server") {
			for _, el := range x.Elts {
				kv, ok := el.(*ast.KeyValueExpr)
				if !ok {
					continue
				}
				if k, ok := kv.Key.(*ast.Ident); ok && k.Name == "Addr" {
					g.add(kv.Value, kv.Value, "go-http-server", "tcp", true)
				}
			}
		}
	}
	return true
}

func (g *goPkg) call(c *ast.CallExpr) {
	pkg, name, recv := g.callee(c)
	arg := func(i int) ast.Expr {
		if i < len(c.Args) {
			return c.Args[i]
		}
		return nil
	}
	switch {
	case pkg == "net" && name == "Listen" && g.freePortProbe(c, arg(1)):
		// Listened on port 0 only to learn a free port, and closed.
	case pkg == "net" && (name == "Listen" || name == "ListenPacket"):
		g.addNet(c, arg(0), arg(1), "go-listen")
	case pkg == "net" && (name == "ListenTCP" || name == "ListenUDP") && len(c.Args) == 2:
		g.addSockaddr(c, name, c.Args[1])
	case pkg == "crypto/tls" && name == "Listen":
		g.addNet(c, arg(0), arg(1), "go-listen")
	case pkg == "net/http" && (name == "ListenAndServe" || name == "ListenAndServeTLS"):
		g.add(c, arg(0), "go-http-listen", "tcp", true)
	case recv != nil && (name == "Listen" || name == "ListenPacket") && len(c.Args) == 3:
		if o := g.obj(recv); o != nil && g.isType(g.declType[o], "net", "ListenConfig") {
			g.addNet(c, arg(1), arg(2), "go-listen")
		} else if cl, ok := unparen(recv).(*ast.CompositeLit); ok && g.isType(cl.Type, "net", "ListenConfig") {
			g.addNet(c, arg(1), arg(2), "go-listen")
		} else if u, ok := unparen(recv).(*ast.UnaryExpr); ok {
			if cl, ok := u.X.(*ast.CompositeLit); ok && g.isType(cl.Type, "net", "ListenConfig") {
				g.addNet(c, arg(1), arg(2), "go-listen")
			}
		}
	case recv != nil && name == "Run":
		if g.initFrom(recv, "github.com/gin-gonic/gin", "Default", "New") {
			if len(c.Args) == 0 {
				g.addValue(c, value{s: ":8080", note: "gin's default when PORT is unset"}, "go-framework", "tcp", false)
			} else {
				g.add(c, arg(0), "go-framework", "tcp", false)
			}
		}
	case recv != nil && (name == "Start" || name == "StartTLS"):
		if g.initFrom(recv, "github.com/labstack/echo/v4", "New") || g.initFrom(recv, "github.com/labstack/echo", "New") {
			g.add(c, arg(0), "go-framework", "tcp", false)
		}
	}
}

// freePortProbe says whether net.Listen(network, addr) only picks a free port: addr's port is
// statically 0, the listener is assigned to a variable, and in the enclosing function that
// variable is only closed and asked its address (prometheus's testutil getPort: Listen(":0"),
// Close, Addr().Port), never accepted on, served, handed on, returned or stored.
func (g *goPkg) freePortProbe(c *ast.CallExpr, addr ast.Expr) bool {
	if addr == nil {
		return false
	}
	v, ok := g.evalTop(addr)
	if !ok {
		return false
	}
	if _, port, err := net.SplitHostPort(v.s); err != nil || port != "0" {
		return false
	}
	// The enclosing function, and the assignment whose right side is c.
	var body *ast.BlockStmt
	var lhs *ast.Ident
	path, _ := astutil.PathEnclosingInterval(g.file, c.Pos(), c.End())
	for _, n := range path {
		switch x := n.(type) {
		case *ast.AssignStmt:
			if lhs == nil && len(x.Rhs) == 1 && x.Rhs[0] == ast.Expr(c) {
				lhs, _ = x.Lhs[0].(*ast.Ident)
			}
		case *ast.FuncDecl:
			body = x.Body
		case *ast.FuncLit:
			body = x.Body
		}
		if body != nil {
			break
		}
	}
	if body == nil || lhs == nil {
		return false
	}
	o := g.info.Defs[lhs]
	if o == nil {
		o = g.info.Uses[lhs]
	}
	if o == nil {
		return false
	}
	closed, named, other := false, false, false
	var parents []ast.Node
	ast.Inspect(body, func(n ast.Node) bool {
		if n == nil {
			parents = parents[:len(parents)-1]
			return false
		}
		parents = append(parents, n)
		id, ok := n.(*ast.Ident)
		if !ok || id == lhs || g.info.Uses[id] != o {
			return true
		}
		// The only uses: l.Close() and l.Addr().
		if len(parents) >= 2 {
			if sel, ok := parents[len(parents)-2].(*ast.SelectorExpr); ok && sel.X == ast.Expr(id) {
				switch sel.Sel.Name {
				case "Close":
					closed = true
					return true
				case "Addr":
					named = true
					return true
				}
			}
		}
		other = true
		return true
	})
	return closed && named && !other
}

func unparen(e ast.Expr) ast.Expr {
	for {
		p, ok := e.(*ast.ParenExpr)
		if !ok {
			return e
		}
		e = p.X
	}
}

func (g *goPkg) initFrom(recv ast.Expr, pkg string, funcs ...string) bool {
	o := g.obj(recv)
	if o == nil {
		return false
	}
	c := g.initCall[o]
	if c == nil {
		return false
	}
	p, name, _ := g.callee(c)
	if p != pkg {
		return false
	}
	for _, f := range funcs {
		if f == name {
			return true
		}
	}
	return false
}

// addNet records a net.Listen-style bind: the network decides the protocol; unix sockets are
// not network listeners.
func (g *goPkg) addNet(at ast.Node, network, addr ast.Expr, kind string) {
	proto := policy.Protocol("tcp")
	if nv, ok := g.evalTop(network); ok {
		switch {
		case strings.HasPrefix(nv.s, "udp"):
			proto = "udp"
		case strings.HasPrefix(nv.s, "tcp"):
		default:
			return
		}
	}
	g.add(at, addr, kind, proto, false)
}

func (g *goPkg) add(at ast.Node, addr ast.Expr, kind string, proto policy.Protocol, httpDefault bool) {
	if addr == nil {
		return
	}
	v, ok := g.evalTop(addr)
	if !ok {
		// ":" + os.Getenv("PORT"), fmt.Sprintf(":%s", port): the host is known, the port not.
		host, ok := g.hostOnly(addr)
		if !ok {
			return
		}
		v = value{s: net.JoinHostPort(host, "0"), note: "port not known statically"}
	}
	g.addValue(at, v, kind, proto, httpDefault)
}

var namedPorts = map[string]int{"http": 80, "https": 443}

func (g *goPkg) addValue(at ast.Node, v value, kind string, proto policy.Protocol, httpDefault bool) {
	s := v.s
	if s == "" && httpDefault {
		s = ":http"
	}
	host, portStr, err := net.SplitHostPort(s)
	if err != nil {
		if s != "" {
			return
		}
		host, portStr = "", "0"
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		port = namedPorts[portStr]
	}
	pos := g.fset.Position(at.Pos())
	f := newFinding(g.names[g.file], pos.Line, kind, proto, host, "*", port)
	if v.origin.IsValid() {
		op := g.fset.Position(v.origin)
		if op.Filename != pos.Filename || op.Line != pos.Line {
			f.Origin = fmt.Sprintf("%s:%d", rel(g.root, op.Filename), op.Line)
		}
	}
	if v.note != "" {
		f.Origin = strings.TrimPrefix(f.Origin+": "+v.note, ": ")
	}
	g.out = append(g.out, f)
}

// constOrigin is where the first named constant in a constant expression is declared.
func (g *goPkg) constOrigin(e ast.Expr) token.Pos {
	var at token.Pos
	ast.Inspect(e, func(n ast.Node) bool {
		if id, ok := n.(*ast.Ident); ok && !at.IsValid() {
			if c, ok := g.info.Uses[id].(*types.Const); ok {
				at = c.Pos()
			}
		}
		return !at.IsValid()
	})
	return at
}

// goComments maps lines to the bindguard:allow comments on them.
func goComments(fset *token.FileSet, f *ast.File, src []byte) map[int]comment {
	out := map[int]comment{}
	for _, cg := range f.Comments {
		for _, c := range cg.List {
			if !strings.Contains(c.Text, "bindguard:allow") {
				continue
			}
			p := fset.Position(c.Pos())
			alone := true
			if p.Offset >= 0 && p.Offset <= len(src) {
				lineStart := strings.LastIndexByte(string(src[:p.Offset]), '\n') + 1
				alone = strings.TrimSpace(string(src[lineStart:p.Offset])) == ""
			}
			out[p.Line] = comment{text: c.Text, alone: alone}
		}
	}
	return out
}

// hostOnly evaluates the host of an address whose port is not static: a concatenation whose
// left part is a constant ending in ":" (":" + port), or a Sprintf whose format starts with a
// constant host and ":%" (":%s", "0.0.0.0:%d").
func (g *goPkg) hostOnly(e ast.Expr) (string, bool) {
	g.steps = maxEvalSteps
	switch x := unparen(e).(type) {
	case *ast.BinaryExpr:
		if x.Op != token.ADD {
			return "", false
		}
		if l, ok := g.eval(x.X, 0); ok && strings.HasSuffix(l.s, ":") && !strings.Contains(l.s, "%") {
			return strings.Trim(strings.TrimSuffix(l.s, ":"), "[]"), true
		}
		return g.hostOnly(x.X)
	case *ast.CallExpr:
		pkg, name, _ := g.callee(x)
		if pkg == "fmt" && name == "Sprintf" && len(x.Args) >= 1 {
			if f, ok := g.eval(x.Args[0], 0); ok {
				if i := strings.Index(f.s, ":%"); i >= 0 && !strings.Contains(f.s[:i], "%") {
					return strings.Trim(f.s[:i], "[]"), true
				}
			}
		}
		if pkg == "net" && name == "JoinHostPort" && len(x.Args) == 2 {
			if h, ok := g.eval(x.Args[0], 0); ok {
				return h.s, true
			}
		}
	}
	return "", false
}

// addSockaddr records net.ListenTCP/ListenUDP with a &net.TCPAddr{IP: ..., Port: ...} literal:
// no IP (or nil, net.IPv4zero, net.IPv6zero) is every interface.
func (g *goPkg) addSockaddr(c *ast.CallExpr, name string, arg ast.Expr) {
	u, ok := unparen(arg).(*ast.UnaryExpr)
	if !ok || u.Op != token.AND {
		return
	}
	cl, ok := u.X.(*ast.CompositeLit)
	if !ok || !(g.isType(cl.Type, "net", "TCPAddr") || g.isType(cl.Type, "net", "UDPAddr")) {
		return
	}
	proto := policy.Protocol("tcp")
	if name == "ListenUDP" {
		proto = "udp"
	}
	host, port := "", "0"
	for _, el := range cl.Elts {
		kv, ok := el.(*ast.KeyValueExpr)
		if !ok {
			return
		}
		k, _ := kv.Key.(*ast.Ident)
		if k == nil {
			return
		}
		switch k.Name {
		case "Port":
			v, ok := g.evalTop(kv.Value)
			if !ok {
				return
			}
			port = v.s
		case "IP":
			h, ok := g.ipExpr(kv.Value)
			if !ok {
				return
			}
			host = h
		}
	}
	g.addValue(c, value{s: net.JoinHostPort(host, port)}, "go-listen", proto, false)
}

// ipExpr evaluates a net.IP expression: net.ParseIP("..."), net.IPv4(a, b, c, d), nil and the
// net package's well-known addresses.
func (g *goPkg) ipExpr(e ast.Expr) (string, bool) {
	switch x := unparen(e).(type) {
	case *ast.Ident:
		return "", x.Name == "nil"
	case *ast.SelectorExpr:
		if g.pkgOf(x.X) != "net" {
			return "", false
		}
		switch x.Sel.Name {
		case "IPv4zero":
			return "0.0.0.0", true
		case "IPv6zero", "IPv6unspecified":
			return "::", true
		case "IPv6loopback":
			return "::1", true
		}
	case *ast.CallExpr:
		pkg, name, _ := g.callee(x)
		if pkg != "net" {
			return "", false
		}
		if name == "ParseIP" && len(x.Args) == 1 {
			if v, ok := g.evalTop(x.Args[0]); ok {
				return v.s, true
			}
		}
		if name == "IPv4" && len(x.Args) == 4 {
			parts := make([]string, 4)
			for i, a := range x.Args {
				v, ok := g.evalTop(a)
				if !ok {
					return "", false
				}
				parts[i] = v.s
			}
			return strings.Join(parts, "."), true
		}
	}
	return "", false
}
