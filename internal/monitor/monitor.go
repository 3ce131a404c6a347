package monitor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/bindguard/bindguard/internal/audit"
	"github.com/bindguard/bindguard/internal/observe"
	"github.com/bindguard/bindguard/internal/observed"
	"github.com/bindguard/bindguard/internal/report"
	"github.com/bindguard/bindguard/policy"
)

// Sink receives events after the store has them (Redis, for one). Deliver is called with
// events in ID order; an error leaves them for the next attempt.
type Sink interface {
	Name() string
	Deliver(ctx context.Context, events []Event) error
	// Snapshot is called after every audit with its report (the seed's Redis hash).
	Snapshot(ctx context.Context, r *audit.Report) error
}

// Observer observes the host for one audit: its listening sockets and their owners.
// HostObserver is the real one; tests give scripted snapshots.
type Observer interface {
	Observe(ctx context.Context) (*observe.Snapshot, error)
}

// ObserverFunc is a function used as an Observer.
type ObserverFunc func(ctx context.Context) (*observe.Snapshot, error)

// Observe implements Observer.
func (f ObserverFunc) Observe(ctx context.Context) (*observe.Snapshot, error) { return f(ctx) }

// HostObserver observes this host with observe.Observe and o.
func HostObserver(o observe.Options) Observer {
	return ObserverFunc(func(context.Context) (*observe.Snapshot, error) { return observe.Observe(o) })
}

// Config configures a Monitor.
type Config struct {
	PolicyPath string
	Interval   time.Duration
	// Retention is how long delivered events are kept.
	Retention time.Duration
	// Observer observes the host for each audit (HostObserver in the daemon); required.
	Observer Observer
	Host     string
	Logger   *slog.Logger
	Sinks    []Sink
	// Now is the clock (tests); nil is time.Now.
	Now func() time.Time
	// After is the timer of the sinks' backoff and idle waits (tests); nil is time.After.
	After func(time.Duration) <-chan time.Time
	// Grace is how long a declared service's socket may be gone before its disappearance is
	// reported (a restart within it raises nothing); 0 reports it at once.
	Grace time.Duration
	// Watch is the event source: WatchPoll (the default), WatchKernel or WatchAuto. Kernel and
	// auto need OpenEvents and Resolver; both fall back to polling when the source cannot open.
	Watch WatchMode
	// OpenEvents opens the kernel's socket events (kernel.OpenWatcher in the daemon).
	OpenEvents func() (EventSource, error)
	// Resolver turns a kernel event into the listener an audit would have seen.
	Resolver Resolver
	// ReconcileInterval is the time between full audits in kernel mode (Interval when 0): the
	// events keep the state current between them, so it can be long.
	ReconcileInterval time.Duration
	// CommitWindow is how long the group committer gathers events into one transaction
	// (DefaultCommitWindow when 0).
	CommitWindow time.Duration
	// Enforce, when set, applies the policy's enforcement at start and after every reload,
	// and turns its denials into denied events (serve --enforce; enforce.go).
	Enforce *EnforceConfig
}

// Monitor audits on an interval (and, in kernel mode, judges every socket event at once) and
// keeps what changed.
type Monitor struct {
	cfg   Config
	store *Store
	log   *slog.Logger
	now   func() time.Time
	kicks []chan struct{} // one per sink: events were stored

	audits sync.Mutex // one judgement at a time (the poll path; the kernel loop owns it while it runs)
	state  State      // the last reported state (guarded by audits)
	drift  Drift      // the grace period's memory (guarded by audits)

	loopMu sync.Mutex
	loop   *kernelLoop // the kernel loop while it runs (Audit asks it)

	mu       sync.RWMutex
	pol      *policy.Policy
	last     *audit.Report
	lastSeq  uint64 // which change of the kernel loop's live set last is of (kernel mode)
	lastMeta report.Meta
	// lastObs is the last full observation without its listeners: the namespaces every
	// judgement needs.
	lastObs  observed.Observation
	lastErr  error
	lastRun  time.Time
	lastOK   time.Time
	duration time.Duration
	errors   int
	watch    watchStatus
	events   eventCounter // bindguard_events_total

	enf *enforcement // nil without Config.Enforce
}

