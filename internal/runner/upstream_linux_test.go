package runner

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bindguard/bindguard/access"
)

// unixServer is rawUpstream's socket as an address.
func unixServer(t *testing.T, serve func(net.Conn)) *net.UnixAddr {
	t.Helper()
	return &net.UnixAddr{Name: rawUpstream(t, serve), Net: "unix"}
}

// openFDs is the number of this process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd:", err)
	}
	return len(ents)
}

// within runs f and fails the test if it has not returned after a long while (a hang guard,
// not a measurement).
func within(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: still blocked after 20 s", what)
	}
}

func TestUpstreamConnReadWriteEOF(t *testing.T) {
	addr := unixServer(t, func(c net.Conn) {
		buf := make([]byte, 5)
		if _, err := io.ReadFull(c, buf); err != nil {
			return
		}
		_, _ = c.Write(append([]byte("got "), buf...))
	})
	c, err := dialUpstream(addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.(*upstreamConn); !ok {
		t.Fatalf("dialUpstream gave a %T, want the reactor's connection", c)
	}
	if n, err := c.Write([]byte("hello")); n != 5 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	var got []byte
	within(t, "read to EOF", func() { got, err = io.ReadAll(c) })
	if err != nil || string(got) != "got hello" {
		t.Fatalf("read %q, %v; want \"got hello\" then EOF", got, err)
	}
	if n, err := c.Read(make([]byte, 8)); n != 0 || err != io.EOF {
		t.Fatalf("Read after EOF = %d, %v; want io.EOF", n, err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("second Close = %v, want net.ErrClosed", err)
	}
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Read after Close = %v, want net.ErrClosed", err)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Write after Close = %v, want net.ErrClosed", err)
	}
}

// A read waiting for an upstream that does not answer ends when its deadline passes, or at
// once when a deadline in the past is set from another goroutine (the forwarder's cancel
// hook), with an error that is a timeout; clearing the deadline lets the next read wait again.
func TestUpstreamConnDeadlines(t *testing.T) {
	release := make(chan struct{})
	addr := unixServer(t, func(c net.Conn) {
		<-release
		_, _ = c.Write([]byte("late"))
	})
	t.Cleanup(func() { close(release) })
	c, err := dialUpstream(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()

	isTimeout := func(err error) bool {
		var ne net.Error
		return errors.As(err, &ne) && ne.Timeout() && errors.Is(err, os.ErrDeadlineExceeded)
	}
	if err := c.SetReadDeadline(time.Now().Add(30 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	within(t, "read past its deadline", func() { _, err = c.Read(make([]byte, 4)) })
	if !isTimeout(err) {
		t.Fatalf("read past its deadline: %v, want a timeout", err)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "read" || oe.Addr.String() != addr.Name {
		t.Fatalf("error %#v, want a *net.OpError read on %s", err, addr.Name)
	}

	if err := c.SetDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { _, err := c.Read(make([]byte, 4)); errc <- err }()
	time.Sleep(20 * time.Millisecond) // let it wait (either way the deadline below ends it)
	if err := c.SetDeadline(aLongTimeAgo); err != nil {
		t.Fatal(err)
	}
	within(t, "read interrupted by a past deadline", func() { err = <-errc })
	if !isTimeout(err) {
		t.Fatalf("interrupted read: %v, want a timeout", err)
	}
	if _, err := c.Write([]byte("x")); !isTimeout(err) {
		t.Fatalf("write with a past deadline: %v, want a timeout", err)
	}

	// Cleared again, the read gets what the upstream sends.
	if err := c.SetDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	release <- struct{}{}
	buf := make([]byte, 4)
	within(t, "read after clearing", func() { _, err = io.ReadFull(c, buf) })
	if err != nil || string(buf) != "late" {
		t.Fatalf("read after clearing the deadline: %q, %v", buf, err)
	}
}

// A write larger than the socket's buffers waits for the upstream to read (EAGAIN, then the
// reactor's wakeup) and delivers every byte in order.
func TestUpstreamConnLargeWrite(t *testing.T) {
	sum := make(chan [32]byte, 1)
	addr := unixServer(t, func(c net.Conn) {
		h := sha256.New()
		buf := make([]byte, 32<<10)
		for {
			n, err := c.Read(buf)
			h.Write(buf[:n])
			if err != nil {
				break
			}
			time.Sleep(50 * time.Microsecond) // a slow reader
		}
		var s [32]byte
		copy(s[:], h.Sum(nil))
		sum <- s
	})
	c, err := dialUpstream(addr)
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<19) // 8 MiB
	var n int
	within(t, "8 MiB write", func() { n, err = c.Write(data) })
	if n != len(data) || err != nil {
		t.Fatalf("Write = %d, %v; want %d", n, err, len(data))
	}
	_ = c.Close()
	if got := <-sum; got != sha256.Sum256(data) {
		t.Fatal("the upstream received other bytes than were written")
	}
}

func TestUpstreamConnAlive(t *testing.T) {
	say, hang := make(chan string, 1), make(chan struct{})
	addr := unixServer(t, func(c net.Conn) {
		switch <-say {
		case "bytes":
			_, _ = c.Write([]byte("unsolicited"))
			<-hang
		case "close":
		}
	})
	t.Cleanup(func() { close(hang) })
	c, err := dialUpstream(addr)
	if err != nil {
		t.Fatal(err)
	}
	if !alive(c) {
		t.Fatal("a fresh connection is not alive")
	}
	say <- "bytes"
	waitFor(t, "unsolicited bytes seen", func() bool { return !alive(c) })
	_ = c.Close()

	c, err = dialUpstream(addr)
	if err != nil {
		t.Fatal(err)
	}
	say <- "close"
	waitFor(t, "a closed upstream seen", func() bool { return !alive(c) })
	_ = c.Close()
	if alive(c) {
		t.Fatal("a closed connection is alive")
	}
}

// waitFor polls cond until it holds (a hang guard of 20 s).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(20 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("%s: not after 20 s", what)
		}
	}
}

