package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bindguard/bindguard/internal/audit"
	"github.com/bindguard/bindguard/internal/netnstest"
	"github.com/bindguard/bindguard/internal/proc"
)

const runPolicy = `version: 1
services:
  - name: core
    port: 8001
    address: 127.0.0.1
    access: localhost_only
  - name: api
    port: 8002
    address: 127.0.0.1
    access: localhost_only
  - name: agent
    port: 10050
    address: 0.0.0.0
    access: restricted
    allow: [10.77.0.3]
  - name: web
    port: 8080
    address: 0.0.0.0
    access: public
  - name: dns
    protocol: udp
    port: 5353
    address: 127.0.0.1
    access: localhost_only
`

const (
	python   = "/usr/bin/python3"
	gunicorn = "/usr/bin/gunicorn"
)

// requireRunTools skips without root and fails (as root) without Debian's gunicorn, Flask,
// uvicorn and FastAPI.
func requireRunTools(t *testing.T) {
	t.Helper()
	netnstest.Require(t)
	netnstest.RequireTool(t, gunicorn, "gunicorn")
	netnstest.RequireTool(t, python, "python3")
	for mod, pkg := range map[string]string{"flask": "python3-flask", "uvicorn": "python3-uvicorn", "fastapi": "python3-fastapi"} {
		if err := exec.Command(python, "-c", "import "+mod).Run(); err != nil { // #nosec G204 -- fixed module names
			t.Fatalf("%s cannot import %s (Debian package %s; make deps installs it): %v", python, mod, pkg, err)
		}
	}
}

