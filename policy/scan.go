package policy

import (
	"bytes"
	"fmt"
	"path"
	"strings"

	"github.com/goccy/go-yaml/ast"
)

// ScanRule tells `bindguard scan` where the files under some paths run: a context (host,
// container or test) and the scope whose services judge their findings.
type ScanRule struct {
	// Paths are globs over slash-separated paths relative to the scanned root (path.Match
	// syntax per segment, "**" for any number of segments).
	Paths []string
	// Context is "host", "container" or "test"; "" leaves the scan's inference (a Dockerfile
	// runs in a container, _test.go is test code, anything else the host).
	Context string
	// Scope names the scope whose services judge the findings; "" or "host" is the host's.
	Scope string
	Pos   Position
}

// ScanContexts lists the contexts a scan rule may name.
var ScanContexts = []string{"host", "container", "test"}

const scanKey = "scan"

var scanRuleKeys = []string{"paths", "context", "scope"}

// scanRules decodes the scan: list.
func (d *decoder) scanRules(n ast.Node, at *locs) []ScanRule {
	out := []ScanRule{}
	d.eachObject(n, scanKey, "(paths:, context:, scope:)", scanRuleKeys, at, func(o object, key string) {
		r := ScanRule{Pos: o.pos}
		if v, ok := o.get("paths"); ok {
			paths, locs, good := d.strList(v, o.field("paths"), "; write paths: [GLOB...]")
			r.Paths = paths
			for j, l := range locs {
				at.set(fmt.Sprintf("%s.paths[%d]", key, j), l)
			}
			if !good {
				at.fail(key + ".paths")
			}
			at.set(key+".paths", loc{path: o.field("paths"), pos: posOf(unwrap(v))})
		}
		d.strFields(o, key, at, strField{"context", &r.Context}, strField{"scope", &r.Scope})
		out = append(out, r)
	})
	return out
}

// eachObject decodes a top-level list of mappings (section: [...]), calling each with every
// item that is a mapping of the known keys and its key ("section[i]") in at, where its
// position is recorded; what describes the mapping in errors.
func (d *decoder) eachObject(n ast.Node, section, what string, known []string, at *locs, each func(o object, key string)) {
	items, _ := d.list(n, section, "; each item is a mapping "+what)
	for i, item := range items {
		path := indexPath(section, i)
		o, ok := d.object(item, path, "a mapping "+what, known...)
		if !ok {
			continue
		}
		key := fmt.Sprintf("%s[%d]", section, i)
		at.set(key, loc{path: path, pos: o.pos})
		each(o, key)
	}
}

// strField is a string field of a mapping and where its value goes.
type strField struct {
	name string
	dst  *string
}

// strFields decodes string fields of o, recording where each stands as key.NAME and marking the
// ones that are not strings failed.
func (d *decoder) strFields(o object, key string, at *locs, fields ...strField) {
	for _, f := range fields {
		if v, ok := o.get(f.name); ok {
			s, good := d.str(v, o.field(f.name))
			*f.dst = s
			at.set(key+"."+f.name, loc{path: o.field(f.name), pos: posOf(unwrap(v))})
			if !good {
				at.fail(key + "." + f.name)
			}
		}
	}
}

// validateScan checks the scan rules: at least one path each, valid globs, a known context,
// a scope the policy declares.
func validateScan(ps *problems, p *Policy, at *locs) {
	for i, r := range p.Scan {
		key := fmt.Sprintf("scan[%d]", i)
		if len(r.Paths) == 0 && !at.failed(key+".paths") {
			l := at.at(key + ".paths")
			ps.add(l.pos, l.path, "a scan rule needs at least one path glob")
		}
		for j, g := range r.Paths {
			l := at.at(fmt.Sprintf("%s.paths[%d]", key, j))
			if why := checkScanGlob(g); why != "" {
				ps.add(l.pos, l.path, "%s", why)
			}
		}
		if r.Context != "" && !at.failed(key+".context") && !containsStr(ScanContexts, r.Context) {
			l := at.at(key + ".context")
			ps.add(l.pos, l.path, "unknown context %q (want one of %s)", r.Context, strings.Join(ScanContexts, ", "))
		}
		if r.Scope != "" && r.Scope != HostScope && !at.failed(key+".scope") {
			if _, ok := p.Scope(r.Scope); !ok {
				l := at.at(key + ".scope")
				ps.add(l.pos, l.path, "no scope is named %q", r.Scope)
			}
		}
		if r.Context == "" && r.Scope == "" && len(r.Paths) > 0 {
			l := at.at(key)
			ps.add(l.pos, l.path, "a scan rule needs a context or a scope")
		}
	}
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// checkScanGlob says what is wrong with a path glob, or "".
func checkScanGlob(g string) string {
	if g == "" || len(g) > MaxPatternLen {
		return fmt.Sprintf("a path glob is 1-%d bytes", MaxPatternLen)
	}
	for _, r := range g {
		if UnsafeRune(r) {
			return unsafeRuneMsg(r)
		}
	}
	if strings.HasPrefix(g, "/") || strings.Contains(g, "\\") {
		return "a path glob is relative to the scanned root, with forward slashes"
	}
	for _, seg := range strings.Split(g, "/") {
		if seg == ".." {
			return "a path glob may not contain .."
		}
		if _, err := path.Match(seg, ""); err != nil {
			return fmt.Sprintf("malformed glob segment %q", seg)
		}
	}
	return ""
}

// MatchScanPath reports whether a scan rule's glob matches a slash-separated relative path.
func MatchScanPath(glob, rel string) bool {
	return matchGlobSegs(strings.Split(glob, "/"), strings.Split(rel, "/"))
}

func matchGlobSegs(pat, name []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			for i := 0; i <= len(name); i++ {
				if matchGlobSegs(pat[1:], name[i:]) {
					return true
				}
			}
			return false
		}
		if len(name) == 0 {
			return false
		}
		if ok, err := path.Match(pat[0], name[0]); err != nil || !ok {
			return false
		}
		pat, name = pat[1:], name[1:]
	}
	return len(name) == 0
}

// ScanRuleFor returns the first scan rule one of whose globs matches rel.
func (p *Policy) ScanRuleFor(rel string) (ScanRule, bool) {
	for _, r := range p.Scan {
		for _, g := range r.Paths {
			if MatchScanPath(g, rel) {
				return r, true
			}
		}
	}
	return ScanRule{}, false
}

// writeScan writes the scan section.
func writeScan(b *bytes.Buffer, rules []ScanRule) {
	if len(rules) == 0 {
		return
	}
	b.WriteString("scan:\n")
	for _, r := range rules {
		fmt.Fprintf(b, "  - paths: %s\n", quotedList(r.Paths))
		if r.Context != "" {
			fmt.Fprintf(b, "    context: %s\n", quote(r.Context))
		}
		if r.Scope != "" {
			fmt.Fprintf(b, "    scope: %s\n", quote(r.Scope))
		}
	}
}
