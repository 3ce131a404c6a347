package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bindguard/bindguard/internal/audit"
	"github.com/bindguard/bindguard/internal/netnstest"
	"github.com/bindguard/bindguard/internal/observe"
	"github.com/bindguard/bindguard/internal/proc"
	"github.com/bindguard/bindguard/policy"
)

// stackEnv makes the test binary run the stack (TestMain), with the arguments it holds.
const stackEnv = "AKTIENANALYSE_TEST_ARGS"

func TestMain(m *testing.M) {
	if a := os.Getenv(stackEnv); a != "" {
		if err := run(context.Background(), strings.Split(a, "\x1f")); err != nil {
			fmt.Fprintln(os.Stderr, "aktienanalyse:", err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const (
	serverIP = "10.77.0.1"
	clientIP = "10.77.0.2"
)

// startStack runs all five services, as one process, inside ns, and returns its pid once it
// says "ready". It is stopped by SIGTERM to that pid at cleanup.
func startStack(t *testing.T, ns *netnstest.NS, dataDir string) int {
	t.Helper()
	args := strings.Join([]string{"--policy", "service-bindings.yaml", "--data", dataDir}, "\x1f")
	cmd := exec.Command("nsenter", "--net="+ns.Path, os.Args[0], "-test.run=^$") // #nosec G204 G702 -- the test binary itself
	cmd.Env = append(os.Environ(), stackEnv+"="+args)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopProcess(cmd, syscall.SIGTERM) })
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		ready <- strings.TrimSpace(line)
	}()
	select {
	case line := <-ready:
		if line != "ready" {
			t.Fatalf("stack said %q, want ready", line)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("stack not ready in 20s")
	}
	return cmd.Process.Pid
}

// stopProcess sends sig to a process the test started and waits for it, killing it after 10 s.
func stopProcess(cmd *exec.Cmd, sig syscall.Signal) {
	_ = cmd.Process.Signal(sig)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// dialIn opens a TCP connection from inside namespace ns.
func dialIn(ns *netnstest.NS, addr string) (net.Conn, error) {
	var c net.Conn
	err := proc.InNetNS(ns.Path, func() error {
		var err error
		c, err = net.DialTimeout("tcp", addr, 5*time.Second)
		return err
	})
	return c, err
}

type reply struct {
	status int
	ctype  string
	body   string
}

// get sends one HTTP/1.1 GET from inside ns to addr.
func get(t *testing.T, ns *netnstest.NS, addr, path string, header http.Header) reply {
	t.Helper()
	c, err := dialIn(ns, addr)
	if err != nil {
		t.Fatalf("GET %s%s from %s: %v", addr, path, ns.Name, err)
	}
	defer func() { _ = c.Close() }()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	req.Host = "localhost"
	for k, v := range header {
		req.Header[k] = v
	}
	if err := req.Write(c); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), req)
	if err != nil {
		t.Fatalf("GET %s%s: %v", addr, path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header.Get("Content-Type"), string(b)}
}

// startFrontProxy stands in for nginx on serverIP:8080 inside ns (issue 5 brings the real one):
// /api/ and /internal/ to core, the rest to the frontend over TLS, appending the peer to
// X-Forwarded-For as $proxy_add_x_forwarded_for does.
func startFrontProxy(t *testing.T, ns *netnstest.NS, dataDir string) {
	t.Helper()
	cert, err := loadCert(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	transport := &http.Transport{
		DialContext:     func(_ context.Context, network, addr string) (net.Conn, error) { return dialIn(ns, addr) },
		TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: certPool(cert), ServerName: "localhost"},
	}
	core, _ := url.Parse("http://127.0.0.1:8001")
	front, _ := url.Parse("https://127.0.0.1:8443")
	proxy := &httputil.ReverseProxy{Transport: transport, Rewrite: func(pr *httputil.ProxyRequest) {
		target := front
		if strings.HasPrefix(pr.In.URL.Path, "/api/") || strings.HasPrefix(pr.In.URL.Path, "/internal/") {
			target = core
		}
		pr.SetURL(target)
		pr.SetXForwarded()
		pr.Out.Host = "localhost"
	}}
	var l net.Listener
	if err := proc.InNetNS(ns.Path, func() error {
		var err error
		l, err = net.Listen("tcp4", serverIP+":8080")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: proxy, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
}

// TestStack: the five services from one command, audited valid against the seed's policy; a
// client on the LAN reaches /api/ through the proxy, but a forged "X-Forwarded-For: 127.0.0.1"
// does not reach the localhost-only /internal/, and the services' ports refuse it directly.
func TestStack(t *testing.T) {
	server := netnstest.New(t, "bgsrv")
	client := netnstest.New(t, "bgcli")
	netnstest.Connect(t, server, client, []netip.Prefix{netip.MustParsePrefix(serverIP + "/24")}, []netip.Prefix{netip.MustParsePrefix(clientIP + "/24")})
	dataDir := t.TempDir()
	pid := startStack(t, server, dataDir)

	// The audit of the server namespace against the seed's policy: the five are valid and
	// owned by the stack; the seed's nginx, databases and Zabbix agent are not running here.
	pol, err := policy.Load("service-bindings.yaml")
	if err != nil {
		t.Fatal(err)
	}
	snap, err := observe.Observe(observe.Options{Netns: server.Name})
	if err != nil {
		t.Fatal(err)
	}
	rep := audit.Judge(pol, snap.Sockets)
	status := map[string]audit.Status{}
	for _, f := range rep.Findings {
		status[f.ServiceName()] = f.Status
		if f.Status == audit.Valid && (f.Actual.Process == nil || f.Actual.Process.PID != pid) {
			t.Errorf("%s: owner %+v, want the stack (pid %d)", f.ServiceName(), f.Actual.Process, pid)
		}
		if f.Status == audit.Invalid || f.Status == audit.Unexpected {
			t.Errorf("finding %s %s: %s", f.Status, f.ServiceName(), f.Reason)
		}
	}
	for _, s := range services {
		if status[s.policyName] != audit.Valid {
			t.Errorf("%s (%s): %q, want valid", s.policyName, s.role, status[s.policyName])
		}
	}

	startFrontProxy(t, server, dataDir)
	front := serverIP + ":8080"
	forged := http.Header{"X-Forwarded-For": {"127.0.0.1"}}

	if r := get(t, client, front, "/api/portfolio", nil); r.status != 200 || !strings.Contains(r.body, `"symbol":"SAP"`) {
		t.Errorf("LAN client, /api/portfolio through the proxy: %+v", r)
	}
	if r := get(t, client, front, "/", nil); r.status != 200 || !strings.Contains(r.body, "<h1>Aktienanalyse</h1>") {
		t.Errorf("LAN client, / through the proxy to the frontend: %+v", r)
	}
	for _, h := range []http.Header{nil, forged, {"X-Forwarded-For": {"127.0.0.1, ::1"}}, {"X-Real-IP": {"127.0.0.1"}}} {
		r := get(t, client, front, "/internal/metrics", h)
		if r.status != 403 || r.ctype != "application/problem+json" || strings.Contains(r.body, "metrics") {
			t.Errorf("LAN client with %v, /internal/metrics: %+v, want 403 problem+json", h, r)
		}
	}
	if r := get(t, client, front, "/api/../internal/metrics", forged); r.status == 200 {
		t.Errorf("path trick reached /internal/metrics: %+v", r)
	}
	// On the server itself: a local client (named by the loopback proxy) may use /internal/.
	if r := get(t, server, "127.0.0.1:8001", "/internal/metrics", forged); r.status != 200 {
		t.Errorf("local client, /internal/metrics: %+v", r)
	}
	// A loopback peer without the header cannot be told from a proxy that forgot it: denied.
	if r := get(t, server, "127.0.0.1:8001", "/internal/metrics", nil); r.status != 403 {
		t.Errorf("loopback peer without header: %+v, want 403", r)
	}
	if r := get(t, server, "127.0.0.1:8004", "/status", forged); r.status != 200 || strings.Count(r.body, "healthy") != 4 {
		t.Errorf("monitoring /status: %+v, want the four others healthy", r)
	}
	// The services' ports are not reachable from the LAN at all.
	for _, port := range []string{"8001", "8002", "8003", "8004", "8443"} {
		if c, err := dialIn(client, serverIP+":"+port); err == nil {
			_ = c.Close()
			t.Errorf("port %s accepted a connection from the LAN", port)
		} else if !strings.Contains(err.Error(), "connection refused") {
			t.Errorf("port %s from the LAN: %v, want connection refused", port, err)
		}
	}
}
