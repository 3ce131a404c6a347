package monitor

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/bindguard/bindguard/internal/audit"
	"github.com/bindguard/bindguard/internal/cgrouptest"
	"github.com/bindguard/bindguard/internal/kernel"
	"github.com/bindguard/bindguard/internal/netnstest"
	"github.com/bindguard/bindguard/internal/observe"
	"github.com/bindguard/bindguard/internal/proc"
)

// stormCgroup creates a cgroup2 child of the mount and moves this test process into it; at
// cleanup the process goes back and the cgroup is removed.
func stormCgroup(t testing.TB) string {
	t.Helper()
	mount, err := kernel.FindCgroup2()
	if err != nil {
		t.Skipf("no cgroup2 mount: %v", err)
	}
	return cgrouptest.Join(t, mount, "bindguard-monitor-test")
}

// openSock opens a TCP listener or a bound UDP socket on 127.0.0.1:0 and returns its fd.
func openSock(udp bool) (int, error) {
	typ := unix.SOCK_STREAM
	if udp {
		typ = unix.SOCK_DGRAM
	}
	fd, err := unix.Socket(unix.AF_INET, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		_ = unix.Close(fd)
		return -1, err
	}
	if !udp {
		if err := unix.Listen(fd, 16); err != nil {
			_ = unix.Close(fd)
			return -1, err
		}
	}
	return fd, nil
}

// TestKernelStormLosesNoState (root): serve's kernel mode through a storm of listen/close
// cycles paced at 10,000 a second (and UDP bind/close cycles) in a network namespace and a
// cgroup of the test's own, with no reconciling audit during it; some sockets stay open, some
// that existed before the monitor started are closed. Afterwards the store's state matches a
// fresh audit exactly.
func TestKernelStormLosesNoState(t *testing.T) {
	t.Run("1 MiB ring buffer", func(t *testing.T) { kernelStorm(t, 0) })
	// A 16 KiB ring buffer (about 220 records) loses records in the storm: the monitor audits
	// at once (and again while records are lost during an audit), and the store converges to
	// the host's state without any explicit audit.
	t.Run("16 KiB ring buffer, records lost", func(t *testing.T) { kernelStorm(t, 16384) })
}

