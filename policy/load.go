package policy

import (
	"cmp"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/goccy/go-yaml/ast"
)

// Load reads and validates the policy file at path, or the policy directory at path (LoadDir).
// The format (native or seed) is detected from the document's shape. Any problem makes the whole
// file unusable: the error is an *InvalidError listing every problem, or an error from reading
// the file.
func Load(path string) (*Policy, error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return LoadDir(path)
	}
	src, err := readPolicyFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, src)
}

// readPolicyFile reads at most MaxFileSize+1 bytes of a policy file (Parse refuses more).
func readPolicyFile(path string) ([]byte, error) {
	f, err := os.Open(path) // #nosec G304 -- reading the policy file the operator named is the purpose
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	defer f.Close()
	src, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("policy: read %s: %w", path, err)
	}
	return src, nil
}

// Parse reads a policy held in memory; name is used in problems and as Source. It decodes the
// YAML (syntax and types: unknown keys, a list where a string belongs), applies Defaults (except
// to fields the file wrote), then Validate: every semantic and safety rule, each problem at its
// line and column.
func Parse(name string, src []byte) (*Policy, error) {
	return parseFiles(name, src, nil)
}

// source is one policy file held in memory.
type source struct {
	name string
	src  []byte
}

// parseFiles reads a main policy file and its drop-ins (scopes only) as one policy: each file
// decoded on its own, then one Defaults and one Validate over the whole. Problems name the file
// they are in and come in file order, then line order.
func parseFiles(name string, src []byte, dropins []source) (*Policy, error) {
	ps := &problems{file: name}
	d := &decoder{ps: ps}
	var (
		p  *Policy
		sm *sourceMap
	)
	if root := d.document(src); root != nil {
		switch detect(root) {
		case FormatSeed:
			p, sm = d.seed(root)
		default:
			p, sm = d.native(root)
		}
	}
	order := map[string]int{name: 0}
	for i, f := range dropins {
		if _, seen := order[f.name]; !seen {
			order[f.name] = i + 1
		}
		scopes, locs := (&decoder{ps: ps.in(f.name), dropIn: true}).dropInFile(f.src, name)
		if p != nil {
			p.Scopes = append(p.Scopes, scopes...)
			sm.scopes = append(sm.scopes, locs...)
		}
	}
	if p != nil {
		applyDefaults(p, sm)
		validate(ps, p, sm)
	}
	slices.SortStableFunc(ps.list, func(a, b *Problem) int {
		if c := cmp.Compare(order[a.File], order[b.File]); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Line, b.Line); c != 0 {
			return c
		}
		return cmp.Compare(a.Column, b.Column)
	})
	if err := ps.err(); err != nil {
		return nil, err
	}
	p.Source = name
	return p, nil
}

// Validate checks a Policy by every rule Load applies to a file: the same checks, the same
// messages. Problems name fields by path (services[2].address, proxy.server_names[0]) and carry
// the positions recorded in the Policy (Service.Pos) where there are any. A Policy built in code
// goes through Defaults first, as Load's does: Validate does not fill defaults, and refuses
// AllowPrefixes that do not match the allow lists they are resolved from.
//
// Validate never changes p.
func Validate(p *Policy) error {
	ps := &problems{file: cmp.Or(p.Source, "policy")}
	validate(ps, p, nil)
	return ps.err()
}

var nativeKeys = []string{"version", "trusted_proxies", "client_ip_header", "networks", "services", "scopes", "proxy", "monitor", "scan", "probe", "enforce"}

// detect tells the two formats apart by shape: the native format has `version` or `services`
// (or another of its top-level keys but proxy and monitor, which both have); the seed's is groups (external_access,
// internal_services, ...) each mapping service names to their bindings.
func detect(root ast.Node) Format {
	m, ok := unwrap(root).(*ast.MappingNode)
	if !ok || len(m.Values) == 0 {
		return FormatNative
	}
	for _, mv := range m.Values {
		// proxy is a key of both formats: it says nothing about which.
		if k := keyText(mv.Key); k != seedProxyKey && k != seedMonitorKey && slices.Contains(nativeKeys, k) {
			return FormatNative
		}
	}
	for _, mv := range m.Values {
		if _, isMap := unwrap(mv.Value).(*ast.MappingNode); !isMap {
			return FormatNative
		}
	}
	return FormatSeed
}

// loc is where a value stands: its field path and position.
type loc struct {
	path string
	pos  Position
}

// sourceMap records where each decoded value came from, so that checks made after decoding
// can report at the right line, and which values failed to decode, so that they are not
// reported twice.
type sourceMap struct {
	top         map[string]loc
	trusted     []loc
	trustedBad  bool
	networks    []netLoc
	badNetworks []string // networks that failed to decode: allow lists naming them are not checked
	services    []svcLoc
	scopes      []scopeLoc
	// vals records where the top-level scalars, the proxy section and the monitor section stand,
	// by their path in the Policy's Go values.
	vals      *locs
	root      Position
	synthetic bool // built by syntheticMap for a Policy made in code
}