// A dial that fails names the socket and the call, and leaves no descriptor behind.
func TestDialUpstreamErrors(t *testing.T) {
	if _, err := getReactor(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	before := openFDs(t)
	missing := &net.UnixAddr{Name: filepath.Join(dir, "none.sock"), Net: "unix"}
	for range 100 {
		_, err := dialUpstream(missing)
		if err == nil || !strings.Contains(err.Error(), missing.Name) || !strings.Contains(err.Error(), "connect") {
			t.Fatalf("dial to a missing socket: %v", err)
		}
	}
	// A socket file nobody listens on any more: refused.
	path := filepath.Join(dir, "gone.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	_ = l.Close()
	if _, err := dialUpstream(&net.UnixAddr{Name: path, Net: "unix"}); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("dial to a socket without listener: %v, want connection refused", err)
	}
	long := &net.UnixAddr{Name: "/" + strings.Repeat("x", 200), Net: "unix"}
	if _, err := dialUpstream(long); err == nil {
		t.Fatal("a path longer than sockaddr_un holds was dialed")
	}
	if _, err := dialUpstream(&net.UnixAddr{Net: "unix"}); err == nil {
		t.Fatal("an empty path was dialed")
	}
	if after := openFDs(t); after != before {
		t.Fatalf("%d descriptors open after failed dials, %d before", after, before)
	}
}

// Many connections at once, each a request and its answer, through one reactor: every one
// gets its own answer, and none stays open.
func TestUpstreamConnConcurrent(t *testing.T) {
	addr := unixServer(t, func(c net.Conn) {
		buf := make([]byte, 64)
		n, _ := c.Read(buf)
		_, _ = c.Write(bytes.ToUpper(buf[:n]))
	})
	reactor, err := getReactor()
	if err != nil {
		t.Fatal(err)
	}
	onReactor := func() int { reactor.mu.Lock(); defer reactor.mu.Unlock(); return len(reactor.wakers) }
	before, beforeConns := openFDs(t), onReactor()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				c, err := dialUpstream(addr)
				if err != nil {
					errs <- err
					return
				}
				msg := strings.Repeat(string(rune('a'+g)), 1+i%40)
				if _, err := c.Write([]byte(msg)); err != nil {
					errs <- err
				}
				got, err := io.ReadAll(c)
				if err != nil || string(got) != strings.ToUpper(msg) {
					errs <- errors.New("connection " + msg + " read " + string(got))
				}
				_ = c.Close()
			}
		}()
	}
	within(t, "800 exchanges", wg.Wait)
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if left := onReactor(); left != beforeConns {
		t.Errorf("%d connections on the reactor after, %d before", left, beforeConns)
	}
	if after := openFDs(t); after > before {
		t.Errorf("%d descriptors open after, %d before", after, before)
	}
}

