package runner

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// rawUpstream listens on a Unix socket and hands each connection to serve (in its own
// goroutine); it returns the socket's path.
func rawUpstream(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "raw.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	// The proxy keeps idle connections open: close them too.
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() { defer wg.Done(); defer func() { _ = c.Close() }(); serve(c) }()
		}
	}()
	return path
}

// headsUpstream is a raw upstream that sends every request head it reads to heads and answers
// each with answer.
func headsUpstream(t *testing.T, answer string) (path string, heads chan string) {
	t.Helper()
	heads = make(chan string, 16)
	path = rawUpstream(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			h, err := readHead(br)
			if err != nil {
				return
			}
			heads <- h
			if _, err := io.WriteString(c, answer); err != nil {
				return
			}
		}
	})
	return path, heads
}

// readHead reads one request head (through the blank line) from br.
func readHead(br *bufio.Reader) (string, error) {
	var b strings.Builder
	for {
		line, err := br.ReadString('\n')
		b.WriteString(line)
		if err != nil {
			return b.String(), err
		}
		if line == "\r\n" {
			return b.String(), nil
		}
	}
}

// rawDo sends raw bytes to the front server and returns everything it answers until it
// closes the connection.
func rawDo(t *testing.T, ts *httptest.Server, raw string) string {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(c)
	return string(b)
}

// TestForwarderHopByHop: hop-by-hop headers (RFC 9110 7.6.1, and those Connection names) do
// not cross the proxy in either direction; Te: trailers does.
func TestForwarderHopByHop(t *testing.T) {
	up := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "X-Up-Secret")
		w.Header().Set("X-Up-Secret", "no")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("Proxy-Authenticate", "Basic")
		w.Header().Set("X-Up-Kept", "yes")
		for _, h := range []string{"Connection", "Keep-Alive", "X-Secret", "Proxy-Authorization", "Te", "Trailer", "Upgrade", "Proxy-Connection", "X-Kept"} {
			_, _ = io.WriteString(w, h+"="+strings.Join(r.Header.Values(h), "|")+"\n")
		}
	}))
	ts := front(t, "core", up)
	req, _ := http.NewRequest("GET", ts.URL, nil)
	req.Header.Set("X-Forwarded-For", "127.0.0.1")
	req.Header.Set("Connection", "keep-alive, x-secret")
	req.Header.Set("X-Secret", "no")
	req.Header.Set("Keep-Alive", "timeout=5")
	req.Header.Set("Proxy-Authorization", "Basic Zm9vOmJhcg==")
	req.Header.Set("Te", "trailers, deflate")
	req.Header.Set("Proxy-Connection", "keep-alive")
	req.Header.Set("X-Kept", "yes")
	resp, b := do(t, req)
	want := "Connection=\nKeep-Alive=\nX-Secret=\nProxy-Authorization=\nTe=trailers\nTrailer=\nUpgrade=\nProxy-Connection=\nX-Kept=yes\n"
	if string(b) != want {
		t.Errorf("upstream saw\n%s\nwant\n%s", b, want)
	}
	for _, h := range []string{"X-Up-Secret", "Keep-Alive", "Proxy-Authenticate"} {
		if v := resp.Header.Values(h); len(v) > 0 {
			t.Errorf("client got %s: %q", h, v)
		}
	}
	if resp.Header.Get("X-Up-Kept") != "yes" {
		t.Errorf("X-Up-Kept lost: %v", resp.Header)
	}
}

