package kernel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/bindguard/bindguard/policy"
)

// EnforceMode is what the enforcement programs do with a bind the policy forbids.
type EnforceMode string

// The enforcement modes.
const (
	// EnforceDeny fails the bind with EPERM and records a denial.
	EnforceDeny EnforceMode = "deny"
	// EnforceDryRun records a would-be denial and allows the bind.
	EnforceDryRun EnforceMode = "dry-run"
	// EnforceRewrite turns a wildcard bind of a loopback-only service (localhost_only,
	// proxy_only) into its loopback address (0.0.0.0 to 127.0.0.1, :: to ::1,
	// ::ffff:0.0.0.0 to ::ffff:127.0.0.1) and records it; every other forbidden bind is denied.
	EnforceRewrite EnforceMode = "rewrite"
)

// PortRange is a range of ports guarded by enforcement: only declared services may bind them.
// Protocol "" guards TCP and UDP.
type PortRange struct {
	Protocol policy.Protocol
	Lo, Hi   uint16
}

// EnforceRule is what may bind one (protocol, port): the union of the declared services on it.
type EnforceRule struct {
	// Name names the rule in denials and status: "redis tcp/6379".
	Name     string
	Protocol policy.Protocol
	Port     uint16
	// Any allows every address; Loopback every loopback address (127.0.0.0/8, ::1 and their
	// IPv4-mapped forms); Addrs exact addresses (IPv4 unmapped); Prefixes address prefixes.
	Any      bool
	Loopback bool
	Addrs    []netip.Addr
	Prefixes []netip.Prefix
	// Rewrite: in rewrite mode a wildcard bind becomes loopback instead of failing.
	Rewrite bool
}

// Enforcement is the compiled form of a scope's services, what ApplyEnforcement loads into
// the kernel.
type Enforcement struct {
	Mode  EnforceMode
	Rules []EnforceRule
	Guard []PortRange
}

// Limits of the kernel maps.
const (
	maxEnforceRules = 4096
	maxGuardRanges  = 16
	ruleNameLen     = 64
)

// CompileEnforcement compiles a scope's services into the rules the kernel applies, asking
// each service's class what it may bind (policy.Service.PermitsBind) and its declared address:
// for every declared (protocol, port), the set of allowed addresses. A declared address allows
// exactly that address; a dual-stack "::" also 0.0.0.0 (which it covers). Without one, the
// class decides: any address, any loopback address, and the allow-list prefixes it permits.
// guard lists port ranges where undeclared binds are denied too.
func CompileEnforcement(services []policy.Service, mode EnforceMode, guard []PortRange) (Enforcement, error) {
	switch mode {
	case "":
		mode = EnforceDeny
	case EnforceDeny, EnforceDryRun, EnforceRewrite:
	default:
		return Enforcement{}, fmt.Errorf("kernel: enforcement mode %q: want deny, dry-run or rewrite", mode)
	}
	if len(guard) > maxGuardRanges {
		return Enforcement{}, fmt.Errorf("kernel: %d guarded port ranges, at most %d", len(guard), maxGuardRanges)
	}
	for _, g := range guard {
		if g.Lo == 0 || g.Hi < g.Lo {
			return Enforcement{}, fmt.Errorf("kernel: guarded port range %d-%d: want 1 <= lo <= hi", g.Lo, g.Hi)
		}
	}
	type key struct {
		proto policy.Protocol
		port  uint16
	}
	idx := map[key]int{}
	var rules []EnforceRule
	v4any, v6any := netip.IPv4Unspecified(), netip.IPv6Unspecified()
	for _, s := range services {
		if s.Protocol != policy.TCP && s.Protocol != policy.UDP {
			return Enforcement{}, fmt.Errorf("kernel: service %s: protocol %q", s.Name, s.Protocol)
		}
		k := key{s.Protocol, s.Port}
		i, ok := idx[k]
		if !ok {
			i = len(rules)
			idx[k] = i
			rules = append(rules, EnforceRule{Protocol: s.Protocol, Port: s.Port})
		}
		r := &rules[i]
		if r.Name == "" {
			r.Name = fmt.Sprintf("%s %s/%d", s.Name, s.Protocol, s.Port)
		} else {
			r.Name = s.Name + "," + r.Name
		}
		if s.Address.IsValid() {
			r.Addrs = append(r.Addrs, s.Address.Unmap())
			if s.IsDualStack() {
				r.Addrs = append(r.Addrs, v4any)
			}
		} else {
			if s.PermitsBind(v4any) && s.PermitsBind(v6any) {
				r.Any = true
			}
			if s.PermitsBind(netip.MustParseAddr("127.0.0.1")) && s.PermitsBind(netip.IPv6Loopback()) {
				r.Loopback = true
			}
			for _, p := range s.AllowPrefixes {
				if s.PermitsBind(p.Addr()) {
					r.Prefixes = append(r.Prefixes, p.Masked())
				}
			}
		}
		if mode == EnforceRewrite && s.Access.LoopbackOnly() && !s.Address.IsValid() {
			r.Rewrite = true
		}
	}
	if len(rules)+len(guard) >= maxEnforceRules {
		return Enforcement{}, fmt.Errorf("kernel: %d rules, at most %d", len(rules)+len(guard), maxEnforceRules-1)
	}
	for i := range rules {
		if len(rules[i].Name) >= ruleNameLen {
			rules[i].Name = rules[i].Name[:ruleNameLen-1]
		}
		slices.SortFunc(rules[i].Addrs, netip.Addr.Compare)
		rules[i].Addrs = slices.Compact(rules[i].Addrs)
	}
	return Enforcement{Mode: mode, Rules: rules, Guard: slices.Clone(guard)}, nil
}

