package policy

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml/ast"
)

// EnforceMode is what `bindguard enforce` does with a bind the policy forbids.
type EnforceMode string

// The enforcement modes.
const (
	// EnforceDeny fails the bind (EPERM) and records the denial. The default.
	EnforceDeny EnforceMode = "deny"
	// EnforceDryRun records what would be denied and denies nothing.
	EnforceDryRun EnforceMode = "dry-run"
	// EnforceRewrite turns a wildcard bind of a loopback-only service into its loopback
	// address instead of failing it; other forbidden binds are denied.
	EnforceRewrite EnforceMode = "rewrite"
)

// EnforceModes lists the modes.
func EnforceModes() []EnforceMode { return []EnforceMode{EnforceDeny, EnforceDryRun, EnforceRewrite} }

// PortRange is a range of ports, Lo to Hi inclusive; Protocol "" means TCP and UDP. Written
// as "1-1023", "tcp/6000-6999" or "udp/53".
type PortRange struct {
	Protocol Protocol
	Lo, Hi   uint16
}

// String writes the range as the policy does.
func (r PortRange) String() string {
	s := strconv.Itoa(int(r.Lo))
	if r.Hi != r.Lo {
		s += "-" + strconv.Itoa(int(r.Hi))
	}
	if r.Protocol != "" {
		s = string(r.Protocol) + "/" + s
	}
	return s
}

// ParsePortRange reads "1-1023", "tcp/6000-6999" or "udp/53".
func ParsePortRange(s string) (PortRange, error) {
	var r PortRange
	if proto, rest, ok := strings.Cut(s, "/"); ok {
		switch Protocol(proto) {
		case TCP, UDP:
			r.Protocol = Protocol(proto)
		default:
			return PortRange{}, fmt.Errorf("protocol %q: want tcp or udp", proto)
		}
		s = rest
	}
	lo, hi, isRange := strings.Cut(s, "-")
	l, err := strconv.ParseUint(lo, 10, 16)
	if err != nil || l == 0 {
		return PortRange{}, fmt.Errorf("port %q: want 1-65535", lo)
	}
	h := l
	if isRange {
		if h, err = strconv.ParseUint(hi, 10, 16); err != nil || h == 0 {
			return PortRange{}, fmt.Errorf("port %q: want 1-65535", hi)
		}
	}
	if h < l {
		return PortRange{}, fmt.Errorf("range %d-%d ends before it starts", l, h)
	}
	r.Lo, r.Hi = uint16(l), uint16(h) // #nosec G115 -- parsed as 16 bits
	return r, nil
}

// MaxGuardRanges is how many port ranges enforce.guard may list (the kernel's table).
const MaxGuardRanges = 16

// Enforce configures `bindguard enforce` (docs/enforce.md).
type Enforce struct {
	// Mode is deny (the default, also when empty), dry-run or rewrite.
	Mode EnforceMode
	// Guard lists port ranges where only declared services may bind; ports outside them that
	// no service declares are left alone.
	Guard []PortRange
	Pos   Position
}

// EffectiveMode is the mode, deny when unset.
func (e *Enforce) EffectiveMode() EnforceMode {
	if e == nil || e.Mode == "" {
		return EnforceDeny
	}
	return e.Mode
}

const enforceKey = "enforce"

var enforceKeys = []string{"mode", "guard"}

// enforce decodes the enforce section, recording in at where its values stand.
func (d *decoder) enforce(n ast.Node, path string, at *locs) *Enforce {
	o, ok := d.object(n, path, "a mapping (mode:, guard:)", enforceKeys...)
	if !ok {
		return nil
	}
	e := &Enforce{Pos: o.pos, Mode: EnforceDeny}
	at.set(enforceKey, loc{path: path, pos: o.pos})
	pd := proxyDecoder{d: d, at: at}
	var mode string
	pd.str(o, "mode", "enforce.mode", &mode)
	if mode != "" {
		e.Mode = EnforceMode(mode)
	}
	for i, s := range pd.list(o, "guard", "enforce.guard") {
		gp := indexPath("enforce.guard", i)
		r, err := ParsePortRange(s)
		if err != nil {
			l := at.at(gp)
			d.ps.add(l.pos, l.path, "%s (a range is 1-1023, tcp/6000-6999 or udp/53)", err)
			at.fail("enforce.guard")
			continue
		}
		e.Guard = append(e.Guard, r)
	}
	return e
}

// validateEnforce checks the enforce section.
func validateEnforce(ps *problems, p *Policy, at *locs) {
	e := p.Enforce
	if e == nil {
		return
	}
	switch e.Mode {
	case "", EnforceDeny, EnforceDryRun, EnforceRewrite:
	default:
		if !at.failed("enforce.mode") {
			l := at.at("enforce.mode")
			ps.add(l.pos, l.path, "mode %q: want deny, dry-run or rewrite", e.Mode)
		}
	}
	if at.failed("enforce.guard") {
		return
	}
	if len(e.Guard) > MaxGuardRanges {
		l := at.at("enforce.guard")
		ps.add(l.pos, l.path, "%d port ranges: at most %d", len(e.Guard), MaxGuardRanges)
	}
	for i, r := range e.Guard {
		bad := ""
		switch {
		case r.Protocol != "" && r.Protocol != TCP && r.Protocol != UDP:
			bad = fmt.Sprintf("protocol %q: want tcp or udp", r.Protocol)
		case r.Lo == 0 || r.Hi < r.Lo:
			bad = fmt.Sprintf("range %d-%d: want 1 <= first <= last", r.Lo, r.Hi)
		}
		if bad != "" {
			l := at.at(indexPath("enforce.guard", i))
			ps.add(l.pos, l.path, "%s", bad)
		}
	}
}

// writeEnforce writes the enforce section.
func writeEnforce(b *bytes.Buffer, e *Enforce) {
	if e == nil {
		return
	}
	fmt.Fprintf(b, "enforce:\n  mode: %s\n", quote(string(e.EffectiveMode())))
	if len(e.Guard) > 0 {
		g := make([]string, len(e.Guard))
		for i, r := range e.Guard {
			g[i] = r.String()
		}
		fmt.Fprintf(b, "  guard: %s\n", quotedList(g))
	}
}
