package deptest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// classNames are policy's Access constants: only package policy may branch on them. Every
// other package asks policy's methods (Bind, Reach, PermitsBind, ...), so a class added to the
// policy is handled everywhere at once.
var classNames = map[string]bool{"LocalhostOnly": true, "ProxyOnly": true, "LAN": true, "Restricted": true, "Public": true}

const policyImport = "github.com/bindguard/bindguard/policy"

func TestNoClassSwitchOutsidePolicy(t *testing.T) {
	root := filepath.Join("..", "..")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", ".bin", "testdata", "policy":
				if d.Name() != "policy" || filepath.Dir(path) == root {
					return filepath.SkipDir
				}
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		for _, bad := range classBranches(t, path) {
			t.Errorf("%s: branches on an access class (%s); ask policy's class methods instead", bad.pos, bad.what)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

type branch struct {
	pos  token.Position
	what string
}

// classBranches finds, in one file, switch cases and ==/!= comparisons on policy's classes.
func classBranches(t *testing.T, path string) []branch {
	src, err := os.ReadFile(path) // #nosec G304 -- a file of this repository
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, src, 0)
	if err != nil {
		t.Fatal(err)
	}
	local := ""
	for _, imp := range f.Imports {
		if p, _ := strconv.Unquote(imp.Path.Value); p == policyImport {
			local = "policy"
			if imp.Name != nil {
				local = imp.Name.Name
			}
		}
	}
	if local == "" {
		return nil
	}
	isClass := func(e ast.Expr) bool {
		sel, ok := e.(*ast.SelectorExpr)
		if !ok {
			return false
		}
		x, ok := sel.X.(*ast.Ident)
		return ok && x.Name == local && classNames[sel.Sel.Name]
	}
	var out []branch
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CaseClause:
			for _, e := range n.List {
				if isClass(e) {
					out = append(out, branch{fset.Position(e.Pos()), "case " + local + "." + e.(*ast.SelectorExpr).Sel.Name})
				}
			}
		case *ast.BinaryExpr:
			if (n.Op == token.EQL || n.Op == token.NEQ) && (isClass(n.X) || isClass(n.Y)) {
				out = append(out, branch{fset.Position(n.Pos()), "comparison with a class"})
			}
		}
		return true
	})
	return out
}
