package kernel

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// openTestWatcher opens a Watcher attached to a cgroup of the test's own, with the test
// process moved into it, and closes it at cleanup.
func openTestWatcher(t testing.TB, bufBytes uint32) (*Watcher, uint64) {
	t.Helper()
	requireRoot(t)
	cg, cgID := testCgroup(t)
	w, err := OpenWatcher(WatchOptions{Cgroup: cg, RingBufferBytes: bufBytes})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := w.Close(); err != nil {
			t.Errorf("close watcher: %v", err)
		}
	})
	return w, cgID
}

// nextIn returns the next event of the network namespace netns (the host's other sockets are
// reported too, and skipped), failing the test after a few seconds without one.
func nextIn(t testing.TB, w *Watcher, netns uint64) Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		e, err := w.Read(ctx)
		if err != nil {
			t.Fatalf("waiting for an event in netns %d: %v", netns, err)
		}
		if e.NetnsIno == netns {
			return e
		}
	}
}

func TestWatcherEvents(t *testing.T) {
	w, cgID := openTestWatcher(t, 0)
	nsPath, nsIno := testNetns(t)
	v4, v6 := netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")
	any4, any6 := netip.IPv4Unspecified(), netip.IPv6Unspecified()
	for _, tc := range []sockSpec{
		{name: "tcp4", network: "tcp", addr: v4},
		{name: "tcp4 wildcard", network: "tcp", addr: any4},
		{name: "tcp6 loopback", network: "tcp", addr: v6, v6only: true},
		{name: "tcp6 v6only", network: "tcp", addr: any6, v6only: true},
		{name: "tcp dual-stack", network: "tcp", addr: any6},
		{name: "tcp4 listen without bind", network: "tcp", addr: any4, noBind: true},
		{name: "tcp6 listen without bind", network: "tcp", addr: any6, noBind: true},
		{name: "udp4", network: "udp", addr: v4},
		{name: "udp4 wildcard", network: "udp", addr: any4},
		{name: "udp6 v6only", network: "udp", addr: any6, v6only: true},
		{name: "udp6 dual-stack", network: "udp", addr: any6},
		{name: "udp6 loopback", network: "udp", addr: v6, v6only: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var fd int
			var port uint16
			var err error
			before := time.Now()
			inNetns(t, nsPath, func() { fd, port, err = tc.open() })
			after := time.Now()
			if err != nil {
				t.Fatal(err)
			}
			if port == 0 {
				t.Fatal("getsockname says port 0")
			}
			family, openKind, closeKind := "ipv4", KindListen, KindClose
			if tc.addr.Is6() {
				family = "ipv6"
			}
			if tc.network == "udp" {
				openKind, closeKind = KindBind, KindUnbind
			}
			e := nextIn(t, w, nsIno)
			want := Event{Kind: openKind, Protocol: tc.network, Family: family, Addr: tc.addr, Port: port,
				V6Only: tc.v6only && tc.addr.Is6(), PID: os.Getpid(), CgroupID: cgID, NetnsIno: nsIno}
			check(t, e, want)
			if e.Cookie == 0 {
				t.Error("no socket cookie")
			}
			// The kernel's CLOCK_MONOTONIC stamp, converted, falls inside the system call
			// (give or take the conversion's bracketing error).
			if e.Time.Before(before.Add(-time.Millisecond)) || e.Time.After(after.Add(time.Millisecond)) {
				t.Errorf("event time %v outside the system call [%v, %v]", e.Time, before, after)
			}
			if e.Comm == "" {
				t.Error("no comm")
			}
			if err := unix.Close(fd); err != nil {
				t.Fatal(err)
			}
			c := nextIn(t, w, nsIno)
			want.Kind = closeKind
			check(t, c, want)
			if c.Cookie != e.Cookie {
				t.Errorf("close cookie %d, open cookie %d", c.Cookie, e.Cookie)
			}
		})
	}
	if n := w.Lost(); n != 0 {
		t.Errorf("%d events lost", n)
	}
}

// TestWatcherUDPConnectedAfterBind: a UDP socket bound, then connected, is reported bound and
// its release is reported too (it was reported, so its end must be); a connected socket that
// was never bound explicitly (a client's) is not reported at all.
func TestWatcherUDPConnectedAfterBind(t *testing.T) {
	w, _ := openTestWatcher(t, 0)
	nsPath, nsIno := testNetns(t)
	lo := netip.MustParseAddr("127.0.0.1")
	var bound, client, marker int
	var port, markerPort uint16
	var err error
	inNetns(t, nsPath, func() {
		if bound, port, err = (sockSpec{network: "udp", addr: lo}).open(); err != nil {
			return
		}
		// connect to our own port: a UDP connect sends nothing
		if err = unix.Connect(bound, &unix.SockaddrInet4{Addr: lo.As4(), Port: int(port)}); err != nil {
			return
		}
		if client, err = unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0); err != nil {
			return
		}
		if err = unix.Connect(client, &unix.SockaddrInet4{Addr: lo.As4(), Port: int(port)}); err != nil {
			return
		}
		if err = unix.Close(client); err != nil {
			return
		}
		if err = unix.Close(bound); err != nil {
			return
		}
		marker, markerPort, err = sockSpec{network: "tcp", addr: lo}.open()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = unix.Close(marker) }()
	var got []string
	for {
		e := nextIn(t, w, nsIno)
		got = append(got, fmt.Sprintf("%s %s %d", e.Kind, e.Protocol, e.Port))
		if e.Kind == KindListen && e.Port == markerPort {
			break
		}
	}
	want := []string{fmt.Sprintf("bind udp %d", port), fmt.Sprintf("unbind udp %d", port), fmt.Sprintf("listen tcp %d", markerPort)}
	if !slices.Equal(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}
}

