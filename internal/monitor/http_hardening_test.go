package monitor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/bindguard/bindguard/access"
	"github.com/bindguard/bindguard/internal/observe"
	"github.com/bindguard/bindguard/policy"
)

// hardGuard is the guard of a bindguard listener restricted to 10.0.0.1.
func hardGuard(t *testing.T) *access.Guard {
	t.Helper()
	p, err := policy.Parse("p.yaml", []byte("version: 1\ntrusted_proxies: []\nservices:\n  - {name: bindguard, port: 9847, address: 0.0.0.0, access: restricted, allow: [10.0.0.1]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	g, err := access.NewGuard(p, "bindguard")
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// hardWebConfig writes a web configuration with basic auth (prometheus / s3cret) and a rate
// limit of 2 requests, then one a minute.
func hardWebConfig(t *testing.T) string {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "web.yml")
	conf := fmt.Sprintf("basic_auth_users:\n  prometheus: %s\nrate_limit:\n  interval: 1m\n  burst: 2\n", hash)
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func hardRequest(f http.Handler, remote, user, pass string) *http.Response {
	req := httptest.NewRequest(http.MethodGet, "http://10.0.0.9:9847/health", nil)
	req.RemoteAddr = remote
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	rec := httptest.NewRecorder()
	f.ServeHTTP(rec, req)
	return rec.Result()
}

// TestFrontAllowListFirst: a client outside the allow list gets the same 403, with its
// connection closed, for no, wrong and right passwords, and costs no bcrypt; a flood from it
// draws nothing from the rate limit the allowed client lives by.
func TestFrontAllowListFirst(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	f, err := NewFront(FrontConfig{Guard: hardGuard(t), WebConfigFile: hardWebConfig(t), MaxConns: 4, MaxRefusedConns: 1}, ok)
	if err != nil {
		t.Fatal(err)
	}
	for _, creds := range [][2]string{{"", ""}, {"prometheus", "wrong"}, {"prometheus", "s3cret"}, {"nobody", "x"}} {
		for range 20 {
			r := hardRequest(f, "192.0.2.7:4000", creds[0], creds[1])
			if r.StatusCode != http.StatusForbidden || r.Header.Get("Connection") != "close" || r.Header.Get("WWW-Authenticate") != "" {
				t.Fatalf("refused client with %v: %d, Connection %q, WWW-Authenticate %q; want 403, close, none", creds, r.StatusCode, r.Header.Get("Connection"), r.Header.Get("WWW-Authenticate"))
			}
		}
	}
	if n := f.BcryptCalls(); n != 0 {
		t.Errorf("refused clients cost %d bcrypt comparisons, want 0", n)
	}
	// The allowed client still has its whole burst of 2, after 80 refused requests.
	for i := range 2 {
		if r := hardRequest(f, "10.0.0.1:5000", "prometheus", "s3cret"); r.StatusCode != http.StatusOK {
			t.Fatalf("allowed client, request %d: %d, want 200", i, r.StatusCode)
		}
	}
	if r := hardRequest(f, "10.0.0.1:5000", "prometheus", "s3cret"); r.StatusCode != http.StatusTooManyRequests {
		t.Errorf("allowed client beyond its burst: %d, want 429", r.StatusCode)
	}
	if n := f.BcryptCalls(); n != 1 {
		t.Errorf("the allowed client cost %d bcrypt comparisons, want 1 (then cached)", n)
	}
	// Wrong password from the allowed address: 401 (its rate is spent, so a fresh front).
	f2, err := NewFront(FrontConfig{Guard: hardGuard(t), WebConfigFile: hardWebConfig(t), MaxConns: 4, MaxRefusedConns: 1}, ok)
	if err != nil {
		t.Fatal(err)
	}
	if r := hardRequest(f2, "10.0.0.1:5000", "prometheus", "wrong"); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("allowed client, wrong password: %d, want 401", r.StatusCode)
	}
}

// TestFrontConnectionBudgets: with the refused addresses' budget full of idle connections,
// another refused connection is closed at accept, and an admitted client is still answered.
func TestFrontConnectionBudgets(t *testing.T) {
	// Admitted: 127.0.0.1; refused: any other loopback address.
	p, err := policy.Parse("p.yaml", []byte("version: 1\ntrusted_proxies: []\nservices:\n  - {name: bindguard, port: 9847, address: 127.0.0.1, access: restricted, allow: [127.0.0.1]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	g, err := access.NewGuard(p, "bindguard")
	if err != nil {
		t.Fatal(err)
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	f, err := NewFront(FrontConfig{Guard: g, MaxConns: 3, MaxRefusedConns: 2}, ok)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{}
	done := make(chan error, 1)
	go func() { done <- f.Serve(l, srv) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = srv.Close()
		<-done
	}
	t.Cleanup(stop)
	dialFrom := func(src string) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	// Two idle refused connections fill their budget (one half-sent request trickles).
	a := dialFrom("127.0.0.5")
	b := dialFrom("127.0.0.5")
	_, _ = io.WriteString(b, "GET /health HTTP/1.1\r\nHost: x\r\n")
	// The server holds both: a third is closed at once.
	third := dialFrom("127.0.0.5")
	_ = third.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := third.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) && !isReset(err) {
		t.Errorf("third refused connection: read %d, %v; want it closed by the server", n, err)
	}
	// The admitted client is answered, over a fresh connection, while they hold theirs.
	for range 3 {
		c := dialFrom("127.0.0.1")
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		_, _ = io.WriteString(c, "GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("admitted client: %v %v", resp, err)
		}
		_ = resp.Body.Close()
		_ = c.Close()
	}
	// A refused request that completes is answered 403 and its connection closed.
	_, _ = io.WriteString(a, "GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
	_ = a.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(a)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusForbidden || !resp.Close {
		t.Fatalf("refused request: %v %v; want 403 with Connection: close", resp, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) && !isReset(err) {
		t.Errorf("after the 403 the connection stays open: %v", err)
	}
	stop()
	if srv.ReadHeaderTimeout == 0 || srv.ReadTimeout == 0 || srv.WriteTimeout == 0 || srv.IdleTimeout == 0 || srv.MaxHeaderBytes == 0 {
		t.Errorf("timeouts not all set: %v %v %v %v %v", srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout, srv.MaxHeaderBytes)
	}
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

// TestHandlerExporterConventions: the dashboard at / (with a strict CSP, linking the endpoints), build info, Go and
// process collectors, and a failed reload in /health's body (still 200) and as metrics.
func TestHandlerExporterConventions(t *testing.T) {
	st, err := OpenStore(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = st.Close() }()
	empty := ObserverFunc(func(context.Context) (*observe.Snapshot, error) { return &observe.Snapshot{}, nil })
	m, err := New(Config{Interval: time.Hour, Observer: empty}, st)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Audit(context.Background()); err != nil {
		t.Fatal(err)
	}
	rs := NewReloadStatus(time.Unix(1700000000, 0))
	h := m.HandlerWith(HandlerOptions{Version: "v1.2.3", Revision: "abc", Reloads: rs})
	get := func(path string) (*http.Response, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		b, _ := io.ReadAll(rec.Result().Body)
		return rec.Result(), string(b)
	}
	r, body := get("/")
	if r.StatusCode != 200 || !strings.Contains(r.Header.Get("Content-Security-Policy"), "default-src 'none'") ||
		!strings.Contains(body, `href="metrics"`) || !strings.Contains(body, `href="health"`) || !strings.Contains(body, "api/v1/events") {
		t.Errorf("dashboard: %d %q\n%s", r.StatusCode, r.Header, body)
	}
	if r, _ := get("/nope"); r.StatusCode != 404 {
		t.Errorf("/nope: %d", r.StatusCode)
	}
	_, metrics := get("/metrics")
	for _, want := range []string{
		`bindguard_build_info{goversion="go`, `revision="abc",version="v1.2.3"} 1`,
		"go_goroutines ", "process_open_fds ",
		"bindguard_config_last_reload_successful 1", "bindguard_config_last_reload_success_timestamp_seconds 1.7e+09",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	rs.Record(time.Unix(1700000100, 0), false, errors.New("p.yaml:3:5: services[0].port: out of range"))
	r, body = get("/health")
	if r.StatusCode != 200 || !strings.Contains(body, "policy reload failed at 2023-11-14T22:15:00Z") || !strings.Contains(body, "out of range") {
		t.Errorf("/health after a failed reload: %d %q", r.StatusCode, body)
	}
	if _, metrics := get("/metrics"); !strings.Contains(metrics, "bindguard_config_last_reload_successful 0") ||
		!strings.Contains(metrics, "bindguard_config_last_reload_success_timestamp_seconds 1.7e+09") {
		t.Errorf("/metrics after a failed reload:\n%s", metrics)
	}
	rs.Record(time.Unix(1700000200, 0), true, nil)
	if _, body := get("/health"); strings.Contains(body, "reload failed") {
		t.Errorf("/health after a good reload: %q", body)
	}
}
