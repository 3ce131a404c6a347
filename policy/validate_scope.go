package policy

import (
	"cmp"
	"fmt"
	"path"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxPatternLen is the longest scope match pattern, in bytes: container ids are 64 characters,
// LXC and ip netns names shorter.
const MaxPatternLen = 255

// maxOverlapWork bounds the steps spent deciding whether scopes' patterns overlap; a policy that
// needs more is told so rather than left unchecked.
const maxOverlapWork = 1 << 26

// validateScopes checks the scopes: names, matchers, each scope's services by the rules of the
// host's (unique within the scope, not overlapping each other), and that no two scopes could
// match the same name. Each problem is reported in the file the scope is declared in.
func validateScopes(ps *problems, p *Policy, sm *sourceMap, networks map[string]*Network, budget *int) {
	type first struct {
		file, path string
		pos        Position
	}
	fileName := func(f string) string { return cmp.Or(f, ps.file) }
	names := make(map[string]first, len(p.Scopes))
	for i := range p.Scopes {
		sc, scl := &p.Scopes[i], &sm.scopes[i]
		fps := ps.in(scl.file)
		if !sm.synthetic {
			for _, f := range []struct{ field, why string }{
				{"name", "every scope needs a unique name"},
				{"match", "say which namespaces the scope is for: match: [CONTAINER, NETNS, GLOB...]"},
				{"services", "list the services these namespaces may run (services: [] declares none)"},
			} {
				if _, wrote := scl.fields[f.field]; !wrote && !scl.misspelled[f.field] {
					fps.add(scl.self.pos, joinPath(scl.self.path, f.field), "missing; %s", f.why)
					scl.bad[f.field] = true
				} else if !wrote {
					scl.bad[f.field] = true
				}
			}
		}
		if scl.ok("name") {
			l := scl.at("name")
			switch {
			case sc.Name == HostScope:
				fps.add(l.pos, l.path, "%q is reserved: the top-level services are the host's scope", HostScope)
			case !nameRE().MatchString(sc.Name):
				fps.add(l.pos, l.path, "%q is not a valid scope name: use [a-z0-9][a-z0-9_.-]{0,62} (lowercase letters, digits, _ . -)", sc.Name)
			default:
				if f, dup := names[sc.Name]; dup {
					fps.add(l.pos, l.path, "duplicate scope name %q (first at %s); scope names must be unique", sc.Name, where(fileName(scl.file), fileName(f.file), f.pos, f.path))
				} else {
					names[sc.Name] = first{scl.file, scl.self.path, sc.Pos}
				}
			}
		}
		if scl.ok("match") {
			if len(sc.Match) == 0 {
				l := scl.at("match")
				fps.add(l.pos, l.path, "is empty; list the container names or ids, ip netns names or globs (web-*) the scope is for")
				scl.bad["match"] = true
			}
			seen := make(map[string]int, len(sc.Match))
			for j, pat := range sc.Match {
				l := scl.at("match")
				if j < len(scl.match) {
					l = scl.match[j]
				}
				if f, dup := seen[pat]; dup {
					fps.add(l.pos, l.path, "%q is listed twice (first as match[%d])", pat, f)
					continue
				}
				seen[pat] = j
				if msg := patternProblem(pat); msg != "" {
					fps.add(l.pos, l.path, "%s", msg)
				}
			}
		}
		validateServices(fps, p, sc.Services, scl.services, sc.Name, networks, sm, budget)
		checkOverlaps(fps, sc.Services, scl.services)
	}
	checkMatchOverlaps(ps, p, sm)
}

// where names a place for a message written in file: "line N" there, "FILE:N" elsewhere, the
// field path where there is no position.
func where(file, other string, pos Position, path string) string {
	switch {
	case pos.Line == 0 && other == file:
		return path
	case pos.Line == 0:
		return other + ": " + path
	case other == file:
		return fmt.Sprintf("line %d", pos.Line)
	}
	return fmt.Sprintf("%s:%d", other, pos.Line)
}

// patternProblem says what is wrong with a match pattern, "" if nothing.
func patternProblem(pat string) string {
	switch {
	case pat == "":
		return "is empty; a pattern is a container name or id, an ip netns name or a glob over them"
	case len(pat) > MaxPatternLen:
		return fmt.Sprintf("is %d bytes long; the limit is %d", len(pat), MaxPatternLen)
	case !utf8.ValidString(pat):
		return "is not valid UTF-8"
	}
	for _, r := range pat {
		if UnsafeRune(r) {
			return unsafeRuneMsg(r)
		}
		if unicode.IsSpace(r) {
			return fmt.Sprintf("%q contains white space; container and namespace names have none", pat)
		}
	}
	if _, err := path.Match(pat, ""); err != nil {
		return fmt.Sprintf("%q is not a valid glob (path.Match syntax: * ? [a-z] [^a-z], \\ escapes)", pat)
	}
	return ""
}

// checkMatchOverlaps reports patterns of two scopes that could both match one name, at the
// later pattern, with a name both match. The test is exact (see globsIntersect): two patterns
// overlap when, and only when, some string matches both, so web-* and db-* never do and web-*
// and *-prod always do (web-prod). A namespace is known by several names (container, ip netns
// name, label): scopes naming two different names of one namespace cannot be told apart from
// the policy alone; ScopeFor's first match in file order decides.
func checkMatchOverlaps(ps *problems, p *Policy, sm *sourceMap) {
	type pattern struct {
		scope, idx int
		text       string
		glob       []globTok
		literal    string
		isLiteral  bool
	}
	var pats []pattern
	literals := map[string]int{} // literal text -> index in pats of its first use
	for i := range p.Scopes {
		sc, scl := &p.Scopes[i], &sm.scopes[i]
		if !scl.ok("match") {
			continue
		}
		seen := map[string]bool{}
		for j, pat := range sc.Match {
			if seen[pat] || patternProblem(pat) != "" {
				continue
			}
			seen[pat] = true
			g := compileGlob(pat)
			lit, isLit := globLiteral(g)
			pats = append(pats, pattern{scope: i, idx: j, text: pat, glob: g, literal: lit, isLiteral: isLit})
		}
	}
	work := maxOverlapWork
	report := func(later, earlier pattern, witness string) {
		scl, ocl := &sm.scopes[later.scope], &sm.scopes[earlier.scope]
		l := scl.at("match")
		if later.idx < len(scl.match) {
			l = scl.match[later.idx]
		}
		ol := ocl.at("match")
		if earlier.idx < len(ocl.match) {
			ol = ocl.match[earlier.idx]
		}
		at := ol.path
		if ol.pos.Line > 0 {
			at += ", " + where(cmp.Or(scl.file, ps.file), cmp.Or(ocl.file, ps.file), ol.pos, ol.path)
		} else if ocl.file != scl.file {
			at = cmp.Or(ocl.file, ps.file) + ": " + at
		}
		ps.in(scl.file).add(l.pos, l.path, "%q overlaps scope %q's pattern %q (%s): both match %q; a namespace must belong to one scope",
			later.text, p.Scopes[earlier.scope].Name, earlier.text, at, witness)
	}
	for k, a := range pats {
		if a.isLiteral {
			if f, dup := literals[a.literal]; dup && pats[f].scope != a.scope {
				report(a, pats[f], a.literal)
				continue
			} else if !dup {
				literals[a.literal] = k
			}
		}
		// Against every earlier pattern of another scope: literals by the map above, and globs
		// (and, for a glob, every earlier pattern) by the product of the two.
		for _, b := range pats[:k] {
			if b.scope == a.scope || (a.isLiteral && b.isLiteral) {
				continue
			}
			work -= (len(a.glob) + 1) * (len(b.glob) + 1)
			if work < 0 {
				l := sm.scopes[a.scope].at("match")
				ps.in(sm.scopes[a.scope].file).add(l.pos, l.path, "too many glob patterns to check for overlaps (the limit is %d steps); name containers literally or use fewer globs", maxOverlapWork)
				return
			}
			if w, ok := globsIntersect(a.glob, b.glob); ok {
				report(a, b, w)
				break
			}
		}
	}
}

// globTok is one element of a path.Match pattern: a star, or one character from a set.
type globTok struct {
	star bool
	set  runeSet
}

// runeSet is a set of characters: the union of its ranges, or its complement when neg.
type runeSet struct {
	neg    bool
	ranges [][2]rune
}

func (s runeSet) has(c rune) bool {
	in := false
	for _, r := range s.ranges {
		if r[0] <= c && c <= r[1] {
			in = true
			break
		}
	}
	return in != s.neg
}

// notSlash is what ? and each character of * match.
var notSlash = runeSet{neg: true, ranges: [][2]rune{{'/', '/'}}}

// compileGlob turns a pattern path.Match accepts into tokens.
func compileGlob(pat string) []globTok {
	var out []globTok
	for len(pat) > 0 {
		switch pat[0] {
		case '*':
			if len(out) == 0 || !out[len(out)-1].star {
				out = append(out, globTok{star: true})
			}
			pat = pat[1:]
		case '?':
			out = append(out, globTok{set: notSlash})
			pat = pat[1:]
		case '[':
			pat = pat[1:]
			var s runeSet
			if len(pat) > 0 && pat[0] == '^' {
				s.neg = true
				pat = pat[1:]
			}
			for len(pat) > 0 {
				if pat[0] == ']' && len(s.ranges) > 0 {
					pat = pat[1:]
					break
				}
				var lo, hi rune
				lo, pat = globRune(pat)
				hi = lo
				if len(pat) > 0 && pat[0] == '-' {
					hi, pat = globRune(pat[1:])
				}
				s.ranges = append(s.ranges, [2]rune{lo, hi})
			}
			out = append(out, globTok{set: s})
		default:
			var r rune
			r, pat = globRune(pat)
			out = append(out, globTok{set: runeSet{ranges: [][2]rune{{r, r}}}})
		}
	}
	return out
}

// globRune reads one character of a pattern, escaped or not.
func globRune(pat string) (rune, string) {
	if len(pat) > 1 && pat[0] == '\\' {
		pat = pat[1:]
	}
	r, n := utf8.DecodeRuneInString(pat)
	return r, pat[n:]
}

// globLiteral returns the one string a pattern matches, if it matches only one.
func globLiteral(g []globTok) (string, bool) {
	var b strings.Builder
	for _, t := range g {
		if t.star || t.set.neg || len(t.set.ranges) != 1 || t.set.ranges[0][0] != t.set.ranges[0][1] {
			return "", false
		}
		b.WriteRune(t.set.ranges[0][0])
	}
	return b.String(), true
}

// common returns a character in both sets, preferring a readable one.
func common(a, b runeSet) (rune, bool) {
	cands := []rune{'x', '0', '-', 0}
	for _, s := range []runeSet{a, b} {
		for _, r := range s.ranges {
			cands = append(cands, r[0], r[1]+1)
		}
	}
	for _, c := range cands {
		if c >= 0 && c <= unicode.MaxRune && a.has(c) && b.has(c) {
			return c, true
		}
	}
	return 0, false
}

// globsIntersect decides whether some string matches both patterns, and returns the shortest
// such string: a breadth-first search over pairs of positions in the two patterns, where a star
// may match nothing (advance past it) or one more character, and a character token consumes one.
// It takes (len(a)+1)*(len(b)+1) states at most.
func globsIntersect(a, b []globTok) (string, bool) {
	w := len(b) + 1
	type step struct {
		prev int
		c    rune
		has  bool
	}
	from := make([]step, (len(a)+1)*w)
	seen := make([]bool, len(from))
	queue := []int{0}
	seen[0] = true
	visit := func(to, prev int, c rune, has bool) {
		if !seen[to] {
			seen[to] = true
			from[to] = step{prev: prev, c: c, has: has}
			queue = append(queue, to)
		}
	}
	final := len(a)*w + len(b)
	for len(queue) > 0 {
		st := queue[0]
		queue = queue[1:]
		if st == final {
			var rs []rune
			for st != 0 {
				if from[st].has {
					rs = append(rs, from[st].c)
				}
				st = from[st].prev
			}
			for l, r := 0, len(rs)-1; l < r; l, r = l+1, r-1 {
				rs[l], rs[r] = rs[r], rs[l]
			}
			return string(rs), true
		}
		i, j := st/w, st%w
		if i < len(a) && a[i].star {
			visit((i+1)*w+j, st, 0, false)
		}
		if j < len(b) && b[j].star {
			visit(i*w+j+1, st, 0, false)
		}
		if i == len(a) || j == len(b) {
			continue
		}
		sa, ni := a[i].set, i+1
		if a[i].star {
			sa, ni = notSlash, i
		}
		sb, nj := b[j].set, j+1
		if b[j].star {
			sb, nj = notSlash, j
		}
		if c, ok := common(sa, sb); ok {
			visit(ni*w+nj, st, c, true)
		}
	}
	return "", false
}
