package kernel

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkListenLatency measures, for b.N TCP listeners opened one by one (in a network
// namespace of the benchmark's own), the time from listen() returning in this process to the
// event arriving from Read in another goroutine blocked on the ring buffer. It reports the
// median and the 99th percentile (ns; negative when the reader had the event before the
// opener was back from the system call), and the same from the kernel's own timestamp.
// bench/live-latency.sh runs it over 1,000 or more listeners.
func BenchmarkListenLatency(b *testing.B) {
	w, _ := openTestWatcher(b, 0)
	nsPath, nsIno := testNetns(b)
	type arrival struct {
		port     uint16
		at, kern time.Time
	}
	arrivals := make(chan arrival, 16)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for {
			e, err := w.Read(ctx)
			if err != nil {
				return
			}
			if at := time.Now(); e.NetnsIno == nsIno && e.Kind == KindListen {
				arrivals <- arrival{e.Port, at, e.Time}
			}
		}
	}()
	spec := sockSpec{network: "tcp", addr: netip.MustParseAddr("127.0.0.1")}
	var lat, kern []time.Duration
	var fds []int
	var err error
	b.ResetTimer()
	inNetns(b, nsPath, func() {
		for range b.N {
			fd, port, t0, e := spec.openTimed() // t0: when listen() returned
			if e != nil {
				err = e
				return
			}
			fds = append(fds, fd)
			select {
			case a := <-arrivals:
				if a.port != port {
					b.Errorf("event for port %d, opened %d", a.port, port)
				}
				lat = append(lat, a.at.Sub(t0))
				kern = append(kern, a.at.Sub(a.kern))
			case <-time.After(5 * time.Second):
				b.Errorf("no event for port %d", port)
				return
			}
		}
	})
	b.StopTimer()
	for _, fd := range fds {
		_ = unix.Close(fd)
	}
	if err != nil {
		b.Fatal(err)
	}
	if len(lat) > 0 {
		b.ReportMetric(float64(percentile(lat, 50)), "p50-ns")
		b.ReportMetric(float64(percentile(lat, 99)), "p99-ns")
		b.ReportMetric(float64(percentile(kern, 50)), "kernel-p50-ns")
		b.ReportMetric(float64(percentile(kern, 99)), "kernel-p99-ns")
	}
	if n := w.Lost(); n != 0 {
		b.Errorf("%d events lost", n)
	}
}

func percentile(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

// BenchmarkSocketFDs is one owner scan of this host: load, attach, walk every open file, read.
func BenchmarkSocketFDs(b *testing.B) {
	requireRoot(b)
	for b.Loop() {
		if _, err := SocketFDs(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSocketScannerScan is one scan with the program already loaded (a daemon's case).
func BenchmarkSocketScannerScan(b *testing.B) {
	requireRoot(b)
	s, err := NewSocketScanner()
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	for b.Loop() {
		if _, err := s.Scan(); err != nil {
			b.Fatal(err)
		}
	}
}
