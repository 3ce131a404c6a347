package corepython

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/bindguard/bindguard/internal/netnstest"
	"github.com/bindguard/bindguard/internal/proc"
)

// TestCoreUnderGuard runs the example as the README says, inside a network namespace: local
// clients reach /health and /internal/, a remote client relayed by the local nginx reaches
// /api/ only, and the app sees that client's real address.
func TestCoreUnderGuard(t *testing.T) {
	netnstest.Require(t)
	gunicorn := netnstest.RequireTool(t, "/usr/bin/gunicorn", "gunicorn")
	if err := exec.Command("/usr/bin/python3", "-c", "import flask").Run(); err != nil {
		t.Fatalf("python3-flask missing (make deps installs it): %v", err)
	}
	bg := filepath.Join(t.TempDir(), "bindguard")
	if out, err := exec.Command("go", "build", "-o", bg, "../../cmd/bindguard").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ns := netnstest.New(t, "bgcore")
	cmd := exec.Command("nsenter", "--net="+ns.Path, bg, "run", "--policy", "bindguard.yaml", // #nosec G204 -- our own build
		"--service", "intelligent_core_service", "--guard", "--route", "/api/=proxy_only", "--",
		"/bin/sh", "-c", `exec `+gunicorn+` -w 1 --bind "unix:$BINDGUARD_UPSTREAM" app:app`)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(_ context.Context, network, addr string) (net.Conn, error) {
			var conn net.Conn
			err := proc.InNetNS(ns.Path, func() (err error) { conn, err = net.Dial(network, addr); return err })
			return conn, err
		}}}
	get := func(path, xff string) (int, string) {
		req, _ := http.NewRequest("GET", "http://127.0.0.1:8001"+path, nil)
		req.Header.Set("X-Forwarded-For", xff)
		resp, err := c.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer func() { _ = resp.Body.Close() }()
		var body struct{ Client string }
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body.Client
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if code, _ := get("/health", "127.0.0.1"); code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the core service did not answer in 20 s")
		}
	}
	// nginx on this host appends the address it got the connection from.
	const remote = "127.0.0.1, 203.0.113.9"
	for _, tc := range []struct {
		path, xff  string
		status     int
		seenClient string
	}{
		{"/health", "127.0.0.1", 200, "127.0.0.1"},
		{"/internal/metrics", "127.0.0.1", 200, "127.0.0.1"},
		{"/api/portfolio", remote, 200, "203.0.113.9"},
		{"/internal/metrics", remote, 403, ""},
		{"/health", remote, 403, ""},
		{"/api/../internal/metrics", remote, 403, ""},
	} {
		code, client := get(tc.path, tc.xff)
		if code != tc.status || client != tc.seenClient {
			t.Errorf("%s with X-Forwarded-For %q: %d, app saw %q; want %d, %q", tc.path, tc.xff, code, client, tc.status, tc.seenClient)
		}
	}
}
