package policy

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/lexer"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// Limits on what Parse reads. A policy is small; these bound the work an outsized or hostile
// file can cause.
const (
	// MaxFileSize is the largest policy file read, in bytes (16 MiB: about 100,000 services or
	// 700,000 allow-list entries).
	MaxFileSize = 16 << 20
	// MaxNesting is the deepest nesting of YAML collections written on one line, that is flow
	// collections ([...], {...}) inside each other or block sequences opened on one line
	// ("- - -"). A policy needs three.
	MaxNesting = 32
	// MaxProblems is how many problems one file reports before it stops listing them.
	MaxProblems = 200
	// MaxAllowPrefixes bounds the prefixes all allow lists expand to together, network names
	// counted once per use: a network of 100,000 prefixes named by 20,000 services would
	// otherwise expand a 3 MB file into two billion prefixes.
	MaxAllowPrefixes = 1 << 20
)

// decoder turns a YAML document into values, reporting every problem with its position and
// field path. It reads goccy/go-yaml's AST rather than decoding into structs so that each value
// keeps its place in the file and every problem can be reported at once.
type decoder struct {
	ps *problems
	// catalogue reads the embedded catalogue, whose services also carry a category.
	catalogue  bool
	categories []Category
	// dropIn reads a drop-in file, which holds scopes only.
	dropIn bool
}

// document checks the raw bytes, parses them and returns the single document's root node, or
// nil after reporting why there is none.
func (d *decoder) document(src []byte) ast.Node {
	if len(src) > MaxFileSize {
		d.ps.add(Position{}, "", "file is %d bytes; the limit is %d (MaxFileSize)", len(src), MaxFileSize)
		return nil
	}
	text, _ := strings.CutPrefix(string(src), "\ufeff")
	if !d.checkText(text) {
		return nil
	}
	tokens := lexer.Tokenize(text)
	if !d.checkNesting(tokens) {
		return nil
	}
	file, err := parser.Parse(tokens, 0, parser.AllowDuplicateMapKey())
	if err != nil {
		d.syntaxError(err, text)
		return nil
	}
	var body ast.Node
	for i, doc := range file.Docs {
		if i == 1 {
			at := Position{}
			if doc.Start != nil {
				at = tokenPos(doc.Start)
			} else if doc.Body != nil {
				at = posOf(doc.Body)
			}
			d.ps.add(at, "", "a policy is one YAML document; remove the second (\"---\") and anything after it")
			return nil
		}
		body = doc.Body
	}
	if body == nil {
		if d.dropIn {
			d.ps.add(Position{Line: 1, Column: 1}, "", "drop-in is empty: it must declare `scopes:`")
		} else {
			d.ps.add(Position{Line: 1, Column: 1}, "", "policy is empty: it must declare `version: 1` and `services:`")
		}
		return nil
	}
	if _, ok := body.(*ast.DirectiveNode); ok {
		d.ps.add(posOf(body), "", "YAML directives (%%YAML, %%TAG) are not supported")
		return nil
	}
	d.forbidFeatures(body, "")
	return body
}

// checkText rejects bytes that are not UTF-8 and reports control characters, which have no
// place in a policy and can hide text on a terminal. It returns false if parsing cannot go on.
func (d *decoder) checkText(src string) bool {
	line, col := 1, 1
	for i := 0; i < len(src); {
		r, size := utf8.DecodeRuneInString(src[i:])
		if r == utf8.RuneError && size == 1 {
			d.ps.add(Position{Line: line, Column: col}, "", "file is not valid UTF-8 (byte 0x%02x)", src[i])
			return false
		}
		if r == '\n' {
			line, col = line+1, 1
			i += size
			continue
		}
		// Tab and CR are YAML whitespace; U+2028 and U+2029 are plain characters to YAML 1.2, and
		// Validate refuses them in every value they could reach.
		if r != '\t' && r != '\r' && r != 0x2028 && r != 0x2029 && UnsafeRune(r) {
			d.ps.add(Position{Line: line, Column: col}, "", "control character %U is not allowed", r)
		}
		i += size
		col++
	}
	return true
}

