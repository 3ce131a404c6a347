package scan_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/bindguard/bindguard/internal/scan"
	"github.com/bindguard/bindguard/policy"
)

// TestCorpus scans every case under testdata/scan (with its bindguard.yaml, if it has one,
// else the built-in catalogue) and compares the reported findings with its expected.txt:
// "FILE:LINE KIND ADDRESS PORT" per line. It prints precision and recall over the corpus and
// fails on any difference.
func TestCorpus(t *testing.T) {
	cases, err := filepath.Glob("../../testdata/scan/*/expected.txt")
	if err != nil || len(cases) == 0 {
		t.Fatalf("no corpus: %v", err)
	}
	var tp, fp, fn int
	for _, exp := range cases {
		dir := filepath.Dir(exp)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			want := readExpected(t, exp)
			o := scan.Options{Workers: 2}
			if p, err := policy.Load(filepath.Join(dir, "bindguard.yaml")); err == nil {
				o.Policy, o.PolicyName = p, "bindguard.yaml"
			} else if !os.IsNotExist(unwrapAll(err)) {
				t.Fatalf("policy: %v", err)
			}
			res, err := scan.Scan(context.Background(), []string{dir}, o)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range res.Problems {
				t.Errorf("problem: %s", p)
			}
			if len(res.Unscanned) > 0 {
				// Only a build without cgo has no Python/JavaScript parser (TestNoCgoSaysUnscanned).
				t.Skipf("this build cannot scan %v", res.Unscanned)
			}
			got := map[string]bool{}
			for _, f := range res.Visible(false) {
				got[fmt.Sprintf("%s:%d %s %s %d", f.File, f.Line, f.Kind, f.Address, f.Port)] = true
			}
			for k := range got {
				if want[k] {
					tp++
				} else {
					fp++
					t.Errorf("unexpected finding %s", k)
				}
			}
			for k := range want {
				if !got[k] {
					fn++
					t.Errorf("missed %s", k)
				}
			}
		})
	}
	precision, recall := 1.0, 1.0
	if tp+fp > 0 {
		precision = float64(tp) / float64(tp+fp)
	}
	if tp+fn > 0 {
		recall = float64(tp) / float64(tp+fn)
	}
	t.Logf("corpus: %d expected findings; true positives %d, false positives %d, missed %d; precision %.3f, recall %.3f", tp+fn, tp, fp, fn, precision, recall)
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok || u.Unwrap() == nil {
			return err
		}
		err = u.Unwrap()
	}
}

func readExpected(t *testing.T, name string) map[string]bool {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		out[strings.Join(strings.Fields(l), " ")] = true
	}
	keys := make([]string, 0, len(out))
	for k := range out {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return out
}
