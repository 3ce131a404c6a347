package kernel

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"

	"github.com/bindguard/bindguard/policy"
)

// DefaultPinRoot is where enforcement pins its links and maps: one directory per cgroup,
// cg-ID (the cgroup's id), on the BPF file system.
const DefaultPinRoot = "/sys/fs/bpf/bindguard"

// EnforceOptions configure ApplyEnforcement, RemoveEnforcement and the status.
type EnforceOptions struct {
	// PinRoot is the directory on the BPF file system holding the pins (DefaultPinRoot if
	// empty). /sys/fs/bpf is mounted when it is not a BPF file system yet.
	PinRoot string
}

func (o EnforceOptions) root() string {
	if o.PinRoot == "" {
		return DefaultPinRoot
	}
	return o.PinRoot
}

// The attach points, in pin order; the pin of each link is link_NAME.
var enforceHooks = []struct {
	name   string
	attach ebpf.AttachType
	prog   func(*enforceObjects) *ebpf.Program
}{
	{"bind4", ebpf.AttachCGroupInet4Bind, func(o *enforceObjects) *ebpf.Program { return o.BindguardEnforceBind4 }},
	{"bind6", ebpf.AttachCGroupInet6Bind, func(o *enforceObjects) *ebpf.Program { return o.BindguardEnforceBind6 }},
	{"post_bind4", ebpf.AttachCGroupInet4PostBind, func(o *enforceObjects) *ebpf.Program { return o.BindguardEnforcePostBind4 }},
	{"post_bind6", ebpf.AttachCGroupInet6PostBind, func(o *enforceObjects) *ebpf.Program { return o.BindguardEnforcePostBind6 }},
}

// ensureBPFFS mounts the BPF file system at /sys/fs/bpf when root lies under it and it is not
// mounted, then creates root.
func ensureBPFFS(root string) error {
	const mnt = "/sys/fs/bpf"
	var st unix.Statfs_t
	if err := unix.Statfs(mnt, &st); err != nil {
		return fmt.Errorf("%s: %w", mnt, err)
	}
	if st.Type != unix.BPF_FS_MAGIC && strings.HasPrefix(filepath.Clean(root)+"/", mnt+"/") {
		if err := unix.Mount("bpf", mnt, "bpf", 0, "mode=0700"); err != nil {
			return fmt.Errorf("mount the BPF file system at %s: %w", mnt, err)
		}
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return err
	}
	if err := unix.Statfs(root, &st); err != nil {
		return err
	}
	if st.Type != unix.BPF_FS_MAGIC {
		return fmt.Errorf("%s is not on a BPF file system", root)
	}
	return nil
}

// pinDir is the pin directory of a cgroup id.
func pinDir(root string, id uint64) string {
	return filepath.Join(root, "cg-"+strconv.FormatUint(id, 10))
}