// locs maps paths of Go values (proxy.routes[1].path: indexes into the decoded slices) to where
// the value stands in the file (its path there and its position), and records values that were
// written but failed to decode. The zero *locs knows of no file: every path stands where it is,
// at no position.
type locs struct {
	m   map[string]loc
	bad map[string]bool
}

func newLocs() *locs { return &locs{m: map[string]loc{}, bad: map[string]bool{}} }

func (l *locs) set(path string, at loc) { l.m[path] = at }

func (l *locs) fail(path string) { l.bad[path] = true }

// written reports whether the file wrote the value at path (decoded or not).
func (l *locs) written(path string) bool {
	if l == nil {
		return false
	}
	_, ok := l.m[path]
	return ok
}

// failed reports whether the value at path was written but could not be decoded: its problem is
// reported, and nothing more is said of it.
func (l *locs) failed(path string) bool { return l != nil && l.bad[path] }

// at is where the value at path stands; for a value not written, where its parent stands, with
// the parent's file path extended by the rest of path.
func (l *locs) at(path string) loc {
	if l != nil {
		if v, ok := l.m[path]; ok {
			return v
		}
	}
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return loc{path: path}
	}
	parent := l.at(path[:i])
	return loc{path: parent.path + path[i:], pos: parent.pos}
}

type netLoc struct {
	self    loc
	entries []loc
}

type svcLoc struct {
	self   loc
	fields map[string]loc
	allow  []loc
	bad    map[string]bool
	// misspelled are fields an unknown key was taken for: they are not also called missing.
	misspelled map[string]bool
}

// at is where a service's field stands, or the service itself if the field was not written.
func (s *svcLoc) at(field string) loc {
	if l, ok := s.fields[field]; ok {
		return l
	}
	return loc{path: joinPath(s.self.path, field), pos: s.self.pos}
}

func (s *svcLoc) ok(fields ...string) bool {
	for _, f := range fields {
		if s.bad[f] {
			return false
		}
	}
	return true
}

func (s *svcLoc) fail(field string) { s.bad[field] = true }

// scopeLoc records where a scope and its values stand, and in which file.
type scopeLoc struct {
	// file is the drop-in the scope is declared in; "" is the main file.
	file       string
	self       loc
	fields     map[string]loc
	match      []loc
	bad        map[string]bool
	misspelled map[string]bool
	services   []svcLoc
}

// at is where a scope's field stands, or the scope itself if the field was not written.
func (s *scopeLoc) at(field string) loc {
	if l, ok := s.fields[field]; ok {
		return l
	}
	return loc{path: joinPath(s.self.path, field), pos: s.self.pos}
}

func (s *scopeLoc) ok(field string) bool { return !s.bad[field] }

// syntheticMap is the source map of a Policy built in code: paths, no positions.
func syntheticMap(p *Policy) *sourceMap {
	sm := &sourceMap{top: map[string]loc{}, vals: newLocs(), synthetic: true}
	for _, f := range nativeKeys {
		sm.top[f] = loc{path: f}
	}
	for i := range p.TrustedProxies {
		sm.trusted = append(sm.trusted, loc{path: indexPath("trusted_proxies", i)})
	}
	for _, n := range p.Networks {
		nl := netLoc{self: loc{path: joinPath("networks", n.Name), pos: n.Pos}}
		for i := range n.Prefixes {
			nl.entries = append(nl.entries, loc{path: indexPath(nl.self.path, i), pos: n.Pos})
		}
		sm.networks = append(sm.networks, nl)
	}
	for i, s := range p.Services {
		sm.services = append(sm.services, syntheticService(indexPath("services", i), s))
	}
	for i, sc := range p.Scopes {
		scl := scopeLoc{self: loc{path: indexPath("scopes", i), pos: sc.Pos}, fields: map[string]loc{}, bad: map[string]bool{}}
		for j := range sc.Match {
			scl.match = append(scl.match, loc{path: indexPath(scl.self.path+".match", j), pos: sc.Pos})
		}
		for j, s := range sc.Services {
			scl.services = append(scl.services, syntheticService(indexPath(scl.self.path+".services", j), s))
		}
		sm.scopes = append(sm.scopes, scl)
	}
	return sm
}

func syntheticService(path string, s Service) svcLoc {
	sl := svcLoc{self: loc{path: path, pos: s.Pos}, fields: map[string]loc{}, bad: map[string]bool{}}
	for j := range s.Allow {
		sl.allow = append(sl.allow, loc{path: indexPath(sl.self.path+".allow", j), pos: s.Pos})
	}
	return sl
}
