//go:build cgo

package scan

import (
	"context"
	"fmt"
	"sort"
	"time"

	sitter "github.com/smacker/go-tree-sitter"
	"github.com/smacker/go-tree-sitter/javascript"
	"github.com/smacker/go-tree-sitter/python"
	"github.com/smacker/go-tree-sitter/typescript/tsx"
	"github.com/smacker/go-tree-sitter/typescript/typescript"
)

// treeSitter says this build parses Python, JavaScript and TypeScript (tree-sitter, cgo).
const treeSitter = true

// parseTimeout bounds one file's parse; tree-sitter is linear, so only hostile input nears it.
const parseTimeout = 10 * time.Second

func tsLanguage(l tsLang) *sitter.Language {
	switch l {
	case langPython:
		return python.GetLanguage()
	case langJS:
		return javascript.GetLanguage()
	case langTS:
		return typescript.GetLanguage()
	}
	return tsx.GetLanguage()
}

// parseTS parses src with the grammar of l into a tree of plain Go nodes (named nodes, and
// anonymous ones that fill a field, such as an operator), so the scanners never hold C
// memory. Nesting deeper than maxDepth is cut, and said.
func parseTS(l tsLang, src []byte) (*tsNode, error) {
	p := sitter.NewParser()
	defer p.Close()
	p.SetLanguage(tsLanguage(l))
	ctx, cancel := context.WithTimeout(context.Background(), parseTimeout)
	defer cancel()
	tree, err := p.ParseCtx(ctx, nil, src)
	if err != nil {
		return nil, fmt.Errorf("%s parser: %w", l, err)
	}
	defer tree.Close()
	cur := sitter.NewTreeCursor(tree.RootNode())
	defer cur.Close()
	lang := tsLanguage(l)
	// Per-symbol type names and namedness, and lines from a table of line starts: each saves a
	// cgo call per node, and cgo calls are most of the cost.
	type symInfo struct {
		typ   string
		named bool
	}
	syms := map[sitter.Symbol]symInfo{}
	lines := []uint32{0}
	for i, c := range src {
		if c == '\n' {
			lines = append(lines, uint32(i+1))
		}
	}
	lineOf := func(off uint32) int {
		return sort.Search(len(lines), func(i int) bool { return lines[i] > off })
	}
	root := &tsNode{}
	info := func(x *sitter.Node) symInfo {
		sym := x.Symbol()
		si, ok := syms[sym]
		if !ok {
			si = symInfo{typ: lang.SymbolName(sym), named: lang.SymbolType(sym) == sitter.SymbolTypeRegular}
			syms[sym] = si
		}
		return si
	}
	// Only a tree with an error is asked, node by node, where the error is.
	hasErr := tree.RootNode().HasError()
	isErr := func(x *sitter.Node) bool { return hasErr && (x.IsError() || x.IsMissing()) }
	fill := func(n *tsNode, x *sitter.Node, si symInfo) {
		n.typ, n.start, n.end = si.typ, x.StartByte(), x.EndByte()
		n.line = lineOf(n.start)
		if isErr(x) {
			n.typ, n.missing = "ERROR", x.IsMissing()
		}
	}
	{
		x := cur.CurrentNode()
		fill(root, x, info(x))
	}
	// An explicit stack, not recursion: the depth of hostile input is the file's size.
	stack := []*tsNode{root}
	cut := false
	if cur.GoToFirstChild() {
		for {
			parent := stack[len(stack)-1]
			x := cur.CurrentNode()
			si := info(x)
			field := cur.CurrentFieldName()
			var n *tsNode
			if si.named || field != "" || isErr(x) {
				n = &tsNode{field: field, named: si.named}
				fill(n, x, si)
				parent.kids = append(parent.kids, n)
			}
			if n != nil && len(stack) < maxDepth && cur.GoToFirstChild() {
				stack = append(stack, n)
				continue
			}
			if n != nil && len(stack) >= maxDepth && x.ChildCount() > 0 {
				cut = true
			}
			for !cur.GoToNextSibling() {
				if !cur.GoToParent() || len(stack) == 1 {
					goto done
				}
				stack = stack[:len(stack)-1]
			}
		}
	}
done:
	if cut {
		root.cut = true
	}
	return root, nil
}
