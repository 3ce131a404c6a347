//go:build cgo

package scan

import (
	"os"
	"testing"
)

// BenchmarkPythonFile scans one large real Python file (the standard library's _pydecimal.py
// when present, else a generated one).
func BenchmarkPythonFile(b *testing.B) {
	src, err := os.ReadFile("/usr/lib/python3.11/_pydecimal.py")
	if err != nil {
		b.Skip("no /usr/lib/python3.11/_pydecimal.py")
	}
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		scanBytes(kindPython, "f.py", src)
	}
}

// BenchmarkParseOnly is the tree-sitter parse and copy alone, for comparison.
func BenchmarkParseOnly(b *testing.B) {
	src, err := os.ReadFile("/usr/lib/python3.11/_pydecimal.py")
	if err != nil {
		b.Skip("no /usr/lib/python3.11/_pydecimal.py")
	}
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		if _, err := parseTS(langPython, src); err != nil {
			b.Fatal(err)
		}
	}
}