// ApplyEnforcement attaches the enforcement programs to the cgroup directory cg (through
// bpf_link only, multi-attach: a child cgroup cannot replace them) and loads e's rules,
// pinning links and maps under opts.PinRoot so enforcement outlives this process. When the
// cgroup is enforced already, the pinned maps are updated in place (new entries first, stale
// ones removed after) and the pinned links switched to the newly loaded programs atomically
// (BPF_LINK_UPDATE). It returns the pin directory. Needs CAP_BPF, CAP_NET_ADMIN and
// CAP_PERFMON (root), and CAP_SYS_ADMIN to mount the BPF file system.
func ApplyEnforcement(cg string, e Enforcement, opts EnforceOptions) (dir string, err error) {
	fail := func(stage string, err error) (string, error) {
		return "", fmt.Errorf("%w: enforce %s: %s: %w", ErrEnforcement, cg, stage, explain(err))
	}
	if e.Mode == "" {
		e.Mode = EnforceDeny
	}
	var st unix.Statfs_t
	if err := unix.Statfs(cg, &st); err != nil {
		return fail("cgroup", err)
	}
	if st.Type != unix.CGROUP2_SUPER_MAGIC {
		return fail("cgroup", errors.New("not a cgroup2 directory"))
	}
	id, err := CgroupID(cg)
	if err != nil {
		return fail("cgroup", err)
	}
	root := opts.root()
	if err := ensureBPFFS(root); err != nil {
		return fail("pin directory", err)
	}
	dir = pinDir(root, id)
	if _, serr := os.Stat(dir); errors.Is(serr, os.ErrNotExist) {
		// A first apply that fails leaves nothing behind: no link, no pin.
		defer func() {
			if err != nil {
				_ = RemoveEnforcement(id, opts)
			}
		}()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fail("pin directory", err)
	}
	objs, err := loadEnforceObjectsPinned(dir)
	if err != nil {
		return fail("load", err)
	}
	defer func() { _ = objs.Close() }()
	if err := writeRules(&objs.enforceMaps, e); err != nil {
		return fail("write the rules", err)
	}
	cgf, err := os.Open(cg) // #nosec G304 -- the cgroup asked for
	if err != nil {
		return fail("cgroup", err)
	}
	defer func() { _ = cgf.Close() }()
	for _, h := range enforceHooks {
		pin := filepath.Join(dir, "link_"+h.name)
		prog := h.prog(objs)
		if l, err := link.LoadPinnedLink(pin, nil); err == nil {
			err = l.Update(prog)
			_ = l.Close()
			if err != nil {
				return fail("update link "+h.name, err)
			}
			continue
		} else if !errors.Is(err, os.ErrNotExist) {
			return fail("pinned link "+h.name, err)
		}
		l, err := link.AttachRawLink(link.RawLinkOptions{Target: int(cgf.Fd()), Program: prog, Attach: h.attach}) // #nosec G115 -- an fd
		if err != nil {
			return fail("attach cgroup/"+h.name, err)
		}
		err = l.Pin(pin)
		_ = l.Close()
		if err != nil {
			return fail("pin link "+h.name, err)
		}
	}
	return dir, nil
}

// loadEnforceObjectsPinned loads the programs with every map pinned by name in dir, reusing
// the maps already pinned there.
func loadEnforceObjectsPinned(dir string) (*enforceObjects, error) {
	spec, err := loadEnforce()
	if err != nil {
		return nil, err
	}
	var nsStat unix.Stat_t
	if err := unix.Stat("/proc/self/ns/pid", &nsStat); err != nil {
		return nil, err
	}
	if err := spec.Variables[enforceVarReaderPidns].Set(uint32(nsStat.Ino)); err != nil { // #nosec G115 -- namespace inodes are 32-bit
		return nil, err
	}
	for _, m := range spec.Maps {
		if !strings.HasPrefix(m.Name, ".") {
			m.Pinning = ebpf.PinByName
		}
	}
	lopts, err := loadOptions()
	if err != nil {
		return nil, err
	}
	lopts.Maps.PinPath = dir
	objs := new(enforceObjects)
	if err := spec.LoadAndAssign(objs, lopts); err != nil {
		if errors.Is(err, ebpf.ErrMapIncompatible) {
			return nil, fmt.Errorf("%w (the pinned maps in %s are from another bindguard version: run enforce remove first)", err, dir)
		}
		return nil, err
	}
	return objs, nil
}

func protoNum(p policy.Protocol) uint8 {
	if p == policy.UDP {
		return unix.IPPROTO_UDP
	}
	return unix.IPPROTO_TCP
}

