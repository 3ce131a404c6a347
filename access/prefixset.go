package access

import (
	"net/netip"

	"github.com/gaissmai/bart"

	"github.com/bindguard/bindguard/policy"
)

// smallSet is the size up to which a PrefixSet scans a slice: below it a linear scan beats
// a trie walk.
const smallSet = 16

// PrefixSet is an immutable set of prefixes, asked whether it contains an address. Small sets
// are a slice; large ones (allow lists of 100,000 prefixes) a bart trie. It may also hold
// zoned entries (fe80::1%eth0), which match on their interface only. The zero value and a nil
// *PrefixSet are empty. It is safe for concurrent use.
type PrefixSet struct {
	small []netip.Prefix
	trie  *bart.Lite
	zoned []policy.ZonedPrefix
	n     int
}

// NewPrefixSet builds a set from prefixes. IPv4-mapped prefixes are stored as IPv4; invalid
// prefixes are skipped.
func NewPrefixSet(prefixes []netip.Prefix) *PrefixSet { return NewZonedPrefixSet(prefixes, nil) }

// NewZonedPrefixSet builds a set from prefixes, which match an address on any interface, and
// zoned entries (a policy's AllowZoned or TrustedZoned), which match it on their interface
// only. Invalid entries are skipped.
func NewZonedPrefixSet(prefixes []netip.Prefix, zoned []policy.ZonedPrefix) *PrefixSet {
	s := &PrefixSet{}
	for _, z := range zoned {
		if z.Prefix.IsValid() && z.Zone != "" && z.Prefix.Addr().Is6() {
			s.zoned = append(s.zoned, policy.ZonedPrefix{Prefix: netip.PrefixFrom(z.Prefix.Addr().WithZone(""), z.Prefix.Bits()).Masked(), Zone: z.Zone})
		}
	}
	for _, p := range prefixes {
		if !p.IsValid() {
			continue
		}
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		s.small = append(s.small, p.Masked())
	}
	s.n = len(s.small) + len(s.zoned)
	if len(s.small) > smallSet {
		s.trie = new(bart.Lite)
		for _, p := range s.small {
			s.trie.Insert(p)
		}
		s.small = nil
	}
	return s
}

// Contains reports whether a is inside one of the prefixes. An IPv4-mapped address is looked
// up as its IPv4 address. An address with an IPv6 zone (fe80::1%eth0, a peer on a link-local
// address) is contained when its address is inside a prefix without a zone, whatever the
// interface, or inside a zoned entry of the same zone.
func (s *PrefixSet) Contains(a netip.Addr) bool {
	if s == nil || !a.IsValid() {
		return false
	}
	if a.Zone() != "" {
		return s.containsZoned(a)
	}
	a = a.Unmap()
	if s.trie != nil {
		return s.trie.Lookup(a)
	}
	for _, p := range s.small {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// containsZoned is Contains for an address with a zone: a zoned entry of that zone, or any
// entry without a zone. Kept apart so that the common, zone-less lookup stays small.
func (s *PrefixSet) containsZoned(a netip.Addr) bool {
	for _, z := range s.zoned {
		if z.Contains(a) {
			return true
		}
	}
	return s.Contains(a.WithZone(""))
}

// Len is the number of prefixes and zoned entries the set was built from (duplicates included).
func (s *PrefixSet) Len() int {
	if s == nil {
		return 0
	}
	return s.n
}
