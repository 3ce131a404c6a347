package monitor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/bindguard/bindguard/internal/audit"
	"github.com/bindguard/bindguard/internal/cgroup"
	"github.com/bindguard/bindguard/internal/kernel"
	"github.com/bindguard/bindguard/policy"
)

// KindDenied is a bind the enforcement programs refused (serve --enforce), or in dry-run
// would have refused, or in rewrite mode turned into loopback. It carries a Denial.
const KindDenied = "denied"

// SourceEnforce is the source of a denied event: the enforcement programs' ring buffer.
const SourceEnforce = "enforce"

// Denial is what a denied event adds to the socket fields (bindguard.events.v2 "denial").
type Denial struct {
	// Rule names the rule that refused it ("redis tcp/6379", "guard tcp/7000-7099").
	Rule string `json:"rule"`
	// Errno is what the bind got (1, EPERM; 0 in dry-run or when rewritten), Error its name.
	Errno int    `json:"errno"`
	Error string `json:"error,omitempty"`
	// Mode is what the kernel did: deny, dry-run (allowed, recorded) or rewrite (bound to
	// loopback instead).
	Mode   string `json:"mode"`
	Family string `json:"family"`
	V6Only bool   `json:"v6only,omitempty"`
	// PostBind: the bind asked for port 0 and was undone on the port the kernel chose.
	PostBind bool `json:"post_bind,omitempty"`
	// Scope is the policy scope enforced; Enforced the cgroup enforced (the binder's or an
	// ancestor), Cgroup the binder's own cgroup (path under the cgroup2 mount, empty when it
	// is gone) and CgroupID its id.
	Scope     string `json:"scope"`
	Enforced  string `json:"enforced_cgroup"`
	Cgroup    string `json:"cgroup,omitempty"`
	CgroupID  uint64 `json:"cgroup_id"`
	Container string `json:"container,omitempty"`
	// ProcessGone says the process had exited when the denial was read: its name is the
	// kernel's record (comm), its unit and container those of its cgroup.
	ProcessGone bool `json:"process_gone,omitempty"`
	// Count is how many identical denials (same process, address, port, rule) this event
	// stands for, when more than one; Folded says they are from several processes or
	// addresses, folded into one event per rule because denials came faster than the event
	// budget (the metrics count each).
	Count  int  `json:"count,omitempty"`
	Folded bool `json:"folded,omitempty"`
}

// EnforceTarget is one cgroup serve --enforce enforces.
type EnforceTarget struct {
	// Cgroup is the cgroup directory, ID its id (0 when it could not be read), Scope the policy
	// scope applied, Mode the mode.
	Cgroup string
	ID     uint64
	Scope  string
	Mode   string
	// Err is why applying to it failed (nil: applied).
	Err error
}

// EnforceConfig turns on enforcement in the monitor (serve --enforce).
type EnforceConfig struct {
	// Apply applies the policy's enforcement (the code of `bindguard enforce apply`) and
	// returns every cgroup it covers, each with its error; err is a failure to find the
	// targets at all. Called at start and after every reload (in place: maps updated, links
	// swapped).
	Apply func(*policy.Policy) ([]EnforceTarget, error)
	// Options are the kernel's (the pin root).
	Options kernel.EnforceOptions
	// ProcRoot is /proc unless set.
	ProcRoot string
	// CgroupPath resolves a cgroup id to its path under the cgroup2 mount (CgroupPaths()).
	CgroupPath func(id uint64) (string, error)
}

// Limits of the denied events: identical denials in one batch are one event; beyond the
// budget (enforceEventRate a second, bursts of enforceEventBurst) a batch's denials are
// folded into one event per rule, so a process binding in a loop cannot fill the store.
const (
	enforceBatchWindow = 50 * time.Millisecond
	enforceBatchMax    = 4096
	enforceEventRate   = 20.0
	enforceEventBurst  = 200.0
	// enforceHealthTTL is how long a read of the links' state serves the scrapes.
	enforceHealthTTL = 5 * time.Second
)

