package text

import "testing"

func TestUnsafe(t *testing.T) {
	for _, r := range []rune{0, '\t', '\n', '\r', 0x1b, 0x7f, 0x85, 0x9f, 0x202a, 0x202e, 0x2066, 0x2069, 0x2028, 0x2029} {
		if !Unsafe(r) {
			t.Errorf("%U is not unsafe", r)
		}
	}
	for _, r := range []rune{' ', 'a', '~', 0xa0, 'é', 0x2027, 0x202f, 0x206a, '日'} {
		if Unsafe(r) {
			t.Errorf("%U is unsafe", r)
		}
	}
}

func TestSanitize(t *testing.T) {
	for in, want := range map[string]string{
		"redis-server":          "redis-server",
		"evil\nline\x1b[31m":    "evil?line?[31m",
		"bad\xffutf8":           "bad?utf8",
		"rtl\u202eexe.txt":      "rtl?exe.txt",
		"already\ufffdreplaced": "already?replaced",
	} {
		if got := Sanitize(in, '?'); got != want {
			t.Errorf("Sanitize(%q) = %q, want %q", in, got, want)
		}
	}
}