func kernelStorm(t *testing.T, ring uint32) {
	netnstest.Require(t)
	cg := stormCgroup(t)
	ns := netnstest.New(t, "bgstorm")
	var pre []int // sockets open before the monitor starts
	var kept []int
	t.Cleanup(func() {
		for _, fd := range append(pre, kept...) {
			_ = unix.Close(fd)
		}
	})
	inNS := func(fn func() error) {
		t.Helper()
		if err := proc.InNetNS(ns.Path, fn); err != nil {
			t.Fatal(err)
		}
	}
	inNS(func() error {
		for i := range 20 {
			fd, err := openSock(i%4 == 0)
			if err != nil {
				return err
			}
			pre = append(pre, fd)
		}
		return nil
	})

	opts := observe.Options{Netns: ns.Path}
	pol := filepath.Join(t.TempDir(), "bindguard.yaml")
	writePolicy(t, pol, policyRedisWeb)
	store, err := OpenStore(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	m, err := New(Config{
		PolicyPath: pol, Interval: time.Hour, Observer: HostObserver(opts), Watch: WatchKernel,
		OpenEvents: KernelEvents(kernel.WatchOptions{Cgroup: cg, RingBufferBytes: ring}),
		Resolver:   &HostResolver{Options: opts, CgroupPath: CgroupPaths()},
	}, store)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	waitUntil(t, "the first audit", func() bool { rep, _ := m.Latest(); return rep != nil })
	if _, mode, fb := m.Watch(); mode != WatchKernel {
		t.Fatalf("watch mode %s: %s", mode, fb)
	}

	const cycles, udpCycles, perSecond = 20000, 2000, 10000
	start := time.Now()
	inNS(func() error {
		for i := range cycles {
			if i%100 == 0 { // pace: 100 cycles per 10 ms
				if ahead := time.Duration(i)*time.Second/perSecond - time.Since(start); ahead > 0 {
					time.Sleep(ahead)
				}
			}
			udp := i < udpCycles
			fd, err := openSock(udp)
			if err != nil {
				return err
			}
			if i%500 == 0 {
				kept = append(kept, fd) // 40 stay open
				continue
			}
			if err := unix.Close(fd); err != nil {
				return err
			}
		}
		for _, fd := range pre[:10] { // pre-existing sockets closing: learnt from their close
			if err := unix.Close(fd); err != nil {
				return err
			}
		}
		pre = pre[10:]
		return nil
	})
	took := time.Since(start)
	// A marker after everything: when the store has it, the monitor has read every event before.
	var marker int
	inNS(func() error {
		fd, err := openSock(false)
		marker = fd
		return err
	})
	kept = append(kept, marker)
	sa, err := unix.Getsockname(marker)
	if err != nil {
		t.Fatal(err)
	}
	markerPort := uint16(sa.(*unix.SockaddrInet4).Port) // #nosec G115 -- a port
	waitUntil(t, "the marker's event in the store", func() bool {
		evs, err := store.Since(time.Time{}, 0)
		if err != nil {
			return false
		}
		for _, e := range evs {
			if e.Port == markerPort && e.Kind == KindAppeared { // from the kernel, or the audit after a loss
				return true
			}
		}
		return false
	})
	m.mu.RLock()
	lost, seen := m.watch.lost, m.watch.events
	m.mu.RUnlock()
	t.Logf("%d cycles (%d UDP) in %s (%.0f/s); %d kernel events read host-wide, %d lost", cycles, udpCycles, took.Round(time.Millisecond), float64(cycles)/took.Seconds(), seen, lost)

	compare := func() (State, State) {
		stored, err := store.LastState()
		if err != nil {
			t.Fatal(err)
		}
		snap, err := observe.Observe(opts)
		if err != nil {
			t.Fatal(err)
		}
		return StateOf(audit.JudgeObservation(m.Policy(), snap.Observation()), hostNetns(snap)), stored
	}
	if ring != 0 && lost == 0 {
		// Nothing to lose on a fast machine: the store must still match a fresh audit below.
		t.Logf("a %d-byte ring buffer lost nothing in this storm: the loss path was not exercised this run", ring)
	}
	if lost > 0 {
		// Records were lost: the monitor audits at once, and again while records are lost
		// during an audit. Every audit's snapshot holds this namespace as it is (nothing
		// changes in it after the marker), and the only events replayed over a snapshot are
		// those the kernel saw after the audit started, so the store converges to a fresh
		// audit after the first audit that starts after the storm, even if other sockets on
		// the host keep the small ring overflowing. No explicit audit here: the loss alone
		// must bring the store back.
		deadline := time.Now().Add(60 * time.Second)
		for {
			f, s := compare()
			if cmp.Equal(f, s) {
				break
			}
			if time.Now().After(deadline) {
				m.mu.RLock()
				still := m.watch.lost
				m.mu.RUnlock()
				t.Fatalf("the store did not converge to a fresh audit within a minute of the storm (%d records lost in it, %d more since) (-audit +store):\n%s", lost, still-lost, cmp.Diff(f, s))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	fresh, stored := compare()
	if d := cmp.Diff(fresh, stored); d != "" {
		t.Errorf("the store after the storm differs from a fresh audit (-audit +store):\n%s", d)
	}
	if want := len(kept) + len(pre) + 2; len(fresh) != want { // + redis and web missing
		t.Errorf("the fresh audit has %d findings, want %d", len(fresh), want)
	}
	// The report (the metrics), kept group by group apart from the events' path, must come to
	// the fresh audit's too: its findings, summary and scores.
	snap, err := observe.Observe(opts)
	if err != nil {
		t.Fatal(err)
	}
	want := audit.JudgeObservation(m.Policy(), snap.Observation())
	type scores struct {
		State   State
		Summary audit.Summary
		Score   int
		NS      map[string]int
	}
	scoresOf := func(r *audit.Report) scores {
		s := scores{State: StateOf(r, hostNetns(snap)), Summary: r.Summary, Score: r.Score, NS: map[string]int{}}
		for _, n := range r.Namespaces {
			s.NS[n.Label] = n.Score
		}
		return s
	}
	var got *audit.Report
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, _ = m.Latest()
		if cmp.Equal(scoresOf(want), scoresOf(got)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the report after the storm differs from a fresh audit's (-audit +report):\n%s", cmp.Diff(scoresOf(want), scoresOf(got)))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
