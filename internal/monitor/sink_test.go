package monitor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/bindguard/bindguard/internal/audit"
)

// startDeliver runs the deliverer of the rig's only sink on a fake timer, until the test ends.
func startDeliver(t *testing.T, r *rig, s Sink) *fakeTimer {
	t.Helper()
	timer := newFakeTimer()
	r.m.cfg.After = timer.After
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.m.deliver(ctx, s, r.m.kicks[0])
	}()
	t.Cleanup(func() {
		cancel()
		close(timer.stop)
		<-done
	})
	return timer
}

func lastDelivered(t *testing.T, s *fakeSink) uint64 {
	t.Helper()
	select {
	case id := <-s.delivered:
		return id
	case <-time.After(10 * time.Second):
		t.Fatal("nothing delivered")
		return 0
	}
}

func waitsOf(t *testing.T, timer *fakeTimer, n int, fire bool) []time.Duration {
	t.Helper()
	var out []time.Duration
	for range n {
		w := timer.next(t)
		out = append(out, w.d)
		if fire {
			w.fire <- time.Time{}
		}
	}
	return out
}

// TestDeliverBackoff: a failing sink is retried after 1 s, doubling to 1 min; once it takes
// the events its cursor moves, the backoff resets, and it waits an interval (or a kick).
func TestDeliverBackoff(t *testing.T) {
	sink := newFakeSink("fake")
	r := newRig(t, policyRedisWeb, func(c *Config) { c.Sinks = []Sink{sink} })
	r.obs.set(tcp("127.0.0.1", 6379, 10, "redis-server"))
	r.audit(t)     // events 1 and 2
	<-r.m.kicks[0] // the audit's kick: the deliverer starts by delivering anyway
	sink.failDeliver = 8
	timer := startDeliver(t, r, sink)

	s := time.Second
	got := waitsOf(t, timer, 8, true)
	if d := cmp.Diff([]time.Duration{s, 2 * s, 4 * s, 8 * s, 16 * s, 32 * s, time.Minute, time.Minute}, got); d != "" {
		t.Errorf("backoff (-want +got):\n%s", d)
	}
	if id := lastDelivered(t, sink); id != 2 {
		t.Errorf("delivered up to %d, want 2", id)
	}
	idle := timer.next(t) // success: back to the interval
	if idle.d != 10*time.Second {
		t.Errorf("wait after success %s, want the interval", idle.d)
	}
	if c, err := r.store.Cursor("fake"); err != nil || c != 2 {
		t.Errorf("cursor %d (%v), want 2", c, err)
	}

	// An audit with news kicks the sink: a new snapshot and the new event. One failing
	// Snapshot is retried after 1 s (the backoff was reset).
	sink.mu.Lock()
	sink.failSnapshot = 1
	sink.mu.Unlock()
	r.clock.advance(time.Minute)
	r.obs.set()
	r.audit(t) // event 3: redis stops
	if w := timer.next(t); w.d != time.Second {
		t.Errorf("wait after a failed snapshot %s, want 1s", w.d)
	} else {
		w.fire <- time.Time{}
	}
	if id := lastDelivered(t, sink); id != 3 {
		t.Errorf("delivered up to %d, want 3", id)
	}
	// An idle interval with nothing new sends nothing: the snapshot is the one written.
	idle = timer.next(t)
	idle.fire <- time.Time{}
	timer.next(t)
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if len(sink.snapshots) != 2 {
		t.Errorf("%d snapshots written, want 2 (one per audit)", len(sink.snapshots))
	}
	var ids []uint64
	for _, b := range sink.batches {
		for _, e := range b {
			ids = append(ids, e.ID)
		}
	}
	if d := cmp.Diff([]uint64{1, 2, 3}, ids); d != "" {
		t.Errorf("delivered ids (-want +got):\n%s", d)
	}
}