// The front server's connections are the raw ones, and keep the net package's contract:
// bytes both ways, deadlines that are timeouts (*net.OpError "read"), EOF when the client
// closes.
func TestFrontListenerConn(t *testing.T) {
	sc, client := frontPair(t)
	if _, ok := sc.(*rawTCPConn); !ok {
		t.Fatalf("Accept gave a %T, want *rawTCPConn", sc)
	}
	if sc.RemoteAddr().String() != client.LocalAddr().String() {
		t.Fatalf("RemoteAddr %s, want the client's %s", sc.RemoteAddr(), client.LocalAddr())
	}
	if _, err := client.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	var err error
	within(t, "read", func() { _, err = io.ReadFull(sc, buf) })
	if err != nil || string(buf) != "ping" {
		t.Fatalf("read %q, %v", buf, err)
	}
	big := bytes.Repeat([]byte("z"), 8<<20) // more than the socket buffers: waits for the reader
	go func() { _, _ = io.Copy(io.Discard, io.LimitReader(client, int64(len(big)))) }()
	var n int
	within(t, "8 MiB write", func() { n, err = sc.Write(big) })
	if n != len(big) || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}

	if err := sc.SetReadDeadline(time.Now().Add(20 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	within(t, "read past its deadline", func() { _, err = sc.Read(buf) })
	var ne net.Error
	var oe *net.OpError
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.As(err, &oe) || oe.Op != "read" || oe.Net != "tcp" {
		t.Fatalf("read past its deadline: %#v, want a *net.OpError read that is a timeout", err)
	}
	if err := sc.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	_ = client.Close()
	within(t, "read to EOF", func() { _, err = sc.Read(buf) })
	if err != io.EOF {
		t.Fatalf("read after the client closed: %v, want io.EOF", err)
	}
}

// reset closes c with a TCP reset (SO_LINGER 0).
func reset(t *testing.T, c net.Conn) {
	t.Helper()
	if err := c.(*net.TCPConn).SetLinger(0); err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
}

// A client that resets its connection makes the front's Read fail with a count of 0, never
// read(2)'s -1 (bufio panics on a negative count; in the Transport's body copy, which nothing
// recovers, that killed the guard).
func TestFrontListenerReset(t *testing.T) {
	sc, client := frontPair(t)
	if _, err := sc.Write([]byte("unread")); err != nil { // unread at the client: its close resets
		t.Fatal(err)
	}
	reset(t, client)
	var n int
	var err error
	waitFor(t, "the reset seen", func() bool {
		_ = sc.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
		n, err = sc.Read(make([]byte, 16))
		var ne net.Error
		return !(errors.As(err, &ne) && ne.Timeout())
	})
	var oe *net.OpError
	if n != 0 || !errors.Is(err, syscall.ECONNRESET) || !errors.As(err, &oe) || oe.Op != "read" {
		t.Fatalf("Read after a reset = %d, %v; want 0 and a read error ECONNRESET", n, err)
	}
	if n, err := sc.Write([]byte("more")); err == nil || n < 0 {
		t.Fatalf("Write after a reset = %d, %v; want an error and no negative count", n, err)
	}
}

// Resets at every stage of a request through the guard: while it reads the head, while the
// ReverseProxy copies a body to the upstream, on an idle keep-alive connection. The guard
// lives on (a panic in the Transport's goroutines would end this test binary), serves the
// next client, and logs no panic.
func TestGuardClientResets(t *testing.T) {
	got := make(chan int64, 4)
	up := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		select {
		case got <- n:
		default:
		}
		_, _ = io.WriteString(w, "ok\n")
	}))
	var logs syncBuffer
	ts := guardFront(t, up, SendTimeout, log.New(&logs, "", 0))
	addr := ts.Listener.Addr().String()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	c := dial() // in the middle of a head
	_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: "+addr+"\r\nX-Forwarded-For: 127.0.0.1\r\n\r\nGET / HTTP/1.1\r\nHo")
	time.Sleep(50 * time.Millisecond)
	reset(t, c)

	c = dial() // a body being copied to the upstream
	_, _ = io.WriteString(c, "POST /a HTTP/1.1\r\nHost: "+addr+"\r\nX-Forwarded-For: 127.0.0.1\r\nContent-Length: 1000000\r\n\r\n"+strings.Repeat("a", 10))
	time.Sleep(100 * time.Millisecond)
	reset(t, c)
	select {
	case n := <-got:
		if n >= 1000000 {
			t.Fatalf("the upstream got a whole body (%d bytes) from a client that sent 10", n)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the upstream's request did not end after the client's reset")
	}

	c = dial() // idle after an answer
	_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: "+addr+"\r\nX-Forwarded-For: 127.0.0.1\r\n\r\n")
	if _, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil {
		t.Fatal(err)
	}
	reset(t, c)
	time.Sleep(50 * time.Millisecond)

	if code, body := get(t, ts.URL+"/", "X-Forwarded-For", "127.0.0.1"); code != 200 || body != "ok\n" {
		t.Fatalf("after the resets: %d %q", code, body)
	}
	if s := logs.String(); strings.Contains(s, "panic") {
		t.Fatalf("the front server logged a panic:\n%s", s)
	}
}