// checkNesting bounds nesting before the parser sees the tokens: the parser's cost grows
// faster than linearly with depth (100,000 nested "[" take it 45 s).
func (d *decoder) checkNesting(tokens token.Tokens) bool {
	depth, line, dashes := 0, 0, 0
	for _, tk := range tokens {
		switch tk.Type {
		case token.SequenceStartType, token.MappingStartType:
			depth++
			if depth > MaxNesting {
				d.ps.add(tokenPos(tk), "", "collections nest deeper than %d levels (MaxNesting)", MaxNesting)
				return false
			}
		case token.SequenceEndType, token.MappingEndType:
			depth--
		case token.SequenceEntryType:
			if tk.Position.Line != line {
				line, dashes = tk.Position.Line, 0
			}
			dashes++
			if dashes > MaxNesting {
				d.ps.add(tokenPos(tk), "", "more than %d sequences opened on one line (MaxNesting)", MaxNesting)
				return false
			}
		}
	}
	return true
}

// syntaxError reports a parser error at its position, with a hint for the commonest slip.
func (d *decoder) syntaxError(err error, src string) {
	var ye yaml.Error
	if !errors.As(err, &ye) || ye.GetToken() == nil {
		d.ps.add(Position{}, "", "YAML syntax: %v", err)
		return
	}
	at := tokenPos(ye.GetToken())
	msg := "YAML syntax: " + ye.GetMessage()
	if lines := strings.Split(src, "\n"); at.Line >= 1 && at.Line <= len(lines) {
		if l := strings.TrimRight(lines[at.Line-1], " \t\r"); strings.HasSuffix(l, ":") && strings.Contains(l, "::") {
			msg += ` (an IPv6 address ending in ":" must be quoted, e.g. address: "::")`
		}
	}
	d.ps.add(at, "", "%s", msg)
}

// forbidFeatures reports YAML features a policy must not use: anchors and aliases (a policy is
// read by people; what it says must stand where it is said), merge keys, tags and complex keys.
func (d *decoder) forbidFeatures(n ast.Node, path string) {
	switch v := n.(type) {
	case *ast.AnchorNode:
		d.ps.add(posOf(v), path, "YAML anchors (&) are not allowed in a policy; write the value out")
		d.forbidFeatures(v.Value, path)
	case *ast.AliasNode:
		d.ps.add(posOf(v), path, "YAML aliases (*) are not allowed in a policy; write the value out")
	case *ast.TagNode:
		d.ps.add(posOf(v), path, "YAML tags (%s) are not allowed in a policy", v.Start.Value)
		d.forbidFeatures(v.Value, path)
	case *ast.MappingNode:
		for _, mv := range v.Values {
			d.forbidFeatures(mv, path)
		}
	case *ast.MappingValueNode:
		switch k := v.Key.(type) {
		case *ast.MergeKeyNode:
			d.ps.add(posOf(k), path, "YAML merge keys (<<) are not allowed in a policy; write the fields out")
		case *ast.MappingKeyNode:
			d.ps.add(posOf(k), path, "complex mapping keys (?) are not allowed in a policy")
		case *ast.AnchorNode, *ast.AliasNode, *ast.TagNode:
			d.forbidFeatures(k, path)
		}
		d.forbidFeatures(v.Value, joinPath(path, keyText(v.Key)))
	case *ast.SequenceNode:
		for i, e := range v.Values {
			d.forbidFeatures(e, indexPath(path, i))
		}
	}
}

// entry is one key of a mapping.
type entry struct {
	key    string
	keyPos Position
	value  ast.Node
}

// mapping returns the entries of a mapping node in order, reporting duplicate keys (the first
// one wins) and keys that are not scalars.
func (d *decoder) mapping(n ast.Node, path, what string) ([]entry, bool) {
	n = unwrap(n)
	m, ok := n.(*ast.MappingNode)
	if !ok {
		if n != nil {
			d.ps.add(posOf(n), path, "must be %s, got %s", what, describe(n))
		}
		return nil, false
	}
	seen := make(map[string]Position, len(m.Values))
	entries := make([]entry, 0, len(m.Values))
	for _, mv := range m.Values {
		k := unwrap(mv.Key)
		switch k.(type) {
		case *ast.MergeKeyNode, *ast.MappingKeyNode, nil:
			continue // reported by forbidFeatures
		case *ast.StringNode, *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode:
		default:
			d.ps.add(posOf(k), path, "mapping keys must be plain names, got %s", describe(k))
			continue
		}
		key := keyText(k)
		at := posOf(k)
		if first, dup := seen[key]; dup {
			d.ps.add(at, joinPath(path, key), "duplicate key (first at line %d); a key may appear once", first.Line)
			continue
		}
		seen[key] = at
		entries = append(entries, entry{key: key, keyPos: at, value: mv.Value})
	}
	return entries, true
}

