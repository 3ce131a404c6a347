package policy

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/goccy/go-yaml/ast"
)

// ZonedPrefix is an IPv6 link-local prefix on one interface, as an allow list or
// trusted_proxies entry writes it with the RFC 4007 zone: "fe80::1%eth0" (one host) or
// "fe80::%eth0/64" (section 11.7: the zone follows the address, the length follows the zone).
// It matches only addresses with that zone: a peer that connected through that interface. An
// entry without a zone ("fe80::/10") matches the address on any interface.
type ZonedPrefix struct {
	// Prefix is zone-less and masked, inside fe80::/10.
	Prefix netip.Prefix
	// Zone is the interface name (or index) as Go reports it in a peer's address: 1-15 of
	// A-Z a-z 0-9 _ . @ -.
	Zone string
}

// linkLocal is fe80::/10, the only addresses whose zone the kernel reports for a peer.
var linkLocal = netip.MustParsePrefix("fe80::/10")

var zoneRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_.@-]{1,15}$`) })

// String is the entry as a policy writes it: "fe80::1%eth0", "fe80::%eth0/64".
func (z ZonedPrefix) String() string {
	a := z.Prefix.Addr().WithZone(z.Zone).String()
	if z.Prefix.Bits() == z.Prefix.Addr().BitLen() {
		return a
	}
	return a + "/" + strconv.Itoa(z.Prefix.Bits())
}

// Contains reports whether a, with its zone, is inside z: the same zone (compared exactly,
// as interface names are case-sensitive) and the address inside the prefix. An address
// without a zone is never contained.
func (z ZonedPrefix) Contains(a netip.Addr) bool {
	return a.Zone() != "" && a.Zone() == z.Zone && z.Prefix.Contains(a.WithZone(""))
}

// isZoned reports whether an allow list or trusted_proxies entry names a zone.
func isZoned(s string) bool { return strings.IndexByte(s, '%') >= 0 }

// parseZonedPrefix parses "ADDR%ZONE" or "ADDR%ZONE/BITS" with ADDR an IPv6 link-local address
// (fe80::/10) and no host bits set beyond BITS.
func parseZonedPrefix(s string) (ZonedPrefix, error) {
	if strings.HasPrefix(s, "[") {
		return ZonedPrefix{}, fmt.Errorf("%q: write IPv6 addresses without brackets", s)
	}
	pct := strings.IndexByte(s, '%')
	addr, zone, bits := s[:pct], s[pct+1:], -1
	if slash := strings.IndexByte(addr, '/'); slash >= 0 {
		return ZonedPrefix{}, fmt.Errorf("%q: write the zone after the address and before the length, as RFC 4007 does: %s%%%s%s", s, addr[:slash], zone, addr[slash:])
	}
	if slash := strings.IndexByte(zone, '/'); slash >= 0 {
		n := zone[slash+1:]
		zone = zone[:slash]
		v, err := strconv.Atoi(n)
		if err != nil || n == "" || n[0] == '+' || n[0] == '-' || len(n) > 1 && n[0] == '0' || v < 10 || v > 128 {
			return ZonedPrefix{}, fmt.Errorf("%q: prefix length %q must be a decimal 10-128 (inside fe80::/10)", s, n)
		}
		bits = v
	}
	if !zoneRE().MatchString(zone) {
		return ZonedPrefix{}, fmt.Errorf("%q: zone %q must be an interface name of 1-15 characters A-Z a-z 0-9 _ . @ -", s, zone)
	}
	a, err := parseAddr(addr)
	if err != nil {
		return ZonedPrefix{}, err
	}
	if !a.Is6() || !linkLocal.Contains(a) {
		return ZonedPrefix{}, fmt.Errorf("%q: a zone applies only to IPv6 link-local addresses (fe80::/10); write %s without it", s, addr)
	}
	if bits < 0 {
		bits = 128
	}
	p := netip.PrefixFrom(a, bits)
	if m := p.Masked(); m != p {
		return ZonedPrefix{}, fmt.Errorf("%q has host bits set; did you mean %s?", s, ZonedPrefix{m, zone})
	}
	return ZonedPrefix{Prefix: p, Zone: zone}, nil
}

// checkZoned applies parseZonedPrefix's rules to an entry built in code.
func checkZoned(z ZonedPrefix) error {
	_, err := parseZonedPrefix(z.String())
	if err == nil && (!z.Prefix.IsValid() || z.Prefix.Addr().Zone() != "") {
		err = fmt.Errorf("%s: invalid prefix", z)
	}
	return err
}

// trustedList reads trusted_proxies: IP literals and CIDRs, and zoned link-local entries
// (fe80::1%eth0). locs are the places of the unzoned prefixes, in order; bad reports a list
// that could not be read whole.
func (d *decoder) trustedList(n ast.Node, path, hint string) (prefixes []netip.Prefix, zoned []ZonedPrefix, locs []loc, bad bool) {
	return d.addrList(n, path, hint, true)
}

// addrList reads a list of IP literals and CIDRs, and, when zones is set, zoned link-local
// entries; without it a zoned entry is refused by parsePrefix with the reason.
func (d *decoder) addrList(n ast.Node, path, hint string, zones bool) (prefixes []netip.Prefix, zoned []ZonedPrefix, locs []loc, bad bool) {
	strs, slocs, ok := d.strList(n, path, hint)
	if !ok && strs == nil {
		return nil, nil, nil, true
	}
	prefixes = make([]netip.Prefix, 0, len(strs))
	for i, s := range strs {
		if zones && isZoned(s) {
			z, err := parseZonedPrefix(s)
			if err != nil {
				d.ps.add(slocs[i].pos, slocs[i].path, "%v", err)
				bad = true
				continue
			}
			zoned = append(zoned, z)
			continue
		}
		p, err := parsePrefix(s)
		if err != nil {
			d.ps.add(slocs[i].pos, slocs[i].path, "%v", err)
			bad = true
			continue
		}
		prefixes = append(prefixes, p)
		locs = append(locs, slocs[i])
	}
	return prefixes, zoned, locs, bad || !ok
}
