package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/bindguard/bindguard/internal/monitor"
	"github.com/bindguard/bindguard/internal/netnstest"
	"github.com/bindguard/bindguard/internal/proc"
	"github.com/bindguard/bindguard/internal/testcert"
)

// restrictedPolicy declares bindguard's listener on loopback for 127.0.0.2 only: clients
// connecting from 127.0.0.3 are outside the allow list.
const restrictedPolicy = `version: 1
services:
  - {name: bindguard, port: 9847, address: 127.0.0.1, access: restricted, allow: [127.0.0.2]}
`

// srcClient is an HTTP client in ns whose connections leave from src.
func srcClient(ns *netnstest.NS, src string) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(_ context.Context, network, addr string) (net.Conn, error) {
			return dialFrom(ns, src, addr)
		}}}
}

func dialFrom(ns *netnstest.NS, src, addr string) (net.Conn, error) {
	var c net.Conn
	err := proc.InNetNS(ns.Path, func() error {
		d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
		var err error
		c, err = d.Dial("tcp", addr)
		return err
	})
	return c, err
}

func getAuth(c *http.Client, url, user, pass string) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer func() { _ = resp.Body.Close() }()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String(), nil
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

// TestServeAllowListBeforePassword: the real daemon, with basic auth and a rate limit, checks
// the allow list first. A client outside it gets the same 403 for no, a wrong and the right
// password, and its flood leaves the allowed scraper's rate budget untouched. Its refusals
// are logged with the reason, without its address (not --debug).
func TestServeAllowListBeforePassword(t *testing.T) {
	ns := netnstest.New(t, "bgallow")
	dir := t.TempDir()
	pol := filepath.Join(dir, "bindguard.yaml")
	writeFile(t, pol, restrictedPolicy, 0o600)
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	web := filepath.Join(dir, "web.yml")
	writeFile(t, web, fmt.Sprintf("basic_auth_users:\n  prometheus: %s\nrate_limit:\n  interval: 1m\n  burst: 5\n", hash), 0o600)
	d := startDaemon(t, ns, "--policy", pol, "--data", filepath.Join(dir, "data"), "--web.listen-address", "127.0.0.1:9847", "--web.config.file", web, "--interval", "1h")
	refused, allowed := srcClient(ns, "127.0.0.3"), srcClient(ns, "127.0.0.2")
	url := "http://127.0.0.1:9847/health"
	waitFor(t, "serve listening", func() (bool, string) {
		code, _, err := getAuth(refused, url, "", "")
		return err == nil, fmt.Sprint(code, err)
	})
	for _, creds := range [][2]string{{"", ""}, {"prometheus", "wrong"}, {"prometheus", "s3cret"}} {
		for range 10 {
			code, body, err := getAuth(refused, url, creds[0], creds[1])
			if err != nil || code != http.StatusForbidden || !strings.Contains(body, "access denied") {
				t.Fatalf("refused client, credentials %v: %d %q %v; want the same 403", creds, code, body, err)
			}
		}
	}
	// 31 refused requests so far, far beyond the burst of 5: the allowed client has its 5.
	for i := range 5 {
		if code, body, err := getAuth(allowed, url, "prometheus", "s3cret"); err != nil || code == http.StatusTooManyRequests || code == http.StatusForbidden {
			t.Fatalf("allowed client, request %d after the refused flood: %d %q %v", i, code, body, err)
		}
	}
	if code, _, err := getAuth(allowed, url, "prometheus", "s3cret"); err != nil || code != http.StatusTooManyRequests {
		t.Errorf("allowed client beyond its burst: %d %v, want 429 (the limit still applies to it)", code, err)
	}
	if err := d.stop(t, syscall.SIGTERM); err != nil {
		t.Errorf("serve: %v\n%s", err, d.logs.String())
	}
	logs := d.logs.String()
	if !strings.Contains(logs, `"msg":"request refused"`) || !strings.Contains(logs, `"reason":"`) {
		t.Errorf("refusals not logged with their reason:\n%s", logs)
	}
	if strings.Contains(logs, "127.0.0.3") {
		t.Errorf("a refused client's address is logged above debug level:\n%s", logs)
	}
}

// metricValue reads one unlabelled sample from /metrics text.
func metricValue(text, name string) (float64, bool) {
	for _, l := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f, err == nil
		}
	}
	return 0, false
}

