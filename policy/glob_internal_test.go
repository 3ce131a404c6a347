package policy

import (
	"math/rand/v2"
	"path"
	"testing"
)

func TestGlobsIntersect(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"web-*", "db-*", false},
		{"web-*", "web-1", true},
		{"web-*", "*-prod", true},
		{"web-*", "web*", true},
		{"web-?", "web-ab", false},
		{"web-[0-9]", "web-[a-z]", false},
		{"web-[0-9]", "web-[^a-z]", true},
		{"web-[^0-9]", "web-[0-9]", false},
		{"*", "anything", true},
		{"a*", "*b", true},
		{"a*b", "a*c", false},
		{"a/*", "a*", false}, // * does not match "/"
		{"a/*", "a?*", false},
		{"a/*", "a[^x]*", true}, // a class matches "/"
		{`web\*`, "web-*", false},
		{`web\*`, "web*", true},
		{"x", "x", true},
		{"x", "y", false},
		{"", "*", true},
		{"", "?", false},
		{"日本*", "日?", true},
	} {
		for _, pair := range [][2]string{{tc.a, tc.b}, {tc.b, tc.a}} {
			w, got := globsIntersect(compileGlob(pair[0]), compileGlob(pair[1]))
			if got != tc.want {
				t.Errorf("globsIntersect(%q, %q) = %v, want %v", pair[0], pair[1], got, tc.want)
				continue
			}
			if got {
				ma, _ := path.Match(pair[0], w)
				mb, _ := path.Match(pair[1], w)
				if !ma || !mb {
					t.Errorf("globsIntersect(%q, %q): witness %q does not match both", pair[0], pair[1], w)
				}
			}
		}
	}
}

// TestGlobsIntersectExhaustive checks the overlap test against brute force: random patterns
// over a small alphabet, every string up to length 5 over it. A witness must match both
// (soundness), and any common string brute force finds must be found (completeness).
func TestGlobsIntersectExhaustive(t *testing.T) {
	alphabet := []string{"a", "b", "/"}
	var names []string
	var grow func(prefix string, n int)
	grow = func(prefix string, n int) {
		names = append(names, prefix)
		if n == 0 {
			return
		}
		for _, c := range alphabet {
			grow(prefix+c, n-1)
		}
	}
	grow("", 5)
	toks := []string{"a", "b", "/", "*", "?", "[ab]", "[^a]", `\*`, "[a-b]"}
	r := rand.New(rand.NewPCG(1, 2))
	pattern := func() string {
		s := ""
		for range r.IntN(4) {
			s += toks[r.IntN(len(toks))]
		}
		return s
	}
	for range 3000 {
		a, b := pattern(), pattern()
		if _, err := path.Match(a, ""); err != nil {
			t.Fatalf("generated a bad pattern %q", a)
		}
		brute := ""
		found := false
		for _, n := range names {
			ma, _ := path.Match(a, n)
			mb, _ := path.Match(b, n)
			if ma && mb {
				brute, found = n, true
				break
			}
		}
		w, got := globsIntersect(compileGlob(a), compileGlob(b))
		if got {
			ma, _ := path.Match(a, w)
			mb, _ := path.Match(b, w)
			if !ma || !mb {
				t.Fatalf("%q, %q: witness %q does not match both", a, b, w)
			}
		}
		// Patterns of at most 3 tokens that share a string share one of at most 3 characters.
		if found && !got {
			t.Fatalf("%q, %q: both match %q, but globsIntersect says they are disjoint", a, b, brute)
		}
	}
}

func TestGlobLiteral(t *testing.T) {
	for pat, want := range map[string]string{"web-1": "web-1", `web\*`: "web*", "[a]": "a"} {
		if got, ok := globLiteral(compileGlob(pat)); !ok || got != want {
			t.Errorf("globLiteral(%q) = %q %v, want %q", pat, got, ok, want)
		}
	}
	for _, pat := range []string{"web-*", "w?", "[ab]", "[^a]", "[a-b]"} {
		if _, ok := globLiteral(compileGlob(pat)); ok {
			t.Errorf("globLiteral(%q) says it is a literal", pat)
		}
	}
}