// writeRules brings the maps to e: new and changed entries are written first, then entries
// e no longer has are deleted, so a bind racing the update sees either rule.
func writeRules(m *enforceMaps, e Enforcement) error {
	mode := map[EnforceMode]uint32{EnforceDeny: 0, EnforceDryRun: 1, EnforceRewrite: 2}[e.Mode]
	wantPorts := map[enforcePortKey]enforcePortRule{}
	wantAddrs := map[enforceAddrKey]uint32{}
	wantPrefixes := map[enforcePrefixKey]uint32{}
	names := map[uint32]string{}
	for i, r := range e.Rules {
		id := uint32(i + 1) // #nosec G115 -- bounded by maxEnforceRules
		names[id] = r.Name
		pr := enforcePortRule{Rule: id}
		if r.Any {
			pr.Flags |= 1
		}
		if r.Loopback {
			pr.Flags |= 2
		}
		if len(r.Addrs) > 0 {
			pr.Flags |= 4
		}
		if len(r.Prefixes) > 0 {
			pr.Flags |= 8
		}
		if r.Rewrite {
			pr.Flags |= 16
		}
		proto := protoNum(r.Protocol)
		wantPorts[enforcePortKey{Protocol: proto, Port: r.Port}] = pr
		for _, a := range r.Addrs {
			wantAddrs[enforceAddrKey{Protocol: proto, Port: r.Port, Addr: mapped(a)}] = id
		}
		for _, p := range r.Prefixes {
			bits := p.Bits()
			if p.Addr().Is4() {
				bits += 96
			}
			k := enforcePrefixKey{Prefixlen: uint32(32 + bits), Protocol: proto, Port: htons(r.Port), Addr: mapped(p.Addr())} // #nosec G115 -- <= 160
			wantPrefixes[k] = id
		}
	}
	var guard []enforceGuardRange
	for i, g := range e.Guard {
		id := uint32(len(e.Rules) + i + 1) // #nosec G115 -- bounded
		gr := enforceGuardRange{Lo: g.Lo, Hi: g.Hi, Used: 1, Rule: id}
		proto := "tcp,udp"
		if g.Protocol != "" {
			gr.Protocol = protoNum(g.Protocol)
			proto = string(g.Protocol)
		}
		names[id] = fmt.Sprintf("guard %s/%d-%d", proto, g.Lo, g.Hi)
		guard = append(guard, gr)
	}
	// Names first: a denial under a new rule id must find its name.
	for id := uint32(0); id < maxEnforceRules; id++ {
		var rn enforceRuleName
		n, ok := names[id]
		var cur enforceRuleName
		if err := m.RuleNames.Lookup(id, &cur); err == nil && !ok && cur.Name[0] == 0 {
			continue
		}
		for i := 0; i < len(n) && i < ruleNameLen-1; i++ {
			rn.Name[i] = int8(n[i]) // #nosec G115 -- bytes of a name
		}
		if rn == cur {
			continue
		}
		if err := m.RuleNames.Put(id, rn); err != nil {
			return fmt.Errorf("rule name %d: %w", id, err)
		}
	}
	for k, v := range wantAddrs {
		if err := m.Addrs.Put(k, v); err != nil {
			return fmt.Errorf("address rule: %w", err)
		}
	}
	for k, v := range wantPrefixes {
		if err := m.Prefixes.Put(k, v); err != nil {
			return fmt.Errorf("prefix rule: %w", err)
		}
	}
	for k, v := range wantPorts {
		if err := m.Ports.Put(k, v); err != nil {
			return fmt.Errorf("port rule: %w", err)
		}
	}
	for i := range maxGuardRanges {
		var g enforceGuardRange
		if i < len(guard) {
			g = guard[i]
		}
		if err := m.Guard.Put(uint32(i), g); err != nil { // #nosec G115 -- < 16
			return fmt.Errorf("guarded range: %w", err)
		}
	}
	if err := writePortBits(m.Portbits, wantPorts, e.Guard); err != nil {
		return err
	}
	if err := m.Config.Put(uint32(0), enforceConfig{Mode: mode}); err != nil {
		return fmt.Errorf("mode: %w", err)
	}
	if err := deleteStale(m.Ports, func(k enforcePortKey) bool { _, ok := wantPorts[k]; return ok }); err != nil {
		return err
	}
	if err := deleteStale(m.Addrs, func(k enforceAddrKey) bool { _, ok := wantAddrs[k]; return ok }); err != nil {
		return err
	}
	return deleteStale(m.Prefixes, func(k enforcePrefixKey) bool { _, ok := wantPrefixes[k]; return ok })
}