// syncBuffer is a bytes.Buffer for a logger written from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Two reads at once on a front connection (a net.Conn allows it) each get bytes of their
// own: the raw reads take turns (run with -race).
func TestFrontConnConcurrentReads(t *testing.T) {
	sc, client := frontPair(t)
	res := make(chan string, 2)
	for range 2 {
		go func() {
			b := make([]byte, 4)
			n, err := io.ReadFull(sc, b)
			res <- string(b[:n]) + errString(err)
		}()
	}
	time.Sleep(20 * time.Millisecond)
	_, _ = client.Write([]byte("abcd"))
	time.Sleep(20 * time.Millisecond)
	_, _ = client.Write([]byte("efgh"))
	var got []string
	within(t, "two reads", func() { got = append(got, <-res, <-res) })
	if !(got[0] == "abcd" && got[1] == "efgh" || got[0] == "efgh" && got[1] == "abcd") {
		t.Fatalf("the two reads got %q", got)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return " " + err.Error()
}

// A deadline's timer that fires as the deadline is cleared or moved does not leave the
// connection expired.
func TestUpstreamConnStaleDeadlineTimer(t *testing.T) {
	c, err := dialUpstream(unixServer(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) }))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	uc := c.(*upstreamConn)
	stale := 0
	for i := range 2000 {
		_ = c.SetDeadline(time.Now().Add(time.Duration(i%50) * time.Microsecond))
		time.Sleep(time.Duration(i%7) * time.Microsecond)
		if i%2 == 0 {
			_ = c.SetDeadline(time.Time{})
		} else {
			_ = c.SetDeadline(time.Now().Add(time.Hour))
		}
		time.Sleep(20 * time.Microsecond)
		if uc.rd.expired.Load() || uc.wd.expired.Load() {
			stale++
		}
	}
	if stale > 0 {
		t.Fatalf("%d of 2000 times a connection was expired after its deadline was cleared or moved an hour ahead", stale)
	}
	if _, err := c.Write([]byte("still writable")); err != nil {
		t.Fatal(err)
	}
}

