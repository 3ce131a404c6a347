package policy

import (
	"net/netip"
	"testing"
)

// TestClassTable fails when a class is added to Accesses without its meaning.
func TestClassTable(t *testing.T) {
	for _, a := range Accesses() {
		d, ok := classes[a]
		if !ok {
			t.Errorf("%s has no row in the class table", a)
			continue
		}
		if d.bind == BindNone || d.reach == ReachNobody || d.permitted == "" || d.allowed == "" {
			t.Errorf("%s: incomplete row %+v", a, d)
		}
		if (d.reach == ReachAllowList) != (d.clients == "") || (d.reach == ReachAllowList) != (d.admits == "") {
			t.Errorf("%s: clients/admits words must be empty exactly for allow-list classes", a)
		}
	}
	if len(classes) != len(Accesses()) {
		t.Errorf("the class table has %d rows, Accesses lists %d", len(classes), len(Accesses()))
	}
}

// TestUnknownClassFailsClosed: a class outside the table permits and admits nothing.
func TestUnknownClassFailsClosed(t *testing.T) {
	s := Service{Name: "x", Access: Access("everyone"), AllowPrefixes: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")}}
	for _, a := range []string{"127.0.0.1", "0.0.0.0", "::", "10.0.0.1"} {
		if s.PermitsBind(netip.MustParseAddr(a)) {
			t.Errorf("unknown class permits %s", a)
		}
	}
	if s.Access.Reach() != ReachNobody || s.Access.TakesAllow() || s.Access.LoopbackOnly() || s.Access.Confined() {
		t.Errorf("unknown class has a reach: %v", s.Access.Reach())
	}
	p := &Policy{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/32")}}
	if pr, anyone := p.ReachPrefixes(s); anyone || len(pr) != 0 {
		t.Errorf("unknown class reaches %v (anyone %v)", pr, anyone)
	}
}

func TestReachPrefixes(t *testing.T) {
	tp := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("10.1.1.5/32")}
	allow := []netip.Prefix{netip.MustParsePrefix("10.1.1.0/24")}
	p := &Policy{TrustedProxies: tp}
	for _, tc := range []struct {
		access Access
		want   []netip.Prefix
		anyone bool
	}{
		{LocalhostOnly, nil, false},
		{ProxyOnly, tp[1:], false},
		{LAN, allow, false},
		{Restricted, allow, false},
		{Public, nil, true},
	} {
		got, anyone := p.ReachPrefixes(Service{Access: tc.access, AllowPrefixes: allow})
		if anyone != tc.anyone || len(got) != len(tc.want) {
			t.Errorf("%s: got %v anyone=%v, want %v anyone=%v", tc.access, got, anyone, tc.want, tc.anyone)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%s: got %v, want %v", tc.access, got, tc.want)
			}
		}
	}
}

func TestBindRefusal(t *testing.T) {
	for _, tc := range []struct {
		s    Service
		addr string
		want string
	}{
		{Service{Access: LocalhostOnly}, "0.0.0.0", "localhost_only allows loopback addresses only (127.0.0.0/8, ::1)"},
		{Service{Access: ProxyOnly}, "10.0.0.1", "proxy_only allows loopback addresses only (127.0.0.0/8, ::1)"},
		{Service{Access: LAN}, "::", "lan allows loopback or an address inside its allow list, never a wildcard"},
		{Service{Access: LAN}, "192.0.2.1", "lan allows loopback or an address inside its allow list"},
		{Service{Access: Access("bogus")}, "::1", "bogus does not allow ::1"},
	} {
		if got := tc.s.BindRefusal(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("%s %s: %q, want %q", tc.s.Access, tc.addr, got, tc.want)
		}
	}
}
