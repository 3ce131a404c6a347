package scan

import (
	"fmt"
	"path"
	"sort"
	"strings"
)

// Values across the files of one Python package tree.
//
// Every Python file is first scanned alone and summarised (pyMod): what it imports, the
// classes and functions it defines at module level, the callees of its calls, and whether one
// of its binds has a host that is not static in the file (a caller's: a method's parameter, a
// parameter whose default is None). Then, for each file whose calls resolve — through
// `import X`, `from X import Y`, relative imports and re-exports (`from .server import *` in a
// package's __init__.py) — to a class or function of such a file under the same root, the
// callee's file is read again with the callee's parameters bound to what the call passes (its
// static arguments, evaluated in the calling file, and the callee's own defaults for those it
// omits): a bind whose host came through them is reported at the call, its origin the
// argument's (the calling file's option, `registry.py:222: default of TCPRegistryServer's
// host`). `python -m pkg` runs pkg/__main__.py, which is one more file of the package.
//
// Bounds: summaries are computed once per file, in the parallel scan; the second pass reads
// only the calling files whose calls resolve to a file with a non-static bind host, parses
// each such callee file once per calling file, follows re-exports at most pyResolveDepth deep,
// and probes at most pyMaxProbes calls per file. One level only: a bind inside a third file
// (a base class's method defined elsewhere) is not followed.

const (
	pyResolveDepth = 6
	pyMaxProbes    = 64
)

// pyImport is one imported name: local is the name it is bound to in the importing module.
type pyImport struct {
	local  string // "aioftp", "TCPRegistryServer", "registry", "*"
	level  int    // leading dots of a relative import
	module string // dotted module ("rpyc.utils.registry"; "" for "from . import x")
	name   string // the imported name; "" for import X
}

// pyMod is one Python file's summary.
type pyMod struct {
	file    string // as in findings, relative to the root
	abs     string
	root    string
	flagged bool     // a bind's host is not static in the file
	bases   []string // the base classes of its module-level classes, as written
	reach   bool     // flagged, or a base class is a flagged file's (newPyIndex)
	defs    map[string]bool
	imports []pyImport
	callees []string        // call targets: "X", "mod.X", and "mod.Class.meth" for obj.meth() on obj = mod.Class(...)
	sites   map[string]bool // "LINE KIND" of the file's own findings
}

func (p *pyFile) summary() *pyMod {
	m := &pyMod{file: p.name, flagged: p.unknownHost, defs: map[string]bool{}, sites: map[string]bool{}}
	for _, k := range p.root.kids {
		d := k
		if d.typ == "decorated_definition" {
			d = d.get("definition")
		}
		if d != nil && (d.typ == "class_definition" || d.typ == "function_definition") {
			if nm := d.get("name"); nm != nil {
				m.defs[nm.text(p.src)] = true
			}
			for _, b := range d.get("superclasses").args() {
				if b.typ == "identifier" || b.typ == "attribute" {
					m.bases = append(m.bases, b.text(p.src))
				}
			}
		}
	}
	p.root.each(func(n *tsNode) {
		switch n.typ {
		case "import_statement":
			for _, k := range n.args() {
				mod, local := k.text(p.src), k.text(p.src)
				if k.typ == "aliased_import" {
					mod, local = k.get("name").text(p.src), k.get("alias").text(p.src)
				}
				m.imports = append(m.imports, pyImport{local: local, module: mod})
			}
		case "import_from_statement":
			mn := n.get("module_name")
			if mn == nil {
				return
			}
			imp := pyImport{module: mn.text(p.src)}
			if mn.typ == "relative_import" {
				imp.module = ""
				for _, k := range mn.kids {
					switch k.typ {
					case "import_prefix":
						imp.level = len(strings.TrimSpace(k.text(p.src)))
					case "dotted_name":
						imp.module = k.text(p.src)
					}
				}
			}
			for _, k := range n.args() {
				if k == mn {
					continue
				}
				i := imp
				switch k.typ {
				case "wildcard_import":
					i.local, i.name = "*", "*"
				case "aliased_import":
					i.name, i.local = k.get("name").text(p.src), k.get("alias").text(p.src)
				case "dotted_name":
					i.name, i.local = k.text(p.src), k.text(p.src)
				default:
					continue
				}
				m.imports = append(m.imports, i)
			}
		}
	})
	seen := map[string]bool{}
	for c, calls := range p.calls {
		seen[c] = true
		if obj, meth, ok := strings.Cut(c, "."); ok && !strings.Contains(meth, ".") && obj != "self" && obj != "cls" {
			for _, n := range calls {
				if r := p.deref(n.get("function").get("object")); r != nil && r.typ == "call" {
					seen[r.get("function").text(p.src)+"."+meth] = true
				}
			}
		}
	}
	for c := range seen {
		m.callees = append(m.callees, c)
	}
	sort.Strings(m.callees)
	for _, f := range p.out {
		m.sites[fmt.Sprintf("%d %s", f.Line, f.Kind)] = true
	}
	return m
}