// denialIn is a record read, with the target whose ring buffer held it.
type denialIn struct {
	d     kernel.Denial
	tgt   uint64
	scope string
	svc   string // the scope's services on the port
}

type denialKey struct{ scope, service, mode string }

// enforcement is the monitor's enforcement state.
type enforcement struct {
	cfg EnforceConfig
	in  chan denialIn

	mu       sync.Mutex
	targets  []EnforceTarget
	readers  map[uint64]context.CancelFunc
	applied  bool
	applyOK  bool
	applyErr string
	applyAt  time.Time
	denials  map[denialKey]uint64
	errors   uint64 // unreadable records
	runCtx   context.Context
	health   map[uint64]kernel.EnforceStatus
	gone     map[string]bool // cgroups removed since they were applied, read with health
	healthAt time.Time
	tokens   float64
	tokenAt  time.Time
	cgPaths  map[uint64]string
}

func newEnforcement(cfg EnforceConfig) *enforcement {
	if cfg.ProcRoot == "" {
		cfg.ProcRoot = "/proc"
	}
	return &enforcement{cfg: cfg, in: make(chan denialIn, enforceBatchMax), readers: map[uint64]context.CancelFunc{},
		denials: map[denialKey]uint64{}, tokens: enforceEventBurst}
}

// ApplyEnforcement applies the policy's enforcement (serve --enforce) and starts reading the
// denials of every cgroup applied (once Run runs). It returns how many cgroups are enforced
// and what failed. Without EnforceConfig it does nothing.
func (m *Monitor) ApplyEnforcement() (int, error) {
	e := m.enf
	if e == nil {
		return 0, nil
	}
	pol := m.Policy()
	targets, err := e.cfg.Apply(pol)
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	n := 0
	for _, t := range targets {
		if t.Err != nil {
			errs = append(errs, t.Err)
			m.log.Error("enforcement not applied", "cgroup", t.Cgroup, "scope", t.Scope, "error", t.Err.Error())
			continue
		}
		n++
		m.log.Info("enforcing", "cgroup", t.Cgroup, "cgroup_id", t.ID, "scope", t.Scope, "mode", t.Mode)
	}
	err = errors.Join(errs...)
	e.mu.Lock()
	e.applied, e.applyOK, e.applyAt = true, err == nil, m.now()
	e.applyErr = ""
	if err != nil {
		e.applyErr = err.Error()
	}
	if targets != nil || err == nil {
		e.targets = targets
	}
	e.healthAt = time.Time{}
	ctx := e.runCtx
	e.mu.Unlock()
	if ctx != nil {
		m.readDenials(ctx)
	}
	return n, err
}

// runEnforce applies enforcement if serve has not yet, and drains the denials into events
// until ctx ends.
func (m *Monitor) runEnforce(ctx context.Context) {
	e := m.enf
	e.mu.Lock()
	e.runCtx = ctx
	applied := e.applied
	e.mu.Unlock()
	if !applied {
		_, _ = m.ApplyEnforcement()
	} else {
		m.readDenials(ctx)
	}
	for {
		batch, ok := e.batch(ctx)
		if !ok {
			return
		}
		m.recordDenials(batch)
	}
}

// readDenials opens a reader for every enforced cgroup that has none and stops those of
// cgroups no longer enforced.
func (m *Monitor) readDenials(ctx context.Context) {
	e := m.enf
	e.mu.Lock()
	defer e.mu.Unlock()
	want := map[uint64]string{}
	for _, t := range e.targets {
		if t.ID != 0 && (t.Err == nil || e.readers[t.ID] != nil) {
			want[t.ID] = t.Scope
		}
	}
	for id, cancel := range e.readers {
		if _, ok := want[id]; !ok {
			cancel()
			delete(e.readers, id)
		}
	}
	for id := range want {
		if e.readers[id] != nil {
			continue
		}
		rd, err := kernel.OpenDenials(id, e.cfg.Options)
		if err != nil {
			m.log.Error("cannot read the denials of an enforced cgroup", "cgroup_id", id, "error", err.Error())
			continue
		}
		rctx, cancel := context.WithCancel(ctx)
		e.readers[id] = cancel
		go m.readTarget(rctx, id, rd)
	}
}