// TestForwarderWire: what reaches the upstream is built from the parsed request: framing
// headers the client sent (Content-Length with Transfer-Encoding, a chunked body with a
// request smuggled in it) never reach it as bytes, forged forwarding headers are gone, and
// every request is answered in order.
func TestForwarderWire(t *testing.T) {
	up, heads := headsUpstream(t, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
	ts := front(t, "core", up)
	// A body-less request with a bogus Content-Length 0 and X-Real-IP, then one whose
	// Content-Length disagrees with Transfer-Encoding (Go's server takes chunked and drops
	// Content-Length; the body carries what would be a second request to a naive proxy).
	raw := "GET /a?x=1 HTTP/1.1\r\nHost: localhost\r\nX-Forwarded-For: 127.0.0.1\r\nX-Real-IP: 10.9.9.9\r\nForwarded: for=10.9.9.9\r\nX_Forwarded_For: 10.9.9.9\r\nx_real_ip: 10.9.9.9\r\nContent-Length: 0\r\n\r\n" +
		"DELETE /b HTTP/1.1\r\nHost: localhost\r\nX-Forwarded-For: 127.0.0.1\r\nConnection: close\r\n\r\n"
	out := rawDo(t, ts, raw)
	if n := strings.Count(out, "HTTP/1.1 200 OK"); n != 2 {
		t.Fatalf("client got %d responses:\n%s", n, out)
	}
	h1, h2 := <-heads, <-heads
	if !strings.HasPrefix(h1, "GET /a?x=1 HTTP/1.1\r\nHost: localhost\r\n") || !strings.HasPrefix(h2, "DELETE /b HTTP/1.1\r\nHost: localhost\r\n") {
		t.Errorf("request lines:\n%s\n%s", h1, h2)
	}
	for _, h := range []string{h1, h2} {
		for _, bad := range []string{"Content-Length", "Transfer-Encoding", "10.9.9.9", "Forwarded:", "Connection", "_"} {
			if strings.Contains(h, bad) {
				t.Errorf("upstream got %q in\n%s", bad, h)
			}
		}
		if strings.Count(h, "X-Forwarded-For: 127.0.0.1\r\n") != 1 || strings.Count(h, "X-Real-Ip: 127.0.0.1\r\n") != 1 {
			t.Errorf("forwarding headers not replaced:\n%s", h)
		}
	}

	// Both framings at once: refused by Go's server or taken as chunked, never forwarded raw.
	smuggle := "POST /c HTTP/1.1\r\nHost: localhost\r\nX-Forwarded-For: 127.0.0.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
	out = rawDo(t, ts, smuggle)
	select {
	case h := <-heads:
		if strings.Contains(h, "/smuggled") {
			t.Errorf("smuggled request reached the upstream:\n%s", h)
		}
		// A second request on the wire would be the client's own, through the check.
		select {
		case h := <-heads:
			if strings.Contains(h, "/smuggled") {
				t.Errorf("smuggled request reached the upstream without X-Forwarded-For:\n%s (client got %q)", h, out)
			}
		default:
		}
	default: // refused by the server (400): nothing reached the upstream
		if !strings.HasPrefix(out, "HTTP/1.1 400") {
			t.Errorf("neither forwarded nor refused: %q", out)
		}
	}
}

// TestForwarderKeepAlive: an upstream connection is reused, and one the upstream closed while
// idle is not (whatever the method: a DELETE is not sent on it either).
func TestForwarderKeepAlive(t *testing.T) {
	var mu sync.Mutex
	conns := 0
	closed := make(chan struct{}, 8)
	up := rawUpstream(t, func(c net.Conn) {
		mu.Lock()
		conns++
		mu.Unlock()
		br := bufio.NewReader(c)
		for i := 0; i < 2; i++ { // two requests, then close without saying so
			if _, err := readHead(br); err != nil {
				return
			}
			if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n"); err != nil {
				return
			}
		}
		_ = c.Close()
		closed <- struct{}{}
	})
	ts := front(t, "core", up)
	for i := 0; i < 6; i++ {
		method := []string{"DELETE", "GET"}[i%2]
		req, _ := http.NewRequest(method, ts.URL, nil)
		req.Header.Set("X-Forwarded-For", "127.0.0.1")
		resp, b := do(t, req)
		if resp.StatusCode != 200 || string(b) != "ok\n" {
			t.Fatalf("request %d (%s): %d %q", i, method, resp.StatusCode, b)
		}
		if i%2 == 1 {
			<-closed
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if conns != 3 {
		t.Errorf("%d upstream connections for 6 requests at 2 a connection, want 3", conns)
	}
}

// TestForwarderRetry: a reused connection that the upstream closes on receiving the request
// (the race an idle check cannot close) is sent again on a new connection when the request is
// replayable (GET), and is a 502 when it is not (DELETE), as Go's client does.
func TestForwarderRetry(t *testing.T) {
	up := rawUpstream(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		if _, err := readHead(br); err != nil {
			return
		}
		if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n"); err != nil {
			return
		}
		_, _ = readHead(br) // the second request on a connection: closed unanswered
	})
	ts := front(t, "core", up)
	for i, tc := range []struct {
		method string
		status int
	}{{"GET", 200}, {"GET", 200}, {"DELETE", 502}} {
		req, _ := http.NewRequest(tc.method, ts.URL, nil)
		req.Header.Set("X-Forwarded-For", "127.0.0.1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("request %d (%s): %d, want %d", i, tc.method, resp.StatusCode, tc.status)
		}
	}
}

