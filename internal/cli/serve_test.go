package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/redis/go-redis/v9"
	"golang.org/x/crypto/bcrypt"

	"github.com/bindguard/bindguard/internal/monitor"
	"github.com/bindguard/bindguard/internal/netnstest"
	"github.com/bindguard/bindguard/internal/proc"
	"github.com/bindguard/bindguard/internal/testcert"
)

// cliHelperEnv makes the test binary run the command line it holds (fields split by \x1f), as
// bindguard's main does.
const cliHelperEnv = "BINDGUARD_CLI_HELPER_ARGS"

func TestMain(m *testing.M) {
	netnstest.RunHelper()
	if spec := os.Getenv(enforceBindEnv); spec != "" {
		os.Exit(runEnforceBind(spec))
	}
	if a := os.Getenv(cliHelperEnv); a != "" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := Run(ctx, strings.Split(a, "\x1f"), Streams{In: os.Stdin, Out: os.Stdout, Err: os.Stderr})
		stop()
		os.Exit(ExitCode(err))
	}
	os.Exit(m.Run())
}

// daemon is a bindguard serve running in a namespace.
type daemon struct {
	cmd    *exec.Cmd
	logs   *syncWriter
	exited chan struct{} // closed when Wait returns; err is set before
	err    error
}

func startDaemon(t *testing.T, ns *netnstest.NS, args ...string) *daemon {
	t.Helper()
	cmd := exec.Command("nsenter", "--net="+ns.Path, os.Args[0], "-test.run=^$") // #nosec G204 G702 -- the test binary itself
	// These tests are about polling unless they say otherwise: no kernel events, no grace period.
	if !slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--watch") }) {
		args = append(args, "--watch", "poll")
	}
	if !slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--grace") }) {
		args = append(args, "--grace", "0s")
	}
	cmd.Env = append(os.Environ(), cliHelperEnv+"="+strings.Join(append([]string{"serve"}, args...), "\x1f"))
	d := &daemon{cmd: cmd, logs: &syncWriter{w: &bytes.Buffer{}}, exited: make(chan struct{})}
	cmd.Stderr = d.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.err = cmd.Wait(); close(d.exited) }()
	t.Cleanup(func() { d.stop(t, syscall.SIGKILL) })
	return d
}

// stop signals the daemon (nsenter execs it, so the pid is the daemon's) and waits for it;
// safe to call again, and from another goroutine.
func (d *daemon) stop(t *testing.T, sig syscall.Signal) error {
	t.Helper()
	select {
	case <-d.exited:
		return d.err
	default:
	}
	_ = d.cmd.Process.Signal(sig)
	select {
	case <-d.exited:
	case <-time.After(15 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.exited
	}
	return d.err
}

// syncWriter is a buffer written by exec's copying goroutine and read by the test.
type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.String()
}

// client is an HTTP client whose connections are made inside ns.
func nsClient(ns *netnstest.NS) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(_ context.Context, network, addr string) (net.Conn, error) {
			var c net.Conn
			err := proc.InNetNS(ns.Path, func() error {
				var err error
				c, err = net.DialTimeout(network, addr, 5*time.Second)
				return err
			})
			return c, err
		}}}
}

func httpGet(c *http.Client, url string) (int, string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// waitFor polls until cond holds or 20 s pass.
func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var ok bool
		if ok, last = cond(); ok {
			return
		}
	}
	t.Fatalf("%s: not within 20 s; last: %s", what, last)
}

