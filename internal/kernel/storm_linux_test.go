package kernel

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// storm opens and closes n TCP listeners on 127.0.0.1:0, one after another, in the network
// namespace at nsPath.
func storm(t testing.TB, nsPath string, n int) {
	t.Helper()
	spec := sockSpec{network: "tcp", addr: netip.MustParseAddr("127.0.0.1")}
	var err error
	inNetns(t, nsPath, func() {
		for range n {
			var fd int
			if fd, _, err = spec.open(); err != nil {
				return
			}
			if err = unix.Close(fd); err != nil {
				return
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}

// drain reads events of netns until none comes for idle; it returns them.
func drain(t testing.TB, w *Watcher, netns uint64, idle time.Duration) []Event {
	t.Helper()
	var out []Event
	for {
		ctx, cancel := context.WithTimeout(context.Background(), idle)
		e, err := w.Read(ctx)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if e.NetnsIno == netns {
			out = append(out, e)
		}
	}
}

// TestWatcherStorm: 10,000 listen/close cycles. Read while they happen, every event arrives,
// each close matching its listen, or the shortfall is counted as lost; with a one-page ring
// buffer read only afterwards, most are lost, and all of those are counted.
func TestWatcherStorm(t *testing.T) {
	const cycles = 10000
	t.Run("read concurrently", func(t *testing.T) {
		w, _ := openTestWatcher(t, 0)
		nsPath, nsIno := testNetns(t)
		got := make(chan []Event)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			var evs []Event
			for len(evs) < 2*cycles {
				e, err := w.Read(ctx)
				if err != nil {
					break
				}
				if e.NetnsIno == nsIno {
					evs = append(evs, e)
				}
			}
			got <- evs
		}()
		storm(t, nsPath, cycles)
		// The reader stops at 2*cycles events, or here after a quiet second if some were lost.
		time.AfterFunc(time.Second, cancel)
		evs := <-got
		lost := w.Lost()
		t.Logf("%d cycles: %d events read, %d lost (counted, host-wide)", cycles, len(evs), lost)
		if uint64(len(evs))+lost < 2*cycles {
			t.Fatalf("%d events read and %d counted lost, want %d", len(evs), lost, 2*cycles)
		}
		if lost == 0 {
			open := map[uint64]Event{}
			for _, e := range evs {
				switch e.Kind {
				case KindListen:
					if _, dup := open[e.Cookie]; dup {
						t.Fatalf("listen of cookie %d twice", e.Cookie)
					}
					open[e.Cookie] = e
				case KindClose:
					l, ok := open[e.Cookie]
					if !ok || l.Port != e.Port {
						t.Fatalf("close %v without its listen (%v, %v)", e, l, ok)
					}
					delete(open, e.Cookie)
				default:
					t.Fatalf("unexpected %v", e)
				}
			}
			if len(open) != 0 {
				t.Errorf("%d listeners without a close", len(open))
			}
		}
	})
	t.Run("overflow is counted", func(t *testing.T) {
		w, _ := openTestWatcher(t, 4096) // one page: about 50 records
		nsPath, nsIno := testNetns(t)
		storm(t, nsPath, cycles)
		evs := drain(t, w, nsIno, 200*time.Millisecond)
		lost := w.Lost()
		t.Logf("%d cycles into a 4 KiB ring buffer: %d events read, %d lost", cycles, len(evs), lost)
		if lost == 0 || uint64(len(evs))+lost < 2*cycles {
			t.Fatalf("%d events read and %d counted lost, want losses, and %d in all", len(evs), lost, 2*cycles)
		}
	})
}