// TestDeliverBatches: a backlog goes in batches of 500, the cursor advancing after each.
func TestDeliverBatches(t *testing.T) {
	sink := newFakeSink("fake")
	r := newRig(t, policyRedisWeb, func(c *Config) { c.Sinks = []Sink{sink} })
	backlog := make([]Event, 501)
	for i := range backlog {
		backlog[i] = Event{Time: t0, Kind: KindAppeared, Port: uint16(i)}
	}
	if _, err := r.store.Record(backlog, nil); err != nil {
		t.Fatal(err)
	}
	var snapped *audit.Report
	if err := r.m.deliverOnce(context.Background(), sink, &snapped); err != nil {
		t.Fatal(err)
	}
	if len(sink.batches) != 2 || len(sink.batches[0]) != 500 || len(sink.batches[1]) != 1 || sink.batches[1][0].ID != 501 {
		t.Errorf("batches of %d and %d", len(sink.batches[0]), len(sink.batches[len(sink.batches)-1]))
	}
	if len(sink.snapshots) != 0 {
		t.Error("a snapshot was written before any audit")
	}
	// A failure names the batch and leaves the cursor where the last success put it.
	if _, err := r.store.Record([]Event{{Time: t0, Kind: KindAppeared}}, nil); err != nil {
		t.Fatal(err)
	}
	sink.failDeliver = 1
	err := r.m.deliverOnce(context.Background(), sink, &snapped)
	if !errors.Is(err, errSinkDown) || err.Error() != "events 502-502: sink down" {
		t.Errorf("deliverOnce = %v", err)
	}
	if c, _ := r.store.Cursor("fake"); c != 501 {
		t.Errorf("cursor %d after a failure, want 501", c)
	}
}

