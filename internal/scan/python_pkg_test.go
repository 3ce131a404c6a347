package scan_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/bindguard/bindguard/internal/scan"
)

// TestPythonPkgWorkers: the findings across files, their origins and subjects included, are
// the same whatever the number of workers (the second pass runs in parallel too).
func TestPythonPkgWorkers(t *testing.T) {
	var first []string
	for _, w := range []int{1, 2, 8} {
		res, err := scan.Scan(context.Background(), []string{"../../testdata/scan/python-pkg"}, scan.Options{Workers: w})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Unscanned) > 0 {
			t.Skipf("this build cannot scan %v", res.Unscanned)
		}
		var got []string
		for _, f := range res.Findings {
			got = append(got, fmt.Sprintf("%s:%d %s %s %d %s %s %s", f.File, f.Line, f.Kind, f.Address, f.Port, f.Status, f.Origin, f.Subject))
		}
		if first == nil {
			first = got
			continue
		}
		if !slices.Equal(got, first) {
			t.Errorf("workers %d: %q, want %q", w, got, first)
		}
	}
	// The cross-file finding names where its host comes from: the callee's default.
	want := "reglike/cli/registry_main.py:10 py-listen 0.0.0.0 18812 reported reglike/utils/registry.py:7: default of TCPRegistryServer's host"
	found := false
	for _, g := range first {
		if len(g) >= len(want) && g[:len(want)] == want {
			found = true
		}
	}
	if !found {
		t.Errorf("no %q in %q", want, first)
	}
}
