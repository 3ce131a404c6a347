package scan_test

import (
	"bufio"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/bindguard/bindguard/policy"
)

// TestRealworldLabels: the hand-written label files bench/scan-realworld.sh scores against are
// well formed (a PATH:LINE and a known verdict per line, no site twice), every site the
// with-policy labels call permitted is a wildcard site, and the policy made for the sample
// loads.
func TestRealworldLabels(t *testing.T) {
	read := func(name string, verdicts ...string) map[string]string {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		out := map[string]string{}
		sc := bufio.NewScanner(f)
		for n := 1; sc.Scan(); n++ {
			l := strings.Fields(strings.SplitN(sc.Text(), "#", 2)[0])
			if len(l) == 0 {
				continue
			}
			if len(l) != 2 || !strings.Contains(l[0], ":") || !slices.Contains(verdicts, l[1]) {
				t.Errorf("%s:%d: want PATH:LINE and one of %v, got %q", name, n, verdicts, sc.Text())
				continue
			}
			if _, dup := out[l[0]]; dup {
				t.Errorf("%s:%d: %s labelled twice", name, n, l[0])
			}
			out[l[0]] = l[1]
		}
		return out
	}
	all := read("testdata/realworld-labels.txt", "wildcard", "loopback", "trap")
	for site := range read("testdata/realworld-policy-labels.txt", "permitted") {
		if all[site] != "wildcard" {
			t.Errorf("realworld-policy-labels.txt: %s is not a wildcard site of realworld-labels.txt", site)
		}
	}
	if _, err := policy.Load("testdata/realworld-policy.yaml"); err != nil {
		t.Errorf("realworld-policy.yaml: %v", err)
	}
}
