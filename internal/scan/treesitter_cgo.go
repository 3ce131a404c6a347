//go:build cgo

package scan

import (
	"context"
	"fmt"
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
	root := &tsNode{}
	fill := func(n *tsNode, c *sitter.TreeCursor) {
		x := c.CurrentNode()
		n.typ, n.start, n.end = x.Type(), x.StartByte(), x.EndByte()
		n.line = int(x.StartPoint().Row) + 1
		n.missing = x.IsMissing()
		if x.IsError() {
			n.typ = "ERROR"
		}
	}
	fill(root, cur)
	// An explicit stack, not recursion: the depth of hostile input is the file's size.
	stack := []*tsNode{root}
	cut := false
	if cur.GoToFirstChild() {
		for {
			parent := stack[len(stack)-1]
			x := cur.CurrentNode()
			field := cur.CurrentFieldName()
			var n *tsNode
			if x.IsNamed() || field != "" || x.IsError() || x.IsMissing() {
				n = &tsNode{field: field, named: x.IsNamed()}
				fill(n, cur)
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