// readTarget sends the records of one cgroup's ring buffer to the batcher.
func (m *Monitor) readTarget(ctx context.Context, id uint64, rd *kernel.DenialReader) {
	defer func() { _ = rd.Close() }()
	for {
		d, err := rd.Read(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, kernel.ErrBadRecord):
			m.enf.mu.Lock()
			m.enf.errors++
			m.enf.mu.Unlock()
			m.log.Warn("unreadable denial record", "cgroup_id", id, "error", err.Error())
			continue
		case err != nil:
			m.log.Error("reading denials failed; this cgroup's denials are not read until the next reload", "cgroup_id", id, "error", err.Error())
			m.enf.mu.Lock()
			if m.enf.readers[id] != nil {
				m.enf.readers[id]()
				delete(m.enf.readers, id)
			}
			m.enf.mu.Unlock()
			return
		}
		select {
		case m.enf.in <- denialIn{d: d, tgt: id, scope: m.enf.scopeOf(id)}:
		case <-ctx.Done():
			return
		}
	}
}

func (e *enforcement) scopeOf(id uint64) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, t := range e.targets {
		if t.ID == id {
			return t.Scope
		}
	}
	return ""
}

// batch waits for a denial, then gathers what follows within the batch window.
func (e *enforcement) batch(ctx context.Context) ([]denialIn, bool) {
	var b []denialIn
	select {
	case <-ctx.Done():
		return nil, false
	case d := <-e.in:
		b = append(b, d)
	}
	t := time.NewTimer(enforceBatchWindow)
	defer t.Stop()
	for len(b) < enforceBatchMax {
		select {
		case d := <-e.in:
			b = append(b, d)
		case <-t.C:
			return b, true
		case <-ctx.Done():
			return b, true
		}
	}
	return b, true
}

// modeOf is what the kernel did with a denial.
func modeOf(d kernel.Denial) string {
	switch {
	case d.Rewritten:
		return string(kernel.EnforceRewrite)
	case d.DryRun:
		return string(kernel.EnforceDryRun)
	}
	return string(kernel.EnforceDeny)
}

