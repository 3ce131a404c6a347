//go:build linux

package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bindguard/bindguard/internal/kernel"
	"github.com/bindguard/bindguard/internal/monitor"
	"github.com/bindguard/bindguard/internal/netnstest"
)

// enforceServePolicy: redis may bind 127.0.0.1:6379 only; after the reload it is public and
// web (tcp/7300) may bind loopback only.
const (
	enforceServePolicy = `version: 1
services:
  - {name: redis, port: 6379, address: 127.0.0.1, access: localhost_only}
  - {name: bindguard, port: 9847, address: 127.0.0.1, access: localhost_only, host_check: false}
`
	enforceServeReloaded = `version: 1
services:
  - {name: redis, port: 6379, access: public}
  - {name: web, port: 7300, access: localhost_only}
  - {name: bindguard, port: 9847, address: 127.0.0.1, access: localhost_only, host_check: false}
`
)

// enforceCgroup is a cgroup and a pin root of the test's own (the test process stays out of
// the cgroup), removed at cleanup after the enforcement under the pin root.
func enforceCgroup(t *testing.T) (cg, pins string, cgf *os.File) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to load BPF programs and create cgroups (run as root, as .ci/run does)")
	}
	mount, err := kernel.FindCgroup2()
	if err != nil {
		t.Skip("no cgroup2:", err)
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	cg = filepath.Join(mount, "bindguard-serve-enforce-"+hex.EncodeToString(b))
	pins = filepath.Join("/sys/fs/bpf", "bindguard-serve-test-"+hex.EncodeToString(b))
	if err := os.Mkdir(cg, 0o755); err != nil { // #nosec G301 -- a cgroup directory
		t.Fatal(err)
	}
	if cgf, err = os.Open(cg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cgf.Close()
		if id, err := kernel.CgroupID(cg); err == nil {
			if err := kernel.RemoveEnforcement(id, kernel.EnforceOptions{PinRoot: pins}); err != nil && !errors.Is(err, kernel.ErrNotEnforced) {
				t.Errorf("remove enforcement: %v", err)
			}
		}
		_ = os.RemoveAll(pins)
		if err := os.Remove(cg); err != nil {
			t.Errorf("remove the test cgroup: %v", err)
		}
	})
	return cg, pins, cgf
}

