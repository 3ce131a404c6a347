package policy_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bindguard/bindguard/policy"
)

const scanPolicy = `version: 1
services:
  - {name: redis, port: 6379, address: 127.0.0.1, access: localhost_only}
scopes:
  - name: web
    match: [web-*]
    services:
      - {name: api, port: 8000, access: public}
scan:
  - paths: ["services/api/**"]
    context: container
    scope: web
  - paths: ["e2e/**", "**/fixtures/*.yml"]
    context: test
`

func TestScanSection(t *testing.T) {
	p, err := policy.Parse("p.yaml", []byte(scanPolicy))
	if err != nil {
		t.Fatal(err)
	}
	want := []policy.ScanRule{
		{Paths: []string{"services/api/**"}, Context: "container", Scope: "web"},
		{Paths: []string{"e2e/**", "**/fixtures/*.yml"}, Context: "test"},
	}
	if diff := cmp.Diff(want, p.Scan, cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Pos" }, cmp.Ignore())); diff != "" {
		t.Errorf("scan rules (-want +got):\n%s", diff)
	}
	for rel, want := range map[string]string{"services/api/main.go": "container", "services/api/x/Dockerfile": "container", "a/b/fixtures/c.yml": "test", "e2e/t.go": "test", "services/other/main.go": ""} {
		r, _ := p.ScanRuleFor(rel)
		if r.Context != want {
			t.Errorf("ScanRuleFor(%q).Context = %q, want %q", rel, r.Context, want)
		}
	}
	again, err := policy.Parse("again.yaml", policy.Marshal(p))
	if err != nil {
		t.Fatalf("marshalled policy does not read back: %v\n%s", err, policy.Marshal(p))
	}
	if diff := cmp.Diff(p.Scan, again.Scan, cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Pos" }, cmp.Ignore())); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func TestScanSectionErrors(t *testing.T) {
	tests := []struct{ rule, want string }{
		{"  - {paths: [a/**], context: vm}", `p.yaml:3:30: scan[0].context: unknown context "vm"`},
		{"  - {paths: [a/**], scope: nope}", `p.yaml:3:28: scan[0].scope: no scope is named "nope"`},
		{"  - {paths: [], context: test}", "scan[0].paths: a scan rule needs at least one path glob"},
		{"  - {paths: [/etc/x], context: test}", "scan[0].paths[0]: a path glob is relative"},
		{"  - {paths: [../x], context: test}", "may not contain .."},
		{"  - {paths: [\"a[\"], context: test}", "malformed glob segment"},
		{"  - {paths: [a]}", "scan[0]: a scan rule needs a context or a scope"},
		{"  - {paths: [a], context: test, extra: 1}", "extra"},
	}
	for _, tt := range tests {
		_, err := policy.Parse("p.yaml", []byte("version: 1\nscan:\n"+tt.rule+"\n"))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want it to contain %q", tt.rule, err, tt.want)
		}
	}
}
