package policy

import "testing"

func TestScopeFor(t *testing.T) {
	p := &Policy{
		Services: []Service{{Name: "sshd"}},
		Scopes: []Scope{
			{Name: "web", Match: []string{"web-*"}, Services: []Service{{Name: "nginx"}}},
			{Name: "db", Match: []string{"db1", "4f2a9c1be3d5"}, Services: []Service{{Name: "postgres"}}},
			{Name: "lab", Match: []string{"lab"}, Services: nil},
			{Name: "bad", Match: []string{"["}, Services: []Service{{Name: "never"}}},
		},
	}
	for _, tc := range []struct {
		ns      NamespaceNames
		scope   string
		first   string
		matched bool
	}{
		{NamespaceNames{Host: true, Label: "host", Container: "web-1"}, HostScope, "sshd", true},
		{NamespaceNames{Label: "web-1", Container: "web-1"}, "web", "nginx", true},
		{NamespaceNames{Label: "net:[4026532200]", Container: "4f2a9c1be3d5"}, "db", "postgres", true},
		{NamespaceNames{Label: "db1", Netns: "db1"}, "db", "postgres", true},
		{NamespaceNames{Label: "lab", Netns: "lab"}, "lab", "", true},
		{NamespaceNames{Label: "other"}, HostScope, "sshd", false},
		{NamespaceNames{Label: "["}, HostScope, "sshd", false}, // a malformed pattern matches nothing
	} {
		name, svcs, ok := p.ScopeFor(tc.ns)
		first := ""
		if len(svcs) > 0 {
			first = svcs[0].Name
		}
		if name != tc.scope || first != tc.first || ok != tc.matched {
			t.Errorf("%+v: got %s %q %v, want %s %q %v", tc.ns, name, first, ok, tc.scope, tc.first, tc.matched)
		}
	}
	if s, ok := p.Scope(HostScope); !ok || len(s.Services) != 1 {
		t.Error("the host scope is not found by name")
	}
	if _, ok := p.Scope("nope"); ok {
		t.Error("an unknown scope is found")
	}
}
