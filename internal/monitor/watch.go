package monitor

import (
	"cmp"
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/bindguard/bindguard/internal/audit"
	"github.com/bindguard/bindguard/internal/kernel"
	"github.com/bindguard/bindguard/internal/observe"
	"github.com/bindguard/bindguard/internal/observed"
	"github.com/bindguard/bindguard/internal/proc"
	"github.com/bindguard/bindguard/policy"
)

// WatchMode is where serve learns of sockets.
type WatchMode string

// The watch modes.
const (
	// WatchPoll audits every interval, nothing between.
	WatchPoll WatchMode = "poll"
	// WatchKernel judges every kernel socket event at once and audits every interval as
	// reconciliation; asked for and unavailable, it polls and says so (bindguard_watch_fallback).
	WatchKernel WatchMode = "kernel"
	// WatchAuto is kernel where the event source loads, else poll.
	WatchAuto WatchMode = "auto"
)

// WatchModes lists the modes, for flags.
func WatchModes() []WatchMode { return []WatchMode{WatchAuto, WatchKernel, WatchPoll} }

// DefaultCommitWindow is how long the group committer waits for more events after the first
// before it writes them in one transaction.
const DefaultCommitWindow = 2 * time.Millisecond

// EventSource is the kernel's live socket events (a *kernel.Watcher).
type EventSource interface {
	// Read blocks for the next event; one goroutine calls it. An error wrapping
	// kernel.ErrBadRecord is one undecodable record; any other error ends the source.
	Read(ctx context.Context) (kernel.Event, error)
	// Lost counts the events the kernel could not queue (the ring buffer was full).
	Lost() uint64
	Close() error
}

// Resolver turns a kernel event into the listener an audit would see for it: the namespace's
// label, the owner from the event's pid (its comm and cgroup when the process is gone). ok is
// false for a socket in a namespace the monitor does not watch.
type Resolver interface {
	Listener(ev kernel.Event) (l observed.Listener, ok bool)
	// Namespaces gives the namespaces the last full audit observed, so labels agree with it.
	Namespaces(ns []proc.Namespace)
}

// watchStatus is what /health and the metrics say about the event source.
type watchStatus struct {
	asked    WatchMode
	mode     WatchMode // kernel or poll: what runs
	fallback string    // why kernel mode was asked for and poll runs; "" when it did not fall back
	lost     uint64    // ring-buffer records lost (the source's counter)
	events   uint64    // kernel events judged
	bad      uint64    // undecodable records
}

// Watch reports the watch mode asked for, the one running, and why it fell back to polling
// ("" when it did not).
func (m *Monitor) Watch() (asked, mode WatchMode, fallback string) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.watch.asked, m.watch.mode, m.watch.fallback
}

func (m *Monitor) fellBack(err error) {
	m.mu.Lock()
	m.watch.mode, m.watch.fallback = WatchPoll, err.Error()
	m.mu.Unlock()
}

// liveSet is the listeners the kernel loop knows: the last audit's, changed by the events
// since. Grouped by protocol and port (what the judge groups services by), then keyed as the
// state is.
type liveSet map[group]map[string]*liveEntry

// group is a protocol and port: a socket's findings, and the missing findings of the services
// declared there, depend only on the listeners of its group.
type group struct {
	proto string
	port  uint16
}

type liveEntry struct {
	snap    []observed.Listener          // from the last full audit
	cookies map[uint64]observed.Listener // opened since, by socket cookie
}

func listenerKey(l observed.Listener) string {
	return sockKey(l.Netns, string(l.Protocol), l.Addr.WithZone("").String(), l.Port)
}

func groupOf(l observed.Listener) group { return group{string(l.Protocol), l.Port} }

// stateIndex lists a state's keys by group (protocol and port), so that judging the few groups
// an event touched reads only their entries: scanning the whole state for each event cost
// O(listeners) per event (a third of the loop's CPU at 3,000 listeners opened one by one).
type stateIndex map[group]map[string]struct{}

func indexState(st State) stateIndex {
	ix := stateIndex{}
	for k, e := range st {
		ix.add(k, e)
	}
	return ix
}

func (ix stateIndex) add(k string, e Entry) {
	g := group{e.Protocol, e.Port}
	if ix[g] == nil {
		ix[g] = map[string]struct{}{}
	}
	ix[g][k] = struct{}{}
}

