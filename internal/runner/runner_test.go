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
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bindguard/bindguard/access"
	"github.com/bindguard/bindguard/policy"
)

const testPolicy = `version: 1
services:
  - name: core
    port: 8001
    address: 127.0.0.1
    access: localhost_only
  - name: agent
    port: 10050
    address: 0.0.0.0
    access: restricted
    allow: [10.0.0.1]
  - name: web
    port: 8080
    address: 0.0.0.0
    access: public
  - name: dns
    protocol: udp
    port: 5353
    address: 127.0.0.1
    access: localhost_only
  - name: web-tls
    port: 8444
    address: 0.0.0.0
    access: public
  - name: front
    port: 8443
    address: 127.0.0.1
    access: proxy_only
proxy:
  server_names: [example.org]
  http: web
  https: web-tls
  certificate: /etc/ssl/a.pem
  key: /etc/ssl/a.key
  routes:
    - path: /
      service: front
      upstream_tls: true
`

func mustPolicy(t *testing.T) *policy.Policy {
	t.Helper()
	p, err := policy.Parse("test.yaml", []byte(testPolicy))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheckGuard(t *testing.T) {
	p := mustPolicy(t)
	for _, tc := range []struct {
		service string
		want    string // "" admits
	}{
		{"core", ""},
		{"agent", ""},
		{"web", "service web is public"},
		{"dns", "service dns is udp"},
		{"front", "speaks TLS (the policy's proxy route / has upstream_tls)"},
	} {
		t.Run(tc.service, func(t *testing.T) {
			svc, _ := p.Lookup(tc.service)
			err := CheckGuard(p, svc)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrGuard)):
				t.Fatalf("err %v, want ErrGuard saying %q", err, tc.want)
			}
		})
	}
}

func TestEnviron(t *testing.T) {
	in := []string{"PATH=/bin", "LISTEN_FDS=4", "LISTEN_PID=1", "LISTEN_FDNAMES=x", "BINDGUARD_UPSTREAM=/tmp/x", "LISTEN_FDSX=keep"}
	got := activationEnv(in, 42, []string{"core"})
	want := []string{"PATH=/bin", "LISTEN_FDSX=keep", "LISTEN_FDS=1", "LISTEN_PID=42", "LISTEN_FDNAMES=core"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got)\n%s", d)
	}
	if in[1] != "LISTEN_FDS=4" {
		t.Errorf("Environ changed its argument: %v", in)
	}
}

func TestLookPath(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	for _, tc := range []struct{ name, want string }{
		{"", "no command after --"},
		{"no-such-command-bg", `command "no-such-command-bg" not found in PATH`},
		{"/no/such/file", `command "/no/such/file": stat /no/such/file: no such file or directory`},
	} {
		if _, err := LookPath(tc.name); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("LookPath(%q) = %v, want %q", tc.name, err, tc.want)
		}
	}
	if p, err := LookPath("/bin/sh"); err != nil || p != "/bin/sh" {
		t.Errorf("LookPath(/bin/sh) = %q, %v", p, err)
	}
}

// upstream serves h on a Unix socket in a temporary directory and returns its path.
func upstream(t *testing.T, h http.Handler) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "u.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return path
}

func front(t *testing.T, service, up string) *httptest.Server {
	t.Helper()
	g, err := access.NewGuard(mustPolicy(t), service)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(Handler(g, up, nil))
	ts.Listener = newFrontListener(ts.Listener) // as Guard serves
	ts.Start()
	t.Cleanup(ts.Close)
	return ts
}

// echo answers with the forwarding headers it received, one per line.
var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	for _, h := range []string{"X-Forwarded-For", "X-Real-Ip", "Forwarded", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Other"} {
		_, _ = io.WriteString(w, h+"="+strings.Join(r.Header.Values(h), "|")+"\n")
	}
	_, _ = io.WriteString(w, "host="+r.Host+"\n")
})

// do sends req and reads the whole response.
func do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func get(t *testing.T, url string, hdr ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, b := do(t, req)
	return resp.StatusCode, b
}

func TestHandlerHeaders(t *testing.T) {
	up := upstream(t, echo)
	agent := front(t, "agent", up)
	core := front(t, "core", up)
	forged := []string{"X-Real-IP", "10.0.0.1", "Forwarded", "for=10.0.0.1", "X-Forwarded-Host", "evil", "X-Forwarded-Proto", "https", "X-Other", "kept"}
	for _, tc := range []struct {
		name   string
		url    string
		hdr    []string
		status int
		body   string
	}{
		{"forged loopback refused for restricted", agent.URL, []string{"X-Forwarded-For", "127.0.0.1"}, 403, `{"type":"about:blank","title":"Forbidden","status":403,"detail":"access denied"}` + "\n"},
		{"proxied allowed client, leftmost forgery dropped", agent.URL, append([]string{"X-Forwarded-For", "6.6.6.6, 10.0.0.1"}, forged...), 200,
			"X-Forwarded-For=10.0.0.1\nX-Real-Ip=10.0.0.1\nForwarded=\nX-Forwarded-Host=\nX-Forwarded-Proto=\nX-Other=kept\nhost=" + strings.TrimPrefix(agent.URL, "http://") + "\n"},
		{"remote client through local proxy refused for localhost_only", core.URL, []string{"X-Forwarded-For", "127.0.0.1, 10.1.1.50"}, 403, ""},
		{"local client admitted", core.URL, []string{"X-Forwarded-For", "127.0.0.1"}, 200,
			"X-Forwarded-For=127.0.0.1\nX-Real-Ip=127.0.0.1\nForwarded=\nX-Forwarded-Host=\nX-Forwarded-Proto=\nX-Other=\nhost=" + strings.TrimPrefix(core.URL, "http://") + "\n"},
		{"no header from a trusted peer fails closed", core.URL, nil, 403, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := get(t, tc.url, tc.hdr...)
			if code != tc.status {
				t.Fatalf("status %d, want %d (%s)", code, tc.status, body)
			}
			if tc.body != "" {
				if d := cmp.Diff(tc.body, body); d != "" {
					t.Errorf("body (-want +got)\n%s", d)
				}
			}
		})
	}
}

