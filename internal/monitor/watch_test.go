package monitor

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bindguard/bindguard/internal/kernel"
	"github.com/bindguard/bindguard/internal/observe"
	"github.com/bindguard/bindguard/internal/observed"
	"github.com/bindguard/bindguard/internal/proc"
)

// fakeSource is a kernel event source the test feeds.
type fakeSource struct {
	ch     chan kernel.Event
	errc   chan error
	lost   atomic.Uint64
	once   sync.Once
	closed chan struct{}
}

func newFakeSource() *fakeSource {
	return &fakeSource{ch: make(chan kernel.Event), errc: make(chan error, 1), closed: make(chan struct{})}
}

func (f *fakeSource) Read(ctx context.Context) (kernel.Event, error) {
	select {
	case ev := <-f.ch:
		return ev, nil
	case err := <-f.errc:
		return kernel.Event{}, err
	case <-ctx.Done():
		return kernel.Event{}, ctx.Err()
	case <-f.closed:
		return kernel.Event{}, os.ErrClosed
	}
}

func (f *fakeSource) Lost() uint64 { return f.lost.Load() }

func (f *fakeSource) Close() error {
	f.once.Do(func() { close(f.closed) })
	return nil
}

// fakeResolver labels netns inode 1 "host" and 2 "ct1"; others are not watched. The owner is
// the event's pid and comm.
type fakeResolver struct {
	mu  sync.Mutex
	ns  []proc.Namespace
	got int
}

func (r *fakeResolver) Listener(ev kernel.Event) (observed.Listener, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got++
	label := map[uint64]string{1: "host", 2: "ct1"}[ev.NetnsIno]
	if label == "" {
		return observed.Listener{}, false
	}
	l := tcp(ev.Addr.String(), ev.Port, ev.PID, ev.Comm)
	l.Netns, l.Inode = label, 0
	return l, true
}

func (r *fakeResolver) Namespaces(ns []proc.Namespace) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ns = ns
}

// gatedObserver blocks each Observe until the test opens the gate (when one is set).
type gatedObserver struct {
	*fakeObserver
	mu      sync.Mutex
	gate    chan struct{}
	entered chan struct{}
}

func (g *gatedObserver) Observe(ctx context.Context) (*observe.Snapshot, error) {
	g.mu.Lock()
	gate, entered := g.gate, g.entered
	g.mu.Unlock()
	if gate != nil {
		entered <- struct{}{}
		<-gate
	}
	return g.fakeObserver.Observe(ctx)
}

func (g *gatedObserver) hold() (entered, gate chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gate, g.entered = make(chan struct{}), make(chan struct{}, 1)
	return g.entered, g.gate
}

func (g *gatedObserver) release(gate chan struct{}) {
	g.mu.Lock()
	g.gate = nil
	g.mu.Unlock()
	close(gate)
}

// waitUntil waits for cond, failing the test if it does not hold within 10 s (a guard against a
// hang, not a timing assertion).
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: never happened", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func kev(kind kernel.Kind, ns uint64, addr string, port uint16, pid int, cookie uint64, at time.Time) kernel.Event {
	return kernel.Event{Kind: kind, Time: at, NetnsIno: ns, Protocol: "tcp", Family: "ipv4", Addr: netip.MustParseAddr(addr), Port: port, PID: pid, Comm: "redis-server", Cookie: cookie}
}

type kernelRig struct {
	*rig
	src    *fakeSource
	res    *fakeResolver
	gobs   *gatedObserver
	cancel context.CancelFunc
	done   chan error
}

func startKernel(t *testing.T, edit func(*Config)) *kernelRig {
	t.Helper()
	k := &kernelRig{src: newFakeSource(), res: &fakeResolver{}}
	k.rig = newRig(t, policyRedisWeb, func(c *Config) {
		k.gobs = &gatedObserver{fakeObserver: c.Observer.(*fakeObserver)}
		c.Observer = k.gobs
		c.Watch = WatchKernel
		c.OpenEvents = func() (EventSource, error) { return k.src, nil }
		c.Resolver = k.res
		if edit != nil {
			edit(c)
		}
	})
	k.obs.set(tcp("127.0.0.1", 8080, 30, "web"))
	ctx, cancel := context.WithCancel(context.Background())
	k.cancel, k.done = cancel, make(chan error, 1)
	go func() { k.done <- k.m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-k.done
	})
	waitUntil(t, "the first audit", func() bool { rep, _ := k.m.Latest(); return rep != nil && len(k.stored(t)) > 0 })
	return k
}

func (k *kernelRig) send(t *testing.T, ev kernel.Event) {
	t.Helper()
	select {
	case k.src.ch <- ev:
	case <-time.After(10 * time.Second):
		t.Fatal("the monitor does not read events")
	}
}

