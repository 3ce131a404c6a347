package scan_test

import (
	"context"
	"strings"
	"testing"

	"github.com/bindguard/bindguard/internal/scan"
	"github.com/bindguard/bindguard/policy"
)

// TestSeedFormatWithPolicy: with the seed's own file as the policy, a careless seed-format file
// is still held to what its entries declare, and a binding the file permits but the policy does
// not is reported by the policy.
func TestSeedFormatWithPolicy(t *testing.T) {
	p, err := policy.Load("../../testdata/scan/seed/config/service-bindings.yaml")
	if err != nil {
		t.Fatal(err)
	}
	res, err := scan.Scan(context.Background(), []string{"../../testdata/scan/seed/careless"}, scan.Options{Policy: p, PolicyName: "the seed"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[int]scan.Finding{}
	for _, f := range res.Findings {
		got[f.Line] = f
	}
	for line, want := range map[int]string{
		8:  "the entry itself declares localhost_only",
		12: "the entry itself declares proxy_only",
		20: "the entry itself declares lan",
		25: "but the seed's service redis",
	} {
		f, ok := got[line]
		if !ok || f.Status != scan.Reported || !strings.Contains(f.Why, want) {
			t.Errorf("line %d: %+v, want reported, %q", line, f, want)
		}
	}
	if f := got[4]; f.Status != scan.Allowed || f.Kind != "seed-bind" {
		t.Errorf("nginx http_port: %+v", f)
	}
	if _, ok := got[31]; ok {
		t.Errorf("settings.nested.listen is not a seed entry: %+v", got[31])
	}
}