// probeNode stands for a parameter's value given by another file's call; a tuple's elements
// (an address (host, port)) are a tuple of them.
func (p *pyFile) probeNode(prm *tsNode, v tsValue) *tsNode {
	s := &tsNode{typ: synProbe, named: true, start: prm.start, end: prm.end, line: prm.line, parent: prm.parent}
	p.probeNodes[s] = v
	if els := p.probeElems[s.start]; len(els) > 0 && !v.known {
		t := &tsNode{typ: "tuple", named: true, start: prm.start, end: prm.start, line: prm.line, parent: prm.parent}
		for _, e := range els {
			k := &tsNode{typ: synProbe, named: true, start: prm.start, end: prm.start, line: prm.line, parent: t}
			p.probeNodes[k] = e
			t.kids = append(t.kids, k)
		}
		return t
	}
	return s
}

// pyExt is what a probed file needs to follow a call one file further: a method of a base
// class defined in another file of the root (pyftpdlib's FTPServer.__init__ calling
// self.bind_af_unspecified of its base Acceptor, in ioloop.py).
type pyExt struct {
	ix    *pyIndex
	mod   *pyMod
	files map[string]*pyFile
	read  func(*pyMod) ([]byte, error)
	depth int
}

// file is the parsed file of a module, once per pass.
func (e *pyExt) file(m *pyMod) *pyFile {
	if pa := e.files[m.file]; pa != nil {
		return pa
	}
	b, err := e.read(m)
	if err != nil {
		return nil
	}
	pa, _, err := parsePython(m.file, b)
	if err != nil {
		return nil
	}
	e.files[m.file] = pa
	return pa
}

// baseCall follows self.m(...) (in a probe) to the method m of a base class of the enclosing
// class defined in another file, when the class has no m of its own.
func (p *pyFile) baseCall(n *tsNode) {
	e := p.ext
	fnNode := n.get("function")
	if e == nil || e.depth >= 1 || fnNode == nil || fnNode.typ != "attribute" || fnNode.get("object").text(p.src) != "self" {
		return
	}
	c := n.enclosing("class_definition")
	if c == nil || c.enclosing("function_definition", "class_definition") != nil {
		return
	}
	meth := fnNode.get("attribute").text(p.src)
	if fn, _ := p.defOf(c.get("name").text(p.src), meth); fn != nil {
		return
	}
	for _, b := range c.get("superclasses").args() {
		if b.typ != "identifier" && b.typ != "attribute" {
			continue
		}
		t, _, ok := e.ix.callee(e.mod, b.text(p.src))
		if !ok || !t.mod.flagged {
			continue
		}
		pa := e.file(t.mod)
		if pa == nil || pa == p {
			continue
		}
		pa.ext = &pyExt{ix: e.ix, mod: t.mod, files: e.files, read: e.read, depth: e.depth + 1}
		p.out = append(p.out, p.probeCall(n, pa, t.def, meth)...)
		pa.ext = nil
		return
	}
}

// pyIndex resolves modules and names among the Python files of one root.
type pyIndex struct {
	mods     map[string]*pyMod   // by file
	bySuffix map[string][]string // "utils/registry.py" -> files ending so
	cache    map[string]pyTarget
}

// pyTarget is a resolved name: a module (def == "") or a class or function of one.
type pyTarget struct {
	mod *pyMod
	def string
}

