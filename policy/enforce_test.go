package policy_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/bindguard/bindguard/policy"
)

const enforceBase = `version: 1
services:
  - {name: redis, protocol: tcp, port: 6379, access: localhost_only}
`

func TestEnforceSection(t *testing.T) {
	p, err := policy.Parse("p.yaml", []byte(enforceBase+"enforce:\n  mode: dry-run\n  guard: [1-1023, tcp/6000-6999, udp/53]\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := &policy.Enforce{Mode: policy.EnforceDryRun, Guard: []policy.PortRange{{Lo: 1, Hi: 1023}, {Protocol: policy.TCP, Lo: 6000, Hi: 6999}, {Protocol: policy.UDP, Lo: 53, Hi: 53}}}
	ign := cmpopts.IgnoreFields(policy.Enforce{}, "Pos")
	if diff := cmp.Diff(want, p.Enforce, ign); diff != "" {
		t.Fatalf("decoded (-want +got):\n%s", diff)
	}
	back, err := policy.Parse("back.yaml", policy.Marshal(p))
	if err != nil {
		t.Fatalf("round trip: %v\n%s", err, policy.Marshal(p))
	}
	if diff := cmp.Diff(p.Enforce, back.Enforce, ign); diff != "" {
		t.Errorf("round trip (-orig +back):\n%s", diff)
	}
	// Defaults: an empty section is deny with no ranges; no section is nil, also deny.
	p, err = policy.Parse("p.yaml", []byte(enforceBase+"enforce: {}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Enforce == nil || p.Enforce.Mode != policy.EnforceDeny || len(p.Enforce.Guard) != 0 {
		t.Errorf("enforce {} decoded as %+v", p.Enforce)
	}
	p, _ = policy.Parse("p.yaml", []byte(enforceBase))
	if p.Enforce != nil || p.Enforce.EffectiveMode() != policy.EnforceDeny {
		t.Errorf("no section: %+v", p.Enforce)
	}
}

func TestEnforceSectionErrors(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{"enforce:\n  mode: block\n", `p.yaml:5:9: enforce.mode: mode "block": want deny, dry-run or rewrite`},
		{"enforce:\n  guard: [1-1023, 70000]\n", `p.yaml:5:19: enforce.guard[1]: port "70000": want 1-65535`},
		{"enforce:\n  guard: [sctp/1-2]\n", `enforce.guard[0]: protocol "sctp": want tcp or udp`},
		{"enforce:\n  guard: [\"9-3\"]\n", `enforce.guard[0]: range 9-3 ends before it starts`},
		{"enforce:\n  mod: deny\n", `enforce.mod: unknown field "mod"; did you mean "mode"?`},
	} {
		_, err := policy.Parse("p.yaml", []byte(enforceBase+c.src))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want %s", c.src, err, c.want)
		}
	}
	// Built in code: Validate checks it too.
	p, err := policy.Parse("p.yaml", []byte(enforceBase))
	if err != nil {
		t.Fatal(err)
	}
	p.Enforce = &policy.Enforce{Mode: "x", Guard: []policy.PortRange{{Lo: 5, Hi: 1}}}
	err = policy.Validate(p)
	if err == nil || !strings.Contains(err.Error(), `enforce.mode: mode "x"`) || !strings.Contains(err.Error(), "enforce.guard[0]: range 5-1") {
		t.Errorf("Validate: %v", err)
	}
}
