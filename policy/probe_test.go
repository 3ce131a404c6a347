package policy_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bindguard/bindguard/policy"
)

const probePolicy = `version: 1
services:
  - {name: redis, port: 6379, address: 127.0.0.1, access: localhost_only}
scopes:
  - name: web
    match: [web-*]
    services:
      - {name: api, port: 8000, access: public}
probe:
  - target: web1.example.org
    scope: web
    ports: [8000-8100, udp/53]
  - target: "[fd00::7]"
  - {target: 10.0.0.5, scope: host, ports: ["tcp/22"]}
`

func TestProbeSection(t *testing.T) {
	p, err := policy.Parse("p.yaml", []byte(probePolicy))
	if err != nil {
		t.Fatal(err)
	}
	want := []policy.ProbeTarget{
		{Target: "web1.example.org", Scope: "web", Ports: []policy.PortRange{{Lo: 8000, Hi: 8100}, {Protocol: policy.UDP, Lo: 53, Hi: 53}}},
		{Target: "[fd00::7]"},
		{Target: "10.0.0.5", Scope: "host", Ports: []policy.PortRange{{Protocol: policy.TCP, Lo: 22, Hi: 22}}},
	}
	ignorePos := cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Pos" }, cmp.Ignore())
	if diff := cmp.Diff(want, p.Probe, ignorePos); diff != "" {
		t.Errorf("probe targets (-want +got):\n%s", diff)
	}
	again, err := policy.Parse("again.yaml", policy.Marshal(p))
	if err != nil {
		t.Fatalf("marshalled policy does not read back: %v\n%s", err, policy.Marshal(p))
	}
	if diff := cmp.Diff(p.Probe, again.Probe, ignorePos); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func TestProbeSectionErrors(t *testing.T) {
	tests := []struct{ entry, want string }{
		{"  - {target: 10.0.0.0/24}", `p.yaml:3:14: probe[0].target: target "10.0.0.0/24" is not one host`},
		{"  - {target: 10.0.0.1-9}", "ranges of hosts such as 10.0.0.1-9 are refused"},
		{"  - {target: '*.example.org'}", "not one host"},
		{"  - {target: 0.0.0.0}", "target 0.0.0.0 is not one host"},
		{"  - {target: '::'}", "target :: is not one host"},
		{"  - {target: 224.0.0.1}", "is not one host"},
		{"  - {target: 'fd00::1%eth0'}", "a zone only belongs on a link-local address"},
		{"  - {target: 'a b'}", "not one host"},
		{"  - {target: \"x\\ny\"}", "probe[0].target"},
		{"  - {target: 10.0.0.1, scope: nope}", `p.yaml:3:31: probe[0].scope: no scope is named "nope"`},
		{"  - {scope: host}", "probe[0]: a probe target needs target: HOST"},
		{"  - {target: 10.0.0.1, ports: [0-10]}", `probe[0].ports[0]: port "0": want 1-65535`},
		{"  - {target: 10.0.0.1, ports: [sctp/1]}", `probe[0].ports[0]: protocol "sctp"`},
		{"  - {target: 10.0.0.1, ports: [20-10]}", "ends before it starts"},
		{"  - {target: 10.0.0.1, ports: 80}", "probe[0].ports"},
		{"  - {target: 10.0.0.1, extra: 1}", "extra"},
		{"  - {target: 10.0.0.1}\n  - {target: '::ffff:10.0.0.1', scope: host}", "probe[1]: target ::ffff:10.0.0.1 with scope host is declared already (probe[0])"},
		{"  - {target: Web1.Example.org.}\n  - {target: web1.example.org}", "declared already"},
	}
	for _, tt := range tests {
		_, err := policy.Parse("p.yaml", []byte("version: 1\nprobe:\n"+tt.entry+"\n"))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want it to contain %q", tt.entry, err, tt.want)
		}
	}
	var many strings.Builder
	many.WriteString("version: 1\nprobe:\n")
	for i := range policy.MaxProbeTargets + 1 {
		many.WriteString("  - {target: 10.0." + strconv.Itoa(i/250) + "." + strconv.Itoa(i%250+1) + "}\n")
	}
	if _, err := policy.Parse("p.yaml", []byte(many.String())); err == nil || !strings.Contains(err.Error(), "probe targets: at most") || strings.Count(err.Error(), "\n") > 1 {
		t.Errorf("%d targets: %v", policy.MaxProbeTargets+1, err)
	}
}

// TestProbeSectionHandBuilt: a policy built in code gets the same checks, at the field's path.
func TestProbeSectionHandBuilt(t *testing.T) {
	p := &policy.Policy{Version: 1, Probe: []policy.ProbeTarget{{Target: "10.0.0.1"}, {Target: "10.1.0.0/16"}, {Target: "10.0.0.2", Ports: []policy.PortRange{{Lo: 9, Hi: 3}}}}}
	policy.Defaults(p)
	err := policy.Validate(p)
	for _, want := range []string{"probe[1].target: target \"10.1.0.0/16\" is not one host", "probe[2].ports[0]: range 9-3"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v, want %q", err, want)
		}
	}
}

func TestParseHost(t *testing.T) {
	for in, want := range map[string]string{"10.0.0.1": "10.0.0.1", "[fd00::1]": "fd00::1", "::ffff:10.0.0.1": "10.0.0.1", "fe80::1%eth0": "fe80::1%eth0", "Web1.Example.ORG.": "web1.example.org", "localhost": "localhost"} {
		if _, _, err := policy.ParseHost(in); err != nil {
			t.Errorf("ParseHost(%q): %v", in, err)
		}
		if got := policy.CanonicalHost(in); got != want {
			t.Errorf("CanonicalHost(%q) = %q, want %q", in, got, want)
		}
	}
}