func (ix stateIndex) del(k string, e Entry) {
	g := group{e.Protocol, e.Port}
	delete(ix[g], k)
	if len(ix[g]) == 0 {
		delete(ix, g)
	}
}

func newLiveSet(snap []observed.Listener) liveSet {
	s := liveSet{}
	for _, l := range snap {
		e := s.entry(groupOf(l), listenerKey(l))
		e.snap = append(e.snap, l)
	}
	return s
}

func (s liveSet) entry(g group, k string) *liveEntry {
	if s[g] == nil {
		s[g] = map[string]*liveEntry{}
	}
	e := s[g][k]
	if e == nil {
		e = &liveEntry{cookies: map[uint64]observed.Listener{}}
		s[g][k] = e
	}
	return e
}

// apply adds (open) or removes a socket. An open of a socket the audit already saw adds
// nothing new; a close removes the socket by its cookie, and the audit's socket on its key (the
// same one, or one that existed before the events: a sibling on the same key is learnt again
// at the next audit).
func (s liveSet) apply(op liveOp) {
	g := groupOf(op.l)
	if op.open {
		s.entry(g, op.key).cookies[op.cookie] = op.l
		return
	}
	e := s[g][op.key]
	if e == nil {
		return
	}
	delete(e.cookies, op.cookie)
	e.snap = nil
	if len(e.cookies) == 0 {
		delete(s[g], op.key)
		if len(s[g]) == 0 {
			delete(s, g)
		}
	}
}

// listeners is the set (or, given groups, their part) as an audit would observe it.
func (s liveSet) listeners(groups ...group) []observed.Listener {
	if groups == nil {
		groups = slices.SortedFunc(maps.Keys(s), func(a, b group) int { return cmp.Or(cmp.Compare(a.proto, b.proto), cmp.Compare(a.port, b.port)) })
	}
	var out []observed.Listener
	for _, g := range groups {
		for _, k := range slices.Sorted(maps.Keys(s[g])) {
			e := s[g][k]
			if len(e.snap) > 0 {
				out = append(out, e.snap...)
				continue
			}
			for _, c := range slices.Sorted(maps.Keys(e.cookies)) {
				out = append(out, e.cookies[c])
			}
		}
	}
	return out
}

// liveOp is one resolved kernel event.
type liveOp struct {
	open   bool
	cookie uint64
	key    string
	l      observed.Listener
	at     time.Time
}

// commitReq is a batch for the group committer: events and the state after them, whole
// (state) or as a change (upsert, drop) to the state before.
type commitReq struct {
	events []Event
	state  State
	upsert State
	drop   []string
	done   chan<- error // optional: told once the batch is durable (or failed)
}

// commitQueue holds the batches waiting for the committer, at most commitQueue of them (a
// full queue makes the loop wait). It is a slice that grows with use, not a channel of
// commitQueue slots: such a channel's buffer (9 MiB of pointers) was scanned by every
// garbage collection, and the collections' mark phases were the events' judged tail.
type commitQueue struct {
	mu      sync.Mutex
	notFull sync.Cond
	q       []commitReq
	closed  bool
	ready   chan struct{} // a token when q became non-empty or the queue closed
}

func newCommitQueue() *commitQueue {
	c := &commitQueue{ready: make(chan struct{}, 1)}
	c.notFull.L = &c.mu
	return c
}

// put queues r, waiting while the queue is full.
func (c *commitQueue) put(r commitReq) {
	c.mu.Lock()
	for len(c.q) >= maxCommitQueue && !c.closed {
		c.notFull.Wait()
	}
	c.q = append(c.q, r)
	c.mu.Unlock()
	select {
	case c.ready <- struct{}{}:
	default:
	}
}

// close ends the queue: the committer writes what is queued and returns.
func (c *commitQueue) close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.notFull.Broadcast()
	select {
	case c.ready <- struct{}{}:
	default:
	}
}

// wait blocks until a batch is queued; false once the queue is closed and empty.
func (c *commitQueue) wait() bool {
	for {
		c.mu.Lock()
		n, closed := len(c.q), c.closed
		c.mu.Unlock()
		if n > 0 {
			return true
		}
		if closed {
			return false
		}
		<-c.ready
	}
}

