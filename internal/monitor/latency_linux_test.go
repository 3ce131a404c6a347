package monitor

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bindguard/bindguard/internal/audit"
	"github.com/bindguard/bindguard/internal/kernel"
	"github.com/bindguard/bindguard/internal/netnstest"
	"github.com/bindguard/bindguard/internal/observe"
	"github.com/bindguard/bindguard/internal/proc"
)

// latencySink records when each port's first event reaches a sink: after it is durable.
type latencySink struct {
	mu sync.Mutex
	at map[uint16]time.Time
}

func (s *latencySink) Name() string { return "latency" }

func (s *latencySink) Deliver(_ context.Context, events []Event) error {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range events {
		if _, ok := s.at[e.Port]; !ok {
			s.at[e.Port] = now
		}
	}
	return nil
}

func (s *latencySink) Snapshot(context.Context, *audit.Report) error { return nil }

func (s *latencySink) count(ports map[uint16]time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for p := range ports {
		if _, ok := s.at[p]; ok {
			n++
		}
	}
	return n
}

func pct(d []time.Duration, p float64) float64 {
	slices.Sort(d)
	return float64(d[min(len(d)-1, int(p*float64(len(d))))].Nanoseconds())
}

// BenchmarkServeLatency (root; bench/live-latency.sh): serve's monitor in kernel mode and in
// poll mode at a 1 s interval, in the same run. b.N TCP listeners are opened one by one (1 ms
// apart) on 127.0.0.1:0 in a network namespace and cgroup of the benchmark's own; for each,
// from listen() returning to the event's judged_at, its stored_at, and its delivery to a sink
// (which reads only what the store has made durable). Reported as p50/p99 in ns.
func BenchmarkServeLatency(b *testing.B) {
	for _, mode := range []WatchMode{WatchKernel, WatchPoll} {
		b.Run(string(mode), func(b *testing.B) {
			netnstest.Require(b)
			cg := stormCgroup(b)
			ns := netnstest.New(b, "bglat")
			opts := observe.Options{Netns: ns.Path}
			pol := filepath.Join(b.TempDir(), "bindguard.yaml")
			writePolicy(&testing.T{}, pol, policyRedisWeb)
			store, err := OpenStore(b.TempDir(), false)
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = store.Close() }()
			sink := &latencySink{at: map[uint16]time.Time{}}
			cfg := Config{PolicyPath: pol, Interval: time.Second, Observer: HostObserver(opts), Watch: mode, Sinks: []Sink{sink}}
			if mode == WatchKernel {
				cfg.Interval = time.Minute
				cfg.OpenEvents = KernelEvents(kernel.WatchOptions{Cgroup: cg})
				cfg.Resolver = &HostResolver{Options: opts, CgroupPath: CgroupPaths()}
			}
			m, err := New(cfg, store)
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- m.Run(ctx) }()
			defer func() { cancel(); <-done }()
			for rep, _ := m.Latest(); rep == nil; rep, _ = m.Latest() {
				time.Sleep(time.Millisecond)
			}
			if _, running, fb := m.Watch(); running != mode {
				b.Fatalf("running %s, not %s: %s", running, mode, fb)
			}
			opened := map[uint16]time.Time{}
			var fds []int
			defer func() {
				for _, fd := range fds {
					_ = unix.Close(fd)
				}
			}()
			b.ResetTimer()
			err = proc.InNetNS(ns.Path, func() error {
				for range b.N {
					fd, err := openSock(false)
					t := time.Now()
					if err != nil {
						return err
					}
					fds = append(fds, fd)
					sa, err := unix.Getsockname(fd)
					if err != nil {
						return err
					}
					opened[uint16(sa.(*unix.SockaddrInet4).Port)] = t // #nosec G115 -- a port
					time.Sleep(time.Millisecond)
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			deadline := time.Now().Add(time.Minute)
			for sink.count(opened) < len(opened) && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			b.StopTimer()
			evs, err := store.Since(time.Time{}, 0)
			if err != nil {
				b.Fatal(err)
			}
			var judged, stored, exported []time.Duration
			for _, e := range evs {
				t, ok := opened[e.Port]
				if !ok || e.Kind != KindAppeared {
					continue
				}
				judged = append(judged, e.JudgedAt.Sub(t))
				stored = append(stored, e.StoredAt.Sub(t))
				sink.mu.Lock()
				exported = append(exported, sink.at[e.Port].Sub(t))
				sink.mu.Unlock()
			}
			if len(judged) != len(opened) {
				b.Fatalf("%d listeners opened, %d judged", len(opened), len(judged))
			}
			b.ReportMetric(pct(judged, 0.50), "judged-p50-ns")
			b.ReportMetric(pct(judged, 0.99), "judged-p99-ns")
			b.ReportMetric(pct(stored, 0.50), "stored-p50-ns")
			b.ReportMetric(pct(stored, 0.99), "stored-p99-ns")
			b.ReportMetric(pct(exported, 0.50), "exported-p50-ns")
			b.ReportMetric(pct(exported, 0.99), "exported-p99-ns")
		})
	}
}