// A connection dropped without Close is closed when collected: its descriptor and its place
// on the reactor go.
func TestUpstreamConnCollected(t *testing.T) {
	var eofs atomic.Int32
	addr := unixServer(t, func(c net.Conn) {
		if _, err := io.Copy(io.Discard, c); err == nil {
			eofs.Add(1) // the dropped connection's descriptor was closed
		}
	})
	reactor, err := getReactor()
	if err != nil {
		t.Fatal(err)
	}
	var ids []uint64
	func() {
		for range 10 {
			c, err := dialUpstream(addr)
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, c.(*upstreamConn).id)
		}
	}()
	onReactor := func() (n int) {
		reactor.mu.Lock()
		defer reactor.mu.Unlock()
		for _, id := range ids {
			if reactor.wakers[id] != nil {
				n++
			}
		}
		return n
	}
	waitFor(t, "dropped connections collected", func() bool {
		runtime.GC()
		return onReactor() == 0 && eofs.Load() == 10
	})
}

// The longest socket path the net package takes (107 bytes and the NUL fill sun_path) is
// dialed; one byte more is refused, by both.
func TestDialUpstreamLongestPath(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, strings.Repeat("s", 107-len(dir)-1))
	if len(path) != 107 {
		t.Skipf("temporary directory %s too long for a 107-byte path", dir)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	c, err := dialUpstream(&net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	longer := path + "x"
	if _, err := net.Dial("unix", longer); err == nil {
		t.Fatal("the net package dialed a 108-byte path")
	}
	if _, err := dialUpstream(&net.UnixAddr{Name: longer, Net: "unix"}); err == nil {
		t.Fatal("a 108-byte path was dialed")
	}
}

// frontPair is a connection accepted through newFrontListener on loopback and its client's
// end; both are closed at the end of the test.
func frontPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	return frontPairTimeout(t, SendTimeout)
}

// breakReactor makes the running reactor take its failure path (its epoll descriptor closed
// under the parked loop, as no code of bindguard's does) and waits until it has stopped.
func breakReactor(t *testing.T) *reactor {
	t.Helper()
	r, err := getReactor()
	if err != nil {
		t.Fatal(err)
	}
	_ = r.ep.Close()
	waitFor(t, "the reactor stopped", r.broken.Load)
	return r
}

// When the reactor stops, its connections fail every wait (the first and any later one)
// with errReactor and are not alive for the pool; the next dial starts a new reactor, and
// the forwarder, its pool full of the old one's connections, still serves.
func TestUpstreamReactorFailure(t *testing.T) {
	path := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(20 * time.Millisecond) // the guard's read waits
		}
		_, _ = io.WriteString(w, "ok\n")
	}))
	f := newForwarder(path)
	get := func(p string) int {
		rec := httptest.NewRecorder()
		f.serve(rec, httptest.NewRequest("GET", "http://x"+p, nil), "127.0.0.1", func(w http.ResponseWriter, _ *http.Request, err error) {
			t.Logf("upstream failed: %v", err)
			w.WriteHeader(http.StatusBadGateway)
		})
		return rec.Code
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() { defer wg.Done(); _ = get("/slow") }()
	}
	wg.Wait()
	c, err := dialUpstream(&net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()

	old := breakReactor(t)
	if alive(c) {
		t.Fatal("a stopped reactor's connection is alive")
	}
	for i := range 2 {
		var err error
		within(t, "a read on a stopped reactor", func() { _, err = c.Read(make([]byte, 1)) })
		if !errors.Is(err, errReactor) {
			t.Fatalf("read %d on a stopped reactor: %v, want errReactor", i+1, err)
		}
	}
	for i := range 2 {
		if code := get("/slow"); code != http.StatusOK {
			t.Fatalf("request %d after the reactor stopped: %d, want 200", i+1, code)
		}
	}
	if r, err := getReactor(); err != nil || r == old {
		t.Fatalf("no new reactor after the failure: %v", err)
	}
}