// takeAll appends every queued batch, oldest first, to into.
func (c *commitQueue) takeAll(into []commitReq) []commitReq {
	c.mu.Lock()
	into = append(into, c.q...)
	clear(c.q)
	c.q = c.q[:0]
	c.mu.Unlock()
	c.notFull.Broadcast()
	return into
}

func (c *commitQueue) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// pending says whether batches are queued.
func (c *commitQueue) pending() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.q) > 0
}

// committer writes batches, gathering those that come within the commit window into one
// transaction, and exports (logs, wakes the sinks) only what is durable. A failed write makes
// the loop re-read the stored state (resync), so the next judgement re-derives what was lost.
//
// Batches that queued while the last transaction was written have waited for the disk
// already: they are taken at once, with everything else queued, and written without waiting
// the window again (the window only gathers a batch that starts when the committer is idle).
func (m *Monitor) committer(in *commitQueue, resync chan<- struct{}) {
	backlog := false // batches queued while the last transaction was written
	var batch []commitReq
	for in.wait() {
		if !backlog {
			// The window: what the loop queues meanwhile joins this transaction (a close
			// ends it early).
			timer := time.NewTimer(m.cfg.CommitWindow)
		gather:
			for {
				select {
				case <-timer.C:
					break gather
				case <-in.ready:
					if in.isClosed() {
						break gather
					}
				}
			}
			timer.Stop()
		}
		batch = in.takeAll(batch[:0])
		var events []Event
		full := false
		up, drop := State{}, map[string]bool{}
		for _, r := range batch {
			events = append(events, r.events...)
			if r.state != nil {
				full, up, drop = true, maps.Clone(r.state), map[string]bool{}
			}
			for k, e := range r.upsert {
				up[k] = e
				delete(drop, k)
			}
			for _, k := range r.drop {
				delete(up, k)
				drop[k] = true
			}
		}
		var stored []Event
		var err error
		if full {
			stored, err = m.store.Record(events, up)
		} else {
			stored, err = m.store.RecordChange(events, up, slices.Collect(maps.Keys(drop)))
		}
		if err != nil {
			m.mu.Lock()
			m.errors++
			m.mu.Unlock()
			m.log.Error("storing events failed; re-reading the stored state", "error", err.Error())
			select {
			case resync <- struct{}{}:
			default:
			}
		} else {
			m.stored(stored)
		}
		for _, r := range batch {
			if r.done != nil {
				r.done <- err
			}
		}
		clear(batch)
		backlog = in.pending()
	}
}

// kernelLoop is the running kernel loop's door for Audit.
type kernelLoop struct {
	reqs   chan chan error
	exited chan struct{}
}

// snapResult is a full audit's observation, made apart from the loop.
type snapResult struct {
	snap  *observe.Snapshot
	err   error
	start time.Time
}

// reportBox hands the reporter what changed since it last took from it: a new base (the
// observation the loop judged whole: after an audit, when a grace period ended; the reporter
// builds its group-by-group judgement from it, off the loop) and the groups whose
// sockets changed since, under seq, the loop's count of such hand-overs, so that a report of
// an older state never replaces a newer one (Monitor.lastSeq).
type reportBox struct {
	mu     sync.Mutex
	seq    uint64
	base   *reportBase
	groups map[group][]observed.Listener
	wake   chan struct{}
}

// reportBase is a whole observation and the policy it was judged by.
type reportBase struct {
	pol *policy.Policy
	obs observed.Observation
}

// rebase hands over a new base, the whole live set, and returns its seq.
func (b *reportBox) rebase(base *reportBase) uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	b.base, b.groups = base, map[group][]observed.Listener{}
	return b.seq
}