// Flags of portbits beside the port rule's (enforce.c).
const (
	portBitsRule  = 32
	portBitsGuard = 64
	portBitsChunk = 64
)

// writePortBits brings portbits, the per-port verdict flags the programs judge by, to the
// port rules and guarded ranges (written to ports and guard before, so that a denial finds
// its rule): entries that differ are rewritten, each port's byte old or new for a racing bind.
func writePortBits(m *ebpf.Map, ports map[enforcePortKey]enforcePortRule, guard []PortRange) error {
	want := make([]enforcePortBits, 2*65536/portBitsChunk)
	set := func(proto uint8, port uint16, f uint8) {
		k := int(port)
		if proto == unix.IPPROTO_UDP {
			k |= 65536
		}
		want[k/portBitsChunk].F[k%portBitsChunk] = f
	}
	for _, g := range guard {
		for _, proto := range []uint8{unix.IPPROTO_TCP, unix.IPPROTO_UDP} {
			if g.Protocol != "" && protoNum(g.Protocol) != proto {
				continue
			}
			for p := int(g.Lo); p <= int(g.Hi); p++ {
				set(proto, uint16(p), portBitsGuard) // #nosec G115 -- a port
			}
		}
	}
	for k, pr := range ports {
		set(k.Protocol, k.Port, uint8(pr.Flags)|portBitsRule) // #nosec G115 -- flags < 32
	}
	for i := range want {
		var cur enforcePortBits
		if err := m.Lookup(uint32(i), &cur); err == nil && cur == want[i] { // #nosec G115 -- < 2048
			continue
		}
		if err := m.Put(uint32(i), want[i]); err != nil { // #nosec G115 -- < 2048
			return fmt.Errorf("port flags: %w", err)
		}
	}
	return nil
}

// deleteStale deletes the keys of m that keep refuses.
func deleteStale[K comparable](m *ebpf.Map, keep func(K) bool) error {
	var stale []K
	var k K
	it := m.Iterate()
	var v []byte
	for it.Next(&k, &v) {
		if !keep(k) {
			stale = append(stale, k)
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("%s: %w", m.String(), err)
	}
	for _, k := range stale {
		if err := m.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("%s: %w", m.String(), err)
		}
	}
	return nil
}

func mapped(a netip.Addr) [16]byte {
	if a.Is4() {
		return netip.AddrFrom16(a.As16()).As16()
	}
	return a.As16()
}

func htons(p uint16) uint16 { return p>>8 | p<<8 }

// RemoveEnforcement detaches the programs bindguard attached to the cgroup with this id and
// removes its pins; ErrNotEnforced when there are none. Other programs stay.
func RemoveEnforcement(id uint64, opts EnforceOptions) error {
	dir := pinDir(opts.root(), id)
	if _, err := os.Stat(dir); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("kernel: cgroup %d: %w", id, ErrNotEnforced)
		}
		return fmt.Errorf("kernel: remove enforcement: %w", err)
	}
	var errs []error
	for _, h := range enforceHooks {
		pin := filepath.Join(dir, "link_"+h.name)
		l, err := link.LoadPinnedLink(pin, nil)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("link %s: %w", h.name, err))
			continue
		}
		if err := l.Detach(); err != nil && !errors.Is(err, ebpf.ErrNotSupported) {
			errs = append(errs, fmt.Errorf("detach %s: %w", h.name, err))
		}
		if err := l.Unpin(); err != nil {
			errs = append(errs, fmt.Errorf("unpin %s: %w", h.name, err))
		}
		_ = l.Close()
	}
	if len(errs) == 0 {
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("kernel: remove enforcement of cgroup %d: %w", id, err)
	}
	return nil
}

