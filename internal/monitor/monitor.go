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
}

// Monitor audits on an interval and keeps what changed.
type Monitor struct {
	cfg   Config
	store *Store
	log   *slog.Logger
	now   func() time.Time
	kicks []chan struct{} // one per sink: an audit finished

	audits sync.Mutex // one audit at a time
	state  State      // the last recorded audit's findings (guarded by audits)

	mu       sync.RWMutex
	pol      *policy.Policy
	last     *audit.Report
	lastMeta report.Meta
	lastErr  error
	lastRun  time.Time
	lastOK   time.Time
	duration time.Duration
	errors   int
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
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Host == "" {
		cfg.Host, _ = os.Hostname()
	}
	m := &Monitor{cfg: cfg, store: store, log: cfg.Logger, now: cfg.Now}
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
	ev := []Event{{Time: m.now().UTC(), Kind: KindPolicyReloaded, Reason: fmt.Sprintf("policy %s reloaded: %d services", pol.Source, len(pol.Services))}}
	if _, err := m.store.Record(ev, nil); err != nil {
		return err
	}
	m.log.Info("policy reloaded", "policy", pol.Source, "services", len(pol.Services))
	return m.Audit(ctx)
}

// Audit runs one audit: observe, judge, record the drift, then let the sinks know.
func (m *Monitor) Audit(ctx context.Context) error {
	m.audits.Lock()
	defer m.audits.Unlock()
	start := m.now()
	pol := m.Policy()
	snap, err := m.cfg.Observer.Observe(ctx)
	if err == nil {
		err = ctx.Err()
	}
	var rep *audit.Report
	var events []Event
	if err == nil {
		rep = audit.JudgeObservation(pol, snap.Observation())
		next := StateOf(rep)
		events = Diff(m.state, next, start.UTC())
		if len(events) > 0 || m.state == nil {
			// Unchanged statuses need no write: the stored state still diffs the same.
			events, err = m.store.Record(events, next)
		}
		if err == nil {
			m.state = next
		}
	}
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
	m.lastMeta = report.Meta{Host: m.cfg.Host, Time: start.UTC(), Policy: pol.Source, Warnings: snap.Warnings}
	for _, ns := range snap.Namespaces {
		m.lastMeta.Namespaces = append(m.lastMeta.Namespaces, ns.Label)
	}
	m.mu.Unlock()
	for _, e := range events {
		m.log.Info("drift", "id", e.ID, "kind", e.Kind, "netns", e.Netns, "protocol", e.Protocol, "address", e.Address,
			"port", e.Port, "service", e.Service, "old_status", e.OldStatus, "new_status", e.NewStatus, "severity", e.Severity)
	}
	m.log.Debug("audit", "score", rep.Score, "findings", len(rep.Findings), "events", len(events), "duration", m.duration.String())
	for _, k := range m.kicks {
		select {
		case k <- struct{}{}:
		default:
		}
	}
	if m.cfg.Retention > 0 {
		names := make([]string, len(m.cfg.Sinks))
		for i, s := range m.cfg.Sinks {
			names[i] = s.Name()
		}
		if n, err := m.store.Prune(start.Add(-m.cfg.Retention), names); err != nil {
			m.log.Warn("pruning old events failed", "error", err.Error())
		} else if n > 0 {
			m.log.Debug("pruned events", "count", n)
		}
	}
	return nil
}

// Run audits now and every interval until ctx ends, and delivers events to the sinks.
func (m *Monitor) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for i, s := range m.cfg.Sinks {
		wg.Go(func() { m.deliver(ctx, s, m.kicks[i]) })
	}
	defer wg.Wait()
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

// Health says whether the last audit succeeded and is fresh (within two intervals and 5 s),
// and why not.
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
	if limit := 2*m.cfg.Interval + 5*time.Second; age > limit {
		return false, fmt.Sprintf("the last successful audit is %s old (limit %s)", age.Round(time.Second), limit)
	}
	return true, fmt.Sprintf("ok: last audit %s ago, score %d", age.Round(time.Millisecond), m.last.Score)
}

// Events returns the stored events since t.
func (m *Monitor) Events(since time.Time) ([]Event, error) { return m.store.Since(since, 100000) }
