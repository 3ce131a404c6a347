package policy

import (
	"fmt"

	"github.com/bindguard/bindguard/internal/text"
)

// UnsafeRune reports whether r has no place in policy text or in anything generated from it:
// C0 and C1 control characters (tab, newline and carriage return included), DEL, the Unicode
// bidirectional overrides and isolates that make text display in another order than it reads
// (U+202A-U+202E, U+2066-U+2069), and the line and paragraph separators U+2028 and U+2029, which
// some readers take for a line break.
//
// It is bindguard's one definition of an unsafe character (internal/text, which the report and
// the generators use too): Validate refuses such runes in every free-text field, the decoder in
// every string value, and Marshal's comments replace them.
func UnsafeRune(r rune) bool { return text.Unsafe(r) }

// unsafeRuneMsg says why r, an UnsafeRune, is refused.
func unsafeRuneMsg(r rune) string {
	if r == 0x2028 || r == 0x2029 {
		return fmt.Sprintf("line separator %U is not allowed", r)
	}
	return fmt.Sprintf("control character %U is not allowed", r)
}