// object is a mapping read against a fixed set of field names.
type object struct {
	path   string
	pos    Position
	fields map[string]entry
	// misspelled holds known fields an unknown key was taken for, so that "missing" is not
	// reported for them as well.
	misspelled map[string]bool
}

// object reads a mapping whose keys must all be in known, reporting unknown ones with a
// suggestion.
func (d *decoder) object(n ast.Node, path, what string, known ...string) (object, bool) {
	entries, ok := d.mapping(n, path, what)
	if !ok {
		return object{}, false
	}
	o := object{path: path, pos: posOf(unwrap(n)), fields: make(map[string]entry, len(entries)), misspelled: map[string]bool{}}
	for _, e := range entries {
		if !slices.Contains(known, e.key) {
			msg := fmt.Sprintf("unknown field %q", e.key)
			if s := suggest(e.key, known); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
				o.misspelled[s] = true
			} else {
				msg += " (fields: " + strings.Join(known, ", ") + ")"
			}
			d.ps.add(e.keyPos, joinPath(path, e.key), "%s", msg)
			continue
		}
		o.fields[e.key] = e
	}
	return o, true
}

func (o object) get(key string) (ast.Node, bool) {
	e, ok := o.fields[key]
	return e.value, ok
}

func (o object) field(key string) string { return joinPath(o.path, key) }

// str reads a scalar as text. Numbers and booleans are taken as written; null, lists and
// mappings are refused, and so are control characters that quoted escapes can produce.
func (d *decoder) str(n ast.Node, path string) (string, bool) {
	n = unwrap(n)
	var s string
	switch v := n.(type) {
	case *ast.StringNode:
		s = v.Value
	case *ast.LiteralNode:
		s = strings.TrimSuffix(v.Value.Value, "\n")
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		s = v.GetToken().Value
	case nil:
		return "", false
	default:
		d.ps.add(posOf(n), path, "must be a string, got %s", describe(n))
		return "", false
	}
	for _, r := range s {
		if UnsafeRune(r) {
			d.ps.add(posOf(n), path, "%s", unsafeRuneMsg(r))
			return "", false
		}
	}
	return s, true
}

// port reads a port number: a plain decimal integer 1-65535, unquoted, without sign, leading
// zeros, digit separators or a fraction.
func (d *decoder) port(n ast.Node, path string) (uint16, bool) {
	v, ok := d.number(n, path)
	if !ok {
		return 0, false
	}
	if v < 1 || v > 65535 {
		d.ps.add(posOf(unwrap(n)), path, "%d is out of range 1-65535", v)
		return 0, false
	}
	return uint16(v), true
}

// number reads a whole number as a port is written: plain decimal, unquoted, without sign,
// leading zeros, digit separators or a fraction. Its range is the validator's business, except
// that a number too large to hold is refused here.
func (d *decoder) number(n ast.Node, path string) (int, bool) {
	n = unwrap(n)
	switch v := n.(type) {
	case *ast.IntegerNode:
		return d.decimal(v.GetToken().Value, posOf(n), path)
	case *ast.StringNode:
		if v.GetToken().Type == token.StringType && decimalRE().MatchString(v.Value) {
			return d.decimal(v.Value, posOf(n), path)
		}
		if v.GetToken().Type == token.StringType {
			// Plain scalars such as 1e3 are strings to the YAML parser.
			d.ps.add(posOf(n), path, "%q is not a port: ports are plain decimal numbers 1-65535", v.Value)
		} else {
			d.ps.add(posOf(n), path, "must be a number, not a quoted string (write %s without quotes)", v.Value)
		}
	case *ast.FloatNode, *ast.InfinityNode, *ast.NanNode:
		d.ps.add(posOf(n), path, "%s is not a port: ports are whole decimal numbers 1-65535", v.GetToken().Value)
	case nil:
	default:
		d.ps.add(posOf(n), path, "must be a port number 1-65535, got %s", describe(n))
	}
	return 0, false
}

var decimalRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9]+$`) })

// portText checks the written form of an integer port and its range. Used for both formats.
func (d *decoder) portText(text string, at Position, path string) (uint16, bool) {
	v, ok := d.decimal(text, at, path)
	if !ok {
		return 0, false
	}
	if v < 1 || v > 65535 {
		d.ps.add(at, path, "%s is out of range 1-65535", text)
		return 0, false
	}
	return uint16(v), true
}

// decimal checks the written form of a whole number: plain decimal digits, no leading zero.
func (d *decoder) decimal(text string, at Position, path string) (int, bool) {
	switch {
	case !decimalRE().MatchString(text):
		d.ps.add(at, path, "%s is not a port: ports are plain decimal numbers 1-65535 (no sign, hex, octal, binary or \"_\")", text)
		return 0, false
	case len(text) > 1 && text[0] == '0':
		d.ps.add(at, path, "%s has a leading zero; ports are plain decimal numbers 1-65535", text)
		return 0, false
	}
	v, err := strconv.ParseUint(text, 10, 31)
	if err != nil {
		d.ps.add(at, path, "%s is out of range 1-65535", text)
		return 0, false
	}
	return int(v), true
}

// boolean reads true or false. YAML 1.1 spellings (yes, no, on, off) are refused rather than
// guessed at.
func (d *decoder) boolean(n ast.Node, path string) (bool, bool) {
	n = unwrap(n)
	switch v := n.(type) {
	case *ast.BoolNode:
		return v.Value, true
	case nil:
		return false, false
	case *ast.StringNode:
		d.ps.add(posOf(n), path, "must be true or false, got %q", v.Value)
	default:
		d.ps.add(posOf(n), path, "must be true or false, got %s", describe(n))
	}
	return false, false
}

// list reads a sequence.
func (d *decoder) list(n ast.Node, path, hint string) ([]ast.Node, bool) {
	n = unwrap(n)
	switch v := n.(type) {
	case *ast.SequenceNode:
		return v.Values, true
	case nil:
		return nil, false
	default:
		d.ps.add(posOf(n), path, "must be a list, got %s%s", describe(n), hint)
		return nil, false
	}
}

// unwrap looks through anchors and tags (already reported by forbidFeatures) and turns an
// alias into nil, so that each is reported once.
func unwrap(n ast.Node) ast.Node {
	for {
		switch v := n.(type) {
		case *ast.AnchorNode:
			n = v.Value
		case *ast.TagNode:
			n = v.Value
		case *ast.AliasNode:
			return nil
		default:
			return n
		}
	}
}

// describe names a node's kind for messages.
func describe(n ast.Node) string {
	switch v := n.(type) {
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	case *ast.NullNode:
		return "nothing (null)"
	case *ast.BoolNode:
		return "a boolean (" + v.GetToken().Value + ")"
	case *ast.IntegerNode, *ast.FloatNode, *ast.InfinityNode, *ast.NanNode:
		return "a number (" + v.GetToken().Value + ")"
	case *ast.StringNode, *ast.LiteralNode:
		return "a string"
	}
	return "a " + strings.ToLower(n.Type().String())
}

func keyText(n ast.Node) string {
	n = unwrap(n)
	switch v := n.(type) {
	case *ast.StringNode:
		return v.Value
	case nil:
		return ""
	}
	if tk := n.GetToken(); tk != nil {
		return tk.Value
	}
	return ""
}

func tokenPos(tk *token.Token) Position {
	if tk == nil || tk.Position == nil {
		return Position{}
	}
	return Position{Line: tk.Position.Line, Column: tk.Position.Column}
}

// posOf is where a node starts: for a block mapping, its first key.
func posOf(n ast.Node) Position {
	switch v := n.(type) {
	case nil:
		return Position{}
	case *ast.MappingNode:
		if !v.IsFlowStyle && len(v.Values) > 0 {
			return posOf(v.Values[0].Key)
		}
	case *ast.MappingValueNode:
		return posOf(v.Key)
	case *ast.DocumentNode:
		return tokenPos(v.Start)
	}
	return tokenPos(n.GetToken())
}

var plainPathRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_.-]+$`) })

func joinPath(path, key string) string {
	if !plainPathRE().MatchString(key) {
		key = strconv.Quote(key)
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

func indexPath(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// suggest returns the candidate closest to s when it is a likely typo (edit distance at most 2).
func suggest(s string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		if dist := editDistance(strings.ToLower(s), c); dist < bestD {
			best, bestD = c, dist
		}
	}
	return best
}

// editDistance is the Levenshtein distance, bounded to short inputs.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