// frontPairTimeout is a connection accepted on loopback through a frontListener whose send
// timeout is d, and its client's end; both are closed at the end of the test.
func frontPairTimeout(t *testing.T, d time.Duration) (server, client net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := frontListener{l, d}
	t.Cleanup(func() { _ = fl.Close() })
	client, err = net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	server, err = fl.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = server.Close() })
	return server, client
}

// A client that takes nothing for the send timeout ends the write with a timeout; one that
// reads slowly but keeps taking bytes gets everything, however long the whole write lasts.
func TestFrontSendTimeout(t *testing.T) {
	sc, _ := frontPairTimeout(t, 100*time.Millisecond)
	big := make([]byte, 64<<20)
	var n int
	var err error
	within(t, "a write to a client that does not read", func() { n, err = sc.Write(big) })
	var ne net.Error
	var oe *net.OpError
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.As(err, &oe) || oe.Op != "write" || n <= 0 || n >= len(big) {
		t.Fatalf("Write to a client that does not read = %d, %v; want part written and a write timeout", n, err)
	}

	sc, client := frontPairTimeout(t, 200*time.Millisecond)
	start := time.Now()
	go func() {
		buf := make([]byte, 1<<20)
		for {
			time.Sleep(60 * time.Millisecond)
			if _, err := io.ReadFull(client, buf); err != nil {
				return
			}
		}
	}()
	data := make([]byte, 16<<20)
	within(t, "a write to a slow reader", func() { n, err = sc.Write(data) })
	if n != len(data) || err != nil {
		t.Fatalf("Write to a slow reader = %d, %v after %v; want all of it", n, err, time.Since(start))
	}
	t.Logf("16 MiB to a reader taking 1 MiB every 60 ms: %v (send timeout 200 ms)", time.Since(start))
	// The deadline is cleared once the write is done.
	time.Sleep(300 * time.Millisecond)
	if _, err := sc.Write([]byte("x")); err != nil {
		t.Fatalf("a small write after the send timeout's span: %v", err)
	}
}

// Through the guard, a client that asks for a large response and reads none of it loses its
// connection after the send timeout, and the upstream's worker is released.
func TestGuardSendTimeout(t *testing.T) {
	done := make(chan error, 1)
	up := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := w.Write(make([]byte, 64<<20))
		done <- err
	}))
	ts := guardFront(t, up, 200*time.Millisecond, nil)
	c, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	_, _ = io.WriteString(c, "GET /big HTTP/1.1\r\nHost: "+ts.Listener.Addr().String()+"\r\nX-Forwarded-For: 127.0.0.1\r\n\r\n")
	if _, err := c.Read(make([]byte, 1)); err != nil { // the response has begun
		t.Fatal(err)
	}
	within(t, "the upstream's write of a response nobody reads", func() { err = <-done })
	if err == nil {
		t.Fatal("the upstream wrote 64 MiB to a client that read nothing")
	}
}

// guardFront serves the core service's guard in front of up as Guard does, on connections
// whose send timeout is d, logging the server's errors to errLog (nil: the log package's).
func guardFront(t *testing.T, up string, d time.Duration, errLog *log.Logger) *httptest.Server {
	t.Helper()
	g, err := access.NewGuard(mustPolicy(t), "core")
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(Handler(g, up, nil))
	ts.Config.ErrorLog = errLog
	ts.Listener = frontListener{ts.Listener, d}
	ts.Start()
	t.Cleanup(ts.Close)
	return ts
}