// recordDenials turns a batch into events (identical ones coalesced, folded per rule beyond
// the budget), counts every record, stores the events and wakes the sinks.
func (m *Monitor) recordDenials(batch []denialIn) {
	e := m.enf
	pol := m.Policy()
	type key struct {
		tgt              uint64
		pid              uint32
		comm, addr, rule string
		port             uint16
		proto            policy.Protocol
		flags            [3]bool
		cgroup           uint64
	}
	var order []key
	groups := map[key][]denialIn{}
	e.mu.Lock()
	for i := range batch {
		batch[i].svc = serviceOf(pol, batch[i].scope, batch[i].d)
		in := batch[i]
		e.denials[denialKey{in.scope, in.svc, modeOf(in.d)}]++
		k := key{in.tgt, in.d.PID, in.d.Comm, in.d.Addr.String(), in.d.RuleName, in.d.Port, in.d.Protocol,
			[3]bool{in.d.DryRun, in.d.Rewritten, in.d.PostBind}, in.d.CgroupID}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], in)
	}
	// The budget: tokens refill at enforceEventRate a second.
	now := m.now()
	if !e.tokenAt.IsZero() {
		e.tokens = min(enforceEventBurst, e.tokens+now.Sub(e.tokenAt).Seconds()*enforceEventRate)
	}
	e.tokenAt = now
	budget := int(e.tokens)
	if budget > len(order) {
		budget = len(order)
	}
	e.tokens -= float64(budget)
	e.mu.Unlock()

	judged := now.UTC()
	var events []Event
	for _, k := range order[:budget] {
		g := groups[k]
		ev := m.denialEvent(g[0], judged)
		if len(g) > 1 {
			ev.Denial.Count = len(g)
			ev.Reason += fmt.Sprintf(" (%d times)", len(g))
		}
		events = append(events, ev)
	}
	// Over the budget: one event per (target, rule, mode), with the count.
	type fold struct {
		tgt        uint64
		rule, mode string
	}
	var forder []fold
	folded := map[fold][]denialIn{}
	for _, k := range order[budget:] {
		for _, in := range groups[k] {
			f := fold{in.tgt, in.d.RuleName, modeOf(in.d)}
			if _, ok := folded[f]; !ok {
				forder = append(forder, f)
			}
			folded[f] = append(folded[f], in)
		}
	}
	for _, f := range forder {
		g := folded[f]
		ev := m.denialEvent(g[0], judged)
		ev.Denial.Count, ev.Denial.Folded = len(g), true
		ev.Reason = fmt.Sprintf("%d binds refused by rule %s in scope %s (more than %.0f denial events a second: folded; the first was %s)",
			len(g), f.rule, g[0].scope, enforceEventRate, ev.Reason)
		events = append(events, ev)
	}
	if len(events) == 0 {
		return
	}
	events, err := m.store.Record(events, nil)
	if err != nil {
		m.log.Error("storing denials failed", "error", err.Error(), "denials", len(batch))
		return
	}
	for _, ev := range events {
		d := ev.Denial
		m.log.Warn("bind denied", "id", ev.ID, "mode", d.Mode, "rule", d.Rule, "scope", d.Scope, "pid", ev.Process.PID, "process", ev.Process.Name,
			"unit", ev.Process.Unit, "container", d.Container, "protocol", ev.Protocol, "address", ev.Address, "port", ev.Port, "errno", d.Errno, "count", max(1, d.Count))
	}
	m.kick()
}

// serviceOf names the scope's services declared on the denial's protocol and port ("" for a
// port only a guarded range covers).
func serviceOf(pol *policy.Policy, scope string, d kernel.Denial) string {
	if pol == nil {
		return ""
	}
	sc, ok := pol.Scope(scope)
	if !ok {
		return ""
	}
	var names []string
	for _, s := range sc.Services {
		if s.Protocol == d.Protocol && s.Port == d.Port && !slices.Contains(names, s.Name) {
			names = append(names, s.Name)
		}
	}
	return strings.Join(names, ",")
}