// TestServeHeldConnections: with 256 file descriptors, a refused client holding 300 idle and
// trickling connections and the allowed client holding 20 idle ones, the allowed client is
// still answered and the audits still succeed.
func TestServeHeldConnections(t *testing.T) {
	prlimit := netnstest.RequireTool(t, "prlimit", "util-linux")
	ns := netnstest.New(t, "bgheld")
	dir := t.TempDir()
	pol := filepath.Join(dir, "bindguard.yaml")
	writeFile(t, pol, restrictedPolicy, 0o600)
	cmd := exec.Command(prlimit, "--nofile=256:256", "--", "nsenter", "--net="+ns.Path, os.Args[0], "-test.run=^$") // #nosec G204 G702 -- the test binary itself
	cmd.Env = append(os.Environ(), cliHelperEnv+"="+strings.Join([]string{"serve", "--policy", pol, "--data", filepath.Join(dir, "data"),
		"--web.listen-address", "127.0.0.1:9847", "--interval", "1s"}, "\x1f"))
	d := &daemon{cmd: cmd, logs: &syncWriter{w: &bytes.Buffer{}}, exited: make(chan struct{})}
	cmd.Stderr = d.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.err = cmd.Wait(); close(d.exited) }()
	t.Cleanup(func() { _ = d.stop(t, syscall.SIGKILL) })

	allowed := srcClient(ns, "127.0.0.2")
	metrics := func() string {
		_, body, _ := getAuth(allowed, "http://127.0.0.1:9847/metrics", "", "")
		return body
	}
	waitFor(t, "first audit", func() (bool, string) {
		v, ok := metricValue(metrics(), "bindguard_audit_last_success_timestamp_seconds")
		return ok && v > 0, fmt.Sprint(v, ok)
	})

	var held []net.Conn
	t.Cleanup(func() {
		for _, c := range held {
			_ = c.Close()
		}
	})
	hold := func(src string, n int, trickle bool) {
		for range n {
			c, err := dialFrom(ns, src, "127.0.0.1:9847")
			if err != nil {
				continue // a full backlog: the point is made
			}
			if trickle {
				_, _ = c.Write([]byte("GET /metrics HTTP/1.1\r\nHost: localhost\r\nX-Slow: "))
			}
			held = append(held, c)
		}
	}
	hold("127.0.0.3", 150, false)
	hold("127.0.0.3", 150, true)
	hold("127.0.0.2", 20, false)

	// The allowed client is answered on a fresh connection, repeatedly.
	for i := range 5 {
		code, body, err := getAuth(allowed, "http://127.0.0.1:9847/health", "", "")
		if err != nil || code != 200 {
			t.Fatalf("allowed client, request %d while connections are held: %d %q %v\n%s", i, code, body, err, d.logs.String())
		}
	}
	// Audits go on: two more succeed, none fails.
	first, _ := metricValue(metrics(), "bindguard_audit_last_success_timestamp_seconds")
	waitFor(t, "two more audits while connections are held", func() (bool, string) {
		m := metrics()
		v, _ := metricValue(m, "bindguard_audit_last_success_timestamp_seconds")
		return v >= first+2, fmt.Sprint(v, " from ", first)
	})
	if errs, ok := metricValue(metrics(), "bindguard_audit_errors_total"); !ok || errs != 0 {
		t.Errorf("bindguard_audit_errors_total %v (%v), want 0", errs, ok)
	}
	if logs := d.logs.String(); strings.Contains(logs, "too many open files") {
		t.Errorf("serve ran out of file descriptors:\n%s", logs)
	}
}

