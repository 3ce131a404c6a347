// Package text is bindguard's one definition of an unsafe character: what may not appear in
// policy text, in anything generated from it, or in a report line built from what a process
// chose (its name, its cgroup). It has no dependencies, so every layer can use it.
package text

import "strings"

// Unsafe reports whether r has no place in text bindguard reads or writes: C0 and C1 control
// characters (tab, newline and carriage return included), DEL, the Unicode bidirectional
// overrides and isolates that make text display in another order than it reads (U+202A-U+202E,
// U+2066-U+2069), and the line and paragraph separators U+2028 and U+2029, which some readers
// take for a line break.
func Unsafe(r rune) bool {
	return r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f) ||
		(r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) ||
		r == 0x2028 || r == 0x2029
}

// Sanitize replaces every Unsafe rune and every invalid UTF-8 sequence (and U+FFFD, which
// stands for one) with repl, so that text from an untrusted source cannot forge lines or
// terminal escapes.
func Sanitize(s string, repl rune) string {
	r := string(repl)
	return strings.Map(func(c rune) rune {
		if Unsafe(c) || c == 0xFFFD {
			return repl
		}
		return c
	}, strings.ToValidUTF8(s, r))
}