func newPyIndex(mods []*pyMod) *pyIndex {
	ix := &pyIndex{mods: map[string]*pyMod{}, bySuffix: map[string][]string{}, cache: map[string]pyTarget{}}
	for _, m := range mods {
		ix.mods[m.file] = m
		parts := strings.Split(m.file, "/")
		for i := range parts {
			s := strings.Join(parts[i:], "/")
			ix.bySuffix[s] = append(ix.bySuffix[s], m.file)
		}
	}
	for _, l := range ix.bySuffix {
		sort.Strings(l)
	}
	for _, m := range mods {
		m.reach = m.flagged
		for _, b := range m.bases {
			if t, _, ok := ix.callee(m, b); ok && t.mod.flagged {
				m.reach = true
			}
		}
	}
	return ix
}

// moduleFile is the file of a module imported from m: relative to m's package for level > 0,
// else the file ending in its path that shares the longest directory prefix with m (the same
// package tree), the first by name on a tie.
func (ix *pyIndex) moduleFile(m *pyMod, level int, dotted string) *pyMod {
	rel := strings.ReplaceAll(dotted, ".", "/")
	if level > 0 {
		dir := path.Dir(m.file)
		for i := 1; i < level; i++ {
			dir = path.Dir(dir)
		}
		for _, c := range []string{path.Join(dir, rel) + ".py", path.Join(dir, rel, "__init__.py")} {
			if rel == "" && strings.HasSuffix(c, "/.py") {
				continue
			}
			if t := ix.mods[strings.TrimPrefix(c, "./")]; t != nil {
				return t
			}
		}
		return nil
	}
	if rel == "" {
		return nil
	}
	var best *pyMod
	bestLen := -1
	for _, suf := range []string{rel + ".py", rel + "/__init__.py"} {
		for _, f := range ix.bySuffix[suf] {
			if f != suf && !strings.HasSuffix(f, "/"+suf) {
				continue
			}
			if l := commonDirs(f, m.file); l > bestLen {
				best, bestLen = ix.mods[f], l
			}
		}
	}
	return best
}

func commonDirs(a, b string) int {
	x, y := strings.Split(a, "/"), strings.Split(b, "/")
	n := 0
	for n < len(x)-1 && n < len(y)-1 && x[n] == y[n] {
		n++
	}
	return n
}

// resolve is what name means in module m: its own class or function, else what it imports
// under that name (re-exports, star imports), else a submodule of a package.
func (ix *pyIndex) resolve(m *pyMod, name string, depth int) (pyTarget, bool) {
	if m == nil || depth > pyResolveDepth {
		return pyTarget{}, false
	}
	key := fmt.Sprintf("%s\x00%s", m.file, name)
	if t, ok := ix.cache[key]; ok {
		return t, t.mod != nil
	}
	ix.cache[key] = pyTarget{} // a cycle ends unresolved
	t, ok := ix.resolveUncached(m, name, depth)
	ix.cache[key] = t
	return t, ok
}

func (ix *pyIndex) resolveUncached(m *pyMod, name string, depth int) (pyTarget, bool) {
	if m.defs[name] {
		return pyTarget{mod: m, def: name}, true
	}
	for _, imp := range m.imports {
		if imp.name != "" && imp.name != "*" && imp.local == name {
			if t, ok := ix.imported(m, imp, depth+1); ok {
				return t, true
			}
		}
	}
	for _, imp := range m.imports {
		if imp.name == "*" {
			if t, ok := ix.resolve(ix.moduleFile(m, imp.level, imp.module), name, depth+1); ok {
				return t, true
			}
		}
	}
	if path.Base(m.file) == "__init__.py" {
		if sub := ix.moduleFile(m, 1, name); sub != nil {
			return pyTarget{mod: sub}, true
		}
	}
	return pyTarget{}, false
}

// imported is what `from module import name` binds.
func (ix *pyIndex) imported(m *pyMod, imp pyImport, depth int) (pyTarget, bool) {
	src := ix.moduleFile(m, imp.level, imp.module)
	if t, ok := ix.resolve(src, imp.name, depth); ok {
		return t, true
	}
	mod := imp.name
	if imp.module != "" {
		mod = imp.module + "." + imp.name
	}
	if sub := ix.moduleFile(m, imp.level, mod); sub != nil {
		return pyTarget{mod: sub}, true
	}
	return pyTarget{}, false
}

// callee resolves a call target as written in m ("X", "mod.X", "pkg.mod.X", "mod.Class.meth")
// to a class or function of another file, and a method name when it is one ("" for a class's
// constructor or a function).
func (ix *pyIndex) callee(m *pyMod, c string) (pyTarget, string, bool) {
	if t, ok := ix.calleeDef(m, c); ok {
		return t, "", true
	}
	if i := strings.LastIndexByte(c, '.'); i > 0 {
		if t, ok := ix.calleeDef(m, c[:i]); ok {
			return t, c[i+1:], true
		}
	}
	return pyTarget{}, "", false
}

