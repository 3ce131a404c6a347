//go:build !cgo

package scan_test

import (
	"context"
	"slices"
	"testing"

	"github.com/bindguard/bindguard/internal/scan"
)

// TestNoCgoSaysUnscanned: a build without cgo has no Python or JavaScript parser, and says
// so, per language with the number of files, instead of reporting nothing in silence.
func TestNoCgoSaysUnscanned(t *testing.T) {
	res, err := scan.Scan(context.Background(), []string{"../../testdata/scan/node", "../../testdata/scan/python-web"}, scan.Options{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"javascript: 2 files (this build has no cgo, which the tree-sitter parser needs)",
		"python: 4 files (this build has no cgo, which the tree-sitter parser needs)",
		"typescript: 2 files (this build has no cgo, which the tree-sitter parser needs)",
	}
	if !slices.Equal(res.Unscanned, want) {
		t.Errorf("unscanned %q, want %q", res.Unscanned, want)
	}
	if len(res.Findings) != 0 {
		t.Errorf("findings without a parser: %v", res.Findings)
	}
}