// TestServeEventsAndReload: serve records where it listens (TLS, basic auth) in its data
// directory; events with no flags asks it there; a second serve on the same data is told
// another serve holds it; a refused reload shows in /health (still 200) and the metric; a
// clean exit removes the record.
func TestServeEventsAndReload(t *testing.T) {
	ns := netnstest.New(t, "bgevents")
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	pol := filepath.Join(dir, "bindguard.yaml")
	writeFile(t, pol, "version: 1\nservices: []\n", 0o600)
	certPEM, keyPEM := testcert.PEM(t)
	writeFile(t, filepath.Join(dir, "tls.crt"), string(certPEM), 0o600)
	writeFile(t, filepath.Join(dir, "tls.key"), string(keyPEM), 0o600)
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	web := filepath.Join(dir, "web.yml")
	writeFile(t, web, fmt.Sprintf("tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\nbasic_auth_users:\n  prometheus: %s\n", hash), 0o600)
	d := startDaemon(t, ns, "--policy", pol, "--data", data, "--web.config.file", web, "--interval", "1h")

	var info monitor.ServeInfo
	waitFor(t, "serve.json", func() (bool, string) {
		var err error
		info, err = monitor.ReadServeInfo(data)
		return err == nil, fmt.Sprint(err)
	})
	if fi, err := os.Stat(filepath.Join(data, monitor.ServeInfoFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("serve.json: %v %v, want mode 0600", fi, err)
	}
	if info.URL != "https://127.0.0.1:9847" || info.Scheme != "https" || !info.BasicAuth || info.CertFile != filepath.Join(dir, "tls.crt") || info.PID == 0 {
		t.Errorf("serve.json: %+v", info)
	}
	c := nsClient(ns)
	c.Transport.(*http.Transport).TLSClientConfig = &tls.Config{InsecureSkipVerify: true} // #nosec G402 -- the test's own daemon
	health := func() (int, string) {
		code, body, _ := getAuth(c, "https://127.0.0.1:9847/health", "prometheus", "s3cret")
		return code, body
	}
	waitFor(t, "first audit", func() (bool, string) {
		code, body := health()
		return code == 200, fmt.Sprint(code, body)
	})

	// A refused reload: /health still 200, saying so; the metric 0. Then a good one.
	writeFile(t, pol, "version: 1\nservices:\n  - {name: x, port: 99999}\n", 0o600)
	_ = d.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "refused reload in /health", func() (bool, string) {
		code, body := health()
		return code == 200 && strings.Contains(body, "policy reload failed"), fmt.Sprint(code, body)
	})
	_, m, _ := getAuth(c, "https://127.0.0.1:9847/metrics", "prometheus", "s3cret")
	if v, ok := metricValue(m, "bindguard_config_last_reload_successful"); !ok || v != 0 {
		t.Errorf("bindguard_config_last_reload_successful after a refused reload: %v %v", v, ok)
	}
	writeFile(t, pol, "version: 1\nservices: []\n", 0o600)
	_ = d.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "good reload", func() (bool, string) {
		_, m, _ := getAuth(c, "https://127.0.0.1:9847/metrics", "prometheus", "s3cret")
		v, ok := metricValue(m, "bindguard_config_last_reload_successful")
		return ok && v == 1, m
	})

	// events, no flags but --data: without credentials it says how to give them.
	run := func(args ...string) (string, string, error) {
		cmd := exec.Command("nsenter", "--net="+ns.Path, os.Args[0], "-test.run=^$") // #nosec G204 G702 -- the test binary itself
		cmd.Env = append(os.Environ(), cliHelperEnv+"="+strings.Join(args, "\x1f"))
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		return out.String(), errb.String(), err
	}
	if _, stderr, err := run("events", "--data", data); err == nil || !strings.Contains(stderr, "--password-file") {
		t.Errorf("events without credentials: %v %q; want an error naming --password-file", err, stderr)
	}
	creds := filepath.Join(data, "events.credentials")
	writeFile(t, creds, "prometheus:s3cret\n", 0o644)
	if _, stderr, err := run("events", "--data", data); err == nil || !strings.Contains(stderr, "chmod 600") {
		t.Errorf("events with a world-readable credentials file: %v %q", err, stderr)
	}
	if err := os.Chmod(creds, 0o600); err != nil {
		t.Fatal(err)
	}
	out, stderr, err := run("events", "--data", data, "--since", "1h")
	if err != nil || !strings.Contains(out, "policy_reloaded") {
		t.Errorf("events while serve runs: %v\nstdout %s\nstderr %s", err, out, stderr)
	}

	// A second serve on the same data is told who holds it, and not to use --url.
	_, stderr, err = run("serve", "--policy", pol, "--data", data, "--web.listen-address", "127.0.0.1:9848")
	var ee *exec.ExitError
	if !errors.As(err, &ee) || !strings.Contains(stderr, fmt.Sprintf("another bindguard serve (pid %d, at https://127.0.0.1:9847) holds the store", info.PID)) || strings.Contains(stderr, "--url") {
		t.Errorf("second serve: %v %q", err, stderr)
	}

	if err := d.stop(t, syscall.SIGTERM); err != nil {
		t.Errorf("serve: %v", err)
	}
	if _, err := os.Stat(filepath.Join(data, monitor.ServeInfoFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("serve.json after a clean exit: %v", err)
	}
}
