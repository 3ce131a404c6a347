package nginx_test

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bindguard/bindguard/internal/gen/nginx"
	"github.com/bindguard/bindguard/internal/netnstest"
	"github.com/bindguard/bindguard/internal/proc"
	"github.com/bindguard/bindguard/internal/testcert"
	"github.com/bindguard/bindguard/policy"
)

// livePolicy is a front door with one DNS server name (so TLS handshakes for other names are
// rejected), one upstream that answers everything, two blocked prefixes and a status server.
const livePolicy = `version: 1
services:
  - {name: web_http, port: 80, address: 0.0.0.0, access: public}
  - {name: web_https, port: 443, address: 0.0.0.0, access: public}
  - {name: web_status, port: 8080, address: 0.0.0.0, access: restricted, allow: [127.0.0.1]}
  - {name: backend, port: 8001, address: 127.0.0.1, access: localhost_only}
proxy:
  server_names: [app.example]
  http: web_http
  https: web_https
  certificate: /x/server.crt
  key: /x/server.key
  routes:
    - {path: /, service: backend}
  blocked: [/internal/, /admin/secret/]
  health: /health
  status:
    service: web_status
    allow: [127.0.0.1]
    detail: {path: /health-detailed, service: backend, upstream_path: /health}
`

// liveNginx runs the real nginx on the generated configuration of src inside a namespace of
// its own, in front of an upstream on 127.0.0.1:8001 that answers every request with
// "backend:" and the request target it received.
func liveNginx(t *testing.T, src string) *netnstest.NS {
	t.Helper()
	bin := netnstest.RequireTool(t, "nginx", "nginx")
	ns := netnstest.New(t, "bgngx")
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil { // #nosec G302 -- nginx's workers (nobody) read under it
		t.Fatal(err)
	}
	p, err := policy.Parse("live.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	p.Proxy.Certificate, p.Proxy.Key = testcert.Write(t, dir)
	files, err := nginx.Generate(p)
	if err != nil {
		t.Fatal(err)
	}
	conf := WriteConfig(t, dir, files)

	var l net.Listener
	if err := proc.InNetNS(ns.Path, func() error {
		var err error
		l, err = net.Listen("tcp", "127.0.0.1:8001")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	up := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "backend:%s", r.RequestURI)
	})}
	go func() { _ = up.Serve(l) }()
	t.Cleanup(func() { _ = up.Close() })

	cmd := exec.Command("nsenter", "--net="+ns.Path, bin, "-c", conf, "-p", dir, "-e", filepath.Join(dir, "error.log"), "-g", "daemon off;") // #nosec G204 G702 -- nginx on our own files
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGQUIT) // nginx's graceful stop; the master ends its workers
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	for range 100 {
		if c, err := dialNS(ns, "127.0.0.1:443"); err == nil {
			_ = c.Close()
			return ns
		}
		time.Sleep(50 * time.Millisecond)
	}
	log, _ := os.ReadFile(filepath.Join(dir, "error.log")) // #nosec G304 -- our own file
	t.Fatalf("nginx did not listen on 443 within 5s:\n%s", log)
	return nil
}

func dialNS(ns *netnstest.NS, addr string) (net.Conn, error) {
	var c net.Conn
	err := proc.InNetNS(ns.Path, func() error {
		var err error
		c, err = net.DialTimeout("tcp", addr, 5*time.Second)
		return err
	})
	return c, err
}

