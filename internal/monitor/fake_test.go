package monitor

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/bindguard/bindguard/internal/audit"
	"github.com/bindguard/bindguard/internal/observe"
	"github.com/bindguard/bindguard/internal/observed"
	"github.com/bindguard/bindguard/internal/proc"
)

// The fakes the monitor's tests run on: no root, no kernel, no wall clock.

// fakeObserver answers each Observe with the listeners (or the error) the test set last.
type fakeObserver struct {
	mu    sync.Mutex
	ls    []observed.Listener
	err   error
	calls int
}

func (f *fakeObserver) Observe(context.Context) (*observe.Snapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	return &observe.Snapshot{
		Sockets:    append([]observed.Listener(nil), f.ls...),
		Namespaces: []proc.Namespace{{Label: "host", Current: true}},
		Warnings:   []string{"scripted"},
	}, nil
}

func (f *fakeObserver) set(ls ...observed.Listener) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ls, f.err = ls, nil
}

func (f *fakeObserver) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// tcp is a TCP listener in netns "host" owned by one known process.
func tcp(addr string, port uint16, pid int, name string) observed.Listener {
	a := netip.MustParseAddr(addr)
	fam, v6 := observed.IPv4, observed.V6OnlyNA
	if a.Is6() {
		fam, v6 = observed.IPv6, observed.V6OnlyYes
	}
	return observed.Listener{
		Socket: observed.Socket{Protocol: observed.TCP, Family: fam, Addr: a, Port: port, V6Only: v6, Inode: uint64(pid)},
		Netns:  "host", Owners: []observed.Process{{PID: pid, Name: name}}, Owner: observed.OwnerKnown,
	}
}

// policyRedisWeb declares redis on loopback and web behind the proxy.
const policyRedisWeb = `version: 1
services:
  - name: redis
    port: 6379
    address: 127.0.0.1
    access: localhost_only
  - name: web
    port: 8080
    address: 127.0.0.1
    access: proxy_only
`

// policyWithStray also declares the stray on 9000, public.
const policyWithStray = policyRedisWeb + `  - name: stray
    port: 9000
    address: 0.0.0.0
    access: public
`

func writePolicy(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

type rig struct {
	m      *Monitor
	obs    *fakeObserver
	clock  *fakeClock
	store  *Store
	dir    string // the store's directory
	policy string // the policy file
}

// newRig builds a monitor over a fresh store, the policy body (empty: the built-in
// catalogue), a fake observer and a fake clock at t0. edit changes the config before New.
func newRig(t *testing.T, body string, edit func(*Config)) *rig {
	t.Helper()
	r := &rig{obs: &fakeObserver{}, clock: &fakeClock{t: t0}, dir: t.TempDir()}
	cfg := Config{Interval: 10 * time.Second, Observer: r.obs, Host: "web1", Now: r.clock.Now}
	if body != "" {
		r.policy = filepath.Join(t.TempDir(), "bindguard.yaml")
		writePolicy(t, r.policy, body)
		cfg.PolicyPath = r.policy
	}
	if edit != nil {
		edit(&cfg)
	}
	store, err := OpenStore(r.dir, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	r.store = store
	m, err := New(cfg, store)
	if err != nil {
		t.Fatal(err)
	}
	r.m = m
	return r
}

func (r *rig) audit(t *testing.T) {
	t.Helper()
	if err := r.m.Audit(context.Background()); err != nil {
		t.Fatalf("audit: %v", err)
	}
}

// stored is every event in the store.
func (r *rig) stored(t *testing.T) []Event {
	t.Helper()
	evs, err := r.store.Since(time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// short is an event without its time, owner and reason, for comparisons.
type short struct {
	ID                     uint64
	Kind, Service, Address string
	Port                   uint16
	Old, New               string
}

func shorten(es []Event) []short {
	var out []short
	for _, e := range es {
		out = append(out, short{e.ID, e.Kind, e.Service, e.Address, e.Port, e.OldStatus, e.NewStatus})
	}
	return out
}

// fakeSink records what it is given; failDeliver and failSnapshot make the next calls fail.
type fakeSink struct {
	mu           sync.Mutex
	name         string
	batches      [][]Event
	snapshots    []*audit.Report
	failDeliver  int         // fail this many Deliver calls
	failSnapshot int         // fail this many Snapshot calls
	delivered    chan uint64 // the last ID of each successful batch
}

func newFakeSink(name string) *fakeSink {
	return &fakeSink{name: name, delivered: make(chan uint64, 100)}
}

var errSinkDown = errors.New("sink down")

func (s *fakeSink) Name() string { return s.name }

func (s *fakeSink) Deliver(ctx context.Context, events []Event) error {
	if _, ok := ctx.Deadline(); !ok {
		return errors.New("Deliver called without a timeout")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failDeliver > 0 {
		s.failDeliver--
		return errSinkDown
	}
	s.batches = append(s.batches, append([]Event(nil), events...))
	s.delivered <- events[len(events)-1].ID
	return nil
}

func (s *fakeSink) Snapshot(ctx context.Context, r *audit.Report) error {
	if _, ok := ctx.Deadline(); !ok {
		return errors.New("Snapshot called without a timeout")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failSnapshot > 0 {
		s.failSnapshot--
		return errSinkDown
	}
	s.snapshots = append(s.snapshots, r)
	return nil
}

// fakeTimer is Config.After: each wait is sent to the test, which fires it by answering.
type fakeTimer struct {
	waits chan wait
	stop  chan struct{} // closed: waits are no longer taken by the test
}

type wait struct {
	d    time.Duration
	fire chan time.Time
}

func newFakeTimer() *fakeTimer { return &fakeTimer{waits: make(chan wait), stop: make(chan struct{})} }

func (f *fakeTimer) After(d time.Duration) <-chan time.Time {
	w := wait{d, make(chan time.Time, 1)}
	select {
	case f.waits <- w:
	case <-f.stop:
	}
	return w.fire
}

// next is the next wait the monitor starts, failing the test if none starts in 10 s.
func (f *fakeTimer) next(t *testing.T) wait {
	t.Helper()
	select {
	case w := <-f.waits:
		return w
	case <-time.After(10 * time.Second):
		t.Fatal("the monitor started no wait")
		return wait{}
	}
}