// TestKernelModeJudgesEvents: each kernel event is judged at once by the audit's judge and
// becomes a stored drift event (with the kernel's time), a new report (the metrics) and sink
// input; a close is a change back; an event in an unwatched namespace is ignored.
func TestKernelModeJudgesEvents(t *testing.T) {
	sink := newFakeSink("fake")
	k := startKernel(t, func(c *Config) { c.Sinks = []Sink{sink} })
	if _, mode, fb := k.m.Watch(); mode != WatchKernel || fb != "" {
		t.Fatalf("watch %s %q", mode, fb)
	}
	first := len(k.stored(t)) // web valid, redis missing
	tk := time.Date(2026, 11, 22, 10, 0, 0, 123456789, time.UTC)
	k.send(t, kev(kernel.KindListen, 1, "0.0.0.0", 6379, 10, 77, tk))
	waitUntil(t, "the listen's event", func() bool { return len(k.stored(t)) > first })
	evs := k.stored(t)[first:]
	if d := shorten(evs); len(d) != 1 || d[0].Kind != KindChanged || d[0].Old != "missing" || d[0].New != "invalid" || d[0].Address != "0.0.0.0" {
		t.Fatalf("events %+v", d)
	}
	e := evs[0]
	if e.Source != SourceKernel || !e.Time.Equal(tk) || e.JudgedAt.IsZero() || e.StoredAt.IsZero() || e.Severity != "critical" || e.Process == nil || e.Process.PID != 10 {
		t.Errorf("kernel event %+v", e)
	}
	waitUntil(t, "the report (metrics) to count the invalid redis", func() bool { rep, _ := k.m.Latest(); return rep.Summary.Invalid == 1 })
	select {
	case id := <-sink.delivered:
		for id < e.ID {
			id = <-sink.delivered
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the sink was not given the event")
	}

	// Another namespace's event the monitor does not watch: nothing.
	k.send(t, kev(kernel.KindListen, 9, "0.0.0.0", 6379, 11, 78, tk))
	// The close: back to missing (no grace period here).
	k.send(t, kev(kernel.KindClose, 1, "0.0.0.0", 6379, 0, 77, tk.Add(time.Millisecond)))
	waitUntil(t, "the close's event", func() bool { return len(k.stored(t)) > first+1 })
	evs = k.stored(t)[first+1:]
	if d := shorten(evs); len(d) != 1 || d[0].Kind != KindChanged || d[0].Old != "invalid" || d[0].New != "missing" {
		t.Fatalf("after the close %+v", d)
	}
	w := get(t, k.m.Handler(), "/metrics")
	for _, want := range []string{`bindguard_watch_mode{mode="kernel"} 1`, `bindguard_watch_mode{mode="poll"} 0`, `bindguard_watch_fallback{asked="kernel"} 0`, "bindguard_watch_events_total 3", "bindguard_watch_lost_records_total 0"} {
		if !strings.Contains(w.Body.String(), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if w := get(t, k.m.Handler(), "/health"); !strings.Contains(w.Body.String(), "watch: kernel\n") {
		t.Errorf("/health %q", w.Body)
	}
}

// TestKernelModeLostRecords: lost ring-buffer records are counted and trigger a full audit.
func TestKernelModeLostRecords(t *testing.T) {
	k := startKernel(t, nil)
	calls := func() int { k.obs.mu.Lock(); defer k.obs.mu.Unlock(); return k.obs.calls }
	before := calls()
	k.src.lost.Store(5)
	k.send(t, kev(kernel.KindListen, 1, "127.0.0.1", 6379, 10, 1, t0))
	waitUntil(t, "an audit after the loss", func() bool { return calls() > before })
	w := get(t, k.m.Handler(), "/metrics")
	if !strings.Contains(w.Body.String(), "bindguard_watch_lost_records_total 5") {
		t.Errorf("/metrics does not count the lost records")
	}
}

// TestKernelModeAuditDuringEvents: events that arrive while a full audit observes are judged at
// once and replayed over its snapshot, so a socket that opened after the snapshot was taken is
// not reported gone, and one that closed is not kept.
func TestKernelModeAuditDuringEvents(t *testing.T) {
	k := startKernel(t, nil)
	entered, gate := k.gobs.hold()
	audited := make(chan error, 1)
	go func() { audited <- k.m.Audit(context.Background()) }() // also: Audit asks the loop in kernel mode
	<-entered
	// The snapshot (being taken) has web only; redis opens meanwhile.
	n := len(k.stored(t))
	k.send(t, kev(kernel.KindListen, 1, "127.0.0.1", 6379, 10, 5, t0))
	waitUntil(t, "the event judged during the audit", func() bool { return len(k.stored(t)) > n })
	k.gobs.release(gate)
	if err := <-audited; err != nil {
		t.Fatal(err)
	}
	evs := k.stored(t)[n:]
	if d := shorten(evs); len(d) != 1 || d[0].Kind != KindChanged || d[0].New != "valid" {
		t.Errorf("events %+v: redis must stay listening after the audit", d)
	}
	// Audit returned once the audit's state was durable.
	st, err := k.store.LastState()
	if _, ok := st[sockKey("host", "tcp", "127.0.0.1", 6379)]; !ok || err != nil {
		t.Errorf("redis is not in the stored state after the audit: %v %v", st, err)
	}
}

// TestKernelModeSourceFails: the source failing while it runs makes the monitor poll, saying
// why.
func TestKernelModeSourceFails(t *testing.T) {
	k := startKernel(t, nil)
	k.src.errc <- errors.New("ring buffer gone")
	waitUntil(t, "the fallback", func() bool { _, mode, _ := k.m.Watch(); return mode == WatchPoll })
	if _, _, fb := k.m.Watch(); fb != "ring buffer gone" {
		t.Errorf("fallback %q", fb)
	}
	// Audits go on, by polling.
	if err := k.m.Audit(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestWatchFallback: kernel mode asked for where the event source cannot load (here: the
// real kernel.OpenWatcher told to attach to a directory that is not a cgroup, or not root)
// polls, and /health and the metrics say so and why.
func TestWatchFallback(t *testing.T) {
	for _, mode := range []WatchMode{WatchAuto, WatchKernel} {
		t.Run(string(mode), func(t *testing.T) {
			notCgroup := t.TempDir()
			r := newRig(t, policyRedisWeb, func(c *Config) {
				c.Watch = mode
				c.OpenEvents = func() (EventSource, error) {
					w, err := kernel.OpenWatcher(kernel.WatchOptions{Cgroup: notCgroup})
					if err != nil {
						return nil, err
					}
					return w, nil
				}
				c.Resolver = &fakeResolver{}
			})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- r.m.Run(ctx) }()
			defer func() { cancel(); <-done }()
			waitUntil(t, "the first audit", func() bool { rep, _ := r.m.Latest(); return rep != nil })
			asked, running, fb := r.m.Watch()
			if asked != mode || running != WatchPoll || !strings.Contains(fb, kernel.ErrUnavailable.Error()) {
				t.Fatalf("Watch() = %s, %s, %q", asked, running, fb)
			}
			w := get(t, r.m.Handler(), "/health")
			if !strings.Contains(w.Body.String(), "watch: poll (--watch "+string(mode)+" asked for the kernel event source, which is unavailable: "+fb+")") {
				t.Errorf("/health %q", w.Body)
			}
			m := get(t, r.m.Handler(), "/metrics").Body.String()
			if !strings.Contains(m, `bindguard_watch_fallback{asked="`+string(mode)+`"} 1`) || !strings.Contains(m, `bindguard_watch_mode{mode="poll"} 1`) {
				t.Errorf("/metrics lacks the fallback")
			}
		})
	}
}

// TestNewWatchOptions: the watch options New refuses.
func TestNewWatchOptions(t *testing.T) {
	st, err := OpenStore(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = st.Close() }()
	obs := &fakeObserver{}
	for _, c := range []Config{
		{Interval: time.Second, Observer: obs, Watch: "sometimes"},
		{Interval: time.Second, Observer: obs, Watch: WatchKernel},
		{Interval: time.Second, Observer: obs, Grace: -time.Second},
	} {
		if _, err := New(c, st); err == nil {
			t.Errorf("New(%+v) accepted", c)
		}
	}
	if got := WatchModes(); len(got) != 3 {
		t.Errorf("WatchModes %v", got)
	}
}

// TestKernelModeReportInBurst: the whole report (the metrics) is re-judged once the events
// pause, but a burst that never pauses does not hold it back: a listener opened at the burst's
// start is in the report while the burst still runs (within reportMax of it).
func TestKernelModeReportInBurst(t *testing.T) {
	k := startKernel(t, nil)
	tk := time.Now()
	k.send(t, kev(kernel.KindListen, 1, "0.0.0.0", 6379, 10, 77, tk))
	stop, stopped := make(chan struct{}), make(chan struct{})
	var sent atomic.Int64
	go func() {
		defer close(stopped)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for i := uint64(0); ; i++ {
			kind := kernel.KindListen
			if i%2 == 1 {
				kind = kernel.KindClose
			}
			select {
			case k.src.ch <- kev(kind, 1, "127.0.0.1", 9000, 11, 1000+i/2, time.Now()):
				sent.Add(1)
			case <-stop:
				return
			case <-time.After(10 * time.Second):
				return // the monitor stopped reading: waitUntil below reports it
			}
			select {
			case <-tick.C:
			case <-stop:
				return
			}
		}
	}()
	waitUntil(t, "the report to count the invalid redis during the burst", func() bool {
		rep, _ := k.m.Latest()
		return rep.Summary.Invalid == 1
	})
	select {
	case <-stopped:
		t.Fatal("the burst ended before the report was judged: the test proves nothing")
	default:
	}
	close(stop)
	<-stopped
	if n := sent.Load(); n < 2 {
		t.Fatalf("only %d burst events sent", n)
	}
}