// Denial is one bind the enforcement programs refused (or, in dry-run, would have refused, or
// in rewrite mode rewrote to loopback).
type Denial struct {
	Time      time.Time
	Monotonic int64
	// PID is the binder's process in bindguard's pid namespace (0 if not visible there).
	PID      uint32
	Comm     string
	CgroupID uint64
	Protocol policy.Protocol
	Family   string
	// Addr is the address asked for, unmapped (::ffff:0.0.0.0 is 0.0.0.0); Port the port (for
	// a bind to port 0 judged after the kernel chose one, that port).
	Addr   netip.Addr
	Port   uint16
	V6Only bool
	// Rule is the index of the rule that refused it (RuleName its name, when read through
	// an Enforcer), Errno the error the bind got (1, EPERM; 0 in dry-run or when rewritten).
	Rule     uint32
	RuleName string
	Errno    uint8
	DryRun   bool
	// PostBind says the bind asked for port 0 and was judged on the port chosen.
	PostBind  bool
	Rewritten bool
}

// denialSize is sizeof(struct denial) in enforce.c.
const denialSize = 64

// Denial flags (enforce.c).
const (
	denialDryRun    = 1
	denialV6Only    = 2
	denialPostBind  = 4
	denialRewritten = 8
)

// decodeDenial decodes one ring-buffer record; a malformed one wraps ErrBadRecord.
func decodeDenial(b []byte) (Denial, error) {
	if len(b) != denialSize {
		return Denial{}, fmt.Errorf("%w: denial of %d bytes, want %d", ErrBadRecord, len(b), denialSize)
	}
	le := binary.LittleEndian
	d := Denial{
		Monotonic: int64(le.Uint64(b[0:])), // #nosec G115 -- ktime fits
		CgroupID:  le.Uint64(b[8:]),
		PID:       le.Uint32(b[16:]),
		Rule:      le.Uint32(b[20:]),
		Port:      le.Uint16(b[24:]),
		Errno:     b[29],
	}
	switch b[26] {
	case 6:
		d.Protocol = policy.TCP
	case 17:
		d.Protocol = policy.UDP
	default:
		return Denial{}, fmt.Errorf("%w: denial protocol %d", ErrBadRecord, b[26])
	}
	switch b[27] {
	case 2:
		d.Family = "ipv4"
	case 10:
		d.Family = "ipv6"
	default:
		return Denial{}, fmt.Errorf("%w: denial family %d", ErrBadRecord, b[27])
	}
	flags := b[28]
	d.DryRun = flags&denialDryRun != 0
	d.V6Only = flags&denialV6Only != 0
	d.PostBind = flags&denialPostBind != 0
	d.Rewritten = flags&denialRewritten != 0
	d.Addr = netip.AddrFrom16([16]byte(b[32:48])).Unmap()
	comm := b[48:64]
	if i := slices.Index(comm, 0); i >= 0 {
		comm = comm[:i]
	}
	d.Comm = string(comm)
	return d, nil
}

// ErrEnforcement wraps every failure to load, attach or pin the enforcement programs.
var ErrEnforcement = errors.New("kernel enforcement unavailable")

// ErrNotEnforced is returned for a cgroup bindguard does not enforce.
var ErrNotEnforced = errors.New("not enforced by bindguard")

// EnforceStatus describes one enforced cgroup, from the pinned objects.
type EnforceStatus struct {
	// Cgroup is the path relative to the cgroup2 mount ("" when the cgroup is gone), ID its id.
	Cgroup string
	ID     uint64
	// PinDir holds the pinned links and maps.
	PinDir string
	Mode   EnforceMode
	// Links are the attach points found pinned ("bind4", "bind6", "post_bind4", "post_bind6");
	// Effective those whose program is among the cgroup's effective programs.
	Links     []string
	Effective []string
	Rules     []RuleStatus
	// Lost is the number of denial records the ring buffer had no room for.
	Lost uint64
}

// RuleStatus is a rule and its pinned denial counter.
type RuleStatus struct {
	ID      uint32
	Name    string
	Denials uint64
}

// OK reports whether all four programs are attached and effective.
func (s EnforceStatus) OK() bool { return len(s.Links) == 4 && len(s.Effective) == 4 }

// String is a one-line summary.
func (s EnforceStatus) String() string {
	return fmt.Sprintf("%s (id %d) mode %s links %s effective %s", s.Cgroup, s.ID, s.Mode,
		strings.Join(s.Links, ","), strings.Join(s.Effective, ","))
}
