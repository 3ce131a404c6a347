package access

import (
	"net/netip"

	"github.com/gaissmai/bart"
)

// smallSet is the size up to which a PrefixSet scans a slice: below it a linear scan beats
// a trie walk.
const smallSet = 16

// PrefixSet is an immutable set of prefixes, asked whether it contains an address. Small sets
// are a slice; large ones (allow lists of 100,000 prefixes) a bart trie. The zero value and a
// nil *PrefixSet are empty. It is safe for concurrent use.
type PrefixSet struct {
	small []netip.Prefix
	trie  *bart.Lite
	n     int
}

// NewPrefixSet builds a set from prefixes. IPv4-mapped prefixes are stored as IPv4; invalid
// prefixes are skipped.
func NewPrefixSet(prefixes []netip.Prefix) *PrefixSet {
	s := &PrefixSet{}
	for _, p := range prefixes {
		if !p.IsValid() {
			continue
		}
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		s.small = append(s.small, p.Masked())
	}
	s.n = len(s.small)
	if s.n > smallSet {
		s.trie = new(bart.Lite)
		for _, p := range s.small {
			s.trie.Insert(p)
		}
		s.small = nil
	}
	return s
}

// Contains reports whether a is inside one of the prefixes. An IPv4-mapped address is looked
// up as its IPv4 address; an address with a zone is never contained.
func (s *PrefixSet) Contains(a netip.Addr) bool {
	if s == nil || !a.IsValid() || a.Zone() != "" {
		return false
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

// Len is the number of prefixes the set was built from (duplicates included).
func (s *PrefixSet) Len() int {
	if s == nil {
		return 0
	}
	return s.n
}