// denialEvent is the event of one record: the process as /proc has it while it runs (its
// name the kernel's, its unit and container from the record's cgroup, else /proc/PID/cgroup),
// or what the record says when it is gone.
func (m *Monitor) denialEvent(in denialIn, judged time.Time) Event {
	e := m.enf
	d := in.d
	den := &Denial{Rule: d.RuleName, Errno: int(d.Errno), Mode: modeOf(d), Family: d.Family, V6Only: d.V6Only, PostBind: d.PostBind,
		Scope: in.scope, CgroupID: d.CgroupID}
	if d.Errno != 0 {
		den.Error = errnoName(d.Errno)
	}
	if den.Rule == "" {
		den.Rule = "rule " + strconv.FormatUint(uint64(d.Rule), 10)
	}
	e.mu.Lock()
	for _, t := range e.targets {
		if t.ID == in.tgt {
			den.Enforced = t.Cgroup
		}
	}
	e.mu.Unlock()
	den.Cgroup = e.cgroupPath(d.CgroupID)
	// Cgroup names can be chosen by whoever may create cgroups (a delegated subtree): made
	// inert, as process names are, for the parsing below on the raw path.
	rawCgroup := den.Cgroup
	den.Cgroup, den.Enforced = cgroup.Sanitize(den.Cgroup), cgroup.Sanitize(den.Enforced)
	proc := &Process{PID: int(d.PID), Name: cgroup.Sanitize(d.Comm)}
	alive := false
	var procCgroup []byte
	netns := ""
	if d.PID != 0 {
		dir := filepath.Join(e.cfg.ProcRoot, strconv.FormatUint(uint64(d.PID), 10))
		if comm, err := os.ReadFile(filepath.Join(dir, "comm")); err == nil && strings.TrimSuffix(string(comm), "\n") == d.Comm { // #nosec G304 -- /proc
			alive = true
			if rawCgroup == "" { // the record's cgroup names unit and container when it resolves
				procCgroup, _ = readSmall(filepath.Join(dir, "cgroup"))
			}
			if fi, err := os.Stat(filepath.Join(dir, "ns", "net")); err == nil {
				if st, ok := fi.Sys().(*syscall.Stat_t); ok {
					netns = m.netnsLabel(uint64(st.Ino)) // #nosec G115 -- an inode
				}
			}
		}
	}
	switch {
	case rawCgroup != "":
		proc.Unit, den.Container = cgroup.Parse([]byte("0::" + rawCgroup + "\n"))
	case procCgroup != nil:
		proc.Unit, den.Container = cgroup.Parse(procCgroup)
	}
	den.ProcessGone = !alive
	verb := "refused"
	switch den.Mode {
	case string(kernel.EnforceDryRun):
		verb = "would have been refused (dry-run: allowed)"
	case string(kernel.EnforceRewrite):
		verb = "rewritten to loopback"
	}
	what := fmt.Sprintf("pid %d", d.PID)
	if d.PID == 0 {
		what = "a process not visible in bindguard's pid namespace"
	}
	reason := fmt.Sprintf("bind of %s %s by %s (%s) %s by rule %s in scope %s", d.Protocol, netip.AddrPortFrom(d.Addr, d.Port), proc.Name, what, verb, den.Rule, in.scope)
	if den.Error != "" {
		reason += ": " + den.Error
	}
	if !alive && d.PID != 0 {
		reason += "; the process had exited when the denial was read"
	}
	sev := audit.High
	if den.Mode == string(kernel.EnforceRewrite) {
		sev = audit.Low
	}
	return Event{Time: d.Time.UTC(), JudgedAt: judged, Source: SourceEnforce, Kind: KindDenied, Netns: netns,
		Protocol: string(d.Protocol), Address: d.Addr.String(), Port: d.Port, Service: in.svc, Severity: sev.String(),
		Process: proc, Reason: reason, Denial: den}
}

func errnoName(n uint8) string {
	if n == 1 {
		return "EPERM"
	}
	return fmt.Sprintf("errno %d (%s)", n, syscall.Errno(n).Error())
}

// readSmall reads a /proc file of at most cgroup.MaxFile bytes.
func readSmall(path string) ([]byte, error) {
	f, err := os.Open(path) // #nosec G304 -- /proc
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	return io.ReadAll(io.LimitReader(f, cgroup.MaxFile))
}

// cgroupPath is the path of a cgroup id, cached (takes e.mu).
func (e *enforcement) cgroupPath(id uint64) string {
	if e.cfg.CgroupPath == nil || id == 0 {
		return ""
	}
	e.mu.Lock()
	p, ok := e.cgPaths[id]
	e.mu.Unlock()
	if ok {
		return p
	}
	// Resolving walks the cgroup tree: not under e.mu, which scrapes and readers share. A
	// failure is kept too: cgroup ids are not reused, so a removed cgroup stays unresolvable.
	p, err := e.cfg.CgroupPath(id)
	if err != nil {
		p = ""
	}
	e.mu.Lock()
	if e.cgPaths == nil || len(e.cgPaths) > 4096 {
		e.cgPaths = map[uint64]string{}
	}
	e.cgPaths[id] = p
	e.mu.Unlock()
	return p
}

