package policy_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bindguard/bindguard/policy"
)

// FuzzParse seeds from every policy in testdata (valid, hostile and the seed's) and checks that
// Parse never panics, returns a policy or an *InvalidError (never both, never neither), names
// the file in every problem, and that whatever it accepts survives Marshal and Parse unchanged,
// in every field with meaning.
func FuzzParse(f *testing.F) {
	for _, glob := range []string{"../testdata/policy/*/*.yaml", "../testdata/seed/*.yaml"} {
		files, _ := filepath.Glob(glob)
		for _, name := range files {
			src, err := os.ReadFile(name)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(src)
		}
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		p, err := policy.Parse("fuzz.yaml", src)
		if (p == nil) == (err == nil) {
			t.Fatalf("Parse returned policy %v and error %v", p != nil, err)
		}
		if err != nil {
			var inv *policy.InvalidError
			if !errors.As(err, &inv) || len(inv.Problems) == 0 {
				t.Fatalf("error is not an *InvalidError with problems: %v", err)
			}
			for _, pr := range inv.Problems {
				if !strings.HasPrefix(pr.Error(), "fuzz.yaml") {
					t.Fatalf("problem does not name the file: %q", pr.Error())
				}
			}
			return
		}
		out := policy.Marshal(p)
		back, err := policy.Parse("converted.yaml", out)
		if err != nil {
			t.Fatalf("accepted policy does not survive Marshal: %v\n--- input\n%s\n--- marshalled\n%s", err, src, out)
		}
		if diff := cmp.Diff(matrix(p), matrix(back)); diff != "" {
			t.Fatalf("Marshal changed the matrix (-orig +back):\n%s", diff)
		}
		// Parse -> Marshal -> Parse keeps every field with meaning, not only the matrix.
		if diff := cmp.Diff(p, back, meaning); diff != "" {
			t.Fatalf("Marshal changed the policy (-orig +back):\n%s\n--- marshalled\n%s", diff, out)
		}
	})
}
