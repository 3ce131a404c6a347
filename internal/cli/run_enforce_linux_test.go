package cli

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/bindguard/bindguard/internal/kernel"
	"github.com/bindguard/bindguard/internal/netnstest"
	"github.com/bindguard/bindguard/internal/runner"
)

// runEnforcePolicy is run's test policy with ports 7000-7099 guarded.
const runEnforcePolicy = runPolicy + `enforce:
  mode: deny
  guard: [tcp/7000-7099]
`

// runEnforceEnv is what the run --enforce tests share: a network namespace, a cgroup the test
// made (run starts in it, so the cgroups run makes are its children), a pin root of its own
// and the policy. Everything is removed at cleanup.
type runEnforceEnv struct {
	ns            *netnstest.NS
	mount, parent string
	cgf           *os.File
	pins, pol     string
}

func newRunEnforceEnv(t *testing.T) *runEnforceEnv {
	t.Helper()
	netnstest.Require(t)
	netnstest.RequireTool(t, python, "python3")
	mount, err := kernel.FindCgroup2()
	if err != nil {
		t.Fatal("no cgroup2:", err)
	}
	e := &runEnforceEnv{ns: netnstest.New(t, "bgrenf"), mount: mount}
	suffix := strings.TrimPrefix(e.ns.Name, "bgrenf-")
	e.parent = filepath.Join(mount, "bindguard-run-test-"+suffix)
	e.pins = filepath.Join("/sys/fs/bpf", "bindguard-run-test-"+suffix)
	if err := os.Mkdir(e.parent, 0o755); err != nil { // #nosec G301 -- a cgroup directory
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sts, _ := kernel.EnforcementStatus(kernel.EnforceOptions{PinRoot: e.pins})
		for _, st := range sts {
			if err := kernel.RemoveEnforcement(st.ID, kernel.EnforceOptions{PinRoot: e.pins}); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
		_ = os.RemoveAll(e.pins)
		ents, _ := os.ReadDir(e.parent)
		for _, ent := range ents {
			if ent.IsDir() {
				_ = os.Remove(filepath.Join(e.parent, ent.Name()))
			}
		}
		if err := os.Remove(e.parent); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	if e.cgf, err = os.Open(e.parent); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.cgf.Close() })
	// Readable by uid 65534 too (TestRunEnforceRefusals).
	dir, err := os.MkdirTemp("", "bindguard-run-enforce-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil { // #nosec G302 -- uid 65534 must enter it
		t.Fatal(err)
	}
	e.pol = filepath.Join(dir, "bindguard.yaml")
	if err := os.WriteFile(e.pol, []byte(runEnforcePolicy), 0o644); err != nil { // #nosec G306 -- a test policy, for uid 65534 to read
		t.Fatal(err)
	}
	return e
}

// start starts `bindguard run ARGS` in the namespace and in the test's cgroup.
func (e *runEnforceEnv) start(t *testing.T, args ...string) *daemon {
	t.Helper()
	return e.startIn(t, e.cgf, args...)
}

// startIn starts `bindguard run ARGS` in the namespace and in the cgroup cg.
func (e *runEnforceEnv) startIn(t *testing.T, cg *os.File, args ...string) *daemon {
	t.Helper()
	return startRunWith(t, e.ns, func(cmd *exec.Cmd) {
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cg.Fd())} // #nosec G115 -- an fd
	}, append([]string{"--policy", e.pol, "--pin-root", e.pins}, args...)...)
}

// probe runs bindprobe.py through `bindguard run ARGS` with the binds and returns what it wrote.
func (e *runEnforceEnv) probe(t *testing.T, args []string, binds ...string) (string, *daemon) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out")
	t.Setenv("OUT", out)
	d := e.start(t, append(append(args, "--", python, "bindprobe.py"), binds...)...)
	if code := d.exitStatus(t); code != 0 {
		t.Fatalf("run %v: exit %d\n%s", args, code, d.logs)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("%v\n%s", err, d.logs)
	}
	return string(b), d
}

// children lists the cgroups under the test's cgroup.
func (e *runEnforceEnv) children(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir(e.parent)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, ent := range ents {
		if ent.IsDir() {
			out = append(out, ent.Name())
		}
	}
	return out
}

func (e *runEnforceEnv) status(t *testing.T) []kernel.EnforceStatus {
	t.Helper()
	sts, err := kernel.EnforcementStatus(kernel.EnforceOptions{PinRoot: e.pins})
	if err != nil {
		t.Fatal(err)
	}
	return sts
}