// EnforcementStatus lists every cgroup enforced under opts.PinRoot, with its mode, its links
// and whether each is among the cgroup's effective programs, and the pinned denial counters.
func EnforcementStatus(opts EnforceOptions) ([]EnforceStatus, error) {
	root := opts.root()
	ents, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("kernel: enforcement status: %w", err)
	}
	mount, _ := FindCgroup2()
	var out []EnforceStatus
	for _, ent := range ents {
		s, ok := strings.CutPrefix(ent.Name(), "cg-")
		if !ok || !ent.IsDir() {
			continue
		}
		id, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			continue
		}
		st, err := statusOf(mount, filepath.Join(root, ent.Name()), id, true, "")
		if err != nil {
			return nil, fmt.Errorf("kernel: enforcement status of cgroup %d: %w", id, err)
		}
		out = append(out, st)
	}
	return out, nil
}

// EnforcementHealth is EnforcementStatus for the cgroup directory cg with this id, without
// the rules and their counters (a few system calls: what serve asks on every scrape);
// ErrNotEnforced when bindguard has no pins for it. Cgroup is cg as given.
func EnforcementHealth(cg string, id uint64, opts EnforceOptions) (EnforceStatus, error) {
	dir := pinDir(opts.root(), id)
	if _, err := os.Stat(dir); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return EnforceStatus{ID: id}, fmt.Errorf("kernel: cgroup %d: %w", id, ErrNotEnforced)
		}
		return EnforceStatus{ID: id}, fmt.Errorf("kernel: enforcement of cgroup %d: %w", id, err)
	}
	st, err := statusOf("", dir, id, false, cg)
	if err != nil {
		return st, fmt.Errorf("kernel: enforcement of cgroup %d: %w", id, err)
	}
	return st, nil
}

// statusOf reads the pins in dir of the cgroup id: the cgroup directory is cg, or found
// under mount when cg is "".
func statusOf(mount, dir string, id uint64, rules bool, cg string) (EnforceStatus, error) {
	st := EnforceStatus{ID: id, PinDir: dir, Cgroup: cg}
	if cg == "" && mount != "" {
		if p, err := CgroupPath(mount, id); err == nil {
			st.Cgroup, cg = p, filepath.Join(mount, p)
		}
	}
	var cgf *os.File
	if cg != "" {
		if f, err := os.Open(cg); err == nil { // #nosec G304 -- a cgroup directory
			if got, err := CgroupID(cg); err == nil && got == id {
				cgf = f
			} else {
				_ = f.Close()
			}
		}
	}
	if cgf != nil {
		defer func() { _ = cgf.Close() }()
	}
	for _, h := range enforceHooks {
		l, err := link.LoadPinnedLink(filepath.Join(dir, "link_"+h.name), nil)
		if err != nil {
			continue
		}
		info, err := l.Info()
		_ = l.Close()
		if err != nil {
			continue
		}
		st.Links = append(st.Links, h.name)
		if cgf == nil {
			continue
		}
		q, err := link.QueryPrograms(link.QueryOptions{Target: int(cgf.Fd()), Attach: h.attach, QueryFlags: unix.BPF_F_QUERY_EFFECTIVE}) // #nosec G115 -- an fd
		if err != nil {
			continue
		}
		if slices.ContainsFunc(q.Programs, func(p link.AttachedProgram) bool { return p.ID == info.Program }) {
			st.Effective = append(st.Effective, h.name)
		}
	}
	m, err := openPinnedMaps(dir)
	if err != nil {
		return st, err
	}
	defer m.close()
	var c enforceConfig
	if err := m.config.Lookup(uint32(0), &c); err == nil {
		st.Mode = [...]EnforceMode{EnforceDeny, EnforceDryRun, EnforceRewrite}[min(c.Mode, 2)]
	}
	for rid := uint32(1); rules && rid < maxEnforceRules; rid++ {
		name := m.name(rid)
		if name == "" {
			continue
		}
		st.Rules = append(st.Rules, RuleStatus{ID: rid, Name: name, Denials: sumPerCPU(m.counters, rid)})
	}
	st.Lost = sumPerCPU(m.lost, 0)
	return st, nil
}