// New loads the policy and returns a monitor over store. An invalid policy is an error here
// (at start); on reload it is logged and the old policy kept.
func New(cfg Config, store *Store) (*Monitor, error) {
	if cfg.Interval <= 0 {
		return nil, errors.New("monitor: the interval must be positive")
	}
	if cfg.Observer == nil {
		return nil, errors.New("monitor: no observer")
	}
	if cfg.Grace < 0 {
		return nil, errors.New("monitor: the grace period must not be negative")
	}
	switch cfg.Watch {
	case "":
		cfg.Watch = WatchPoll
	case WatchPoll, WatchKernel, WatchAuto:
	default:
		return nil, fmt.Errorf("monitor: unknown watch mode %q (want auto, kernel or poll)", cfg.Watch)
	}
	if cfg.Watch != WatchPoll && (cfg.OpenEvents == nil || cfg.Resolver == nil) {
		return nil, fmt.Errorf("monitor: --watch %s needs an event source and a resolver", cfg.Watch)
	}
	if cfg.CommitWindow <= 0 {
		cfg.CommitWindow = DefaultCommitWindow
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Host == "" {
		cfg.Host, _ = os.Hostname()
	}
	m := &Monitor{cfg: cfg, store: store, log: cfg.Logger, now: cfg.Now, drift: Drift{Grace: cfg.Grace}}
	m.watch = watchStatus{asked: cfg.Watch, mode: WatchPoll}
	if cfg.Enforce != nil {
		if cfg.Enforce.Apply == nil {
			return nil, errors.New("monitor: enforcement without an apply function")
		}
		m.enf = newEnforcement(*cfg.Enforce)
	}
	m.cfg.Sinks = nil
	for _, s := range cfg.Sinks {
		m.AddSink(s)
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.cfg.After == nil {
		m.cfg.After = time.After
	}
	pol, err := loadPolicy(cfg.PolicyPath)
	if err != nil {
		return nil, err
	}
	m.pol = pol
	// Where the last run (perhaps killed) left off: the first audit diffs against it.
	if m.state, err = store.LastState(); err != nil {
		return nil, err
	}
	return m, nil
}

// loadPolicy loads path, or the built-in catalogue when path is empty.
func loadPolicy(path string) (*policy.Policy, error) {
	if path == "" {
		return policy.Builtin(), nil
	}
	return policy.Load(path)
}

// AddSink adds a sink; call it before Run.
func (m *Monitor) AddSink(s Sink) {
	m.cfg.Sinks = append(m.cfg.Sinks, s)
	m.kicks = append(m.kicks, make(chan struct{}, 1))
}

// Policy is the policy in force.
func (m *Monitor) Policy() *policy.Policy {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.pol
}

// Reload loads the policy file again. An invalid policy is refused and logged, and the old
// one stays; a valid one is recorded as a policy_reloaded event and audited against at once.
func (m *Monitor) Reload(ctx context.Context) error {
	if m.cfg.PolicyPath == "" {
		m.log.Warn("reload asked, but the monitor judges by the built-in catalogue: there is no policy file to read")
		return m.Audit(ctx)
	}
	pol, err := loadPolicy(m.cfg.PolicyPath)
	if err != nil {
		m.log.Error("policy reload refused; keeping the policy in force", "policy", m.cfg.PolicyPath, "error", err.Error())
		return err
	}
	m.mu.Lock()
	m.pol = pol
	m.mu.Unlock()
	now := m.now().UTC()
	ev := []Event{{Time: now, JudgedAt: now, Source: SourceAudit, Kind: KindPolicyReloaded, Reason: fmt.Sprintf("policy %s reloaded: %d services", pol.Source, len(pol.Services))}}
	if _, err := m.store.Record(ev, nil); err != nil {
		return err
	}
	m.log.Info("policy reloaded", "policy", pol.Source, "services", len(pol.Services))
	if m.enf != nil {
		// In place: the pinned maps are updated and the links swapped to the new programs.
		if _, err := m.ApplyEnforcement(); err != nil {
			m.log.Error("enforcement of the reloaded policy failed", "error", err.Error())
		}
	}
	return m.Audit(ctx)
}

// observed keeps the namespaces of a full observation (everything but its listeners), which
// the judge needs for every later judgement: each socket is judged by its namespace's scope.
func (m *Monitor) observed(snap *observe.Snapshot) {
	o := snap.Observation()
	o.Listeners = nil
	m.mu.Lock()
	m.lastObs = o
	m.mu.Unlock()
}

// judgeListeners judges listeners with the audit's judge, each by its own namespace's scope,
// against the namespaces of the last full observation.
func (m *Monitor) judgeListeners(ls []observed.Listener) *audit.Report {
	return audit.JudgeObservation(m.Policy(), m.observation(ls))
}

// observation is the last full observation's namespaces with listeners ls.
func (m *Monitor) observation(ls []observed.Listener) observed.Observation {
	m.mu.Lock()
	o := m.lastObs
	m.mu.Unlock()
	o.Listeners = ls
	return o
}

// hostNetns is the label of the namespace bindguard runs in, from a snapshot: the namespace a
// missing service's finding belongs to.
func hostNetns(snap *observe.Snapshot) string {
	for _, ns := range snap.Namespaces {
		if ns.Current {
			return ns.Label
		}
	}
	return migratedNetns
}

// judge judges listeners against the policy in force and returns the drift from the reported
// state, and the state to report next. times gives a state key the time its kernel event
// happened; other events are at at. Call it with the state's owner (audits held, or the loop).
func (m *Monitor) judge(listeners []observed.Listener, host string, times map[string]time.Time, source string, at time.Time) (*audit.Report, []Event, State, time.Time) {
	return m.drifted(m.judgeListeners(listeners), host, times, source, at)
}

// drifted is judge's drift of a judged report.
func (m *Monitor) drifted(rep *audit.Report, host string, times map[string]time.Time, source string, at time.Time) (*audit.Report, []Event, State, time.Time) {
	events, reported, deadline := m.drift.Step(m.state, StateOf(rep, host), at.UTC())
	judged := m.now().UTC()
	for i := range events {
		e := &events[i]
		e.JudgedAt, e.Source = judged, source
		if t, ok := times[sockKey(e.Netns, e.Protocol, e.Address, e.Port)]; ok {
			e.Time = t.UTC()
		}
	}
	return rep, events, reported, deadline
}

// Audit runs one full audit: observe, judge, record the drift, then let the sinks know. In
// kernel mode the event loop runs it (and this waits for it).
func (m *Monitor) Audit(ctx context.Context) error {
	m.loopMu.Lock()
	loop := m.loop
	m.loopMu.Unlock()
	if loop != nil {
		done := make(chan error, 1)
		select {
		case loop.reqs <- done:
		case <-loop.exited:
			return errors.New("monitor: stopped")
		case <-ctx.Done():
			return ctx.Err()
		}
		select {
		case err := <-done:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	m.audits.Lock()
	defer m.audits.Unlock()
	start := m.now()
	snap, err := m.cfg.Observer.Observe(ctx)
	if err == nil {
		err = ctx.Err()
	}
	var rep *audit.Report
	var events []Event
	if err == nil {
		m.observed(snap)
		var next State
		rep, events, next, _ = m.judge(snap.Sockets, hostNetns(snap), nil, SourceAudit, start)
		if len(events) > 0 || m.state == nil {
			// Unchanged statuses need no write: the stored state still diffs the same.
			events, err = m.store.Record(events, next)
		}
		if err == nil {
			m.state = next
		}
	}
	if err = m.audited(start, snap, rep, err); err != nil {
		return err
	}
	m.stored(events)
	m.prune(start)
	return nil
}

// audited records a full audit's outcome for the report, /health and the metrics.
func (m *Monitor) audited(start time.Time, snap *observe.Snapshot, rep *audit.Report, err error) error {
	m.mu.Lock()
	m.lastRun, m.duration = start, m.now().Sub(start)
	if err != nil {
		m.lastErr = err
		m.errors++
		m.mu.Unlock()
		m.log.Error("audit failed", "error", err.Error())
		return err
	}
	m.last, m.lastErr, m.lastOK = rep, nil, start
	m.lastMeta = report.Meta{Host: m.cfg.Host, Time: start.UTC(), Policy: m.pol.Source, Warnings: snap.Warnings}
	for _, ns := range snap.Namespaces {
		m.lastMeta.Namespaces = append(m.lastMeta.Namespaces, ns.Label)
	}
	m.mu.Unlock()
	m.noteScore()
	m.log.Debug("audit", "score", rep.Score, "findings", len(rep.Findings), "duration", m.now().Sub(start).String())
	return nil
}

// stored logs durable events and wakes the sinks.
func (m *Monitor) stored(events []Event) {
	m.events.add(events)
	m.noteScore()
	for _, e := range events {
		m.log.Info("drift", "id", e.ID, "kind", e.Kind, "source", e.Source, "netns", e.Netns, "protocol", e.Protocol, "address", e.Address,
			"port", e.Port, "service", e.Service, "old_status", e.OldStatus, "new_status", e.NewStatus, "severity", e.Severity)
	}
	m.kick()
}

// kick wakes the sinks: events were stored.
func (m *Monitor) kick() {
	for _, k := range m.kicks {
		select {
		case k <- struct{}{}:
		default:
		}
	}
}

// prune deletes delivered events older than the retention.
func (m *Monitor) prune(now time.Time) {
	if m.cfg.Retention <= 0 {
		return
	}
	names := make([]string, len(m.cfg.Sinks))
	for i, s := range m.cfg.Sinks {
		names[i] = s.Name()
	}
	if n, err := m.store.Prune(now.Add(-m.cfg.Retention), names); err != nil {
		m.log.Warn("pruning old events failed", "error", err.Error())
	} else if n > 0 {
		m.log.Debug("pruned events", "count", n)
	}
}

// Run audits now and every interval until ctx ends, and delivers events to the sinks. With
// --watch kernel or auto it follows the kernel's socket events (runKernel); auto falls back to
// polling where the event source cannot open, and says why.
func (m *Monitor) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for i, s := range m.cfg.Sinks {
		wg.Go(func() { m.deliver(ctx, s, m.kicks[i]) })
	}
	if m.enf != nil {
		wg.Go(func() { m.runEnforce(ctx) })
	}
	defer wg.Wait()
	if m.cfg.Watch != WatchPoll {
		src, err := m.cfg.OpenEvents()
		if err != nil {
			m.fellBack(err)
			if m.cfg.Watch == WatchKernel {
				m.log.Error("kernel event source unavailable; polling instead", "error", err.Error())
			} else {
				m.log.Warn("kernel event source unavailable; polling instead", "error", err.Error())
			}
		} else {
			err := m.runKernel(ctx, src)
			if err == nil || ctx.Err() != nil {
				return nil
			}
			m.fellBack(err)
			m.log.Error("kernel event source failed; polling instead", "error", err.Error())
		}
	}
	return m.runPoll(ctx)
}

// runPoll audits now and every interval.
func (m *Monitor) runPoll(ctx context.Context) error {
	_ = m.Audit(ctx)
	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			_ = m.Audit(ctx)
		}
	}
}

// sinkTimeout bounds one call to a sink, so that a sink that hangs is retried like one that
// is down.
const sinkTimeout = 5 * time.Second

// deliver runs one sink, apart from the audits (a sink that is down never slows them): after
// every audit it writes the latest snapshot and sends the stored events after the sink's
// cursor, retrying with backoff (1 s doubling to 1 min) while the sink fails.
func (m *Monitor) deliver(ctx context.Context, s Sink, kick <-chan struct{}) {
	backoff := time.Second
	var snapped *audit.Report
	for {
		err := m.deliverOnce(ctx, s, &snapped)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			m.log.Warn("sink delivery failed; retrying", "sink", s.Name(), "error", err.Error(), "retry_in", backoff.String())
			select {
			case <-ctx.Done():
				return
			case <-m.cfg.After(backoff):
			}
			backoff = min(2*backoff, time.Minute)
			continue
		}
		backoff = time.Second
		select {
		case <-ctx.Done():
			return
		case <-kick:
		case <-m.cfg.After(m.cfg.Interval):
		}
	}
}