// rawGet sends "GET target" exactly as written (no client-side normalisation) with the Host
// header host, over TLS with SNI sni when tlsOn; it returns the status and body.
func rawGet(ns *netnstest.NS, addr string, tlsOn bool, sni, host, target string) (int, string, error) {
	c, err := dialNS(ns, addr)
	if err != nil {
		return 0, "", err
	}
	defer func() { _ = c.Close() }()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if tlsOn {
		tc := tls.Client(c, &tls.Config{ServerName: sni, InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}) // #nosec G402 -- the test's own self-signed nginx
		if err := tc.Handshake(); err != nil {
			return 0, "", fmt.Errorf("handshake: %w", err)
		}
		c = tc
	}
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", target, host); err != nil {
		return 0, "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, "", err
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// TestLiveBlockedSpellings: every spelling of a blocked path that an upstream folding case,
// stripping ";" parameters, trailing dots or spaces, or reading "#" could serve as the blocked
// content is refused by the real nginx; paths beside the blocked ones are still served.
func TestLiveBlockedSpellings(t *testing.T) {
	ns := liveNginx(t, livePolicy)
	blocked := []string{
		"/internal/", "/internal", "/internal/x", "/Internal/", "/INTERNAL/metrics", "/internal;x/",
		"/internal;jsessionid=1", "/internal./", "/internal../x", "/internal%20/", "/internal.%20/",
		"/internal%2e/", "/internal%3bx/", "/internal%3Bx/x", "/x#/../internal/", "/x%23/../internal/",
		"/internal%2fx", "/internal%2Fx", "/%69nternal/", "/%49NTERNAL/", "/x/../internal/", "/x/%2e%2e/internal/",
		"/internal#frag", "/internal%23x", "//internal/", "/./internal/", "/internal .;a/",
		"/admin/secret/", "/Admin;a/Secret./x", "/admin/%53ecret/", "/admin//secret/", "/admin%2fsecret",
	}
	for _, target := range blocked {
		code, body, err := rawGet(ns, "127.0.0.1:443", true, "app.example", "app.example", target)
		if err != nil {
			t.Errorf("GET %s: %v", target, err)
			continue
		}
		if (code != 404 && code != 403 && code != 400) || strings.Contains(body, "backend:") {
			t.Errorf("GET %s = %d %q, want 404 (or 403/400) from nginx, never the upstream", target, code, body)
		}
	}
	served := []string{"/", "/internals", "/internal-docs/", "/x/internal/", "/admin/", "/admin/secrets", "/api/internal"}
	for _, target := range served {
		code, body, err := rawGet(ns, "127.0.0.1:443", true, "app.example", "app.example", target)
		if err != nil || code != 200 || body != "backend:"+target {
			t.Errorf("GET %s = %d %q, %v; want 200 from the upstream", target, code, body, err)
		}
	}
	if code, body, err := rawGet(ns, "127.0.0.1:443", true, "app.example", "app.example", "/health"); err != nil || code != 200 || body != "healthy\n" {
		t.Errorf("GET /health = %d %q, %v", code, body, err)
	}
}

// TestLiveServerNames: only the declared server names are served, on the HTTP, HTTPS and
// status listeners; a TLS handshake for another name (or none) is rejected, so no certificate
// is shown to a name the policy does not declare.
func TestLiveServerNames(t *testing.T) {
	ns := liveNginx(t, livePolicy)
	for _, c := range []struct {
		addr      string
		tls       bool
		sni, host string
		target    string
		want      int
	}{
		{"127.0.0.1:80", false, "", "app.example", "/", 301},
		{"127.0.0.1:80", false, "", "evil.example", "/", 421},
		{"127.0.0.1:80", false, "", "127.0.0.1", "/", 421},
		{"127.0.0.1:443", true, "app.example", "app.example", "/", 200},
		{"127.0.0.1:443", true, "app.example", "APP.example:443", "/", 200},
		{"127.0.0.1:443", true, "app.example", "evil.example", "/", 421},
		{"127.0.0.1:443", true, "app.example", "localhost", "/", 421},
		{"127.0.0.1:8080", false, "", "app.example", "/nginx-status", 200},
		{"127.0.0.1:8080", false, "", "app.example", "/health-detailed", 200},
		{"127.0.0.1:8080", false, "", "evil.example", "/nginx-status", 421},
		{"127.0.0.1:8080", false, "", "evil.example", "/health-detailed", 421},
		{"127.0.0.1:8080", false, "", "localhost", "/health-detailed", 421},
	} {
		code, body, err := rawGet(ns, c.addr, c.tls, c.sni, c.host, c.target)
		if err != nil || code != c.want {
			t.Errorf("%s Host %s %s = %d %q, %v; want %d", c.addr, c.host, c.target, code, body, err, c.want)
		}
	}
	for _, sni := range []string{"evil.example", ""} {
		if code, _, err := rawGet(ns, "127.0.0.1:443", true, sni, "app.example", "/"); err == nil || !strings.Contains(err.Error(), "handshake") {
			t.Errorf("TLS with SNI %q: %d, %v; want the handshake rejected", sni, code, err)
		}
	}
}

// TestLiveIPLiteralName: with an IP address among the server names (clients send no SNI for
// it), the handshake without SNI succeeds and the request is served by its Host; other Hosts
// are still refused.
func TestLiveIPLiteralName(t *testing.T) {
	ns := liveNginx(t, strings.Replace(livePolicy, "server_names: [app.example]", "server_names: [app.example, 127.0.0.1]", 1))
	for host, want := range map[string]int{"127.0.0.1": 200, "app.example": 200, "evil.example": 421} {
		if code, _, err := rawGet(ns, "127.0.0.1:443", true, "", host, "/"); err != nil || code != want {
			t.Errorf("no SNI, Host %s: %d, %v; want %d", host, code, err, want)
		}
	}
}