type pinnedMaps struct {
	config, counters, lost, names, denials *ebpf.Map
}

func openPinnedMaps(dir string) (*pinnedMaps, error) {
	var m pinnedMaps
	for _, x := range []struct {
		name string
		dst  **ebpf.Map
	}{{"config", &m.config}, {"counters", &m.counters}, {"lost", &m.lost}, {"rule_names", &m.names}, {"denials", &m.denials}} {
		mp, err := ebpf.LoadPinnedMap(filepath.Join(dir, x.name), nil)
		if err != nil {
			m.close()
			return nil, err
		}
		*x.dst = mp
	}
	return &m, nil
}

func (m *pinnedMaps) close() {
	for _, mp := range []*ebpf.Map{m.config, m.counters, m.lost, m.names, m.denials} {
		if mp != nil {
			_ = mp.Close()
		}
	}
}

func (m *pinnedMaps) name(id uint32) string {
	var rn enforceRuleName
	if m.names.Lookup(id, &rn) != nil {
		return ""
	}
	b := make([]byte, 0, ruleNameLen)
	for _, c := range rn.Name {
		if c == 0 {
			break
		}
		b = append(b, byte(c)) // #nosec G115 -- bytes of a name
	}
	return string(b)
}

func sumPerCPU(m *ebpf.Map, key uint32) uint64 {
	var vs []uint64
	if m.Lookup(key, &vs) != nil {
		return 0
	}
	var n uint64
	for _, v := range vs {
		n += v
	}
	return n
}

// DenialReader reads the denial records of one enforced cgroup from its pinned ring buffer;
// records written while no reader ran are still there (as many as the buffer holds).
type DenialReader struct {
	maps *pinnedMaps
	rd   *ringbuf.Reader
	rec  ringbuf.Record
	w    Watcher // for the clock only
}

// OpenDenials opens the denial records of the cgroup with this id.
func OpenDenials(id uint64, opts EnforceOptions) (*DenialReader, error) {
	m, err := openPinnedMaps(pinDir(opts.root(), id))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("kernel: denials of cgroup %d: %w", id, ErrNotEnforced)
	}
	if err != nil {
		return nil, fmt.Errorf("kernel: denials of cgroup %d: %w", id, err)
	}
	rd, err := ringbuf.NewReader(m.denials)
	if err != nil {
		m.close()
		return nil, fmt.Errorf("kernel: denials of cgroup %d: %w", id, err)
	}
	return &DenialReader{maps: m, rd: rd}, nil
}

// Read waits for the next denial; ctx's error when it ends first. Not for concurrent use.
func (r *DenialReader) Read(ctx context.Context) (Denial, error) {
	if err := ctx.Err(); err != nil {
		return Denial{}, err
	}
	dl, _ := ctx.Deadline()
	r.rd.SetDeadline(dl)
	done := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(done)
		r.rd.SetDeadline(time.Unix(1, 0))
	})
	err := r.rd.ReadInto(&r.rec)
	if !stop() {
		<-done
	}
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		if ctx.Err() != nil {
			return Denial{}, ctx.Err()
		}
		return Denial{}, context.DeadlineExceeded
	case errors.Is(err, ringbuf.ErrClosed):
		return Denial{}, fmt.Errorf("kernel: read denials: %w", os.ErrClosed)
	case err != nil:
		return Denial{}, fmt.Errorf("kernel: read denials: %w", err)
	}
	d, err := decodeDenial(r.rec.RawSample)
	if err != nil {
		return Denial{}, err
	}
	d.Time = time.Unix(0, r.w.wallOffset()+d.Monotonic)
	d.RuleName = r.maps.name(d.Rule)
	return d, nil
}

// Close releases the reader (enforcement stays).
func (r *DenialReader) Close() error {
	err := r.rd.Close()
	r.maps.close()
	return err
}