// netnsLabel is the label the last audit gave the namespace with this inode.
func (m *Monitor) netnsLabel(ino uint64) string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	for _, ns := range m.lastObs.Namespaces {
		if ns.Inode == ino {
			return ns.Label
		}
	}
	if m.lastObs.Namespaces == nil {
		return ""
	}
	return fmt.Sprintf("net:[%d]", ino)
}

// EnforceState is what serve --enforce reports: the cgroups asked for and whether bindguard's
// programs are attached and effective on each.
type EnforceState struct {
	Target   EnforceTarget
	Attached bool
	// Gone is true when the cgroup was removed since it was applied (a container stopped, a
	// unit ended): the kernel detached the programs with it and nothing can bind there, so it
	// is no longer counted as asked for.
	Gone bool
	Lost uint64
	// Why says why it is not attached.
	Why string
}

// Enforcement is the state of serve --enforce (nil without it): each cgroup asked for, and
// whether the last apply succeeded (why not).
func (m *Monitor) Enforcement() (states []EnforceState, lastApplyOK bool, why string) {
	e := m.enf
	if e == nil {
		return nil, false, ""
	}
	e.mu.Lock()
	targets := slices.Clone(e.targets)
	fresh := m.now().Sub(e.healthAt) < enforceHealthTTL && e.health != nil
	health, gone := e.health, e.gone
	ok, why := e.applyOK, e.applyErr
	appliedAt := e.applyAt
	e.mu.Unlock()
	if !fresh {
		health, gone = map[uint64]kernel.EnforceStatus{}, map[string]bool{}
		for _, t := range targets {
			if _, err := os.Stat(t.Cgroup); t.Cgroup != "" && errors.Is(err, os.ErrNotExist) {
				gone[t.Cgroup] = true
			}
			if t.ID == 0 {
				continue
			}
			st, err := kernel.EnforcementHealth(t.Cgroup, t.ID, e.cfg.Options)
			if err != nil {
				st.Cgroup = err.Error()
			}
			health[t.ID] = st
		}
		e.mu.Lock()
		if e.applyAt.Equal(appliedAt) { // an apply meanwhile has targets this read did not see
			e.health, e.gone, e.healthAt = health, gone, m.now()
		}
		e.mu.Unlock()
	}
	for _, t := range targets {
		s := EnforceState{Target: t}
		st, known := health[t.ID]
		switch {
		case gone[t.Cgroup]:
			s.Gone, s.Why = true, "the cgroup was removed"
		case t.Err != nil && !known:
			s.Why = t.Err.Error()
		case !known:
			s.Why = "no cgroup id"
		case !st.OK():
			s.Why = fmt.Sprintf("attached %s, effective %s (want bind4, bind6, post_bind4, post_bind6)", strings.Join(st.Links, ","), strings.Join(st.Effective, ","))
			if len(st.Links) == 0 && st.PinDir == "" {
				s.Why = st.Cgroup
			}
		default:
			s.Attached = true
		}
		s.Lost = st.Lost
		states = append(states, s)
	}
	return states, ok, why
}

var (
	descEnforceEnabled = prometheus.NewDesc("bindguard_enforce_enabled",
		"1 when serve runs with --enforce (it applies the policy's enforcement and reads the denials), else 0.", nil, nil)
	descEnforceCgroups = prometheus.NewDesc("bindguard_enforce_cgroups",
		"Cgroups serve --enforce asked to enforce, by policy scope.", []string{"scope"}, nil)
	descEnforceAttached = prometheus.NewDesc("bindguard_enforce_attached",
		"Of bindguard_enforce_cgroups, those with all four of bindguard's programs attached and among the cgroup's effective programs.", []string{"scope"}, nil)
	descEnforceApplyOK = prometheus.NewDesc("bindguard_enforce_last_apply_successful",
		"1 when the last apply of the enforcement (at start or on SIGHUP) succeeded for every cgroup, else 0.", nil, nil)
	descEnforceDenials = prometheus.NewDesc("bindguard_enforce_denials_total",
		"Denial records read from the kernel since serve started, by scope, service (empty: a guarded range) and mode (deny, dry-run: would have been denied, rewrite).", []string{"scope", "service", "mode"}, nil)
	descEnforceLost = prometheus.NewDesc("bindguard_enforce_lost_records_total",
		"Denial records the kernel had no ring-buffer room for (pinned: counted since enforcement was applied), by scope; the per-rule counters of `enforce status` still count them.", []string{"scope"}, nil)
	descEnforceBad = prometheus.NewDesc("bindguard_enforce_bad_records_total",
		"Denial records that could not be decoded.", nil, nil)
)

