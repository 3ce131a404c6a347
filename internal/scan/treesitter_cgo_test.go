//go:build cgo

package scan

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTreeSitterHostile: nesting far deeper than maxDepth, a file of NUL bytes and hostile file
// names neither panic nor hang; the cut is named as a problem, and a bind after it is still found
// where the tree reaches it.
func TestTreeSitterHostile(t *testing.T) {
	deep := strings.Repeat("(", 200000) + "\n"
	for _, c := range []struct {
		kind fileKind
		src  string
	}{
		{kindPython, "x = " + deep},
		{kindJS, "x = " + strings.Repeat("[", 200000)},
		{kindTS, strings.Repeat("{", 200000)},
		{kindPython, string(make([]byte, 4096))},
		{kindTSX, "<a>" + strings.Repeat("<b>", 50000)},
	} {
		fs, probs := scanBytes(c.kind, "f", []byte(c.src))
		if len(fs) != 0 {
			t.Errorf("kind %d: findings in hostile input: %v", c.kind, fs)
		}
		if len(probs) == 0 {
			t.Errorf("kind %d: no problem named for hostile input", c.kind)
		}
		for _, p := range probs {
			if strings.Contains(p.Msg, "internal error") {
				t.Errorf("kind %d: %s", c.kind, p)
			}
		}
	}
	// A call whose member expression sits at the cut has no children left: every depth around
	// maxDepth must be scanned without a panic (which would lose the file's other findings).
	for d := maxDepth - 40; d <= maxDepth+5; d++ {
		src := "require('http').createServer().listen(8080)\nx = " + strings.Repeat("[", d) + "a.listen(1)" + strings.Repeat("]", d) + "\n"
		for _, k := range []fileKind{kindJS, kindTS} {
			if fs, _ := scanBytes(k, "f.js", []byte(src)); len(fs) == 0 || fs[0].Line != 1 {
				t.Errorf("kind %d, depth %d: findings %v, want the listen on line 1", k, d, fs)
			}
		}
	}
	fs, probs := scanBytes(kindPython, "f.py", []byte("def f(:\n    pass\nimport socket\ns = socket.socket()\ns.bind(('0.0.0.0', 80))\n"))
	if len(fs) != 1 || fs[0].Line != 5 || fs[0].Address != "0.0.0.0" || len(probs) != 1 || probs[0].Line != 1 {
		t.Errorf("after a syntax error: findings %v, problems %v", fs, probs)
	}

	dir := t.TempDir()
	names := []string{"a\nb.py", "-rf.js", "x\x01y.ts", "ünï\xffcode.py"}
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("import socket\nsocket.socket().bind(('', 1))\nrequire('http').createServer().listen(1)\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	res, err := Scan(context.Background(), []string{dir}, Options{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Findings) != 4 || res.Files != 4 {
		t.Errorf("hostile names: %d findings in %d files, want 4 in 4: %v %v", len(res.Findings), res.Files, res.Findings, res.Problems)
	}
}

// TestCgoScansPython: with cgo nothing is left unscanned (TestNoCgoSaysUnscanned is the other
// build's half).
func TestCgoScansPython(t *testing.T) {
	res, err := Scan(context.Background(), []string{"../../testdata/scan/python"}, Options{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Unscanned) != 0 || res.Files != 1 || len(res.Findings) != 1 || res.Findings[0].Address != "127.0.0.1" {
		t.Errorf("unscanned %q, files %d, findings %v", res.Unscanned, res.Files, res.Findings)
	}
}
