package scan

import "testing"

func TestIgnorer(t *testing.T) {
	g := &ignorer{}
	g.add(".", []byte("# comment\n*.log\n/build/\ndocs/**/gen.yml\n!keep.log\n\\#hash\n"))
	g.add("sub", []byte("local.yml\n/anchored.yml\n"))
	tests := []struct {
		path string
		dir  bool
		want bool
	}{
		{"a.log", false, true},
		{"x/y/a.log", false, true},
		{"keep.log", false, false},
		{"build", true, true},
		{"build", false, false},
		{"x/build", true, false},
		{"docs/gen.yml", false, true},
		{"docs/a/b/gen.yml", false, true},
		{"other/gen.yml", false, false},
		{"#hash", false, true},
		{"sub/local.yml", false, true},
		{"sub/deep/local.yml", false, true},
		{"local.yml", false, false},
		{"sub/anchored.yml", false, true},
		{"sub/deep/anchored.yml", false, false},
	}
	for _, tt := range tests {
		if got := g.ignored(tt.path, tt.dir); got != tt.want {
			t.Errorf("ignored(%q, dir=%v) = %v, want %v", tt.path, tt.dir, got, tt.want)
		}
	}
}

func TestParseAllow(t *testing.T) {
	tests := []struct {
		in, kind, reason string
		ok               bool
	}{
		{"// bindguard:allow go-listen -- behind the LB", "go-listen", "behind the LB", true},
		{"# bindguard:allow compose-port", "compose-port", "", true},
		{"# bindguard:allow compose-port --   ", "compose-port", "", true},
		{"# bindguard:allow -- no kind", "", "", false},
		{"# nothing here", "", "", false},
	}
	for _, tt := range tests {
		k, r, ok := parseAllow(tt.in)
		if k != tt.kind || r != tt.reason || ok != tt.ok {
			t.Errorf("parseAllow(%q) = %q, %q, %v", tt.in, k, r, ok)
		}
	}
}

// TestGoEvaluationIsBounded: variables assigned from each other many times end (cycles are
// cut, work is budgeted) and yield nothing.
func TestGoEvaluationIsBounded(t *testing.T) {
	src := "package p\nimport \"net\"\nvar a, b, c string\nfunc f() {\n"
	for range 20 {
		src += "\ta = b + c\n\tb = c + a\n\tc = a + b\n"
	}
	src += "\tnet.Listen(\"tcp\", a)\n}\n"
	dir := t.TempDir()
	writeFile(t, dir, "p.go", src)
	fs, probs, _ := scanGoDir(unit{root: dir, dir: dir, kind: kindGo, files: []string{dir + "/p.go"}}, Options{MaxFileSize: DefaultMaxFileSize})
	if len(fs) != 0 || len(probs) != 0 {
		t.Errorf("findings %v, problems %v", fs, probs)
	}
}