// deliverOnce writes the latest snapshot (when it is newer than the one written) and every
// event after the sink's cursor, advancing the cursor batch by batch.
func (m *Monitor) deliverOnce(ctx context.Context, s Sink, snapped **audit.Report) error {
	if rep, _ := m.Latest(); rep != nil && rep != *snapped {
		cctx, cancel := context.WithTimeout(ctx, sinkTimeout)
		err := s.Snapshot(cctx, rep)
		cancel()
		if err != nil {
			return fmt.Errorf("snapshot: %w", err)
		}
		*snapped = rep
	}
	for {
		cursor, err := m.store.Cursor(s.Name())
		if err != nil {
			return err
		}
		batch, err := m.store.After(cursor, 500)
		if err != nil || len(batch) == 0 {
			return err
		}
		cctx, cancel := context.WithTimeout(ctx, sinkTimeout)
		err = s.Deliver(cctx, batch)
		cancel()
		if err != nil {
			return fmt.Errorf("events %d-%d: %w", batch[0].ID, batch[len(batch)-1].ID, err)
		}
		if err := m.store.SetCursor(s.Name(), batch[len(batch)-1].ID); err != nil {
			return err
		}
	}
}

// Latest is the last successful audit's report and metadata, nil before the first.
func (m *Monitor) Latest() (*audit.Report, report.Meta) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.last, m.lastMeta
}

// intervalLocked is the time between full audits in the mode that runs (m.mu held).
func (m *Monitor) intervalLocked() time.Duration {
	if m.watch.mode == WatchKernel && m.cfg.ReconcileInterval > 0 {
		return m.cfg.ReconcileInterval
	}
	return m.cfg.Interval
}

// Health says whether the last audit succeeded and is fresh (within two intervals of the mode
// that runs, and 5 s), and why not.
func (m *Monitor) Health() (bool, string) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	switch {
	case m.lastRun.IsZero():
		return false, "no audit has run yet"
	case m.lastErr != nil:
		return false, "the last audit failed: " + m.lastErr.Error()
	}
	age := m.now().Sub(m.lastOK)
	if limit := 2*m.intervalLocked() + 5*time.Second; age > limit {
		return false, fmt.Sprintf("the last successful audit is %s old (limit %s)", age.Round(time.Second), limit)
	}
	return true, fmt.Sprintf("ok: last audit %s ago, score %d", age.Round(time.Millisecond), m.last.Score)
}

// Events returns the stored events since t.
func (m *Monitor) Events(since time.Time) ([]Event, error) { return m.store.Since(since, 100000) }
