package scan

import (
	"errors"
	"fmt"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// maxYAMLDepth bounds recursion over a YAML tree.
const maxYAMLDepth = 64

// parseYAML parses every document of a YAML file, or returns a problem at the error's line.
func parseYAML(name, format string, src []byte) ([]ast.Node, *Problem) {
	file, err := parser.ParseBytes(src, 0)
	if err != nil {
		p := &Problem{File: name, Msg: format + ": YAML syntax: " + err.Error()}
		var ye yaml.Error
		if errors.As(err, &ye) && ye.GetToken() != nil {
			p.Line = ye.GetToken().Position.Line
			p.Msg = format + ": YAML syntax: " + ye.GetMessage()
		}
		return nil, p
	}
	var out []ast.Node
	for _, d := range file.Docs {
		if d != nil && d.Body != nil {
			out = append(out, d.Body)
		}
	}
	return out, nil
}

// unwrap looks through tags and anchors.
func unwrap(n ast.Node) ast.Node {
	for range maxYAMLDepth {
		switch x := n.(type) {
		case *ast.TagNode:
			n = x.Value
		case *ast.AnchorNode:
			n = x.Value
		default:
			return n
		}
	}
	return n
}

// pairs returns a mapping's key/value pairs (nil if n is not a mapping).
func pairs(n ast.Node) []*ast.MappingValueNode {
	switch x := unwrap(n).(type) {
	case *ast.MappingNode:
		return x.Values
	case *ast.MappingValueNode:
		return []*ast.MappingValueNode{x}
	}
	return nil
}

// get returns a mapping's value for a key.
func get(n ast.Node, key string) ast.Node {
	for _, kv := range pairs(n) {
		if scalar(kv.Key) == key {
			return unwrap(kv.Value)
		}
	}
	return nil
}

// items returns a sequence's elements.
func items(n ast.Node) []ast.Node {
	if s, ok := unwrap(n).(*ast.SequenceNode); ok {
		return s.Values
	}
	return nil
}

// scalar is a scalar's value as text ("" for collections and nulls).
func scalar(n ast.Node) string {
	switch x := unwrap(n).(type) {
	case nil:
		return ""
	case *ast.StringNode:
		return x.Value
	case *ast.IntegerNode:
		return fmt.Sprint(x.Value)
	case *ast.BoolNode:
		return fmt.Sprint(x.Value)
	case *ast.LiteralNode:
		return x.Value.Value
	case *ast.NullNode, *ast.MappingNode, *ast.MappingValueNode, *ast.SequenceNode:
		return ""
	default:
		if x.GetToken() != nil {
			return strings.Trim(x.GetToken().Value, `"'`)
		}
	}
	return ""
}

// lineOf is a node's line.
func lineOf(n ast.Node) int {
	if n == nil {
		return 0
	}
	if t := n.GetToken(); t != nil && t.Position != nil {
		return t.Position.Line
	}
	return 0
}