// TestRun: Run audits at once, kicks the sinks, and returns when its context ends.
func TestRun(t *testing.T) {
	sink := newFakeSink("fake")
	timer := newFakeTimer()
	r := newRig(t, policyRedisWeb, func(c *Config) {
		c.Sinks = []Sink{sink}
		c.After = timer.After
		c.Interval = time.Hour
	})
	r.obs.set(tcp("127.0.0.1", 6379, 10, "redis-server"))
	go func() { // the deliverer may wait before the first audit: let it, never fire
		for {
			select {
			case <-timer.waits:
			case <-timer.stop:
				return
			}
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.m.Run(ctx) }()
	if id := lastDelivered(t, sink); id != 2 {
		t.Errorf("delivered up to %d, want 2", id)
	}
	cancel()
	close(timer.stop)
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
}

// fakeRedis is the redisClient: it records the commands each pipeline queued, instead of
// sending them, and fails while err is set.
type fakeRedis struct {
	client *redis.Client // builds pipelines; never connects
	tx     [][]string
	plain  [][]string
	err    error
	closed bool
}

func newFakeRedis(t *testing.T) *fakeRedis {
	c := redis.NewClient(&redis.Options{Addr: "fake:6379"})
	t.Cleanup(func() { _ = c.Close() })
	return &fakeRedis{client: c}
}

func queued(p redis.Pipeliner) []string {
	var out []string
	for _, c := range p.Cmds() {
		var args []string
		for _, a := range c.Args() {
			args = append(args, fmt.Sprint(a))
		}
		out = append(out, strings.Join(args, " "))
	}
	p.Discard()
	return out
}

func (f *fakeRedis) TxPipelined(_ context.Context, fn func(redis.Pipeliner) error) ([]redis.Cmder, error) {
	p := f.client.TxPipeline()
	if err := fn(p); err != nil {
		return nil, err
	}
	f.tx = append(f.tx, queued(p))
	return nil, f.err
}

func (f *fakeRedis) Pipelined(_ context.Context, fn func(redis.Pipeliner) error) ([]redis.Cmder, error) {
	p := f.client.Pipeline()
	if err := fn(p); err != nil {
		return nil, err
	}
	f.plain = append(f.plain, queued(p))
	return nil, f.err
}

func (f *fakeRedis) Close() error { f.closed = true; return nil }

func TestRedisSink(t *testing.T) {
	fr := newFakeRedis(t)
	rs := &RedisSink{client: fr, addr: "fake:6379"}
	ctx := context.Background()
	rep := &audit.Report{Score: 90, Summary: audit.Summary{}, Services: []audit.ServiceState{{Name: "core-api", Compliant: true}, {Name: "db"}}}
	if err := rs.Snapshot(ctx, rep); err != nil {
		t.Fatal(err)
	}
	if len(fr.tx) != 1 {
		t.Fatalf("%d transactions, want 1", len(fr.tx))
	}
	tx := fr.tx[0]
	if len(tx) != 3 || tx[0] != "del zabbix:port_bindings" || tx[2] != "expire zabbix:port_bindings 300" ||
		!strings.HasPrefix(tx[1], "hset zabbix:port_bindings ") {
		t.Fatalf("snapshot commands %q", tx)
	}
	for _, f := range []string{"port_binding_security_score 90", "service_binding_correct_core_api 1", "service_binding_correct_db 0", "port_bindings_invalid 0"} {
		if !strings.Contains(tx[1], f) {
			t.Errorf("hset %q lacks %q", tx[1], f)
		}
	}

	evs := []Event{
		{ID: 7, Time: t0, Kind: KindChanged, Netns: "host", Protocol: "tcp", Address: "0.0.0.0", Port: 6379, Service: "redis",
			OldStatus: "valid", NewStatus: "invalid", Severity: "critical", Process: &Process{PID: 10, Name: "redis-server"}},
		{ID: 8, Time: t0, Kind: KindPolicyReloaded, Reason: "policy reloaded"},
	}
	if err := rs.Deliver(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if len(fr.plain) != 1 || len(fr.plain[0]) != 2 {
		t.Fatalf("deliver commands %q, want one pipeline of two XADDs", fr.plain)
	}
	for i, c := range fr.plain[0] {
		if !strings.HasPrefix(c, "xadd bindguard:events maxlen ~ 10000 * ") {
			t.Errorf("command %d %q", i, c)
		}
	}
	first := fr.plain[0][0]
	for _, f := range []string{"id 7", "time 2026-11-22T10:00:00Z", "kind changed", "pid 10", "process redis-server", "new_status invalid"} {
		if !strings.Contains(first, f) {
			t.Errorf("xadd %q lacks %q", first, f)
		}
	}
	if strings.Contains(fr.plain[0][1], " pid ") {
		t.Errorf("an event without an owner has a pid: %q", fr.plain[0][1])
	}
	js, _ := json.Marshal(evs[1])
	if !strings.Contains(fr.plain[0][1], "json "+string(js)) {
		t.Errorf("xadd %q lacks the event's JSON %s", fr.plain[0][1], js)
	}

	fr.err = errors.New("connection refused")
	if err := rs.Snapshot(ctx, rep); err == nil || err.Error() != "redis fake:6379: connection refused" {
		t.Errorf("Snapshot on a failing Redis = %v", err)
	}
	if err := rs.Deliver(ctx, evs); err == nil || !errors.Is(err, fr.err) {
		t.Errorf("Deliver on a failing Redis = %v", err)
	}
	if rs.Name() != "redis" {
		t.Errorf("Name = %q", rs.Name())
	}
	if err := rs.Close(); err != nil || !fr.closed {
		t.Errorf("Close = %v, closed %v", err, fr.closed)
	}
}

func TestNewRedisSink(t *testing.T) {
	rs, err := NewRedisSink("redis://127.0.0.1:1/3")
	if err != nil {
		t.Fatal(err)
	}
	if rs.addr != "127.0.0.1:1" {
		t.Errorf("addr %q", rs.addr)
	}
	if err := rs.Close(); err != nil { // never connected
		t.Error(err)
	}
	if _, err := NewRedisSink("http://example.com"); err == nil || !strings.Contains(err.Error(), "want redis://HOST:PORT/DB") {
		t.Errorf("NewRedisSink(http) = %v", err)
	}
}

func TestRedisLogger(t *testing.T) {
	var buf bytes.Buffer
	l := redisLogger{slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	l.Printf(context.Background(), "dial %s: %v", "fake:6379", "refused")
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatal(err)
	}
	if rec["level"] != "DEBUG" || rec["msg"] != "redis client" || rec["message"] != "dial fake:6379: refused" {
		t.Errorf("logged %v", rec)
	}
}
