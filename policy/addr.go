package policy

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// parseAddr parses an IP literal as a policy writes it: no zone, no brackets, no port, not
// IPv4-mapped. netip already refuses hostnames, leading zeros, and short or hex IPv4 forms.
func parseAddr(s string) (netip.Addr, error) {
	if strings.HasPrefix(s, "[") {
		return netip.Addr{}, fmt.Errorf("%q: write IPv6 addresses without brackets", s)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		if ap, perr := netip.ParseAddrPort(s); perr == nil {
			return netip.Addr{}, fmt.Errorf("%q has a port; write the address alone, and the port in the port field", ap.String())
		}
		if looksNumeric(s) {
			reason := err.Error()
			if i := strings.LastIndex(reason, "): "); i >= 0 {
				reason = reason[i+3:]
			}
			return netip.Addr{}, fmt.Errorf("%q is not a valid IP address: %s", s, reason)
		}
		return netip.Addr{}, fmt.Errorf("%q is not an IP address literal (hostnames are not accepted)", s)
	}
	if a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("%q has an IPv6 zone; zones are not accepted", s)
	}
	if a.Is4In6() {
		return netip.Addr{}, fmt.Errorf("%q is an IPv4-mapped IPv6 address; write it as %s", s, a.Unmap())
	}
	return a, nil
}

// looksNumeric reports whether s is made of the characters of IP literals only, so that a
// parse failure is a malformed address rather than a hostname.
func looksNumeric(s string) bool {
	return s != "" && strings.Trim(s, "0123456789abcdefABCDEF.:") == "" && strings.ContainsAny(s, ".:")
}

// parsePrefix parses an IP literal (a host prefix) or a CIDR with no host bits set. Zoned
// entries (fe80::1%eth0) are parsed by parseZonedPrefix where they are accepted.
func parsePrefix(s string) (netip.Prefix, error) {
	if isZoned(s) {
		return netip.Prefix{}, fmt.Errorf("%q names an IPv6 zone; zones are accepted only in services' allow lists and trusted_proxies", s)
	}
	if !strings.Contains(s, "/") {
		a, err := parseAddr(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a valid CIDR (address/bits, decimal bits without leading zeros)", s)
	}
	if p.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("%q is an IPv4-mapped IPv6 prefix; write the IPv4 prefix", s)
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Errorf("%q has host bits set; did you mean %s?", s, m)
	}
	return p, nil
}

// coversFamily reports which address families the prefixes cover completely, together: "IPv4",
// "IPv6", both, or neither (""). 0.0.0.0/1 plus 128.0.0.0/1 covers IPv4 as surely as 0.0.0.0/0.
// It sorts a copy: O(n log n).
func coversFamily(prefixes []netip.Prefix) string {
	var v4, v6 []netip.Prefix
	for _, p := range prefixes {
		if p.Addr().Is4() {
			v4 = append(v4, p)
		} else {
			v6 = append(v6, p)
		}
	}
	var fams []string
	if coversAll(v4, netip.IPv4Unspecified()) {
		fams = append(fams, "IPv4")
	}
	if coversAll(v6, netip.IPv6Unspecified()) {
		fams = append(fams, "IPv6")
	}
	return strings.Join(fams, " and ")
}

// coversAll reports whether prefixes of one family cover every address of it, zero being that
// family's first address.
func coversAll(prefixes []netip.Prefix, zero netip.Addr) bool {
	if len(prefixes) == 0 {
		return false
	}
	prefixes = slices.Clone(prefixes)
	slices.SortFunc(prefixes, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	if prefixes[0].Addr() != zero {
		return false
	}
	end := lastAddr(prefixes[0])
	for _, p := range prefixes[1:] {
		next := end.Next()
		if !next.IsValid() {
			return true // end is the family's last address
		}
		if p.Addr().Compare(next) > 0 {
			return false // a gap
		}
		if l := lastAddr(p); l.Compare(end) > 0 {
			end = l
		}
	}
	return !end.Next().IsValid()
}

// lastAddr is the last address inside p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	bits := p.Bits()
	for i := range b {
		for j := 0; j < 8; j++ {
			if i*8+j >= bits {
				b[i] |= 0x80 >> j
			}
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// describeAddr says in words what binding addr exposes, for messages.
func describeAddr(a netip.Addr, v6only bool) string {
	switch {
	case a == netip.IPv4Unspecified():
		return "0.0.0.0 (every IPv4 interface)"
	case a == netip.IPv6Unspecified() && v6only:
		return ":: with v6only (every IPv6 interface)"
	case a == netip.IPv6Unspecified():
		return ":: (every interface, IPv4 and IPv6: dual-stack without v6only)"
	case a.IsLoopback():
		return a.String() + " (loopback)"
	}
	return a.String()
}