// TestForwarderHugeHeader: an upstream whose response head never ends is cut at 1 MiB (502).
func TestForwarderHugeHeader(t *testing.T) {
	up := rawUpstream(t, func(c net.Conn) {
		if _, err := readHead(bufio.NewReader(c)); err != nil {
			return
		}
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\n")
		line := "X-Big: " + strings.Repeat("a", 1000) + "\r\n"
		for i := 0; i < 2000; i++ {
			if _, err := io.WriteString(c, line); err != nil {
				return
			}
		}
	})
	ts := front(t, "core", up)
	if code, _ := get(t, ts.URL, "X-Forwarded-For", "127.0.0.1"); code != http.StatusBadGateway {
		t.Errorf("status %d, want 502", code)
	}
}

// TestForwarderUpstreamDies: an upstream that dies before answering is a 502 problem; one
// that dies in the middle of a body aborts the client's response (never a clean, short one).
func TestForwarderUpstreamDies(t *testing.T) {
	before := front(t, "core", rawUpstream(t, func(c net.Conn) { _, _ = readHead(bufio.NewReader(c)) }))
	code, body := get(t, before.URL, "X-Forwarded-For", "127.0.0.1")
	if code != http.StatusBadGateway || !strings.Contains(body, `"status":502`) {
		t.Errorf("died before answering: %d %q, want 502 problem", code, body)
	}
	for _, tc := range []struct{ name, resp string }{
		{"known length", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort"},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nshort\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := front(t, "core", rawUpstream(t, func(c net.Conn) {
				if _, err := readHead(bufio.NewReader(c)); err == nil {
					_, _ = io.WriteString(c, tc.resp)
				}
			}))
			req, _ := http.NewRequest("GET", ts.URL, nil)
			req.Header.Set("X-Forwarded-For", "127.0.0.1")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return // aborted before the headers went out
			}
			b, err := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if err == nil {
				t.Errorf("truncated response read cleanly: %d %q", resp.StatusCode, b)
			}
		})
	}
}

// TestForwarderHeadTrailers: HEAD keeps the upstream's Content-Length without a body, 204 has
// none, and trailers cross.
func TestForwarderHeadTrailers(t *testing.T) {
	up := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/204":
			w.WriteHeader(http.StatusNoContent)
		case "/trailer":
			w.Header().Set("Trailer", "X-Sum")
			_, _ = io.WriteString(w, "body")
			w.Header().Set("X-Sum", "42")
		default:
			w.Header().Set("Content-Length", "5")
			_, _ = io.WriteString(w, "hello")
		}
	}))
	ts := front(t, "core", up)
	do := func(method, path string) (*http.Response, string) {
		req, _ := http.NewRequest(method, ts.URL+path, nil)
		req.Header.Set("X-Forwarded-For", "127.0.0.1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		return resp, string(b)
	}
	if resp, b := do("HEAD", "/"); resp.StatusCode != 200 || resp.ContentLength != 5 || b != "" {
		t.Errorf("HEAD: %d length %d %q", resp.StatusCode, resp.ContentLength, b)
	}
	if resp, b := do("GET", "/204"); resp.StatusCode != 204 || b != "" {
		t.Errorf("204: %d %q", resp.StatusCode, b)
	}
	if resp, b := do("GET", "/trailer"); b != "body" || resp.Trailer.Get("X-Sum") != "42" {
		t.Errorf("trailer: %q %v", b, resp.Trailer)
	}
	// And the connection stays reusable after each.
	if resp, b := do("GET", "/"); resp.StatusCode != 200 || b != "hello" {
		t.Errorf("GET: %d %q", resp.StatusCode, b)
	}
}

// TestForwarderClientGone: when the client goes away, the upstream's request is cancelled
// (its connection closed) rather than left waiting.
func TestForwarderClientGone(t *testing.T) {
	started, cancelled := make(chan struct{}), make(chan struct{})
	up := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-r.Context().Done()
		close(cancelled)
	}))
	ts := front(t, "core", up)
	c, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(c, "GET /poll HTTP/1.1\r\nHost: localhost\r\nX-Forwarded-For: 127.0.0.1\r\n\r\n")
	<-started
	_ = c.Close()
	select {
	case <-cancelled:
	case <-time.After(30 * time.Second): // a hang, not a timing: the upstream never heard
		t.Fatal("upstream request not cancelled after the client left")
	}
}

