package monitor

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bindguard/bindguard/internal/observe"
	"github.com/bindguard/bindguard/internal/observed"
)

func TestNewRefuses(t *testing.T) {
	store, err := OpenStore(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = store.Close() }()
	obs := &fakeObserver{}
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no interval", Config{Observer: obs}, "interval must be positive"},
		{"no observer", Config{Interval: time.Second}, "no observer"},
		{"no such policy", Config{Interval: time.Second, Observer: obs, PolicyPath: "/nonexistent/bindguard.yaml"}, "nonexistent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.cfg, store); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestAuditDrift drives the monitor through scripted observations and checks every drift
// event it records: appeared, changed (status and missing <-> listening), disappeared, and
// nothing when nothing changed.
func TestAuditDrift(t *testing.T) {
	r := newRig(t, policyRedisWeb, nil)
	redis := tcp("127.0.0.1", 6379, 10, "redis-server")
	stray := tcp("0.0.0.0", 9000, 20, "nc")
	web := tcp("127.0.0.1", 8080, 30, "web")
	steps := []struct {
		name string
		obs  []observed.Listener
		want []short
	}{
		{"first audit", []observed.Listener{redis}, []short{
			{1, KindAppeared, "web", "127.0.0.1", 8080, "", "missing"},
			{2, KindAppeared, "redis", "127.0.0.1", 6379, "", "valid"},
		}},
		{"unchanged", []observed.Listener{redis}, nil},
		{"stray appears", []observed.Listener{redis, stray}, []short{{3, KindAppeared, "", "0.0.0.0", 9000, "", "unexpected"}}},
		// One changed event with both addresses, not an appearance and a disappearance.
		{"redis moves to the wildcard", []observed.Listener{tcp("0.0.0.0", 6379, 10, "redis-server"), stray}, []short{
			{4, KindChanged, "redis", "0.0.0.0", 6379, "valid", "invalid"},
		}},
		{"redis stops", []observed.Listener{stray}, []short{{5, KindChanged, "redis", "0.0.0.0", 6379, "invalid", "missing"}}},
		{"web starts", []observed.Listener{stray, web}, []short{{6, KindChanged, "web", "127.0.0.1", 8080, "missing", "valid"}}},
		// A violation that goes away is a resolution.
		{"stray goes", []observed.Listener{web}, []short{{7, KindResolved, "", "0.0.0.0", 9000, "unexpected", ""}}},
	}
	var all []short
	for _, st := range steps {
		r.clock.advance(10 * time.Second)
		r.obs.set(st.obs...)
		before := len(r.stored(t))
		r.audit(t)
		got := shorten(r.stored(t)[before:])
		if d := cmp.Diff(st.want, got); d != "" {
			t.Errorf("%s: events (-want +got):\n%s", st.name, d)
		}
		all = append(all, st.want...)
		rep, meta := r.m.Latest()
		if rep == nil || !meta.Time.Equal(r.clock.Now()) || meta.Host != "web1" || meta.Policy != r.policy {
			t.Errorf("%s: latest %v %+v", st.name, rep != nil, meta)
		}
	}
	evs := r.stored(t)
	if d := cmp.Diff(all, shorten(evs)); d != "" {
		t.Errorf("stored events (-want +got):\n%s", d)
	}
	if p := evs[1].Process; p == nil || p.PID != 10 || p.Name != "redis-server" {
		t.Errorf("redis's event names its owner as %+v", p)
	}
	if !evs[0].Time.Equal(t0.Add(10 * time.Second)) {
		t.Errorf("first event at %v, want the fake clock's %v", evs[0].Time, t0.Add(10*time.Second))
	}
	_, meta := r.m.Latest()
	if d := cmp.Diff([]string{"scripted"}, meta.Warnings); d != "" {
		t.Errorf("warnings (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"host"}, meta.Namespaces); d != "" {
		t.Errorf("namespaces (-want +got):\n%s", d)
	}
	// Events answers from the store, by time.
	since, err := r.m.Events(t0.Add(60 * time.Second)) // step 6 ran at t0+60s
	if err != nil || len(since) != 2 || since[0].ID != 6 {
		t.Errorf("Events(since step 6) = %v, %v; want events 6 and 7", shorten(since), err)
	}
}

// TestRestartDiffsAgainstStore: a monitor started over the store of one that stopped (or was
// killed) diffs its first audit against the recorded state, and the IDs go on.
func TestRestartDiffsAgainstStore(t *testing.T) {
	r := newRig(t, policyRedisWeb, nil)
	redis := tcp("127.0.0.1", 6379, 10, "redis-server")
	r.obs.set(redis)
	r.audit(t)
	if err := r.store.Close(); err != nil {
		t.Fatal(err)
	}
	store, err := OpenStore(r.dir, false)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = store.Close() }()
	r.store = store
	m, err := New(Config{Interval: time.Second, Observer: r.obs, PolicyPath: r.policy, Now: r.clock.Now}, store)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Audit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(r.stored(t)); n != 2 {
		t.Errorf("%d events after the restart's unchanged audit, want the 2 from before", n)
	}
	r.obs.set()
	if err := m.Audit(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := shorten(r.stored(t)[2:])
	want := []short{{3, KindChanged, "redis", "127.0.0.1", 6379, "valid", "missing"}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("events after the restart (-want +got):\n%s", d)
	}
}

func TestAuditFailure(t *testing.T) {
	r := newRig(t, policyRedisWeb, nil)
	boom := errors.New("sockdiag: dump tcp: boom")
	r.obs.fail(boom)
	if err := r.m.Audit(context.Background()); !errors.Is(err, boom) {
		t.Fatalf("Audit = %v, want the observer's error", err)
	}
	if ok, why := r.m.Health(); ok || why != "the last audit failed: sockdiag: dump tcp: boom" {
		t.Errorf("Health = %v %q", ok, why)
	}
	if rep, _ := r.m.Latest(); rep != nil {
		t.Error("a failed first audit left a report")
	}
	// A cancelled audit is a failure too, and records nothing.
	r.obs.set(tcp("127.0.0.1", 6379, 10, "redis-server"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.m.Audit(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Audit(cancelled) = %v", err)
	}
	if n := len(r.stored(t)); n != 0 {
		t.Errorf("%d events stored by failed audits", n)
	}
	r.m.mu.RLock()
	errs := r.m.errors
	r.m.mu.RUnlock()
	if errs != 2 {
		t.Errorf("errors = %d, want 2", errs)
	}
	// It recovers.
	r.audit(t)
	if ok, why := r.m.Health(); !ok || !strings.HasPrefix(why, "ok: last audit 0s ago, score ") {
		t.Errorf("Health after recovery = %v %q", ok, why)
	}
}

func TestHealthFreshness(t *testing.T) {
	r := newRig(t, policyRedisWeb, nil)
	if ok, why := r.m.Health(); ok || why != "no audit has run yet" {
		t.Errorf("Health before any audit = %v %q", ok, why)
	}
	r.audit(t)
	r.clock.advance(25 * time.Second) // two intervals and 5 s: still fresh
	if ok, why := r.m.Health(); !ok {
		t.Errorf("Health at the limit = %v %q", ok, why)
	}
	r.clock.advance(time.Second)
	if ok, why := r.m.Health(); ok || why != "the last successful audit is 26s old (limit 25s)" {
		t.Errorf("Health past the limit = %v %q", ok, why)
	}
}

func TestReload(t *testing.T) {
	r := newRig(t, policyRedisWeb, nil)
	r.obs.set(tcp("127.0.0.1", 6379, 10, "redis-server"), tcp("0.0.0.0", 9000, 20, "nc"))
	r.audit(t)
	n := len(r.stored(t))

	// Invalid on disk: refused, the old policy stays, nothing recorded.
	writePolicy(t, r.policy, "version: 1\nservices:\n  - name: redis\n    port: 0\n")
	if err := r.m.Reload(context.Background()); err == nil {
		t.Fatal("an invalid policy was reloaded")
	}
	if got := len(r.m.Policy().Services); got != 2 {
		t.Errorf("%d services after a refused reload, want the old 2", got)
	}
	if got := len(r.stored(t)); got != n {
		t.Errorf("a refused reload recorded %d events", got-n)
	}

	// Valid: recorded, then audited against at once (the stray becomes declared).
	r.clock.advance(time.Minute)
	writePolicy(t, r.policy, policyWithStray)
	if err := r.m.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := len(r.m.Policy().Services); got != 3 {
		t.Errorf("%d services after the reload, want 3", got)
	}
	evs := r.stored(t)[n:]
	want := []short{
		{uint64(n + 1), KindPolicyReloaded, "", "", 0, "", ""},
		{uint64(n + 2), KindChanged, "stray", "0.0.0.0", 9000, "unexpected", "valid"},
	}
	if d := cmp.Diff(want, shorten(evs)); d != "" {
		t.Errorf("events of the reload (-want +got):\n%s", d)
	}
	if want := "policy " + r.policy + " reloaded: 3 services"; evs[0].Reason != want || !evs[0].Time.Equal(t0.Add(time.Minute)) {
		t.Errorf("reload event %q at %v, want %q at %v", evs[0].Reason, evs[0].Time, want, t0.Add(time.Minute))
	}
}

func TestReloadBuiltin(t *testing.T) {
	r := newRig(t, "", nil)
	if r.m.Policy().Source == "" || len(r.m.Policy().Services) == 0 {
		t.Fatalf("no built-in catalogue: %+v", r.m.Policy())
	}
	if err := r.m.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r.obs.calls != 1 {
		t.Errorf("a reload without a policy file audited %d times, want once", r.obs.calls)
	}
	for _, e := range r.stored(t) {
		if e.Kind == KindPolicyReloaded {
			t.Errorf("a reload without a policy file recorded %+v", e)
		}
	}
}

// TestPrune: delivered events older than the retention go; events a sink has not been given
// stay, however old.
func TestPrune(t *testing.T) {
	for _, tc := range []struct {
		name string
		sink bool
		want int // events left after the second audit
	}{
		{"no sinks", false, 1},
		{"undelivered", true, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, policyRedisWeb, func(c *Config) {
				c.Retention = time.Hour
				if tc.sink {
					c.Sinks = []Sink{newFakeSink("redis")}
				}
			})
			r.obs.set(tcp("127.0.0.1", 6379, 10, "redis-server"))
			r.audit(t) // 2 events at t0
			r.clock.advance(2 * time.Hour)
			r.obs.set(tcp("127.0.0.1", 6379, 10, "redis-server"), tcp("0.0.0.0", 9000, 20, "nc"))
			r.audit(t) // 1 event at t0+2h; the first two are past the retention
			if got := r.stored(t); len(got) != tc.want || got[len(got)-1].ID != 3 {
				t.Errorf("left %v, want %d events ending with 3", shorten(got), tc.want)
			}
		})
	}
}

// TestHostObserver: the production observer passes its options to observe.Observe (a
// netlink source with a fixture proc root is refused before anything is read).
func TestHostObserver(t *testing.T) {
	o := HostObserver(observe.Options{ProcRoot: t.TempDir(), Source: observe.SourceNetlink})
	if _, err := o.Observe(context.Background()); err == nil || !strings.Contains(err.Error(), "--source netlink reads the kernel") {
		t.Errorf("Observe = %v, want the netlink-with-a-proc-root refusal", err)
	}
}
