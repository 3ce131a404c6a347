package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bindguard/bindguard/internal/audit"
	"github.com/bindguard/bindguard/internal/gen/nginx"
	"github.com/bindguard/bindguard/internal/netnstest"
	"github.com/bindguard/bindguard/internal/observe"
	"github.com/bindguard/bindguard/internal/proc"
	"github.com/bindguard/bindguard/policy"
)

// The end-to-end host: the server on the LAN (10.1.1.120) and on another network (192.0.2.1);
// the client holds a LAN address, the monitoring host's address and one outside the LAN.
const (
	e2eServer    = "10.1.1.120"
	e2eLAN       = "10.1.1.50"
	e2eMonitor   = "10.1.1.103"
	e2eOutside   = "192.0.2.10"
	e2eServerOut = "192.0.2.1"
	e2ePolicy    = "../../testdata/gen/e2e-policy.yaml"
)

// startNginx runs the real nginx inside ns on the generated configuration, until cleanup.
func startNginx(t *testing.T, ns *netnstest.NS, p *policy.Policy, dir string) {
	t.Helper()
	bin := netnstest.RequireTool(t, "nginx", "nginx")
	files, err := nginx.Generate(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f.Name), f.Content, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, nginx.Standalone(dir, files, "nobody nogroup"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("nsenter", "--net="+ns.Path, bin, "-c", conf, "-p", dir, "-e", filepath.Join(dir, "error.log"), "-g", "daemon off;") // #nosec G204 G702 -- nginx on our own files
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopProcess(cmd, syscall.SIGQUIT) }) // nginx's graceful stop; the master ends its workers
	for range 100 {
		if c, err := dialIn(ns, "127.0.0.1:443"); err == nil {
			_ = c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	log, _ := os.ReadFile(filepath.Join(dir, "error.log")) // #nosec G304 -- our own file
	t.Fatalf("nginx did not listen on 443 within 5s:\n%s", log)
}

// clientFrom is an HTTP client in ns whose connections leave from src.
func clientFrom(ns *netnstest.NS, src string, roots *x509.CertPool) *http.Client {
	dial := func(_ context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := proc.InNetNS(ns.Path, func() error {
			d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
			var err error
			c, err = d.Dial(network, addr)
			return err
		})
		return c, err
	}
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{DialContext: dial,
			TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots, ServerName: "localhost"}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func do(t *testing.T, c *http.Client, method, url string, header http.Header) reply {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	r := reply{resp.StatusCode, resp.Header.Get("Content-Type"), string(b)}
	if loc := resp.Header.Get("Location"); loc != "" {
		r.body = "Location: " + loc
	}
	return r
}

// TestEndToEnd: real nginx from `bindguard gen nginx`, the five services, a LAN client, a
// client outside the LAN and the monitoring host, in namespaces of the test's own; then the
// audit of the server scores 100.
func TestEndToEnd(t *testing.T) {
	server := netnstest.New(t, "bge2esrv")
	client := netnstest.New(t, "bge2ecli")
	pfx := netip.MustParsePrefix
	netnstest.Connect(t, server, client,
		[]netip.Prefix{pfx(e2eServer + "/24"), pfx(e2eServerOut + "/24")},
		[]netip.Prefix{pfx(e2eLAN + "/24"), pfx(e2eMonitor + "/24"), pfx(e2eOutside + "/24")})

	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil { // #nosec G302 -- nginx's workers (nobody) read under it
		t.Fatal(err)
	}
	p, err := policy.Load(e2ePolicy)
	if err != nil {
		t.Fatal(err)
	}
	// The front door's certificate: the one the stack makes for the frontend, made first.
	cert, err := loadOrCreateCert(filepath.Join(dir, "stack"))
	if err != nil {
		t.Fatal(err)
	}
	p.Proxy.Certificate, p.Proxy.Key = certFiles(filepath.Join(dir, "stack"))
	roots := certPool(cert)

	startStack(t, server, filepath.Join(dir, "stack"))
	startNginx(t, server, p, dir)

	lan := clientFrom(client, e2eLAN, roots)
	outside := clientFrom(client, e2eOutside, roots)
	monitor := clientFrom(client, e2eMonitor, roots)
	site := "https://" + e2eServer
	forged := http.Header{"X-Forwarded-For": {"127.0.0.1"}}

	check := func(name string, r reply, status int, contains string) {
		t.Helper()
		if r.status != status || !strings.Contains(r.body, contains) {
			t.Errorf("%s: %d %q, want %d with %q", name, r.status, r.body, status, contains)
		}
	}
	check("HTTPS /", do(t, lan, "GET", site+"/", nil), 200, "<h1>Aktienanalyse</h1>")
	check("HTTP / redirects", do(t, lan, "GET", "http://"+e2eServer+"/api/portfolio", nil), 301, "Location: https://"+e2eServer+"/api/portfolio")
	check("/api/portfolio", do(t, lan, "GET", site+"/api/portfolio", nil), 200, `"symbol":"SAP"`)
	check("/health by nginx", do(t, outside, "GET", "https://"+e2eServer+"/health", nil), 200, "healthy")
	check("/internal/metrics", do(t, lan, "GET", site+"/internal/metrics", forged), 404, "")
	check("/admin/", do(t, lan, "GET", site+"/admin/", nil), 404, "")
	check("/api/../internal/metrics", do(t, lan, "GET", site+"/api/%2e%2e/internal/metrics", forged), 404, "")
	check("TRACE refused", do(t, lan, "TRACE", site+"/", nil), 405, "")
	check("PATCH /api/ refused", do(t, lan, "PATCH", site+"/api/portfolio", nil), 405, "")
	// A forged X-Forwarded-For: 127.0.0.1 does not reach core's localhost-only /api/admin/.
	r := do(t, lan, "GET", site+"/api/admin/stats", forged)
	check("forged XFF to /api/admin/", r, 403, "Forbidden")
	if r.ctype != "application/problem+json" {
		t.Errorf("forged XFF refusal has Content-Type %q, want application/problem+json (from bindguard's middleware)", r.ctype)
	}
	check("/monitoring from the LAN", do(t, lan, "GET", site+"/monitoring", nil), 200, "<h1>Monitoring</h1>")
	check("/monitoring from outside", do(t, outside, "GET", "https://"+e2eServer+"/monitoring", nil), 403, "")
	check("status for the monitoring host", do(t, monitor, "GET", "http://"+e2eServer+":8080/nginx-status", nil), 200, "Active connections")
	check("status detail for the monitoring host", do(t, monitor, "GET", "http://"+e2eServer+":8080/health-detailed", nil), 200, "healthy")
	// A name the policy does not declare (here the server's other address, as DNS rebinding
	// would present it) is refused on every listener.
	check("HTTPS, undeclared Host", do(t, outside, "GET", "https://"+e2eServerOut+"/health", nil), 421, "")
	check("status, undeclared Host", do(t, monitor, "GET", "http://"+e2eServerOut+":8080/nginx-status", nil), 421, "")
	check("status for a LAN client", do(t, lan, "GET", "http://"+e2eServer+":8080/nginx-status", nil), 403, "")

	// The services' own ports refuse connections from the network.
	for _, port := range []string{"8001", "8002", "8003", "8004", "8443"} {
		var c net.Conn
		err := proc.InNetNS(client.Path, func() error {
			var err error
			c, err = net.DialTimeout("tcp", e2eServer+":"+port, 2*time.Second)
			return err
		})
		if err == nil {
			_ = c.Close()
			t.Errorf("port %s accepted a connection from the LAN", port)
		} else if !strings.Contains(err.Error(), "connection refused") {
			t.Errorf("port %s: %v, want connection refused", port, err)
		}
	}

	// A burst beyond the rate limit (10/s, burst 20) is answered 429.
	limited := 0
	for range 40 {
		if do(t, outside, "GET", "https://"+e2eServer+"/api/portfolio", nil).status == http.StatusTooManyRequests {
			limited++
		}
	}
	if limited == 0 {
		t.Error("40 requests at once: none answered 429")
	}

	// And the audit of the server against the policy: 100.
	snap, err := observe.Observe(observe.Options{Netns: server.Name})
	if err != nil {
		t.Fatal(err)
	}
	rep := audit.Judge(p, snap.Sockets)
	if rep.Score != 100 {
		for _, f := range rep.Findings {
			if f.Status != audit.Valid {
				t.Errorf("finding %s %s: %s", f.Status, f.ServiceName(), f.Reason)
			}
		}
		t.Errorf("audit score %d, want 100", rep.Score)
	}
	t.Logf("burst: %d of 40 answered 429; audit: %d findings, score %d", limited, len(rep.Findings), rep.Score)
}