// denials are the denied events the daemon serves.
func denials(c *http.Client) ([]monitor.Event, string) {
	code, body, err := httpGet(c, "http://127.0.0.1:9847/api/v2/events?since=1h")
	if err != nil || code != 200 {
		return nil, fmt.Sprint(code, err, body)
	}
	var doc struct {
		Schema string          `json:"schema"`
		Events []monitor.Event `json:"events"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil || doc.Schema != "bindguard.events.v2" {
		return nil, body
	}
	var out []monitor.Event
	for _, e := range doc.Events {
		if e.Kind == monitor.KindDenied {
			out = append(out, e)
		}
	}
	return out, body
}

// TestServeEnforce (root) runs the real daemon with --enforce on a cgroup the test creates, in
// a network namespace of its own, with a real Redis as its sink: a real redis-server
// configured `bind 0.0.0.0` started in the cgroup fails with EPERM, and the denial is an event
// naming it (pid, comm, unit-less cgroup, address, port, rule, errno) in the API, the metrics
// and the Redis stream, and not in v1. SIGHUP reloads the policy in place: redis may now bind
// the wildcard (it starts), and a bind of 0.0.0.0:7300 (declared loopback only now) is denied.
func TestServeEnforce(t *testing.T) {
	cg, pins, cgf := enforceCgroup(t)
	redisBin := netnstest.RequireTool(t, "redis-server", "redis-server")
	ns := netnstest.New(t, "bgsenf")
	dir := t.TempDir()
	pol := filepath.Join(dir, "bindguard.yaml")
	if err := os.WriteFile(pol, []byte(enforceServePolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	const sinkPort = 6391
	startRedis(t, ns, sinkPort, dir)
	rc := nsRedis(ns, sinkPort)
	defer func() { _ = rc.Close() }()
	ctx := context.Background()
	waitFor(t, "the sink's redis up", func() (bool, string) { err := rc.Ping(ctx).Err(); return err == nil, fmt.Sprint(err) })

	d := startDaemon(t, ns, "--policy", pol, "--data", filepath.Join(dir, "data"), "--interval", "1s",
		"--enforce", "--enforce.cgroup", cg, "--enforce.pin-root", pins, "--redis", fmt.Sprintf("redis://127.0.0.1:%d/0", sinkPort))
	c := nsClient(ns)
	metric := func(want ...string) {
		t.Helper()
		waitFor(t, "metrics "+strings.Join(want, ", "), func() (bool, string) {
			_, body, err := httpGet(c, "http://127.0.0.1:9847/metrics")
			if err != nil {
				return false, err.Error()
			}
			for _, w := range want {
				if !strings.Contains(body, w+"\n") {
					return false, fmt.Sprintf("no %q in\n%s\nlogs:\n%s", w, grepLines(body, "bindguard_enforce"), d.logs)
				}
			}
			return true, ""
		})
	}
	metric("bindguard_enforce_enabled 1", `bindguard_enforce_cgroups{scope="host"} 1`, `bindguard_enforce_attached{scope="host"} 1`,
		"bindguard_enforce_last_apply_successful 1")
	if _, body, err := httpGet(c, "http://127.0.0.1:9847/health"); err != nil || !strings.Contains(body, "enforce: 1 of 1 cgroups attached\n") {
		t.Errorf("health: %v\n%s", err, body)
	}

	// A real redis-server, bind 0.0.0.0, in the enforced cgroup: it cannot start.
	redis := func(bind string) (*exec.Cmd, string, chan error) {
		t.Helper()
		log := filepath.Join(dir, "redis-"+bind+".log")
		cmd := exec.Command("nsenter", "--net="+ns.Path, redisBin, "--bind", bind, "--port", "6379", "--save", "", // #nosec G204 -- fixed arguments
			"--appendonly", "no", "--daemonize", "no", "--dir", dir, "--logfile", log)
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cgf.Fd())} // #nosec G115 -- an fd
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		exited := make(chan struct{})
		go func() { done <- cmd.Wait(); close(exited) }()
		t.Cleanup(func() {
			select {
			case <-exited:
			default:
				_ = cmd.Process.Kill()
				<-exited
			}
		})
		return cmd, log, done
	}
	cmd, log, done := redis("0.0.0.0")
	select {
	case err := <-done:
		out, _ := os.ReadFile(log) // #nosec G304 -- our file
		if err == nil || !strings.Contains(string(out), "Operation not permitted") {
			t.Errorf("redis with bind 0.0.0.0 under enforcement: exit %v, log:\n%s", err, out)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("redis with bind 0.0.0.0 under enforcement is still running")
	}
	pid := cmd.Process.Pid // nsenter execs redis-server: the same process
	var ev monitor.Event
	waitFor(t, "the denied event", func() (bool, string) {
		evs, body := denials(c)
		for _, e := range evs {
			if e.Process != nil && e.Process.Name == "redis-server" {
				ev = e
				return true, ""
			}
		}
		return false, body
	})
	dn := ev.Denial
	if ev.Process.PID != pid || ev.Address != "0.0.0.0" || ev.Port != 6379 || ev.Protocol != "tcp" || ev.Service != "redis" || ev.Source != monitor.SourceEnforce ||
		dn == nil || dn.Rule != "redis tcp/6379" || dn.Errno != 1 || dn.Error != "EPERM" || dn.Mode != "deny" || dn.Scope != "host" || dn.Enforced != cg ||
		dn.Cgroup != "/"+filepath.Base(cg) || dn.ProcessGone != strings.Contains(ev.Reason, "had exited") || ev.Time.IsZero() || ev.StoredAt.IsZero() {
		js, _ := json.Marshal(ev)
		t.Errorf("denied event %s; want redis-server pid %d, tcp 0.0.0.0:6379, rule redis tcp/6379, EPERM, deny, scope host, cgroup %s", js, pid, cg)
	}
	metric(`bindguard_enforce_denials_total{mode="deny",scope="host",service="redis"} 1`)
	// bindguard events (asking the daemon) shows it.
	ec := exec.Command("nsenter", "--net="+ns.Path, os.Args[0], "-test.run=^$") // #nosec G204 -- the test binary
	ec.Env = append(os.Environ(), cliHelperEnv+"="+strings.Join([]string{"events", "--url", "http://127.0.0.1:9847", "--since", "1h"}, "\x1f"))
	if out, err := ec.CombinedOutput(); err != nil || !strings.Contains(string(out), "denied") || !strings.Contains(string(out), "deny redis tcp/6379") ||
		!strings.Contains(string(out), fmt.Sprintf("redis-server/%d", pid)) {
		t.Errorf("bindguard events: %v\n%s", err, out)
	}
	// v1 has no denied kind.
	if v1, err := tryEvents(c); err != nil {
		t.Error(err)
	} else {
		for _, e := range v1 {
			if e.Kind == monitor.KindDenied {
				t.Errorf("v1 events have a denied event: %+v", e)
			}
		}
	}
	waitFor(t, "the denial on the Redis stream", func() (bool, string) {
		msgs, err := rc.XRange(ctx, "bindguard:events", "-", "+").Result()
		if err != nil {
			return false, err.Error()
		}
		for _, m := range msgs {
			v := m.Values
			if v["kind"] == "denied" && v["rule"] == "redis tcp/6379" && v["process"] == "redis-server" && v["pid"] == fmt.Sprint(pid) &&
				v["errno"] == "1" && v["mode"] == "deny" && v["address"] == "0.0.0.0" && v["port"] == "6379" && v["id"] == fmt.Sprint(ev.ID) {
				return true, ""
			}
		}
		return false, fmt.Sprint(msgs)
	})

	// Before the reload 0.0.0.0:7300 is nobody's port: allowed.
	bind := func(spec, want string) {
		t.Helper()
		c := exec.Command("nsenter", "--net="+ns.Path, os.Args[0], "-test.run=^$") // #nosec G204 -- the test binary
		c.Env = append(os.Environ(), enforceBindEnv+"="+spec)
		c.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cgf.Fd())} // #nosec G115 -- an fd
		out, err := c.CombinedOutput()
		if got := strings.TrimSpace(string(out)); err != nil || got != want {
			t.Errorf("bind %s: %s %v, want %s", spec, got, err, want)
		}
	}
	bind("tcp 0.0.0.0:7300", "ok")
	if err := os.WriteFile(pol, []byte(enforceServeReloaded), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the reload applied", func() (bool, string) {
		l := d.logs.String()
		return strings.Contains(l, `"msg":"policy reloaded"`) && strings.Count(l, `"msg":"enforcing"`) >= 2, l
	})
	bind("tcp 0.0.0.0:7300", "EPERM")
	bind("tcp 127.0.0.1:7300", "ok")
	waitFor(t, "the reloaded rule's denial", func() (bool, string) {
		evs, body := denials(c)
		for _, e := range evs {
			// Go's listener binds "0.0.0.0" as a dual-stack "::".
			if e.Port == 7300 && e.Denial.Rule == "web tcp/7300" && e.Service == "web" && (e.Address == "0.0.0.0" || e.Address == "::") {
				return true, ""
			}
		}
		return false, body
	})
	// redis may bind the wildcard now: it starts.
	rcmd, rlog, rdone := redis("0.0.0.0")
	waitFor(t, "redis with bind 0.0.0.0 after the reload", func() (bool, string) {
		select {
		case err := <-rdone:
			out, _ := os.ReadFile(rlog) // #nosec G304 -- our file
			t.Fatalf("redis exited: %v\n%s", err, out)
		default:
		}
		out, _ := os.ReadFile(rlog) // #nosec G304 -- our file
		return strings.Contains(string(out), "Ready to accept connections"), string(out)
	})
	_ = rcmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-rdone:
	case <-time.After(10 * time.Second):
		t.Error("redis did not stop on SIGTERM")
	}
	metric(`bindguard_enforce_attached{scope="host"} 1`, `bindguard_enforce_denials_total{mode="deny",scope="host",service="web"} 1`,
		`bindguard_enforce_denials_total{mode="deny",scope="host",service="redis"} 1`)
	if err := d.stop(t, syscall.SIGTERM); err != nil {
		t.Errorf("SIGTERM: %v\n%s", err, d.logs)
	}
	// Enforcement outlives serve, and a denial while no serve reads is read by the next one.
	bind("tcp 0.0.0.0:7300", "EPERM")
	startDaemon(t, ns, "--policy", pol, "--data", filepath.Join(dir, "data"), "--interval", "1s",
		"--enforce", "--enforce.cgroup", cg, "--enforce.pin-root", pins)
	waitFor(t, "the denial made while serve was stopped", func() (bool, string) {
		evs, body := denials(c)
		n := 0
		for _, e := range evs {
			if e.Port == 7300 {
				n++
			}
		}
		return n == 2, body
	})
}

// TestServeEnforceDryRun (root): with --enforce.dry-run a forbidden bind succeeds and is a
// denied event of mode dry-run, errno 0.
func TestServeEnforceDryRun(t *testing.T) {
	cg, pins, cgf := enforceCgroup(t)
	ns := netnstest.New(t, "bgsdry")
	dir := t.TempDir()
	pol := filepath.Join(dir, "bindguard.yaml")
	if err := os.WriteFile(pol, []byte(enforceServePolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	startDaemon(t, ns, "--policy", pol, "--data", filepath.Join(dir, "data"), "--interval", "1s",
		"--enforce", "--enforce.cgroup", cg, "--enforce.pin-root", pins, "--enforce.dry-run")
	c := nsClient(ns)
	waitFor(t, "health", func() (bool, string) {
		code, body, err := httpGet(c, "http://127.0.0.1:9847/health")
		return err == nil && code == 200, fmt.Sprint(code, body, err)
	})
	b := exec.Command("nsenter", "--net="+ns.Path, os.Args[0], "-test.run=^$") // #nosec G204 -- the test binary
	b.Env = append(os.Environ(), enforceBindEnv+"=tcp 0.0.0.0:6379")
	b.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cgf.Fd())} // #nosec G115 -- an fd
	if out, err := b.CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("bind 0.0.0.0:6379 in dry-run: %s %v", out, err)
	}
	waitFor(t, "the would-be denial", func() (bool, string) {
		evs, body := denials(c)
		for _, e := range evs {
			if e.Port == 6379 && e.Denial.Mode == "dry-run" && e.Denial.Errno == 0 && e.Denial.Error == "" && e.Denial.Rule == "redis tcp/6379" &&
				strings.Contains(e.Reason, "would have been refused") {
				return true, ""
			}
		}
		return false, body
	})
	_, metrics, _ := httpGet(c, "http://127.0.0.1:9847/metrics")
	if !strings.Contains(metrics, `bindguard_enforce_denials_total{mode="dry-run",scope="host",service="redis"} 1`+"\n") {
		t.Errorf("metrics:\n%s", grepLines(metrics, "bindguard_enforce"))
	}
}

// grepLines keeps the lines of s that contain sub.
func grepLines(s, sub string) string {
	var b strings.Builder
	for l := range strings.Lines(s) {
		if strings.Contains(l, sub) {
			b.WriteString(l)
		}
	}
	return b.String()
}

// TestServeEnforceFlags: --enforce.* without --enforce, and contradicting targets, are usage
// errors; --enforce on a cgroup that does not exist refuses to start, saying so.
func TestServeEnforceFlags(t *testing.T) {
	dir := t.TempDir()
	pol := filepath.Join(dir, "bindguard.yaml")
	if err := os.WriteFile(pol, []byte(enforceServePolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"serve", "--policy", pol, "--data", filepath.Join(dir, "data"), "--watch", "poll"}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--enforce.cgroup", "/x"}, 2, "--enforce.cgroup needs --enforce"},
		{[]string{"--enforce", "--enforce.container", "web1", "--enforce.scope", "host"}, 2, "--enforce.scope is for --enforce.cgroup and --enforce.unit"},
		{[]string{"--enforce", "--enforce.scope", "host"}, 2, "--enforce.scope is for --enforce.cgroup and --enforce.unit"},
		{[]string{"--enforce", "--enforce.cgroup", "/x", "--enforce.unit", "y"}, 2, "none of the others can be"},
		{[]string{"--enforce", "--enforce.cgroup", "/bindguard-no-such-cgroup", "--enforce.pin-root", filepath.Join(dir, "pins")}, 2, "--enforce: nothing enforced: stat"},
	} {
		_, errOut, code := run(t, "", append(base, c.args...)...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("serve %v: exit %d, %s; want %d and %q", c.args, code, errOut, c.code, c.want)
		}
	}
}
