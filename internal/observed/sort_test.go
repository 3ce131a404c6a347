package observed

import (
	"cmp"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

// randSockets is n sockets of few protocols, families, addresses and ports, so that every key
// of the order decides some pairs.
func randSockets(n int) []Socket {
	r := rand.New(rand.NewPCG(1, 2))
	s := make([]Socket, n)
	for i := range s {
		p, f := TCP, IPv4
		if r.IntN(10) == 0 {
			p = UDP
		}
		a := netip.AddrFrom4([4]byte{127, 0, 0, byte(r.IntN(3))})
		if r.IntN(4) == 0 {
			f, a = IPv6, netip.IPv6Loopback()
		}
		s[i] = Socket{Protocol: p, Family: f, Addr: a, Port: uint16(r.IntN(2000)), Inode: uint64(r.IntN(1 << 20))}
	}
	return s
}

// referenceSort is Sort's order as it was first written: every key compared, then cmp.Or.
func referenceSort(s []Socket) {
	slices.SortFunc(s, func(a, b Socket) int {
		return cmp.Or(cmp.Compare(a.Protocol, b.Protocol), cmp.Compare(a.Port, b.Port), cmp.Compare(a.Family, b.Family), a.Addr.Compare(b.Addr), cmp.Compare(a.Inode, b.Inode))
	})
}

// TestSortOrder: Sort orders 20,000 sockets as the reference does.
func TestSortOrder(t *testing.T) {
	a := randSockets(20000)
	b := slices.Clone(a)
	referenceSort(a)
	Sort(b)
	if !slices.Equal(a, b) {
		t.Fatal("Sort's order differs from the reference's")
	}
}

// BenchmarkSort: 11,000 sockets, an audit's at issue 14's size.
func BenchmarkSort(b *testing.B) {
	src := randSockets(11000)
	for b.Loop() {
		s := slices.Clone(src)
		Sort(s)
	}
}