// TestRunEnforceExec: run --enforce makes a cgroup of its own under the one it was started
// in, enforces it and execs there: the command (a real Python process, run's own pid) gets
// EPERM for every bind the policy forbids (another service's port on a wildcard, a guarded
// port) while the socket run passed serves and the allowed binds work. Without --enforce the
// same binds succeed. The cgroup and its enforcement stay after the command exits, and the
// next run --enforce there removes them; a socket that cannot be bound stops run before the
// command starts and leaves neither cgroup nor enforcement.
func TestRunEnforceExec(t *testing.T) {
	e := newRunEnforceEnv(t)
	binds := []string{"0.0.0.0:8002", "[::]:8002", "127.0.0.1:8002", "0.0.0.0:7050", "0.0.0.0:7150"}
	rel := strings.TrimPrefix(e.parent, e.mount)

	got, _ := e.probe(t, []string{"--service", "core"}, binds...)
	if want := "0.0.0.0:8002=ok [::]:8002=ok 127.0.0.1:8002=ok 0.0.0.0:7050=ok 0.0.0.0:7150=ok fd3=x cgroup=" + rel; got != want {
		t.Fatalf("without --enforce:\n got %s\nwant %s", got, want)
	}

	got, d := e.probe(t, []string{"--service", "core", "--enforce"}, binds...)
	own := runner.CgroupPrefix + "core." + strconv.Itoa(d.cmd.Process.Pid)
	if want := "0.0.0.0:8002=EPERM [::]:8002=EPERM 127.0.0.1:8002=ok 0.0.0.0:7050=EPERM 0.0.0.0:7150=ok fd3=x cgroup=" + rel + "/" + own; got != want {
		t.Errorf("with --enforce:\n got %s\nwant %s\n%s", got, want, d.logs)
	}
	if !strings.Contains(d.logs.String(), "enforcing") {
		t.Errorf("run did not say it enforces:\n%s", d.logs)
	}
	// The command is gone; its cgroup stays, enforced, with the denials counted.
	sts := e.status(t)
	if len(sts) != 1 || sts[0].Cgroup != rel+"/"+own || !sts[0].OK() {
		t.Fatalf("after the command exited: %+v", sts)
	}
	denials := map[string]uint64{}
	for _, r := range sts[0].Rules {
		denials[r.Name] = r.Denials
	}
	if denials["api tcp/8002"] != 2 || denials["guard tcp/7000-7099"] != 1 || denials["core tcp/8001"] != 0 {
		t.Errorf("denial counters %v, want api 2, guard 1, core 0", denials)
	}

	// The next run --enforce here removes what the first left.
	_, d2 := e.probe(t, []string{"--service", "core", "--enforce"})
	own2 := runner.CgroupPrefix + "core." + strconv.Itoa(d2.cmd.Process.Pid)
	if c := e.children(t); len(c) != 1 || c[0] != own2 {
		t.Errorf("cgroups after the second run: %v, want only %s", c, own2)
	}
	if sts := e.status(t); len(sts) != 1 || sts[0].Cgroup != rel+"/"+own2 {
		t.Errorf("enforced after the second run: %+v, want only %s", sts, own2)
	}
	if !strings.Contains(d2.logs.String(), "removed the cgroup an earlier run left") {
		t.Errorf("the second run did not say it removed the first's cgroup:\n%s", d2.logs)
	}

	// Taken: run fails before the command, and removes its cgroup and enforcement. (The second
	// run's cgroup, left behind, is removed at this start too.)
	e.ns.Listen(t, netnstest.Spec{Network: "tcp4", Addr: netip.MustParseAddrPort("127.0.0.1:8001")})
	marker := filepath.Join(t.TempDir(), "started")
	d3 := e.start(t, "--service", "core", "--enforce", "--", "touch", marker)
	if code := d3.exitStatus(t); code != ExitError || !strings.Contains(d3.logs.String(), "address already in use") {
		t.Errorf("taken: exit %d, want 2 and the bind error:\n%s", code, d3.logs)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the command ran")
	}
	if c, sts := e.children(t), e.status(t); len(c) != 0 || len(sts) != 0 {
		t.Errorf("after a failed start: cgroups %v, enforced %+v; want none", c, sts)
	}
}