// enforceCollector exports the enforcement metrics.
type enforceCollector struct{ m *Monitor }

func (c enforceCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descEnforceEnabled, descEnforceCgroups, descEnforceAttached, descEnforceApplyOK, descEnforceDenials, descEnforceLost, descEnforceBad} {
		ch <- d
	}
}

func (c enforceCollector) Collect(ch chan<- prometheus.Metric) {
	e := c.m.enf
	if e == nil {
		ch <- prometheus.MustNewConstMetric(descEnforceEnabled, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(descEnforceEnabled, prometheus.GaugeValue, 1)
	states, ok, _ := c.m.Enforcement()
	type agg struct {
		asked, attached int
		lost            uint64
	}
	byScope := map[string]*agg{}
	for _, s := range states {
		if s.Gone {
			continue
		}
		a := byScope[s.Target.Scope]
		if a == nil {
			a = &agg{}
			byScope[s.Target.Scope] = a
		}
		a.asked++
		if s.Attached {
			a.attached++
		}
		a.lost += s.Lost
	}
	for sc, a := range byScope {
		ch <- prometheus.MustNewConstMetric(descEnforceCgroups, prometheus.GaugeValue, float64(a.asked), sc)
		ch <- prometheus.MustNewConstMetric(descEnforceAttached, prometheus.GaugeValue, float64(a.attached), sc)
		ch <- prometheus.MustNewConstMetric(descEnforceLost, prometheus.CounterValue, float64(a.lost), sc)
	}
	okv := 0.0
	if ok {
		okv = 1
	}
	ch <- prometheus.MustNewConstMetric(descEnforceApplyOK, prometheus.GaugeValue, okv)
	e.mu.Lock()
	for k, n := range e.denials {
		ch <- prometheus.MustNewConstMetric(descEnforceDenials, prometheus.CounterValue, float64(n), k.scope, k.service, k.mode)
	}
	bad := e.errors
	e.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(descEnforceBad, prometheus.CounterValue, float64(bad))
}

// enforceHealth is /health's line on serve --enforce ("" without it): how many cgroups asked
// for are attached, and for the first that is not, why. It does not change the status code:
// the audits are healthy; bindguard_enforce_attached and its alert report it.
func (m *Monitor) enforceHealth() string {
	if m.enf == nil {
		return ""
	}
	states, ok, why := m.Enforcement()
	n, gone := 0, 0
	var bad []string
	for _, s := range states {
		if s.Gone {
			gone++
			continue
		}
		if s.Attached {
			n++
		} else if len(bad) < 3 {
			bad = append(bad, fmt.Sprintf("%s (scope %s): %s", cgroup.Sanitize(s.Target.Cgroup), s.Target.Scope, s.Why))
		}
	}
	line := fmt.Sprintf("enforce: %d of %d cgroups attached", n, len(states)-gone)
	if gone > 0 {
		line += fmt.Sprintf(" (%d removed since they were applied)", gone)
	}
	if len(bad) > 0 {
		line += "; not attached: " + strings.Join(bad, "; ")
	}
	if !ok {
		line += "; the last apply failed: " + why
	}
	return line
}