// tryEvents asks the daemon for the last hour's events.
func tryEvents(c *http.Client) ([]monitor.Event, error) {
	code, body, err := httpGet(c, "http://127.0.0.1:9847/api/v1/events?since=1h")
	if err != nil || code != 200 {
		return nil, fmt.Errorf("events: %d %v %s", code, err, body)
	}
	var doc struct {
		Schema string          `json:"schema"`
		Events []monitor.Event `json:"events"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil || doc.Schema != "bindguard.events.v1" {
		return nil, fmt.Errorf("events document %q: %v", body, err)
	}
	return doc.Events, nil
}

func events(t *testing.T, c *http.Client) []monitor.Event {
	t.Helper()
	evs, err := tryEvents(c)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// eventsSoFar is tryEvents for polling: an error is "none yet".
func eventsSoFar(c *http.Client) []monitor.Event {
	evs, _ := tryEvents(c)
	return evs
}

const servePolicy = `version: 1
services:
  - {name: redis, port: 6379, address: 127.0.0.1, access: localhost_only}
  - {name: bindguard, port: 9847, address: 127.0.0.1, access: localhost_only, host_check: false}
`

// TestServe runs the real daemon in a namespace of its own: health, metrics (parsed back and
// checked by promtool), the audit and drift events as a socket comes and goes, a reload that is
// refused and one that is taken, kill -9 and a restart on the same store, and a clean SIGTERM.
func TestServe(t *testing.T) {
	ns := netnstest.New(t, "bgserve")
	dir := t.TempDir()
	pol := filepath.Join(dir, "bindguard.yaml")
	if err := os.WriteFile(pol, []byte(servePolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	args := []string{"--policy", pol, "--data", data, "--interval", "1s", "--listen", "127.0.0.1:9847"}
	d := startDaemon(t, ns, args...)
	c := nsClient(ns)

	waitFor(t, "health 200", func() (bool, string) {
		code, body, err := httpGet(c, "http://127.0.0.1:9847/health")
		return err == nil && code == 200, fmt.Sprint(code, body, err)
	})

	// Metrics: valid exposition, parsed back.
	_, body, err := httpGet(c, "http://127.0.0.1:9847/metrics")
	if err != nil {
		t.Fatal(err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("metrics do not parse: %v", err)
	}
	for _, name := range []string{"bindguard_audit_score", "bindguard_audit_up", "bindguard_audit_duration_seconds", "bindguard_audit_errors_total", "bindguard_audit_last_success_timestamp_seconds", "bindguard_service_compliant"} {
		if fams[name] == nil {
			t.Errorf("metric %s missing", name)
		}
	}
	cmd := exec.Command(netnstest.RequireTool(t, "promtool", "prometheus"), "check", "metrics") // #nosec G204 -- promtool on our output
	cmd.Stdin = strings.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}

	// Redis comes up on every interface: an invalid, critical finding with this test as owner.
	var l net.Listener
	if err := proc.InNetNS(ns.Path, func() error {
		var err error
		l, err = net.Listen("tcp4", "0.0.0.0:6379")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "event: redis missing -> invalid", func() (bool, string) {
		for _, e := range eventsSoFar(c) {
			if e.Kind == monitor.KindChanged && e.Service == "redis" && e.OldStatus == "missing" && e.NewStatus == "invalid" &&
				e.Severity == "critical" && e.Process != nil && e.Process.PID == os.Getpid() {
				return true, ""
			}
		}
		return false, fmt.Sprint(eventsSoFar(c))
	})
	code, body, _ := httpGet(c, "http://127.0.0.1:9847/api/v1/audit")
	if code != 200 || !strings.Contains(body, `"schema": "bindguard.audit.v1"`) || !strings.Contains(body, `"status": "invalid"`) {
		t.Errorf("/api/v1/audit: %d %s", code, body)
	}
	code, body, _ = httpGet(c, "http://127.0.0.1:9847/api/v2/audit")
	if code != 200 || !strings.Contains(body, `"schema": "bindguard.audit.v2"`) || !strings.Contains(body, `"namespaces": [`) || !strings.Contains(body, `"netns": "`) {
		t.Errorf("/api/v2/audit: %d %s", code, body)
	}
	_ = l.Close()
	waitFor(t, "event: redis invalid -> missing", func() (bool, string) {
		for _, e := range eventsSoFar(c) {
			if e.Kind == monitor.KindChanged && e.Service == "redis" && e.OldStatus == "invalid" && e.NewStatus == "missing" {
				return true, ""
			}
		}
		return false, ""
	})

	// A policy made invalid on disk: refused, logged, the daemon keeps serving.
	if err := os.WriteFile(pol, []byte("version: 1\nservices:\n  - {name: x, port: 0x50, access: public}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = d.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "reload refused in the log", func() (bool, string) { return strings.Contains(d.logs.String(), "policy reload refused"), "" })
	if code, _, err := httpGet(c, "http://127.0.0.1:9847/health"); err != nil || code != 200 {
		t.Errorf("health after a refused reload: %d %v", code, err)
	}
	// A valid one: taken, as an event.
	if err := os.WriteFile(pol, []byte(servePolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = d.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "policy_reloaded event", func() (bool, string) {
		for _, e := range eventsSoFar(c) {
			if e.Kind == monitor.KindPolicyReloaded {
				return true, ""
			}
		}
		return false, ""
	})
	before := events(t, c)
	maxID := before[len(before)-1].ID

	// kill -9, then a restart on the same store: it opens cleanly and the IDs go on.
	if err := d.stop(t, syscall.SIGKILL); err == nil {
		t.Error("SIGKILL: exit status 0")
	}
	d = startDaemon(t, ns, args...)
	waitFor(t, "health 200 after restart", func() (bool, string) {
		code, body, err := httpGet(c, "http://127.0.0.1:9847/health")
		return err == nil && code == 200, fmt.Sprint(code, body, err)
	})
	if err := proc.InNetNS(ns.Path, func() error {
		var err error
		l, err = net.Listen("tcp4", "127.0.0.1:6379")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	waitFor(t, "event after restart", func() (bool, string) {
		for _, e := range eventsSoFar(c) {
			if e.ID > maxID && e.Service == "redis" && e.NewStatus == "valid" {
				return true, ""
			}
		}
		return false, ""
	})
	for _, e := range events(t, c)[:len(before)] {
		if e.ID > maxID {
			t.Errorf("event %d reordered after the restart", e.ID)
		}
	}

	// SIGTERM: a clean exit.
	if err := d.stop(t, syscall.SIGTERM); err != nil {
		t.Errorf("SIGTERM: %v\n%s", err, d.logs.String())
	}
	if !strings.Contains(d.logs.String(), `"msg":"stopping"`) {
		t.Errorf("no stopping line in the JSON log:\n%s", d.logs.String())
	}
	// The store is readable once the daemon is gone.
	out, errOut, code := run(t, "", "events", "--data", data, "--since", "1h", "--format", "json")
	if code != 0 || !strings.Contains(out, `"kind": "policy_reloaded"`) {
		t.Errorf("events from the store: exit %d %s %s", code, errOut, out)
	}
}

// TestServeScrapedByPrometheus: a real Prometheus server scrapes the daemon, and the values
// come back through its HTTP API.
func TestServeScrapedByPrometheus(t *testing.T) {
	bin := netnstest.RequireTool(t, "prometheus", "prometheus")
	ns := netnstest.New(t, "bgprom")
	dir := t.TempDir()
	pol := filepath.Join(dir, "bindguard.yaml")
	if err := os.WriteFile(pol, []byte(servePolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	startDaemon(t, ns, "--policy", pol, "--data", filepath.Join(dir, "data"), "--interval", "1s")
	conf := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(conf, []byte("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: bindguard\n    static_configs:\n      - targets: ['127.0.0.1:9847']\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	prom := exec.Command("nsenter", "--net="+ns.Path, bin, "--config.file="+conf, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"), // #nosec G204 G702 -- prometheus on our own files
		"--web.listen-address=127.0.0.1:9090")
	var plog bytes.Buffer
	prom.Stdout, prom.Stderr = &plog, &plog
	if err := prom.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = prom.Process.Signal(syscall.SIGTERM); _ = prom.Wait() })
	c := nsClient(ns)
	var score model.Vector
	waitFor(t, "Prometheus has bindguard_audit_score", func() (bool, string) {
		code, body, err := httpGet(c, "http://127.0.0.1:9090/api/v1/query?query=bindguard_audit_score")
		if err != nil || code != 200 {
			return false, fmt.Sprint(code, err, body)
		}
		var resp struct {
			Status string `json:"status"`
			Data   struct {
				Result model.Vector `json:"result"`
			} `json:"data"`
		}
		if err := json.Unmarshal([]byte(body), &resp); err != nil {
			return false, err.Error()
		}
		score = resp.Data.Result
		return resp.Status == "success" && len(score) == 1, body
	})
	// redis is declared and not listening, bindguard is valid: 1 of 2 valid = 50.
	if v := float64(score[0].Value); v != 50 {
		t.Errorf("bindguard_audit_score through Prometheus = %v, want 50", v)
	}
	if job := score[0].Metric["job"]; job != "bindguard" {
		t.Errorf("job label %q", job)
	}
}

// startRedis runs a real redis-server inside ns on 127.0.0.1:port, persisting to dir (AOF,
// fsync always), until stop.
func startRedis(t *testing.T, ns *netnstest.NS, port int, dir string) (stop func()) {
	t.Helper()
	bin := netnstest.RequireTool(t, "redis-server", "redis-server")
	cmd := exec.Command("nsenter", "--net="+ns.Path, bin, "--port", fmt.Sprint(port), "--bind", "127.0.0.1", // #nosec G204 G702 -- redis on our own directory
		"--dir", dir, "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--daemonize", "no", "--protected-mode", "no")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	t.Cleanup(stop)
	return stop
}

func nsRedis(ns *netnstest.NS, port int) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port), MaxRetries: -1,
		Dialer: func(_ context.Context, network, addr string) (net.Conn, error) {
			var c net.Conn
			err := proc.InNetNS(ns.Path, func() error {
				var err error
				c, err = net.DialTimeout(network, addr, 2*time.Second)
				return err
			})
			return c, err
		}})
}

// churn opens and closes a listener on each port in turn, one audit interval apart, so that
// each makes drift events.
func churn(t *testing.T, ns *netnstest.NS, ports ...int) {
	t.Helper()
	for _, p := range ports {
		var l net.Listener
		if err := proc.InNetNS(ns.Path, func() error {
			var err error
			l, err = net.Listen("tcp4", fmt.Sprintf("0.0.0.0:%d", p))
			return err
		}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(1200 * time.Millisecond)
		_ = l.Close()
	}
}

// TestServeRedis: the seed's hash and the event stream in a real Redis; Redis stopped during
// a burst of changes, and the daemon killed with SIGKILL mid-burst: afterwards every stored
// event is on the stream.
func TestServeRedis(t *testing.T) {
	ns := netnstest.New(t, "bgredis")
	dir := t.TempDir()
	pol := filepath.Join(dir, "bindguard.yaml")
	if err := os.WriteFile(pol, []byte(servePolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	const port = 6390
	stopRedis := startRedis(t, ns, port, dir)
	rc := nsRedis(ns, port)
	defer func() { _ = rc.Close() }()
	ctx := context.Background()
	waitFor(t, "redis up", func() (bool, string) { err := rc.Ping(ctx).Err(); return err == nil, fmt.Sprint(err) })

	args := []string{"--policy", pol, "--data", filepath.Join(dir, "data"), "--interval", "1s", "--redis", fmt.Sprintf("redis://127.0.0.1:%d/0", port)}
	d := startDaemon(t, ns, args...)
	waitFor(t, "the seed's hash", func() (bool, string) {
		h, err := rc.HGetAll(ctx, "zabbix:port_bindings").Result()
		return err == nil && h["port_binding_security_score"] != "" && h["service_binding_correct_redis"] == "0" && h["port_bindings_missing"] == "1", fmt.Sprint(h, err)
	})
	if ttl := rc.TTL(ctx, "zabbix:port_bindings").Val(); ttl <= 0 || ttl > 300*time.Second {
		t.Errorf("hash TTL %v, want at most 300 s", ttl)
	}

	// Redis goes down during a burst of changes, and comes back.
	stopRedis()
	churn(t, ns, 7101, 7102, 7103)
	startRedis(t, ns, port, dir)
	// The daemon is killed mid-burst, and restarted on the same store.
	first := d
	go func() { time.Sleep(1500 * time.Millisecond); _ = first.stop(t, syscall.SIGKILL) }()
	churn(t, ns, 7104, 7105)
	if !strings.Contains(first.logs.String(), "sink delivery failed; retrying") {
		t.Errorf("no retry logged while Redis was down:\n%s", first.logs.String())
	}
	// Restarted with Redis named by the policy's monitor section instead of --redis.
	withRedis := servePolicy + fmt.Sprintf("monitor:\n  redis: redis://127.0.0.1:%d/0\n", port)
	if err := os.WriteFile(pol, []byte(withRedis), 0o600); err != nil {
		t.Fatal(err)
	}
	d = startDaemon(t, ns, args[:len(args)-2]...)
	churn(t, ns, 7106)

	c := nsClient(ns)
	waitFor(t, "every stored event on the stream", func() (bool, string) {
		stored := eventsSoFar(c)
		msgs, err := rc.XRange(ctx, "bindguard:events", "-", "+").Result()
		if err != nil {
			return false, err.Error()
		}
		onStream := map[string]bool{}
		for _, m := range msgs {
			onStream[fmt.Sprint(m.Values["id"])] = true
		}
		var lost []uint64
		for _, e := range stored {
			if !onStream[fmt.Sprint(e.ID)] {
				lost = append(lost, e.ID)
			}
		}
		ports := 0
		for _, e := range stored {
			if e.Port >= 7101 && e.Port <= 7106 {
				ports++
			}
		}
		return len(lost) == 0 && ports >= 8, fmt.Sprintf("%d stored (%d for the churned ports), %d on the stream, not yet there: %v", len(stored), ports, len(msgs), lost)
	})
	if err := d.stop(t, syscall.SIGTERM); err != nil {
		t.Errorf("SIGTERM: %v", err)
	}
}

// TestZabbixAgent2: with --prefix aktienanalyse, the real zabbix_agent2 answers the seed's keys
// through the UserParameter file gen zabbix writes, bindguard zabbix get and the daemon; and
// audit --format zabbix --prefix aktienanalyse, for the same state, sends the same keys with
// the same values, discovery included.
func TestZabbixAgent2(t *testing.T) {
	agent := netnstest.RequireTool(t, "zabbix_agent2", "zabbix-agent2")
	ns := netnstest.New(t, "bgzbx")
	dir := t.TempDir()
	bin := filepath.Join(dir, "bindguard")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/bindguard").CombinedOutput(); err != nil { // #nosec G204 -- building this module
		t.Fatalf("go build: %v\n%s", err, out)
	}
	pol := filepath.Join(dir, "bindguard.yaml")
	if err := os.WriteFile(pol, []byte(servePolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	startDaemon(t, ns, "--policy", pol, "--data", filepath.Join(dir, "data"), "--interval", "1s")
	c := nsClient(ns)
	waitFor(t, "health", func() (bool, string) {
		code, body, err := httpGet(c, "http://127.0.0.1:9847/health")
		return err == nil && code == 200, fmt.Sprint(code, body, err)
	})
	if _, errOut, code := run(t, "", "gen", "zabbix", "--prefix", "aktienanalyse", "--bindguard", bin, "--url", "http://127.0.0.1:9847", "-o", dir); code != 0 {
		t.Fatalf("gen zabbix: %s", errOut)
	}
	conf := filepath.Join(dir, "agent.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("Server=127.0.0.1\nHostname=bindguard-test\nLogType=console\nControlSocket=%s/agent.sock\nPluginSocket=%s/plugin.sock\nInclude=%s/bindguard.conf\n", dir, dir, dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	// agentTest is the agent's answer to a key: its value, or the whole output when the key
	// is not supported.
	answer := regexp.MustCompile(`(?m)^\S+\s+\[s\|(.*)\]\s*$`)
	agentTest := func(key string) (string, bool) {
		out, err := exec.Command("nsenter", "--net="+ns.Path, agent, "-c", conf, "-t", key).CombinedOutput() // #nosec G204 G702 -- the agent on our own configuration
		m := answer.FindStringSubmatch(string(out))
		if err != nil || m == nil {
			return fmt.Sprintf("%v\n%s", err, out), false
		}
		return m[1], true
	}
	for key, want := range map[string]string{
		// redis declared and missing, bindguard valid: 1 of 2 = 50.
		"aktienanalyse.binding.security.score":     "50",
		"aktienanalyse.port.bindings[missing]":     "1",
		"aktienanalyse.port.bindings[valid]":       "1",
		"aktienanalyse.service.binding[redis]":     "0",
		"aktienanalyse.service.binding[bindguard]": "1",
		"aktienanalyse.service.discovery":          `[{"{#SERVICE}":"redis","{#PROTOCOL}":"tcp","{#PORT}":6379},{"{#SERVICE}":"bindguard","{#PROTOCOL}":"tcp","{#PORT}":9847}]`,
	} {
		if got, ok := agentTest(key); !ok || got != want {
			t.Errorf("zabbix_agent2 -t %s: %s, want %s", key, got, want)
		}
	}
	// An unknown service is not a made-up 0: agent 2 passes on the error text, which the
	// numeric item refuses (the item becomes unsupported).
	if got, _ := agentTest("aktienanalyse.service.binding[nope]"); !strings.Contains(got, `the policy declares no service "nope"`) {
		t.Errorf("zabbix_agent2 -t aktienanalyse.service.binding[nope] = %s, want the error", got)
	}

	// audit --format zabbix in the same namespace sends what the agent answers, key for key.
	out, err := exec.Command("nsenter", "--net="+ns.Path, bin, "audit", "--policy", pol, "--format", "zabbix", "--prefix", "aktienanalyse", "--fail-on", "critical").Output() // #nosec G204 G702 -- the binary built above
	if err != nil {
		t.Fatalf("audit --format zabbix: %v\n%s", err, out)
	}
	keys, values := senderItems(t, string(out))
	if len(keys) != 10 {
		t.Errorf("audit sends %d items, want 10 (discovery, score, 4 statuses, 2 services, namespace discovery, its score):\n%s", len(keys), out)
	}
	for _, key := range keys {
		if got, ok := agentTest(key); !ok || got != values[key] {
			t.Errorf("audit sends %s = %s; zabbix_agent2 -t answers %s", key, values[key], got)
		}
	}
}

// TestServeNamespaceVanishes: with --netns all, a namespace (a container) that goes away is
// drift, not a failed audit.
func TestServeNamespaceVanishes(t *testing.T) {
	home := netnstest.New(t, "bgvanhome")
	dir := t.TempDir()
	pol := filepath.Join(dir, "bindguard.yaml")
	if err := os.WriteFile(pol, []byte(servePolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	startDaemon(t, home, "--policy", pol, "--data", filepath.Join(dir, "data"), "--interval", "1s", "--netns", "all")
	c := nsClient(home)
	waitFor(t, "health", func() (bool, string) {
		code, body, err := httpGet(c, "http://127.0.0.1:9847/health")
		return err == nil && code == 200, fmt.Sprint(code, body, err)
	})
	guest := netnstest.New(t, "bgvanguest")
	pid := guest.StartListener(t, "TestHelperListener", netnstest.MustSpec(t, "tcp4:0.0.0.0:7311"))
	waitFor(t, "the guest's socket appears", func() (bool, string) {
		for _, e := range eventsSoFar(c) {
			if e.Netns == guest.Name && e.Port == 7311 && e.Kind == monitor.KindAppeared {
				return true, ""
			}
		}
		return false, ""
	})
	// The container stops: its process ends and its namespace is deleted.
	if p, err := os.FindProcess(pid); err == nil {
		_ = p.Kill()
	}
	if out, err := exec.Command("ip", "netns", "del", guest.Name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns del: %v %s", err, out)
	}
	waitFor(t, "the guest's socket disappears", func() (bool, string) {
		for _, e := range eventsSoFar(c) {
			if e.Netns == guest.Name && e.Port == 7311 && e.Kind == monitor.KindDisappeared {
				return true, ""
			}
		}
		return false, ""
	})
	if code, body, err := httpGet(c, "http://127.0.0.1:9847/health"); err != nil || code != 200 {
		t.Errorf("health after the namespace went away: %d %s %v", code, body, err)
	}
}

// TestHelperListener is the body of helper processes (netnstest.StartListener).
func TestHelperListener(t *testing.T) { netnstest.RunHelper() }

// TestServeWebConfig: TLS and basic auth from an exporter-toolkit web configuration; beyond
// loopback, no start without TLS or an allow list unless --insecure-listen.
func TestServeWebConfig(t *testing.T) {
	ns := netnstest.New(t, "bgweb")
	ns.AddAddress(t, netip.MustParsePrefix("10.9.9.1/24"))
	dir := t.TempDir()
	pol := filepath.Join(dir, "bindguard.yaml")
	if err := os.WriteFile(pol, []byte("version: 1\nservices: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Beyond loopback, in the clear, without an allow list: refused.
	d := startDaemon(t, ns, "--policy", pol, "--data", filepath.Join(dir, "d1"), "--listen", "10.9.9.1:9847")
	if err := d.stop(t, 0); err == nil {
		t.Error("serve on 10.9.9.1 without TLS or an allow list started")
	}
	if !strings.Contains(d.logs.String(), "refusing to serve on 10.9.9.1:9847 without TLS") {
		t.Errorf("refusal not explained: %s", d.logs.String())
	}

	// With TLS and basic auth.
	certPEM, keyPEM := testcert.PEM(t)
	for name, b := range map[string][]byte{"tls.crt": certPEM, "tls.key": keyPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	web := filepath.Join(dir, "web.yml")
	webConf := fmt.Sprintf("tls_server_config:\n  cert_file: %s/tls.crt\n  key_file: %s/tls.key\nbasic_auth_users:\n  prometheus: %s\n", dir, dir, hash)
	if err := os.WriteFile(web, []byte(webConf), 0o600); err != nil {
		t.Fatal(err)
	}
	startDaemon(t, ns, "--policy", pol, "--data", filepath.Join(dir, "d2"), "--listen", "10.9.9.1:9847", "--web.config.file", web, "--insecure-listen=false")
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	c := nsClient(ns)
	c.Transport.(*http.Transport).TLSClientConfig = &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12}
	get := func(user, pass string) (int, error) {
		req, _ := http.NewRequest(http.MethodGet, "https://10.9.9.1:9847/health", nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := c.Do(req)
		if err != nil {
			return 0, err
		}
		_ = resp.Body.Close()
		return resp.StatusCode, nil
	}
	waitFor(t, "TLS with basic auth: 200", func() (bool, string) {
		code, err := get("prometheus", "s3cret")
		return code == 200, fmt.Sprint(code, err)
	})
	for _, creds := range [][2]string{{"", ""}, {"prometheus", "wrong"}} {
		if code, err := get(creds[0], creds[1]); code != http.StatusUnauthorized {
			t.Errorf("credentials %v: %d %v, want 401", creds, code, err)
		}
	}
	// Plain HTTP is not served.
	if code, _, err := httpGet(nsClient(ns), "http://10.9.9.1:9847/health"); err == nil && code == 200 {
		t.Error("plain HTTP answered 200 on the TLS listener")
	}

	// --insecure-listen: the operator's explicit choice.
	_ = os.WriteFile(pol, []byte("version: 1\nservices: []\n"), 0o600)
	startDaemon(t, ns, "--policy", pol, "--data", filepath.Join(dir, "d3"), "--listen", "10.9.9.1:9848", "--insecure-listen")
	waitFor(t, "insecure listener", func() (bool, string) {
		code, _, err := httpGet(nsClient(ns), "http://10.9.9.1:9848/health")
		return err == nil && code != 0, fmt.Sprint(code, err)
	})
}