// TestRunEnforceGuard: with --guard only the command (real gunicorn, after a Python bind
// probe) starts in the enforced cgroup; bindguard stays outside it and serves the declared
// socket; when the command has exited, run removes the cgroup and its enforcement.
func TestRunEnforceGuard(t *testing.T) {
	requireRunTools(t)
	e := newRunEnforceEnv(t)
	out := filepath.Join(t.TempDir(), "out")
	t.Setenv("OUT", out)
	d := e.start(t, "--service", "core", "--guard", "--enforce", "--", "sh", "-c",
		`/usr/bin/python3 bindprobe.py 0.0.0.0:8002 127.0.0.1:8002 0.0.0.0:7001 && exec `+gunicorn+` -w 1 --bind "unix:$BINDGUARD_UPSTREAM" flaskapp:app`)
	c := nsClientFrom(e.ns, netip.Addr{})
	w := waitServing(t, d, c, "http://127.0.0.1:8001/", "X-Forwarded-For", "127.0.0.1")
	rel := strings.TrimPrefix(e.parent, e.mount)
	own := rel + "/" + runner.CgroupPrefix + "core." + strconv.Itoa(d.cmd.Process.Pid)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if want := "0.0.0.0:8002=EPERM 127.0.0.1:8002=ok 0.0.0.0:7001=EPERM cgroup=" + own; string(b) != want {
		t.Errorf("the command's binds:\n got %s\nwant %s", b, want)
	}
	for pid, want := range map[int]string{d.cmd.Process.Pid: rel, w.PID: own} {
		if got := cgroupOf(t, pid); got != want {
			t.Errorf("pid %d is in cgroup %s, want %s", pid, got, want)
		}
	}
	if sts := e.status(t); len(sts) != 1 || sts[0].Cgroup != own || !sts[0].OK() {
		t.Errorf("while serving: %+v", sts)
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	if code := d.exitStatus(t); code != 0 {
		t.Errorf("after SIGTERM: exit %d\n%s", code, d.logs)
	}
	if c, sts := e.children(t), e.status(t); len(c) != 0 || len(sts) != 0 {
		t.Errorf("after the command exited: cgroups %v, enforced %+v; want none\n%s", c, sts, d.logs)
	}
}

// TestRunEnforceUndelegated: started in a systemd unit's cgroup that systemd did not mark
// delegated, run --enforce says so (and goes on, as root); marked delegated (trusted.delegate,
// as systemd 251 and later write it), it says nothing.
func TestRunEnforceUndelegated(t *testing.T) {
	e := newRunEnforceEnv(t)
	unit := filepath.Join(e.parent, "bg-unit.service")
	if err := os.Mkdir(unit, 0o755); err != nil { // #nosec G301 -- a cgroup directory
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Remove(unit) })
	cg, err := os.Open(unit)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cg.Close() }()
	for _, delegated := range []bool{false, true} {
		if delegated {
			if err := unix.Setxattr(unit, "trusted.delegate", []byte("1"), 0); err != nil {
				t.Fatal(err)
			}
		}
		d := e.startIn(t, cg, "--service", "core", "--guard", "--enforce", "--", "true")
		if code := d.exitStatus(t); code != 0 {
			t.Fatalf("exit %d\n%s", code, d.logs)
		}
		if warned := strings.Contains(d.logs.String(), "systemd did not delegate"); warned == delegated {
			t.Errorf("delegated %v: warned %v:\n%s", delegated, warned, d.logs)
		}
	}
}

// TestRunEnforceRefusals: without root, run --enforce says what it needs and runs nothing;
// a service --guard refuses is refused before any cgroup is made.
func TestRunEnforceRefusals(t *testing.T) {
	e := newRunEnforceEnv(t)
	bin := copyTestBinary(t)
	marker := filepath.Join(t.TempDir(), "started")
	cmd := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", bin) // #nosec G204 -- the test binary itself
	cmd.Env = append(os.Environ(), cliHelperEnv+"="+strings.Join([]string{"run", "--policy", e.pol, "--pin-root", e.pins, "--service", "core", "--enforce", "--", "touch", marker}, "\x1f"))
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(e.cgf.Fd())} // #nosec G115 -- an fd
	var o bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &o
	var ee *exec.ExitError
	if err := cmd.Run(); !errors.As(err, &ee) || ee.ExitCode() != ExitError || !strings.Contains(o.String(), "permission denied (run --enforce needs root") {
		t.Errorf("as uid 65534: %v, want exit 2 saying it needs root:\n%s", err, o.String())
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the command ran")
	}
	pub := filepath.Join(t.TempDir(), "pub.yaml")
	if err := os.WriteFile(pub, []byte("version: 1\nservices:\n  - {name: web, port: 8080, address: 0.0.0.0, access: public}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := e.start(t, "--policy", pub, "--service", "web", "--guard", "--enforce", "--", "touch", marker)
	if code := d.exitStatus(t); code != ExitError || !strings.Contains(d.logs.String(), "service web is public") {
		t.Errorf("public under --guard --enforce: exit %d\n%s", code, d.logs)
	}
	if c, sts := e.children(t), e.status(t); len(c) != 0 || len(sts) != 0 {
		t.Errorf("cgroups %v, enforced %+v; want none", c, sts)
	}
}

// cgroupOf is the cgroup2 path of pid.
func cgroupOf(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "0::"); ok {
			return strings.TrimSpace(rest)
		}
	}
	t.Fatalf("no cgroup2 line for pid %d", pid)
	return ""
}