func (ix *pyIndex) calleeDef(m *pyMod, c string) (pyTarget, bool) {
	if c == "" || m.defs[c] {
		return pyTarget{}, false // the file's own
	}
	parts := strings.Split(c, ".")
	var t pyTarget
	found := false
	// The longest import prefix: "import a.b" binds a.b; "from a import b" binds b.
	for n := len(parts); n >= 1 && !found; n-- {
		head := strings.Join(parts[:n], ".")
		for _, imp := range m.imports {
			if imp.local != head {
				continue
			}
			if imp.name == "" {
				if mod := ix.moduleFile(m, 0, imp.module); mod != nil {
					t, found = pyTarget{mod: mod}, true
				}
			} else if r, ok := ix.imported(m, imp, 0); ok {
				t, found = r, true
			}
			if found {
				parts = parts[n:]
				break
			}
		}
	}
	if !found && len(parts) == 1 {
		for _, imp := range m.imports {
			if imp.name == "*" {
				if r, ok := ix.resolve(ix.moduleFile(m, imp.level, imp.module), parts[0], 0); ok {
					t, found, parts = r, true, nil
					break
				}
			}
		}
	}
	if !found {
		return pyTarget{}, false
	}
	for _, name := range parts {
		if t.def != "" {
			return pyTarget{}, false // an attribute of a class: not followed
		}
		r, ok := ix.resolve(t.mod, name, 0)
		if !ok {
			return pyTarget{}, false
		}
		t = r
	}
	return t, t.def != "" && t.mod != m
}

// candidate says whether one of m's calls resolves to a file with a non-static bind host.
func (ix *pyIndex) candidate(m *pyMod) bool {
	for _, c := range m.callees {
		if t, _, ok := ix.callee(m, c); ok && t.mod.reach {
			return true
		}
	}
	return false
}

// crossFile reads the calls of m (source src) that resolve to another file's class or
// function whose binds take their host from the call, and reports those binds at the call.
func (ix *pyIndex) crossFile(m *pyMod, src []byte, read func(*pyMod) ([]byte, error)) []Finding {
	pb, _, err := parsePython(m.file, src)
	if err != nil {
		return nil
	}
	files := map[string]*pyFile{}
	var out []Finding
	probes := 0
	pb.root.each(func(n *tsNode) {
		if n.typ != "call" || probes >= pyMaxProbes {
			return
		}
		fnNode := n.get("function")
		if fnNode == nil {
			return
		}
		c := fnNode.text(pb.src)
		t, meth, ok := ix.callee(m, c)
		if !ok && fnNode.typ == "attribute" {
			if r := pb.deref(fnNode.get("object")); r != nil && r.typ == "call" {
				t, meth, ok = ix.callee(m, r.get("function").text(pb.src)+"."+fnNode.get("attribute").text(pb.src))
				if meth == "" {
					ok = false
				}
			}
		}
		if !ok || !t.mod.reach {
			return
		}
		ext := &pyExt{ix: ix, mod: t.mod, files: files, read: read}
		pa := ext.file(t.mod)
		if pa == nil {
			return
		}
		probes++
		pa.ext = ext
		out = append(out, pb.probeCall(n, pa, t.def, meth)...)
		pa.ext = nil
	})
	kept := out[:0]
	for _, f := range out {
		if !m.sites[fmt.Sprintf("%d %s", f.Line, f.Kind)] {
			m.sites[fmt.Sprintf("%d %s", f.Line, f.Kind)] = true
			kept = append(kept, f)
		}
	}
	c := commentsOf(pb.root, pb.src, "#")
	for i := range kept {
		kept[i].comments = c
		if isTestPath(m.file, langPython) {
			kept[i].Context = ContextTest
		}
	}
	return kept
}