func TestHandlerUpstreamDown(t *testing.T) {
	ts := front(t, "core", filepath.Join(t.TempDir(), "none.sock"))
	code, body := get(t, ts.URL, "X-Forwarded-For", "127.0.0.1")
	if code != http.StatusBadGateway || !strings.Contains(body, `"status":502`) {
		t.Errorf("status %d %q, want 502 problem", code, body)
	}
}

// TestHandlerStreamsRequest: the upstream reads the start of a request body before the
// client has sent the rest (nothing buffers the body).
func TestHandlerStreamsRequest(t *testing.T) {
	gotFirst := make(chan string, 1)
	up := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 5)
		if _, err := io.ReadFull(r.Body, buf); err != nil {
			t.Error(err)
		}
		gotFirst <- string(buf)
		rest, _ := io.ReadAll(r.Body)
		_, _ = io.WriteString(w, string(buf)+string(rest))
	}))
	ts := front(t, "core", up)
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", ts.URL, pr)
	req.Header.Set("X-Forwarded-For", "127.0.0.1")
	type result struct {
		body string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		done <- result{string(b), err}
	}()
	_, _ = io.WriteString(pw, "hello")
	select {
	case got := <-gotFirst:
		if got != "hello" {
			t.Fatalf("upstream read %q", got)
		}
	case r := <-done:
		t.Fatalf("request ended before the body was complete: %+v", r)
	}
	_, _ = io.WriteString(pw, " world")
	_ = pw.Close()
	if r := <-done; r.err != nil || r.body != "hello world" {
		t.Errorf("got %q, %v", r.body, r.err)
	}
}

// TestHandlerStreamsResponse: the client reads the first part of a response before the
// upstream has written the rest (FlushInterval -1).
func TestHandlerStreamsResponse(t *testing.T) {
	sendRest := make(chan struct{})
	up := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "part1\n")
		w.(http.Flusher).Flush()
		<-sendRest
		_, _ = io.WriteString(w, "part2\n")
	}))
	ts := front(t, "core", up)
	req, _ := http.NewRequest("GET", ts.URL, nil)
	req.Header.Set("X-Forwarded-For", "127.0.0.1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		close(sendRest)
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	close(sendRest)
	if err != nil || line != "part1\n" {
		t.Fatalf("first line %q, %v", line, err)
	}
	if line, _ := br.ReadString('\n'); line != "part2\n" {
		t.Errorf("second line %q", line)
	}
}

// TestHandlerUpgrade: an Upgrade (WebSocket handshake) is switched and bytes flow both ways.
func TestHandlerUpgrade(t *testing.T) {
	up := upstream(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" || r.Header.Get("X-Forwarded-For") != "127.0.0.1" {
			http.Error(w, "no upgrade", 400)
			return
		}
		w.Header().Set("Connection", "Upgrade")
		w.Header().Set("Upgrade", "websocket")
		w.WriteHeader(http.StatusSwitchingProtocols)
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer func() { _ = conn.Close() }()
		line, _ := brw.ReadString('\n')
		_, _ = brw.WriteString("echo " + line)
		_ = brw.Flush()
	}))
	ts := front(t, "core", up)
	c, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	_, _ = io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nX-Forwarded-For: 127.0.0.1\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d, want 101", resp.StatusCode)
	}
	_, _ = io.WriteString(c, "ping\n")
	if line, _ := br.ReadString('\n'); line != "echo ping\n" {
		t.Errorf("got %q after the upgrade", line)
	}
}

func TestRoutes(t *testing.T) {
	p := mustPolicy(t)
	svc, _ := p.Lookup("agent")
	var routes []Route
	for _, s := range []string{"/internal/=localhost_only", "/lan/=lan"} {
		r, err := ParseRoute(s)
		if err != nil {
			t.Fatal(err)
		}
		routes = append(routes, r)
	}
	g, err := NewGuard(p, svc, routes)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(Handler(g, upstream(t, echo), nil))
	t.Cleanup(ts.Close)
	for _, tc := range []struct {
		path   string
		xff    string
		status int
	}{
		{"/", "10.0.0.1", 200},
		{"/internal/metrics", "10.0.0.1", 403},
		{"/x/../internal/metrics", "10.0.0.1", 403},
		{"/internal/metrics", "127.0.0.1", 200},
		{"/lan/x", "10.0.0.1", 200}, // lan routes admit the service's allow list
		{"/lan/x", "10.0.0.2", 403},
	} {
		if code, body := get(t, ts.URL+tc.path, "X-Forwarded-For", tc.xff); code != tc.status {
			t.Errorf("%s from %s: %d %q, want %d", tc.path, tc.xff, code, body, tc.status)
		}
	}
	for _, bad := range []string{"/internal/", "/internal/=nobody", "=localhost_only"} {
		r, err := ParseRoute(bad)
		if err == nil {
			_, err = NewGuard(p, svc, []Route{r})
		}
		if err == nil {
			t.Errorf("route %q accepted", bad)
		}
	}
}