func writeRunPolicy(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "bindguard.yaml")
	if err := os.WriteFile(p, []byte(runPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// startRun starts `bindguard run ARGS` (the test binary as bindguard) inside ns; it is killed
// by pid at cleanup if still running.
func startRun(t *testing.T, ns *netnstest.NS, args ...string) *daemon {
	t.Helper()
	return startRunWith(t, ns, nil, args...)
}

// startRunWith is startRun with prep applied to the command before it starts.
func startRunWith(t *testing.T, ns *netnstest.NS, prep func(*exec.Cmd), args ...string) *daemon {
	t.Helper()
	testdata, err := filepath.Abs(filepath.Join("testdata", "run"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("nsenter", "--net="+ns.Path, os.Args[0], "-test.run=^$") // #nosec G204 G702 -- the test binary itself
	cmd.Dir = testdata
	cmd.Env = append(os.Environ(), cliHelperEnv+"="+strings.Join(append([]string{"run"}, args...), "\x1f"))
	d := &daemon{cmd: cmd, logs: &syncWriter{w: &bytes.Buffer{}}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = d.logs, d.logs
	if prep != nil {
		prep(cmd)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.err = cmd.Wait(); close(d.exited) }()
	t.Cleanup(func() { _ = d.stop(t, syscall.SIGKILL) })
	return d
}

// exitStatus is the exit code of the finished daemon, 128+signal when a signal ended it.
func (d *daemon) exitStatus(t *testing.T) int {
	t.Helper()
	select {
	case <-d.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("still running after 30 s; output:\n%s", d.logs)
	}
	var ee *exec.ExitError
	switch {
	case d.err == nil:
		return 0
	case errors.As(d.err, &ee):
		if ws := ee.Sys().(syscall.WaitStatus); ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	t.Fatal(d.err)
	return -1
}

// whoami is what the test apps answer.
type whoami struct {
	PID           int     `json:"pid"`
	PPID          int     `json:"ppid"`
	XForwardedFor *string `json:"x_forwarded_for"`
	XRealIP       *string `json:"x_real_ip"`
	Forwarded     *string `json:"forwarded"`
	RemoteAddr    *string `json:"remote_addr"`
}

// nsClientFrom is an HTTP client whose connections are made inside ns, from local when valid.
func nsClientFrom(ns *netnstest.NS, local netip.Addr) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(_ context.Context, network, addr string) (net.Conn, error) {
			d := net.Dialer{Timeout: 5 * time.Second}
			if local.IsValid() {
				d.LocalAddr = &net.TCPAddr{IP: local.AsSlice()}
			}
			var c net.Conn
			err := proc.InNetNS(ns.Path, func() error {
				var err error
				c, err = d.Dial(network, addr)
				return err
			})
			return c, err
		}}}
}

// ask GETs url with the headers and decodes the app's answer; ok is false while nothing answers.
func ask(c *http.Client, url string, hdr ...string) (status int, w whoami, body string, err error) {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return 0, w, "", err
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, w, "", err
	}
	defer func() { _ = resp.Body.Close() }()
	var buf bytes.Buffer
	_, err = buf.ReadFrom(resp.Body)
	body = buf.String()
	if resp.StatusCode == http.StatusOK {
		err = json.Unmarshal([]byte(body), &w)
	}
	return resp.StatusCode, w, body, err
}

// waitServing waits until url answers 200 with the headers.
func waitServing(t *testing.T, d *daemon, c *http.Client, url string, hdr ...string) whoami {
	t.Helper()
	var w whoami
	waitFor(t, url+" answering", func() (bool, string) {
		select {
		case <-d.exited:
			t.Fatalf("run ended: %v\n%s", d.err, d.logs)
		default:
		}
		code, got, body, err := ask(c, url, hdr...)
		w = got
		return code == http.StatusOK && err == nil, strconv.Itoa(code) + " " + body + " " + errString(err)
	})
	return w
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func ppid(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	// pid (comm) state ppid ...
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	n, _ := strconv.Atoi(f[1])
	return n
}

// auditFinding audits ns against the policy and returns the finding of port.
func auditFinding(t *testing.T, ns *netnstest.NS, pol string, port uint16) audit.Finding {
	t.Helper()
	out, errOut, code := runAt(t, "audit", "--policy", pol, "--netns", ns.Name, "--format", "json")
	if code == ExitError {
		t.Fatalf("audit: %s", errOut)
	}
	var doc struct{ Findings []audit.Finding }
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, f := range doc.Findings {
		if f.Actual != nil && f.Actual.Port == port {
			return f
		}
	}
	t.Fatalf("no finding for port %d in\n%s", port, out)
	return audit.Finding{}
}

// TestRunExecServers: Flask under gunicorn and FastAPI under uvicorn serve on the socket run
// bound and passed as fd 3; run's pid became the server's (exec in place), the audit finds the
// sockets valid and owned by the server, and a SIGTERM to that pid ends it with its own code.
func TestRunExecServers(t *testing.T) {
	requireRunTools(t)
	ns := netnstest.New(t, "bgrun")
	pol := writeRunPolicy(t)
	// gunicorn takes socket-activated sockets by itself (it checks LISTEN_PID against its own pid);
	// an added --bind fd://3 would make gunicorn 20 take fd 3 twice and fail.
	g := startRun(t, ns, "--policy", pol, "--service", "core", "--", gunicorn, "-w", "1", "flaskapp:app")
	u := startRun(t, ns, "--policy", pol, "--service", "api", "--", python, "-m", "uvicorn", "--fd", "3", "fastapiapp:app")
	c := nsClientFrom(ns, netip.Addr{})
	for _, tc := range []struct {
		name string
		d    *daemon
		port uint16
	}{{"gunicorn", g, 8001}, {"uvicorn", u, 8002}} {
		t.Run(tc.name, func(t *testing.T) {
			url := "http://127.0.0.1:" + strconv.Itoa(int(tc.port)) + "/"
			w := waitServing(t, tc.d, c, url, "X-Forwarded-For", "10.9.9.9")
			runPID := tc.d.cmd.Process.Pid // nsenter execs the test binary, which execs run's command
			if w.PID != runPID && w.PPID != runPID {
				t.Errorf("served by pid %d (parent %d), want run's pid %d or its child", w.PID, w.PPID, runPID)
			}
			if w.XForwardedFor == nil || *w.XForwardedFor != "10.9.9.9" {
				t.Errorf("without --guard the app sees the client's own headers; got %v", w.XForwardedFor)
			}
			f := auditFinding(t, ns, pol, tc.port)
			if f.Status != audit.Valid || f.Actual.Process == nil {
				t.Fatalf("finding %+v, want valid with an owner", f)
			}
			if p := f.Actual.Process.PID; p != runPID && ppid(t, p) != runPID {
				t.Errorf("owner pid %d (%s), want run's pid %d or its child", p, f.Actual.Process.Name, runPID)
			}
		})
	}
	if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := g.exitStatus(t); code != 0 {
		t.Errorf("gunicorn after SIGTERM: exit %d, want its own 0\n%s", code, g.logs)
	}
}

// TestRunExecDescriptors: the command keeps run's pid (LISTEN_PID), gets exactly one socket,
// at fd 3, listening where the policy says and in blocking mode, and no other descriptor.
func TestRunExecDescriptors(t *testing.T) {
	netnstest.Require(t)
	ns := netnstest.New(t, "bgrun")
	pol := writeRunPolicy(t)
	out := filepath.Join(t.TempDir(), "out")
	script := `import os, socket
fds = sorted(int(x) for x in os.listdir("/proc/self/fd"))
s = socket.socket(fileno=3)
flags = open("/proc/self/fdinfo/3").read().split("flags:")[1].split()[0]
open(os.environ["OUT"], "w").write(" ".join([str(os.getpid()), os.environ["LISTEN_PID"], os.environ["LISTEN_FDS"], os.environ["LISTEN_FDNAMES"],
    "%s:%d" % s.getsockname(), str(s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)), str(int(flags, 8) & os.O_NONBLOCK), repr(fds)]))
`
	t.Setenv("OUT", out)
	t.Setenv("LISTEN_FDS", "7") // a parent's variables never reach the command
	d := startRun(t, ns, "--policy", pol, "--service", "core", "--", python, "-c", script)
	if code := d.exitStatus(t); code != 0 {
		t.Fatalf("exit %d\n%s", code, d.logs)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	pid := strconv.Itoa(d.cmd.Process.Pid)
	// listdir's own descriptor is the last one.
	want := pid + " " + pid + " 1 core 127.0.0.1:8001 1 0 [0, 1, 2, 3, 4]"
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
}

// TestRunExecUDP: a UDP service's socket is passed too, bound where declared.
func TestRunExecUDP(t *testing.T) {
	netnstest.Require(t)
	ns := netnstest.New(t, "bgrun")
	pol := writeRunPolicy(t)
	out := filepath.Join(t.TempDir(), "out")
	t.Setenv("OUT", out)
	script := `import os, socket
s = socket.socket(fileno=3)
open(os.environ["OUT"], "w").write("%d %s:%d %s" % (s.type, *s.getsockname(), os.environ["LISTEN_FDNAMES"]))`
	d := startRun(t, ns, "--policy", pol, "--service", "dns", "--", python, "-c", script)
	if code := d.exitStatus(t); code != 0 {
		t.Fatalf("exit %d\n%s", code, d.logs)
	}
	b, _ := os.ReadFile(out)
	if want := strconv.Itoa(syscall.SOCK_DGRAM) + " 127.0.0.1:5353 dns"; string(b) != want {
		t.Errorf("got %q, want %q", b, want)
	}
}

// TestRunGuardUvicorn: the FastAPI app under uvicorn on the upstream socket, told to believe
// the forwarding header there (only bindguard can connect), sees the client bindguard
// resolved as its own client address.
func TestRunGuardUvicorn(t *testing.T) {
	requireRunTools(t)
	ns := netnstest.New(t, "bgrun")
	pol := writeRunPolicy(t)
	d := startRun(t, ns, "--policy", pol, "--service", "api", "--guard", "--", "sh", "-c",
		`exec /usr/bin/python3 -m uvicorn --uds "$BINDGUARD_UPSTREAM" --forwarded-allow-ips '*' fastapiapp:app`)
	c := nsClientFrom(ns, netip.Addr{})
	w := waitServing(t, d, c, "http://127.0.0.1:8002/", "X-Forwarded-For", "127.0.0.1", "X-Real-IP", "10.1.1.1")
	if deref(w.XForwardedFor) != "127.0.0.1" || deref(w.XRealIP) != "127.0.0.1" || deref(w.RemoteAddr) != "127.0.0.1" {
		t.Errorf("app saw X-Forwarded-For %s, X-Real-IP %s, client %s; want 127.0.0.1 for all", deref(w.XForwardedFor), deref(w.XRealIP), deref(w.RemoteAddr))
	}
	if code, _, body, _ := ask(c, "http://127.0.0.1:8002/", "X-Forwarded-For", "127.0.0.1, 10.1.1.50"); code != http.StatusForbidden {
		t.Errorf("remote client through a local proxy: %d %s, want 403", code, body)
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	if code := d.exitStatus(t); code != 0 {
		t.Errorf("uvicorn after SIGTERM: exit %d\n%s", code, d.logs)
	}
}

// TestRunExitCode: the exit code is the command's own.
func TestRunExitCode(t *testing.T) {
	netnstest.Require(t)
	ns := netnstest.New(t, "bgrun")
	pol := writeRunPolicy(t)
	if code := startRun(t, ns, "--policy", pol, "--service", "core", "--", "sh", "-c", "exit 5").exitStatus(t); code != 5 {
		t.Errorf("exec: exit %d, want 5", code)
	}
	if code := startRun(t, ns, "--policy", pol, "--service", "core", "--guard", "--", "sh", "-c", "exit 6").exitStatus(t); code != 6 {
		t.Errorf("--guard: exit %d, want 6", code)
	}
	if code := startRun(t, ns, "--policy", pol, "--service", "core", "--guard", "--", "sh", "-c", "kill -KILL $$").exitStatus(t); code != 128+9 {
		t.Errorf("--guard, command killed by SIGKILL: exit %d, want 137", code)
	}
}

// TestRunRefusesBeforeStart: a socket that cannot be bound as declared (taken), a service the
// policy lacks, an invalid policy (an address the class forbids), a public or UDP service
// under --guard and an unknown command stop run before the command starts.
func TestRunRefusesBeforeStart(t *testing.T) {
	netnstest.Require(t)
	ns := netnstest.New(t, "bgrun")
	ns.Listen(t, netnstest.Spec{Network: "tcp4", Addr: netip.MustParseAddrPort("127.0.0.1:8001")})
	pol := writeRunPolicy(t)
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("version: 1\nservices:\n  - name: core\n    port: 8001\n    address: 0.0.0.0\n    access: localhost_only\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"taken", []string{"--policy", pol, "--service", "core"}, "address already in use"},
		{"taken, --guard", []string{"--policy", pol, "--service", "core", "--guard"}, "address already in use"},
		{"no such service", []string{"--policy", pol, "--service", "nope"}, `declares no service "nope"`},
		{"forbidden address", []string{"--policy", bad, "--service", "core"}, "localhost_only"},
		{"public under --guard", []string{"--policy", pol, "--service", "web", "--guard"}, "service web is public"},
		{"no --service", []string{"--policy", pol}, "--service is required"},
		{"bad --log-level", []string{"--policy", pol, "--service", "api", "--guard", "--log-level", "loud"}, "--log-level"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			marker := filepath.Join(t.TempDir(), "started")
			d := startRun(t, ns, append(tc.args, "--", "touch", marker)...)
			code := d.exitStatus(t)
			if code != ExitError || !strings.Contains(d.logs.String(), tc.want) {
				t.Errorf("exit %d, output %q; want 2 and %q", code, d.logs, tc.want)
			}
			if _, err := os.Stat(marker); err == nil {
				t.Error("the command ran")
			}
		})
	}
	d := startRun(t, ns, "--policy", pol, "--service", "api", "--", "no-such-command-bg")
	if code := d.exitStatus(t); code != ExitError || !strings.Contains(d.logs.String(), `command "no-such-command-bg" not found in PATH`) {
		t.Errorf("exit %d, output %q", code, d.logs)
	}
}

// TestRunGuard: behind --guard, a client forging X-Forwarded-For: 127.0.0.1 is refused (403) by
// a restricted service and a remote client relayed by a local proxy by a localhost_only one;
// an allowed client is admitted and the app sees its real address, with every forwarding
// header the client sent dropped. The audit shows bindguard (run's pid) owning the socket, and
// a SIGTERM reaches gunicorn, whose exit code run returns.
func TestRunGuard(t *testing.T) {
	requireRunTools(t)
	ns := netnstest.New(t, "bgrun")
	clients := netnstest.New(t, "bgcli")
	netnstest.Connect(t, ns, clients, []netip.Prefix{netip.MustParsePrefix("10.77.0.1/24")},
		[]netip.Prefix{netip.MustParsePrefix("10.77.0.2/24"), netip.MustParsePrefix("10.77.0.3/24")})
	pol := writeRunPolicy(t)
	gun := `exec /usr/bin/gunicorn -w 1 --bind "unix:$BINDGUARD_UPSTREAM" flaskapp:app`
	agent := startRun(t, ns, "--policy", pol, "--service", "agent", "--guard", "--", "sh", "-c", gun)
	core := startRun(t, ns, "--policy", pol, "--service", "core", "--guard", "--", "sh", "-c", gun)
	allowed := nsClientFrom(clients, netip.MustParseAddr("10.77.0.3"))
	other := nsClientFrom(clients, netip.MustParseAddr("10.77.0.2"))
	local := nsClientFrom(ns, netip.Addr{})
	// X_Forwarded_For and X_Real_IP: gunicorn turns "_" and "-" alike into HTTP_X_..., and
	// (20.1) joins them with the real header, the client's first.
	forged := []string{"X-Forwarded-For", "127.0.0.1", "X-Real-IP", "127.0.0.1", "Forwarded", "for=127.0.0.1",
		"X_Forwarded_For", "127.0.0.1", "X_Real_IP", "127.0.0.1"}

	w := waitServing(t, agent, allowed, "http://10.77.0.1:10050/", forged...)
	if w.XForwardedFor == nil || *w.XForwardedFor != "10.77.0.3" || w.XRealIP == nil || *w.XRealIP != "10.77.0.3" || w.Forwarded != nil {
		t.Errorf("allowed client: the app saw X-Forwarded-For %v, X-Real-IP %v, Forwarded %v; want 10.77.0.3, 10.77.0.3 and none",
			deref(w.XForwardedFor), deref(w.XRealIP), deref(w.Forwarded))
	}
	wl := waitServing(t, core, local, "http://127.0.0.1:8001/", "X-Forwarded-For", "127.0.0.1")
	if wl.XForwardedFor == nil || *wl.XForwardedFor != "127.0.0.1" {
		t.Errorf("local client: the app saw X-Forwarded-For %v, want 127.0.0.1", deref(wl.XForwardedFor))
	}
	for _, tc := range []struct {
		name string
		c    *http.Client
		url  string
		hdr  []string
	}{
		{"restricted, client not allowed, forging loopback", other, "http://10.77.0.1:10050/", forged},
		{"localhost_only, remote client through a local proxy", local, "http://127.0.0.1:8001/", []string{"X-Forwarded-For", "127.0.0.1, 10.1.1.50"}},
		{"localhost_only, other Host (DNS rebinding)", local, "http://127.0.0.1:8001/", []string{"X-Forwarded-For", "127.0.0.1", "Host", "evil.example"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", tc.url, nil)
			for i := 0; i+1 < len(tc.hdr); i += 2 {
				if tc.hdr[i] == "Host" {
					req.Host = tc.hdr[i+1]
					continue
				}
				req.Header.Add(tc.hdr[i], tc.hdr[i+1])
			}
			resp, err := tc.c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			_, _ = b.ReadFrom(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("status %d %s %q, want 403 problem+json", resp.StatusCode, resp.Header.Get("Content-Type"), b.String())
			}
		})
	}
	f := auditFinding(t, ns, pol, 10050)
	if f.Status != audit.Valid || f.Actual.Process == nil || f.Actual.Process.PID != agent.cmd.Process.Pid {
		t.Errorf("finding %+v (process %+v), want valid, owned by run (pid %d)", f, f.Actual.Process, agent.cmd.Process.Pid)
	}
	if err := agent.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := agent.exitStatus(t); code != 0 {
		t.Errorf("after SIGTERM: exit %d, want gunicorn's 0\n%s", code, agent.logs)
	}
	if !strings.Contains(agent.logs.String(), "Handling signal: term") {
		t.Errorf("gunicorn did not get the SIGTERM:\n%s", agent.logs)
	}
	// A SIGTERM, not cleanup's SIGKILL: gunicorn's orphaned worker would hold the output pipe
	// until it noticed its master gone.
	_ = core.cmd.Process.Signal(syscall.SIGTERM)
	if code := core.exitStatus(t); code != 0 {
		t.Errorf("core after SIGTERM: exit %d\n%s", code, core.logs)
	}
}

func deref(s *string) string {
	if s == nil {
		return "(none)"
	}
	return *s
}

// TestRunGuardSignals: run --guard forwards SIGHUP, SIGUSR1, SIGUSR2 and SIGINT to the command
// and exits with its code after SIGTERM; the upstream directory is 0700, the running user's,
// and removed at the end.
func TestRunGuardSignals(t *testing.T) {
	netnstest.Require(t)
	ns := netnstest.New(t, "bgrun")
	pol := writeRunPolicy(t)
	logf := filepath.Join(t.TempDir(), "signals")
	d := startRun(t, ns, "--policy", pol, "--service", "core", "--guard", "--", python, "signals.py", logf)
	var dir string
	waitFor(t, "run guarding", func() (bool, string) {
		out := d.logs.String()
		_, rest, ok := strings.Cut(out, "upstream=")
		if ok {
			dir = filepath.Dir(strings.Fields(rest)[0])
		}
		return ok, out
	})
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); fi.Mode().Perm() != 0o700 || int(st.Uid) != os.Geteuid() {
		t.Errorf("upstream directory %s: mode %v, uid %d; want 0700 and %d", dir, fi.Mode().Perm(), st.Uid, os.Geteuid())
	}
	want := "ready\n"
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGINT} {
		if err := d.cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		want += sigName(sig) + "\n"
		waitFor(t, "the command records "+sigName(sig), func() (bool, string) {
			b, _ := os.ReadFile(logf)
			return string(b) == want, string(b)
		})
	}
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := d.exitStatus(t); code != 3 {
		t.Errorf("exit %d, want the command's 3\n%s", code, d.logs)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("upstream directory %s left behind (%v)", dir, err)
	}
}

func sigName(s syscall.Signal) string {
	return map[syscall.Signal]string{syscall.SIGHUP: "SIGHUP", syscall.SIGUSR1: "SIGUSR1", syscall.SIGUSR2: "SIGUSR2", syscall.SIGINT: "SIGINT"}[s]
}
