package audit_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bindguard/bindguard/internal/audit"
	"github.com/bindguard/bindguard/internal/observed"
	"github.com/bindguard/bindguard/policy"
)

// scoped is a policy with a host scope (sshd) and a scope "cache" for the containers c1 and
// c2, which must each run redis on loopback.
func scoped(t *testing.T) *policy.Policy {
	t.Helper()
	p := &policy.Policy{Format: policy.FormatNative, Version: 1, Services: []policy.Service{
		{Name: "sshd", Protocol: policy.TCP, Port: 22, Address: netip.IPv4Unspecified(), Access: policy.Public},
	}, Scopes: []policy.Scope{
		{Name: "cache", Match: []string{"c?"}, Services: []policy.Service{
			{Name: "redis", Protocol: policy.TCP, Port: 6379, Address: netip.MustParseAddr("127.0.0.1"), Access: policy.LocalhostOnly},
		}},
		{Name: "unused", Match: []string{"nothing-*"}},
	}}
	policy.Defaults(p)
	if err := policy.Validate(p); err != nil {
		t.Fatal(err)
	}
	return p
}

func in(ns string, o observed.Listener) observed.Listener { o.Netns = ns; return o }

func TestJudgePerScope(t *testing.T) {
	p := scoped(t)
	spaces := []observed.Namespace{
		{Label: "host", Host: true},
		{Label: "c1", Container: "c1"},
		{Label: "c2", Container: "c2"},
		{Label: "other", Netns: "other"},
	}
	r := audit.JudgeObservation(p, observed.Observation{
		Listeners: []observed.Listener{
			in("host", obs(policy.TCP, "0.0.0.0", 22, observed.V6OnlyNA, "sshd")),
			in("c1", obs(policy.TCP, "127.0.0.1", 6379, observed.V6OnlyNA, "redis-server")),
			// c2 runs no redis: the one in c1 must not hide that.
			in("other", obs(policy.TCP, "0.0.0.0", 6379, observed.V6OnlyNA, "redis-server")),
		},
		Namespaces:    spaces,
		AllNamespaces: true,
	})
	type nsSum struct {
		Scope   string
		Matched bool
		Score   int
		Summary audit.Summary
	}
	got := map[string]nsSum{}
	for _, n := range r.Namespaces {
		got[n.Label] = nsSum{n.Scope, n.Matched, n.Score, n.Summary}
	}
	want := map[string]nsSum{
		"host": {"host", true, 100, audit.Summary{Valid: 1}},
		"c1":   {"cache", true, 100, audit.Summary{Valid: 1}},
		"c2":   {"cache", true, 0, audit.Summary{Missing: 1}},
		// No scope names it: the host's services judge it (6379 is not one of them), and it
		// owes none of them (sshd is not missing there).
		"other": {"host", false, 85, audit.Summary{Unexpected: 1}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("namespaces (-want +got):\n%s", diff)
	}
	if r.Score != 0 {
		t.Errorf("host score %d, want 0: the lowest namespace's (%s)", r.Score, audit.HostScoreRule)
	}
	if r.Summary != (audit.Summary{Valid: 2, Missing: 1, Unexpected: 1}) {
		t.Errorf("summary %+v", r.Summary)
	}
	var miss *audit.Finding
	for i := range r.Findings {
		f := &r.Findings[i]
		if f.Netns == "" {
			t.Errorf("finding without its namespace: %+v", f)
		}
		if f.Status == audit.Missing {
			miss = f
		}
	}
	if miss == nil || miss.Netns != "c2" {
		t.Fatalf("missing finding %+v, want redis in c2", miss)
	}
	if !strings.Contains(miss.Reason, "nothing listens on tcp port 6379 in netns c2 (it does in netns c1, netns other)") {
		t.Errorf("missing reason %q: it must name its namespace and where the port listens", miss.Reason)
	}
	if len(r.Warnings) != 1 || !strings.Contains(r.Warnings[0], "scope unused matches no audited network namespace") {
		t.Errorf("warnings %q, want one for scope unused", r.Warnings)
	}
	if !r.Complete {
		t.Error("incomplete with nothing unseen")
	}
	// The primary namespace's services are the per-service metrics': the host's.
	if len(r.Services) != 1 || r.Services[0].Name != "sshd" {
		t.Errorf("services %+v", r.Services)
	}
}

// TestJudgeOneNamespaceOwesHostServices: auditing one namespace that no scope names (as
// --netns NAME did before scopes), the host's services are owed there.
func TestJudgeOneNamespaceOwesHostServices(t *testing.T) {
	p := scoped(t)
	r := audit.JudgeObservation(p, observed.Observation{Namespaces: []observed.Namespace{{Label: "other", Netns: "other"}}})
	if r.Summary.Missing != 1 || r.Findings[0].ServiceName() != "sshd" || r.Findings[0].Netns != "other" {
		t.Errorf("findings %+v, want sshd missing in other", r.Findings)
	}
	// Only --netns all warns about scopes that match nothing.
	if len(r.Warnings) != 0 {
		t.Errorf("warnings %q", r.Warnings)
	}
}

func TestJudgeIncomplete(t *testing.T) {
	r := audit.JudgeObservation(scoped(t), observed.Observation{Unseen: []string{"netns net:[1] skipped: permission denied"}})
	if r.Complete || len(r.Unseen) != 1 {
		t.Errorf("complete %v unseen %q", r.Complete, r.Unseen)
	}
}

// TestOwnersCountedByPID: one process holding a socket in several descriptors is one owner.
func TestOwnersCountedByPID(t *testing.T) {
	o := obs(policy.TCP, "0.0.0.0", 80, observed.V6OnlyNA, "nginx")
	o.Owners = []observed.Process{{PID: 9, Name: "nginx"}, {PID: 9, Name: "nginx"}, {PID: 9, Name: "nginx"}, {PID: 9, Name: "nginx"}}
	r := audit.Judge(scoped(t), []observed.Listener{o})
	if got := r.Findings[0].Reason; strings.Contains(got, "more") {
		t.Errorf("reason %q counts descriptors as processes", got)
	}
	o.Owners = append(o.Owners, observed.Process{PID: 10, Name: "nginx"}, observed.Process{PID: 10, Name: "nginx"})
	r = audit.Judge(scoped(t), []observed.Listener{o})
	if got := r.Findings[0].Reason; !strings.Contains(got, "nginx (pid 9) and 1 more listens") {
		t.Errorf("reason %q, want one more process", got)
	}
}

// TestJudgeFlatPolicyOverNamespaces: a policy without scopes, audited over every namespace,
// owes its services across the host and the namespaces no scope names together (as before
// scopes): a service running only in a container is not missing in the host.
func TestJudgeFlatPolicyOverNamespaces(t *testing.T) {
	p := &policy.Policy{Format: policy.FormatNative, Version: 1, Services: []policy.Service{
		{Name: "sshd", Protocol: policy.TCP, Port: 22, Address: netip.IPv4Unspecified(), Access: policy.Public},
		{Name: "redis", Protocol: policy.TCP, Port: 6379, Address: netip.MustParseAddr("127.0.0.1"), Access: policy.LocalhostOnly},
		{Name: "web", Protocol: policy.TCP, Port: 80, Address: netip.IPv4Unspecified(), Access: policy.Public},
	}}
	policy.Defaults(p)
	if err := policy.Validate(p); err != nil {
		t.Fatal(err)
	}
	r := audit.JudgeObservation(p, observed.Observation{
		Namespaces: []observed.Namespace{{Label: "host", Host: true}, {Label: "c1", Container: "c1"}, {Label: "c2", Container: "c2"}},
		Listeners: []observed.Listener{
			in("host", obs(policy.TCP, "0.0.0.0", 22, observed.V6OnlyNA, "sshd")),
			in("c1", obs(policy.TCP, "127.0.0.1", 6379, observed.V6OnlyNA, "redis-server")),
		},
	})
	var missing []audit.Finding
	for _, f := range r.Findings {
		if f.Status == audit.Missing {
			missing = append(missing, f)
		}
	}
	if len(missing) != 1 || missing[0].ServiceName() != "web" || missing[0].Netns != "host" ||
		!strings.Contains(missing[0].Reason, "nothing listens on tcp port 80 in the host's network namespace nor in the 2 other namespaces no scope names") {
		t.Fatalf("missing %+v, want web alone, the host's", missing)
	}
	// The host's score counts redis (valid in c1) as compliant: 2 of 3.
	if h := r.Namespaces[0]; h.Label != "host" || h.Score != 66 || len(h.Services) != 3 {
		t.Errorf("host namespace %+v", h)
	}
}