// change hands over the sockets of changed groups and wakes the reporter.
func (b *reportBox) change(groups map[group][]observed.Listener) {
	b.mu.Lock()
	b.seq++
	if b.groups == nil {
		b.groups = map[group][]observed.Listener{}
	}
	maps.Copy(b.groups, groups)
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// take empties the box.
func (b *reportBox) take() (uint64, *reportBase, map[group][]observed.Listener) {
	b.mu.Lock()
	defer b.mu.Unlock()
	seq, base, groups := b.seq, b.base, b.groups
	b.base, b.groups = nil, nil
	return seq, base, groups
}

// publish makes rep, of the loop's seq-th change, the latest report unless a newer one is.
func (m *Monitor) publish(rep *audit.Report, seq uint64, at time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if seq < m.lastSeq {
		return false
	}
	m.last, m.lastSeq = rep, seq
	if !at.IsZero() {
		m.lastMeta.Time = at.UTC()
	}
	return true
}

// maxCommitQueue is how many batches may wait for the committer: the judge never waits for
// the disk (a slow fsync gathers more into the next transaction).
const maxCommitQueue = 1 << 16

// reportEvery is how long after the events go quiet kernel mode updates the whole report for
// the metrics (the events themselves are judged at once, by group). While events keep coming,
// the report waits for a pause, but never more than reportMax after the first event it has not
// reported. When the report was judged whole, doing it every 50 ms of a burst delayed the
// events' own judgement (judged p99 1.7-2.0 ms against 0.71-0.79 ms without it,
// bench/live-latency.sh); it is now assembled group by group (audit.Incremental, about a fifth
// of a whole judgement's cost at 10,000 listeners), and still batched so that a burst costs a few reports.
const (
	reportEvery = 50 * time.Millisecond
	reportMax   = time.Second
)

// maxBatch bounds how many queued events are judged together.
const maxBatch = 4096

// runKernel follows src: each event (with those queued behind it) is applied to the live set,
// judged at once with the audit's judge, and its drift handed to the group committer; a full
// audit runs at start, every interval, on request (Audit, a reload), and at once when the
// kernel lost records. While an audit observes, the events keep being judged, and those the
// kernel saw after the audit started are kept in a journal, replayed over its snapshot. It returns nil
// when ctx ends, or the source's error (the caller falls back to polling).
func (m *Monitor) runKernel(ctx context.Context, src EventSource) error {
	ctx, cancel := context.WithCancel(ctx)
	evs := make(chan kernel.Event, maxBatch)
	readErr := make(chan error, 1)
	var readers sync.WaitGroup
	readers.Go(func() {
		for {
			ev, err := src.Read(ctx)
			if errors.Is(err, kernel.ErrBadRecord) {
				m.mu.Lock()
				m.watch.bad++
				m.mu.Unlock()
				continue
			}
			if err != nil {
				readErr <- err
				return
			}
			select {
			case evs <- ev:
			case <-ctx.Done():
				return
			}
		}
	})
	commits := newCommitQueue()
	resync := make(chan struct{}, 1)
	var committed sync.WaitGroup
	committed.Go(func() { m.committer(commits, resync) })
	// The report (the metrics) is kept apart from the events' path, group by group
	// (audit.Incremental): the loop hands the changed groups over at most every reportEvery,
	// and the reporter judges them and assembles the whole report.
	box := &reportBox{wake: make(chan struct{}, 1)}
	reporterDone := make(chan struct{})
	var reporter sync.WaitGroup
	reporter.Go(func() {
		var cur *audit.Incremental
		for {
			select {
			case <-reporterDone:
				return
			case <-box.wake:
			}
			seq, base, groups := box.take()
			if base != nil {
				cur = audit.NewIncremental(base.pol, base.obs)
			}
			if cur == nil {
				continue // no audit yet: the loop judges nothing before one
			}
			for g, ls := range groups {
				cur.Set(observed.Protocol(g.proto), g.port, ls)
			}
			if cur.Policy() != m.Policy() {
				continue // reloaded: the reload's audit brings a base judged by the new policy
			}
			if m.publish(cur.Report(), seq, time.Time{}) {
				m.noteScore() // the score history follows the events, not only the audits
			}
		}
	})
	m.audits.Lock()
	exited := make(chan struct{})
	m.loopMu.Lock()
	m.loop = &kernelLoop{reqs: make(chan chan error), exited: exited}
	reqs := m.loop.reqs
	m.loopMu.Unlock()
	m.mu.Lock()
	m.watch.mode, m.watch.fallback = WatchKernel, ""
	m.mu.Unlock()
	defer func() {
		cancel()
		_ = src.Close()
		readers.Wait()
		commits.close()
		committed.Wait()
		close(reporterDone)
		reporter.Wait()
		m.loopMu.Lock()
		m.loop = nil
		m.loopMu.Unlock()
		close(exited)
		m.audits.Unlock()
	}()

	var (
		live    = liveSet{}
		stateIx = indexState(m.state) // m.state's keys by group; kept with it
		// reportGroups are the groups changed since the reporter was last told.
		reportGroups = map[group]bool{}
		host         = migratedNetns
		journal      []liveOp
		auditing     bool
		waiting      []chan error // Audit calls waiting for the running audit
		snaps        = make(chan snapResult, 1)
		lost         = src.Lost()
		graceC       <-chan time.Time
		graceT       *time.Timer
		ready        bool   // a full audit succeeded: the live set is the host's
		lostAtAudit  uint64 // the kernel's lost count when the running audit started
		// auditMono is CLOCK_MONOTONIC when the running audit started (before it observes):
		// only events the kernel saw from then on are journaled for replay over its
		// snapshot. An earlier event still queued in the ring buffer when the audit starts
		// is already in the snapshot's view; replayed over it, an open whose close was lost
		// (the very case that starts the audit) would bring back a socket long closed.
		auditMono int64
		// liveMono is auditMono of the audit whose snapshot the live set is built on: an
		// event the kernel saw before it, read only now (the reader was behind), is already in
		// that snapshot and is not applied again.
		liveMono int64
	)
	startAudit := func() {
		if auditing {
			return
		}
		auditing, journal = true, journal[:0]
		lostAtAudit = src.Lost()
		auditMono = monotonicNow()
		start := m.now()
		go func() {
			snap, err := m.cfg.Observer.Observe(ctx)
			if err == nil {
				err = ctx.Err()
			}
			snaps <- snapResult{snap, err, start}
		}()
	}
	schedule := func(deadline time.Time) {
		if graceT != nil {
			graceT.Stop()
			graceC = nil
		}
		if !deadline.IsZero() {
			graceT = time.NewTimer(max(0, deadline.Sub(m.now())))
			graceC = graceT.C
		}
	}
	// judgeLive judges the live set, publishes its report (the metrics change at once) and
	// queues its drift; done, when set, is told when it is durable.
	judgeLive := func(times map[string]time.Time, source string, at time.Time, done chan<- error) *audit.Report {
		base := &reportBase{pol: m.Policy(), obs: m.observation(live.listeners())}
		rep, events, next, deadline := m.drifted(audit.JudgeObservation(base.pol, base.obs), host, times, source, at)
		schedule(deadline)
		m.publish(rep, box.rebase(base), at)
		reportGroups = map[group]bool{} // the base has them
		if len(events) > 0 || m.state == nil || done != nil {
			commits.put(commitReq{events: events, state: maps.Clone(next), done: done})
		}
		m.state, stateIx = next, indexState(next)
		return rep
	}
	// judgeGroups judges only the groups the events touched, with the audit's judge, and
	// queues their drift as a change to the state.
	var (
		reportC     <-chan time.Time
		reportFirst time.Time // the first event the report does not include yet
		lastEvent   time.Time // the newest judged event
	)
	judgeGroups := func(groups map[group]bool, times map[string]time.Time, at time.Time) {
		gs := slices.Collect(maps.Keys(groups))
		rep := m.judgeListeners(live.listeners(gs...))
		prevSub, nextSub := State{}, State{}
		for g := range groups {
			for k := range stateIx[g] {
				prevSub[k] = m.state[k]
			}
		}
		for k, e := range StateOf(rep, host) {
			if groups[group{e.Protocol, e.Port}] { // Judge calls every other service missing here
				nextSub[k] = e
			}
		}
		events, reported, deadline := m.drift.Step(prevSub, nextSub, at.UTC())
		judged := m.now().UTC()
		for i := range events {
			e := &events[i]
			e.JudgedAt, e.Source = judged, SourceKernel
			if t, ok := times[sockKey(e.Netns, e.Protocol, e.Address, e.Port)]; ok {
				e.Time = t.UTC()
			}
		}
		var drop []string
		for k := range prevSub {
			if _, ok := reported[k]; !ok {
				drop = append(drop, k)
				stateIx.del(k, m.state[k])
				delete(m.state, k)
			}
		}
		for k, e := range reported {
			if old, ok := m.state[k]; ok {
				stateIx.del(k, old)
			}
			m.state[k] = e
			stateIx.add(k, e)
		}
		if !deadline.IsZero() && (graceT == nil || graceC == nil) {
			schedule(deadline)
		}
		if len(events) > 0 {
			commits.put(commitReq{events: events, upsert: reported, drop: drop})
		}
		maps.Copy(reportGroups, groups)
		lastEvent = time.Now()
		if reportC == nil {
			reportFirst, reportC = lastEvent, time.After(reportEvery)
		}
	}
	checkLost := func() {
		n := src.Lost()
		if n == lost {
			return
		}
		m.log.Warn("the kernel lost socket events (ring buffer full); auditing now", "lost", n-lost, "lost_total", n)
		lost = n
		m.mu.Lock()
		m.watch.lost = n
		m.mu.Unlock()
		startAudit()
	}
	m.mu.RLock()
	every := m.intervalLocked()
	m.mu.RUnlock()
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	lostTick := time.NewTicker(time.Second)
	defer lostTick.Stop()
	startAudit()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-readErr:
			if ctx.Err() != nil {
				return nil
			}
			return err
		case ev := <-evs:
			batch := []kernel.Event{ev}
		drain:
			for len(batch) < maxBatch {
				select {
				case e := <-evs:
					batch = append(batch, e)
				default:
					break drain
				}
			}
			times, groups := map[string]time.Time{}, map[group]bool{}
			for _, e := range batch {
				if e.Monotonic != 0 && e.Monotonic < liveMono {
					continue // older than the snapshot the live set is built on
				}
				l, ok := m.cfg.Resolver.Listener(e)
				if !ok {
					continue // a namespace not watched (or with no name and no process: no audit sees it)
				}
				op := liveOp{open: e.Kind.Opens(), cookie: e.Cookie, key: listenerKey(l), l: l, at: e.Time}
				live.apply(op)
				times[op.key] = e.Time
				groups[groupOf(l)] = true
				if auditing && (e.Monotonic == 0 || e.Monotonic >= auditMono) {
					journal = append(journal, op)
				}
			}
			m.mu.Lock()
			m.watch.events += uint64(len(batch))
			m.mu.Unlock()
			if len(groups) > 0 && ready {
				judgeGroups(groups, times, m.now())
			}
			checkLost()
		case r := <-snaps:
			auditing = false
			if r.err != nil {
				_ = m.audited(r.start, r.snap, nil, r.err)
				for _, w := range waiting {
					w <- r.err
				}
				waiting = nil
				continue
			}
			ready = true
			m.cfg.Resolver.Namespaces(r.snap.Namespaces)
			m.observed(r.snap)
			host = hostNetns(r.snap)
			live, liveMono = newLiveSet(r.snap.Sockets), auditMono
			for _, op := range journal {
				live.apply(op)
			}
			journal = journal[:0]
			var done chan error
			if len(waiting) > 0 {
				done = make(chan error, 1)
				ws := waiting
				waiting = nil
				go func() {
					err := <-done
					for _, w := range ws {
						w <- err
					}
				}()
			}
			rep := judgeLive(nil, SourceAudit, r.start, done)
			_ = m.audited(r.start, r.snap, rep, nil)
			m.prune(r.start)
			if src.Lost() != lostAtAudit {
				// Records were lost while it observed: its journal is incomplete, so the
				// replay may be wrong. Audit again until one runs with nothing lost.
				checkLost()
				startAudit()
			}
		case w := <-reqs:
			waiting = append(waiting, w)
			startAudit()
		case <-ticker.C:
			startAudit()
		case <-lostTick.C:
			checkLost()
		case <-reportC:
			if now := time.Now(); now.Sub(lastEvent) < reportEvery && now.Sub(reportFirst) < reportMax {
				// Still busy: wait for a pause, but not past reportMax.
				reportC = time.After(min(reportEvery-now.Sub(lastEvent), reportMax-now.Sub(reportFirst)))
				continue
			}
			reportC = nil
			changed := make(map[group][]observed.Listener, len(reportGroups))
			for g := range reportGroups {
				changed[g] = live.listeners(g)
			}
			reportGroups = map[group]bool{}
			box.change(changed)
		case <-graceC:
			graceC = nil
			judgeLive(nil, SourceAudit, m.now(), nil)
		case <-resync:
			st, err := m.store.LastState()
			if err == nil {
				m.state, stateIx = st, indexState(st)
				startAudit()
			}
		}
	}
}