// defOf is the module-level class or function def of pa, or the method meth of class def
// (__init__ for its constructor).
func (pa *pyFile) defOf(def, meth string) (fn *tsNode, method bool) {
	top := func(list []*tsNode) *tsNode {
		for _, d := range list {
			if d.enclosing("function_definition", "class_definition") == nil {
				return d
			}
		}
		return nil
	}
	if c := top(pa.classDefs[def]); c != nil {
		if meth == "" {
			meth = "__init__"
		}
		for _, k := range c.get("body").args() {
			if k.typ == "decorated_definition" {
				k = k.get("definition")
			}
			if k != nil && k.typ == "function_definition" && k.get("name").text(pa.src) == meth {
				return k, true
			}
		}
		return nil, false
	}
	if meth != "" {
		return nil, false
	}
	return top(pa.funcs[def]), false
}

// arg is an argument's value as the callee's parameter: its origin the argument's line when
// it is the call's own.
func (p *pyFile) arg(a *tsNode) tsValue {
	v := p.value(a, 0)
	if v.known && v.origin == "" {
		v.origin = fmt.Sprintf("%s:%d", p.name, a.line)
	}
	return v
}

// probeCall binds the parameters of the callee (def/meth of pa) to what call (in p) passes and
// reads pa's binds through them; those found are reported at the call.
func (p *pyFile) probeCall(call *tsNode, pa *pyFile, def, meth string) []Finding {
	fn, method := pa.defOf(def, meth)
	if fn == nil {
		return nil
	}
	args := call.get("arguments")
	if args == nil || args.typ != "argument_list" {
		return nil
	}
	// After *argv positions are unknown; with **kw an omitted parameter may be in it. A
	// keyword given by name is known either way.
	splat, kwSplat := false, false
	for _, a := range args.args() {
		splat = splat || a.typ == "list_splat"
		kwSplat = kwSplat || a.typ == "dictionary_splat"
	}
	pos, kw := pyArgs(args, p.src)
	if splat {
		pos = nil
	}
	callee := def
	if meth != "" {
		callee = def + "." + meth
	}
	vals := map[string]tsValue{}
	elems := map[uint32][]tsValue{}
	i, kwOnly := 0, false
	prms := fn.get("parameters").args()
	if method && len(prms) > 0 {
		prms = prms[1:]
	}
	for _, prm := range prms {
		switch prm.typ {
		case "keyword_separator", "list_splat_pattern":
			kwOnly = true
			continue
		case "positional_separator", "dictionary_splat_pattern":
			continue
		}
		name := paramName(prm, pa.src)
		if name == "" {
			continue
		}
		at := i
		if kwOnly {
			at = -1
		}
		i++
		if splat && kw[name] == nil {
			vals[name] = tsValue{}
			continue
		}
		if a := argAt(pos, kw, at, name); a != nil {
			v := p.arg(a)
			if !p.probing {
				v.probe = v.known // what the outermost call gives; further in, only what it gave
			}
			vals[name] = v
			if d := p.deref(a); d != nil && d.typ == "tuple" && len(d.args()) >= 2 && len(d.args()) <= 4 {
				for _, el := range d.args() {
					ev := p.arg(el)
					if !p.probing {
						ev.probe = ev.known
					}
					elems[prm.start] = append(elems[prm.start], ev)
				}
			}
			continue
		}
		if d := prm.get("value"); d != nil && !kwSplat {
			v := pa.value(d, 0)
			if v.known {
				v.origin = fmt.Sprintf("%s:%d: default of %s's %s", pa.name, d.line, callee, name)
				v.probe = !p.probing
			}
			vals[name] = v
			continue
		}
		vals[name] = tsValue{}
	}
	pa.probe = map[*tsNode]map[string]tsValue{fn: vals}
	pa.probeElems = elems
	pa.probing = true
	saved := pa.out
	pa.out = nil
	pa.root.each(func(n *tsNode) {
		if n.typ == "call" {
			pa.call(n)
			pa.baseCall(n)
		}
	})
	found := pa.out
	pa.out, pa.probe, pa.probeElems, pa.probing = saved, nil, nil, false
	clear(pa.probeNodes)
	line := call.line
	if f := call.get("function"); f.typ == "attribute" {
		line = f.get("attribute").line
	}
	var out []Finding
	for _, f := range found {
		g := newFinding(p.name, line, f.Kind, f.Protocol, f.Address, "0.0.0.0", f.Port)
		g.Origin = f.Origin
		if g.Origin == fmt.Sprintf("%s:%d", p.name, line) {
			g.Origin = "" // the call's own argument
		}
		g.Subject = fmt.Sprintf("%s: %s at %s:%d, through this call", callee, f.Subject, pa.name, f.Line)
		out = append(out, g)
	}
	return out
}