// check compares what the kernel can know of an event with want.
func check(t testing.TB, got, want Event) {
	t.Helper()
	g := got
	g.Time, g.Monotonic, g.Cookie, g.Comm = time.Time{}, 0, 0, ""
	if g != want {
		t.Errorf("event\n got %v %+v\nwant %v %+v", got, g, want, want)
	}
}

// TestWatcherLoadFailures: an attach point that cannot work fails with a clear error, and
// nothing stays loaded.
func TestWatcherLoadFailures(t *testing.T) {
	requireRoot(t)
	for _, tc := range []struct {
		name, cgroup, want string
		cause              error
	}{
		{"no such cgroup", "/nonexistent-bindguard-cgroup", "cgroup /nonexistent-bindguard-cgroup", os.ErrNotExist},
		{"not a cgroup", t.TempDir(), "not a cgroup2 directory", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := countLivePrograms(t)
			w, err := OpenWatcher(WatchOptions{Cgroup: tc.cgroup})
			if err == nil {
				_ = w.Close()
				t.Fatal("OpenWatcher succeeded")
			}
			if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), tc.want) || (tc.cause != nil && !errors.Is(err, tc.cause)) {
				t.Errorf("error %q, want ErrUnavailable with %q and %v", err, tc.want, tc.cause)
			}
			if after := countLivePrograms(t); after > before {
				t.Errorf("%d bindguard programs loaded after the failure, %d before", after, before)
			}
		})
	}
	t.Run("ring buffer not a power of two", func(t *testing.T) {
		cg, err := FindCgroup2()
		if err != nil {
			t.Fatal(err)
		}
		before := countLivePrograms(t)
		_, err = OpenWatcher(WatchOptions{Cgroup: cg, RingBufferBytes: 12345})
		if err == nil || !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "load") {
			t.Errorf("error %v, want ErrUnavailable from load", err)
		}
		if after := countLivePrograms(t); after > before {
			t.Errorf("%d bindguard programs loaded after the failure, %d before", after, before)
		}
	})
}

// countLivePrograms counts the loaded programs named like the Watcher's (the kernel keeps 15
// characters of a name).
func countLivePrograms(t testing.TB) int {
	t.Helper()
	n := 0
	for id, err := ebpf.ProgramGetNextID(0); err == nil; id, err = ebpf.ProgramGetNextID(id) {
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			continue
		}
		info, err := p.Info()
		_ = p.Close()
		if err == nil && strings.HasPrefix(info.Name, "bindguard_") && info.Name != "bindguard_socks" {
			n++
		}
	}
	return n
}

// TestWatcherCgroupScope: the cgroup programs see only sockets created in the cgroup they
// are attached to. With the Watcher on cgroup A and this process in sibling B, a UDP bind is
// not reported, while a TCP listener is (from the global tracepoint): the next event after the
// bind is the listen.
func TestWatcherCgroupScope(t *testing.T) {
	w, _ := openTestWatcher(t, 0) // attached to A, this process in A
	_, bID := testCgroup(t)       // now in B
	nsPath, nsIno := testNetns(t)
	var udp, tcp int
	var tcpPort uint16
	var err error
	inNetns(t, nsPath, func() {
		if udp, _, err = (sockSpec{network: "udp", addr: netip.MustParseAddr("127.0.0.1")}).open(); err != nil {
			return
		}
		tcp, tcpPort, err = sockSpec{network: "tcp", addr: netip.MustParseAddr("127.0.0.1")}.open()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = unix.Close(udp); _ = unix.Close(tcp) }()
	e := nextIn(t, w, nsIno)
	if e.Kind != KindListen || e.Port != tcpPort || e.CgroupID != bID {
		t.Errorf("first event %v, want the listen on %d from cgroup %d (the UDP bind outside the attached cgroup unreported)", e, tcpPort, bID)
	}
}

// TestWatcherReadEnds: Read returns the context's error when it ends, and os.ErrClosed when
// the Watcher is closed under a blocked Read.
func TestWatcherReadEnds(t *testing.T) {
	w, _ := openTestWatcher(t, 0)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := w.Read(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Read with a cancelled context: %v", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	for {
		_, err := w.Read(ctx) // host events may arrive first: read until the deadline
		if err != nil {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Read past the deadline: %v", err)
			}
			break
		}
	}
	errc := make(chan error, 1)
	go func() {
		for {
			if _, err := w.Read(context.Background()); err != nil {
				errc <- err
				return
			}
		}
	}()
	time.Sleep(10 * time.Millisecond) // let it block (if it is not blocked yet, Close still ends it)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, os.ErrClosed) {
		t.Errorf("Read after Close: %v, want os.ErrClosed", err)
	}
}