func TestAppendRequestRefusesBadValues(t *testing.T) {
	for _, h := range []http.Header{{"X-A": {"a\r\nX-Injected: 1"}}, {"X-A": {"a\nb"}}, {"X-A": {"a\x00"}}, {"X-A": {"a\x7fb"}}, {"X-A": {"a\x1bb"}}, {"Bad Name": {"v"}}, {"Bad:Name": {"v"}}, {"": {"v"}}} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header = h
		if _, err := appendRequest(nil, r, "127.0.0.1"); !errors.Is(err, errBadHeader) {
			t.Errorf("%q: err %v", h, err)
		}
	}
	r := httptest.NewRequest("GET", "/p?a=1;b=2&c=%zz", nil)
	r.Host = "h\r\nX: y"
	if _, err := appendRequest(nil, r, "127.0.0.1"); !errors.Is(err, errBadHeader) {
		t.Errorf("Host with CRLF: %v", err)
	}
	for _, host := range []string{"h x", "h\x00", "h/x"} {
		r.Host = host
		if _, err := appendRequest(nil, r, "127.0.0.1"); !errors.Is(err, errBadHeader) {
			t.Errorf("Host %q: %v", host, err)
		}
	}
	r.Host = "h"
	b, err := appendRequest(nil, r, "127.0.0.1")
	if err != nil || !strings.HasPrefix(string(b), "GET /p HTTP/1.1\r\n") {
		t.Errorf("unparsable query not cleaned: %q %v", b, err)
	}
}

// TestGuardUnderscoreHeaders: a header whose name holds "_" reaches the upstream on neither
// path (without a body: the forwarder; with one: the ReverseProxy), since a WSGI server reads
// X_Forwarded_For as X-Forwarded-For; nor does any X-Forwarded-* (ProxyFix reads Port and
// Prefix) or a CDN's client-address header.
func TestGuardUnderscoreHeaders(t *testing.T) {
	up := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		for k, vv := range r.Header {
			_, _ = io.WriteString(w, k+"="+strings.Join(vv, "|")+"\n")
		}
	}))
	ts := front(t, "core", up)
	for _, body := range []string{"", "payload"} {
		req, _ := http.NewRequest("POST", ts.URL, strings.NewReader(body))
		if body == "" {
			req.Body = http.NoBody
		}
		req.Header.Set("X-Forwarded-For", "127.0.0.1")
		req.Header["X_Forwarded_For"] = []string{"10.9.9.9"}
		req.Header["X_real_ip"] = []string{"10.9.9.9"}
		req.Header["Forwarded_For"] = []string{"10.9.9.9"}
		for _, k := range []string{"X-Forwarded-Port", "X-Forwarded-Prefix", "X-Forwarded-Host", "X-Forwarded-Server",
			"True-Client-IP", "CF-Connecting-IP", "X-Client-IP", "X-Cluster-Client-IP", "Client-IP", "X-Original-Forwarded-For"} {
			req.Header.Set(k, "10.9.9.9")
		}
		req.Header.Set("X-Kept", "yes")
		resp, b := do(t, req)
		if resp.StatusCode != http.StatusOK || strings.Contains(string(b), "_") || strings.Contains(string(b), "10.9.9.9") || !strings.Contains(string(b), "X-Kept=yes") {
			t.Errorf("body %q: %d, upstream saw\n%s", body, resp.StatusCode, b)
		}
	}
}

// TestGuardOpaqueTarget: a request target that is an opaque URI ("x:admin": no path, so the
// root's rule was checked) is refused before it reaches the upstream; paths, absolute URLs and
// OPTIONS * pass.
func TestGuardOpaqueTarget(t *testing.T) {
	// A raw upstream: Go's server would refuse "GET admin" itself; gunicorn takes it.
	up, heads := headsUpstream(t, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
	ts := front(t, "core", up)
	for _, tc := range []struct {
		target, want string
		status       string
	}{
		{"x:admin", "", "HTTP/1.1 400"},
		{"mailto:admin", "", "HTTP/1.1 400"},
		{"/admin", "/admin", "HTTP/1.1 200"},
		{"http://localhost/admin", "/admin", "HTTP/1.1 200"},
	} {
		out := rawDo(t, ts, "GET "+tc.target+" HTTP/1.1\r\nHost: localhost\r\nX-Forwarded-For: 127.0.0.1\r\nConnection: close\r\n\r\n")
		if !strings.HasPrefix(out, tc.status) {
			t.Errorf("GET %s: %q, want %s", tc.target, out, tc.status)
		}
		select {
		case h := <-heads:
			line, _, _ := strings.Cut(h, "\r\n")
			if got := strings.TrimSuffix(strings.TrimPrefix(line, "GET "), " HTTP/1.1"); got != tc.want {
				t.Errorf("GET %s reached the upstream as %q, want %q", tc.target, got, tc.want)
			}
		default:
			if tc.want != "" {
				t.Errorf("GET %s did not reach the upstream", tc.target)
			}
		}
	}
}
