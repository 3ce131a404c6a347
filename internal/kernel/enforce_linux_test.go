package kernel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/bindguard/bindguard/policy"
)

// enforceHelperEnv makes TestMain run the bind helper: in the network namespace the variable
// names, it performs the binds of enforceBindsEnv (or applies enforceApplyEnv and exits) and
// prints one line per bind: "ok PORT" or "err ERRNO".
const (
	enforceHelperEnv = "BINDGUARD_KERNEL_ENFORCE_HELPER"
	enforceBindsEnv  = "BINDGUARD_KERNEL_ENFORCE_BINDS"
	enforceApplyEnv  = "BINDGUARD_KERNEL_ENFORCE_APPLY"
)

// bindReq is one bind the helper performs.
type bindReq struct {
	Network string // tcp or udp
	Addr    string
	Port    uint16
	V6Only  bool
	// Listen without bind (TCP only): the kernel picks the port.
	NoBind bool
}

type applyReq struct {
	Cgroup  string
	PinRoot string
	E       Enforcement
}

func runEnforceHelper(ns string) int {
	if a := os.Getenv(enforceApplyEnv); a != "" {
		var req applyReq
		if err := json.Unmarshal([]byte(a), &req); err != nil {
			fmt.Println("err", err)
			return 2
		}
		if _, err := ApplyEnforcement(req.Cgroup, req.E, EnforceOptions{PinRoot: req.PinRoot}); err != nil {
			fmt.Println("err", err)
			return 1
		}
		fmt.Println("applied")
		return 0
	}
	runtime.LockOSThread()
	f, err := os.Open(ns) // #nosec G304 -- the test's namespace
	if err != nil {
		fmt.Println("setup", err)
		return 2
	}
	if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
		fmt.Println("setup", err)
		return 2
	}
	var reqs []bindReq
	if err := json.Unmarshal([]byte(os.Getenv(enforceBindsEnv)), &reqs); err != nil {
		fmt.Println("setup", err)
		return 2
	}
	for _, r := range reqs {
		port, addr, err := doBind(r)
		var en syscall.Errno
		switch {
		case err == nil:
			fmt.Println("ok", port, addr)
		case errors.As(err, &en):
			fmt.Println("err", int(en))
		default:
			fmt.Println("err", err)
		}
	}
	return 0
}

func doBind(r bindReq) (uint16, netip.Addr, error) {
	a := netip.MustParseAddr(r.Addr)
	family := unix.AF_INET
	if a.Is6() {
		family = unix.AF_INET6
	}
	typ := unix.SOCK_STREAM
	if r.Network == "udp" {
		typ = unix.SOCK_DGRAM
	}
	proto := 0
	if r.Network == "mptcp" {
		proto = unix.IPPROTO_MPTCP
	}
	fd, err := unix.Socket(family, typ|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return 0, netip.Addr{}, err
	}
	defer func() { _ = unix.Close(fd) }()
	if family == unix.AF_INET6 {
		v := 0
		if r.V6Only {
			v = 1
		}
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, v); err != nil {
			return 0, netip.Addr{}, err
		}
	}
	if !r.NoBind {
		var sa unix.Sockaddr
		if a.Is6() {
			sa = &unix.SockaddrInet6{Addr: a.As16(), Port: int(r.Port)}
		} else {
			sa = &unix.SockaddrInet4{Addr: a.As4(), Port: int(r.Port)}
		}
		if err := unix.Bind(fd, sa); err != nil {
			return 0, netip.Addr{}, err
		}
	}
	if typ == unix.SOCK_STREAM {
		if err := unix.Listen(fd, 4); err != nil {
			return 0, netip.Addr{}, err
		}
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return 0, netip.Addr{}, err
	}
	switch s := sa.(type) {
	case *unix.SockaddrInet4:
		return uint16(s.Port), netip.AddrFrom4(s.Addr), nil // #nosec G115 -- a port
	case *unix.SockaddrInet6:
		return uint16(s.Port), netip.AddrFrom16(s.Addr), nil // #nosec G115 -- a port
	}
	return 0, netip.Addr{}, os.ErrInvalid
}

// enforceEnv is a cgroup (not holding the test process), a network namespace and a pin
// root on the BPF file system, all the test's own and removed at cleanup (after every
// enforcement under the pin root is removed).
type enforceEnv struct {
	cg, netns, pins string
	cgID            uint64
}

func newEnforceEnv(t *testing.T) *enforceEnv {
	t.Helper()
	requireRoot(t)
	mount, err := FindCgroup2()
	if err != nil {
		t.Skip("no cgroup2:", err)
	}
	env := &enforceEnv{}
	env.netns, _ = testNetns(t)
	if err := ensureBPFFS("/sys/fs/bpf"); err != nil {
		t.Skip("no BPF file system:", err)
	}
	env.pins = filepath.Join("/sys/fs/bpf", randomName("bindguard-test"))
	env.cg = filepath.Join(mount, randomName("bindguard-enforce-test"))
	if err := os.Mkdir(env.cg, 0o755); err != nil { // #nosec G301 -- a cgroup directory
		t.Fatal(err)
	}
	if env.cgID, err = CgroupID(env.cg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := RemoveEnforcement(env.cgID, EnforceOptions{PinRoot: env.pins}); err != nil && !errors.Is(err, ErrNotEnforced) {
			t.Errorf("remove enforcement: %v", err)
		}
		if err := os.RemoveAll(env.pins); err != nil {
			t.Errorf("remove pins: %v", err)
		}
		if err := os.Remove(env.cg); err != nil {
			t.Errorf("remove test cgroup: %v", err)
		}
	})
	return env
}

func (env *enforceEnv) opts() EnforceOptions { return EnforceOptions{PinRoot: env.pins} }

// helper runs the test binary as the helper in the test cgroup (clone3 into it).
func (env *enforceEnv) helper(t *testing.T, extra ...string) string {
	t.Helper()
	cgf, err := os.Open(env.cg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cgf.Close() }()
	cmd := exec.Command(os.Args[0], "-test.run=^$") // #nosec G204 -- the test binary
	cmd.Env = append(os.Environ(), enforceHelperEnv+"="+env.netns)
	cmd.Env = append(cmd.Env, extra...)
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cgf.Fd())} // #nosec G115 -- an fd
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	return string(out)
}

// binds runs the binds in a child in the cgroup and netns and returns one result each:
// "ok" or the errno's name.
func (env *enforceEnv) binds(t *testing.T, reqs ...bindReq) []string {
	t.Helper()
	js, _ := json.Marshal(reqs)
	out := env.helper(t, enforceBindsEnv+"="+string(js))
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(reqs) {
		t.Fatalf("helper printed %d lines for %d binds:\n%s", len(lines), len(reqs), out)
	}
	res := make([]string, len(lines))
	for i, l := range lines {
		f := strings.Fields(l)
		switch {
		case len(f) == 3 && f[0] == "ok":
			res[i] = "ok " + f[2] // the address bound
		case len(f) == 2 && f[0] == "err":
			n, err := strconv.Atoi(f[1])
			if err != nil {
				t.Fatalf("helper: %s", l)
			}
			res[i] = unix.ErrnoName(syscall.Errno(n))
		default:
			t.Fatalf("helper: %s", l)
		}
	}
	return res
}

// expect runs binds and checks each result ("ok", "EPERM").
func (env *enforceEnv) expect(t *testing.T, cases ...struct {
	r    bindReq
	want string
}) {
	t.Helper()
	reqs := make([]bindReq, len(cases))
	for i, c := range cases {
		reqs[i] = c.r
	}
	got := env.binds(t, reqs...)
	for i, c := range cases {
		if c.want == "ok" {
			got[i], _, _ = strings.Cut(got[i], " ")
		}
		if got[i] != c.want {
			t.Errorf("bind %s [%s]:%d v6only=%v: got %s, want %s", c.r.Network, c.r.Addr, c.r.Port, c.r.V6Only, got[i], c.want)
		}
	}
}

type bc = struct {
	r    bindReq
	want string
}

const enforceTestPolicy = `version: 1
services:
  - name: redis
    protocol: tcp
    port: 6379
    access: localhost_only
  - name: dns
    protocol: udp
    port: 53
    access: localhost_only
  - name: web
    protocol: tcp
    port: 8080
    address: "::"
    access: public
  - name: web6
    protocol: tcp
    port: 8443
    address: "::"
    v6only: true
    access: public
  - name: app
    protocol: tcp
    port: 9000
    address: 127.0.0.1
    access: localhost_only
`

func compileTest(t testing.TB, src string, mode EnforceMode, guard []PortRange) Enforcement {
	t.Helper()
	p, err := policy.Parse("test.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	e, err := CompileEnforcement(p.Services, mode, guard)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestEnforceDeniesByAddress: the policy's forbidden binds fail with EPERM in a child of the
// enforced cgroup, the allowed ones work, and undeclared ports are untouched.
func TestEnforceDeniesByAddress(t *testing.T) {
	env := newEnforceEnv(t)
	// Before enforcement the forbidden bind works: the test can fail.
	env.expect(t, bc{bindReq{Network: "tcp", Addr: "0.0.0.0", Port: 6379}, "ok"})
	e := compileTest(t, enforceTestPolicy, EnforceDeny, nil)
	if _, err := ApplyEnforcement(env.cg, e, env.opts()); err != nil {
		t.Fatal(err)
	}
	env.expect(t,
		bc{bindReq{Network: "tcp", Addr: "0.0.0.0", Port: 6379}, "EPERM"},
		bc{bindReq{Network: "tcp", Addr: "127.0.0.1", Port: 6379}, "ok"},
		bc{bindReq{Network: "tcp", Addr: "127.0.0.2", Port: 6379}, "ok"},
		bc{bindReq{Network: "tcp", Addr: "::1", Port: 6379}, "ok"},
		bc{bindReq{Network: "tcp", Addr: "::ffff:127.0.0.1", Port: 6379}, "ok"},
		bc{bindReq{Network: "tcp", Addr: "::", Port: 6379}, "EPERM"},
		bc{bindReq{Network: "tcp", Addr: "::", Port: 6379, V6Only: true}, "EPERM"},
		bc{bindReq{Network: "tcp", Addr: "::ffff:0.0.0.0", Port: 6379}, "EPERM"},
		bc{bindReq{Network: "udp", Addr: "0.0.0.0", Port: 53}, "EPERM"},
		// Multipath TCP takes the TCP port (Go's listeners try it first).
		bc{bindReq{Network: "mptcp", Addr: "0.0.0.0", Port: 6379}, "EPERM"},
		bc{bindReq{Network: "mptcp", Addr: "::", Port: 6379}, "EPERM"},
		bc{bindReq{Network: "mptcp", Addr: "127.0.0.1", Port: 6379}, "ok"},
		bc{bindReq{Network: "udp", Addr: "127.0.0.53", Port: 53}, "ok"},
		// udp/6379 is not declared: untouched.
		bc{bindReq{Network: "udp", Addr: "0.0.0.0", Port: 6379}, "ok"},
		// An undeclared port is left alone.
		bc{bindReq{Network: "tcp", Addr: "0.0.0.0", Port: 7000}, "ok"},
		// Declared "::" dual-stack: ::, v6only ::, 0.0.0.0; not a specific address.
		bc{bindReq{Network: "tcp", Addr: "::", Port: 8080}, "ok"},
		bc{bindReq{Network: "tcp", Addr: "::", Port: 8080, V6Only: true}, "ok"},
		bc{bindReq{Network: "tcp", Addr: "0.0.0.0", Port: 8080}, "ok"},
		bc{bindReq{Network: "tcp", Addr: "127.0.0.1", Port: 8080}, "EPERM"},
		// Declared "::" v6only: a dual-stack :: also takes 0.0.0.0, which is not allowed.
		bc{bindReq{Network: "tcp", Addr: "::", Port: 8443, V6Only: true}, "ok"},
		bc{bindReq{Network: "tcp", Addr: "::", Port: 8443}, "EPERM"},
		bc{bindReq{Network: "tcp", Addr: "0.0.0.0", Port: 8443}, "EPERM"},
		// Declared address 127.0.0.1: only that one.
		bc{bindReq{Network: "tcp", Addr: "127.0.0.1", Port: 9000}, "ok"},
		bc{bindReq{Network: "tcp", Addr: "::ffff:127.0.0.1", Port: 9000}, "ok"},
		bc{bindReq{Network: "tcp", Addr: "127.0.0.2", Port: 9000}, "EPERM"},
		// Loopback port 0 always (Go's IPv6 probe); wildcard port 0 too (no guarded range).
		bc{bindReq{Network: "tcp", Addr: "::1", Port: 0}, "ok"},
		bc{bindReq{Network: "tcp", Addr: "::ffff:127.0.0.1", Port: 0}, "ok"},
		bc{bindReq{Network: "tcp", Addr: "0.0.0.0", Port: 0}, "ok"},
	)
	// The test process itself is not in the cgroup: untouched.
	fd, _, err := sockSpec{network: "tcp", addr: netip.MustParseAddr("0.0.0.0")}.open()
	if err != nil {
		t.Fatalf("bind outside the cgroup: %v", err)
	}
	_ = unix.Close(fd)
}

// TestEnforceGuardedRange: in a guarded range only declared services may bind; a port-0 bind
// that lands in the range is refused after the kernel chose the port, except on loopback.
func TestEnforceGuardedRange(t *testing.T) {
	env := newEnforceEnv(t)
	netns := env.netns
	// Every ephemeral port of the namespace inside the guarded range.
	if out, err := exec.Command("ip", "netns", "exec", filepath.Base(netns), "sysctl", "-w", "net.ipv4.ip_local_port_range=40000 40100").CombinedOutput(); err != nil { // #nosec G204 -- our namespace
		t.Fatalf("sysctl: %v\n%s", err, out)
	}
	e := compileTest(t, enforceTestPolicy, EnforceDeny, []PortRange{{Lo: 6000, Hi: 6999}, {Protocol: policy.TCP, Lo: 40000, Hi: 40100}})
	if _, err := ApplyEnforcement(env.cg, e, env.opts()); err != nil {
		t.Fatal(err)
	}
	env.expect(t,
		bc{bindReq{Network: "tcp", Addr: "0.0.0.0", Port: 6380}, "EPERM"},
		bc{bindReq{Network: "udp", Addr: "127.0.0.1", Port: 6380}, "EPERM"},
		bc{bindReq{Network: "tcp", Addr: "127.0.0.1", Port: 6379}, "ok"},
		bc{bindReq{Network: "tcp", Addr: "0.0.0.0", Port: 7000}, "ok"},
		bc{bindReq{Network: "udp", Addr: "0.0.0.0", Port: 40050}, "ok"},
		bc{bindReq{Network: "tcp", Addr: "0.0.0.0", Port: 0}, "EPERM"},
		bc{bindReq{Network: "tcp", Addr: "::", Port: 0}, "EPERM"},
		bc{bindReq{Network: "tcp", Addr: "127.0.0.1", Port: 0}, "ok"},
		bc{bindReq{Network: "tcp", Addr: "::1", Port: 0}, "ok"},
		bc{bindReq{Network: "udp", Addr: "0.0.0.0", Port: 0}, "ok"},
	)
	// The denials count under the guarded range that refused them (the programs judge by the
	// per-port flags and look the rule up only to name it).
	counted := func(name string) uint64 {
		st, err := EnforcementStatus(env.opts())
		if err != nil || len(st) != 1 {
			t.Fatalf("status %+v %v", st, err)
		}
		for _, r := range st[0].Rules {
			if r.Name == name {
				return r.Denials
			}
		}
		t.Fatalf("no rule %q in %+v", name, st[0].Rules)
		return 0
	}
	if n := counted("guard tcp,udp/6000-6999"); n != 2 {
		t.Errorf("guard tcp,udp/6000-6999 counted %d, want 2", n)
	}
	if n := counted("guard tcp/40000-40100"); n != 2 {
		t.Errorf("guard tcp/40000-40100 counted %d, want 2", n)
	}
	// Reload in place with only UDP 6000-6999 guarded: the ports the old ranges held are free.
	e2 := compileTest(t, enforceTestPolicy, EnforceDeny, []PortRange{{Protocol: policy.UDP, Lo: 6000, Hi: 6999}})
	if _, err := ApplyEnforcement(env.cg, e2, env.opts()); err != nil {
		t.Fatal(err)
	}
	env.expect(t,
		bc{bindReq{Network: "tcp", Addr: "0.0.0.0", Port: 6380}, "ok"},
		bc{bindReq{Network: "udp", Addr: "127.0.0.1", Port: 6380}, "EPERM"},
		bc{bindReq{Network: "tcp", Addr: "0.0.0.0", Port: 40050}, "ok"},
		bc{bindReq{Network: "tcp", Addr: "0.0.0.0", Port: 0}, "ok"},
		bc{bindReq{Network: "tcp", Addr: "127.0.0.1", Port: 6379}, "ok"},
		bc{bindReq{Network: "tcp", Addr: "0.0.0.0", Port: 6379}, "EPERM"},
	)
}

// TestEnforceDenialRecord: a denial arrives on the pinned ring buffer with the binder's pid,
// comm, cgroup, address, port, rule and errno, and the pinned counter counts it.
func TestEnforceDenialRecord(t *testing.T) {
	env := newEnforceEnv(t)
	e := compileTest(t, enforceTestPolicy, EnforceDeny, nil)
	if _, err := ApplyEnforcement(env.cg, e, env.opts()); err != nil {
		t.Fatal(err)
	}
	env.expect(t, bc{bindReq{Network: "tcp", Addr: "::", Port: 6379, V6Only: true}, "EPERM"})
	rd, err := OpenDenials(env.cgID, env.opts())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rd.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d, err := rd.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Base(os.Args[0])
	if len(exe) > 15 {
		exe = exe[:15]
	}
	if d.PID == 0 || d.Comm != exe || d.CgroupID != env.cgID || d.Addr != netip.IPv6Unspecified() ||
		d.Port != 6379 || d.Protocol != policy.TCP || d.Family != "ipv6" || !d.V6Only ||
		d.Errno != uint8(unix.EPERM) || d.RuleName != "redis tcp/6379" || d.DryRun || d.PostBind {
		t.Errorf("denial %+v; want pid>0, comm %s, cgroup %d, [::]:6379 tcp ipv6 v6only, EPERM, rule redis tcp/6379", d, exe, env.cgID)
	}
	// A refused bind of another IPv6 address records v6only too (bind6 reads it only for ::
	// or a refusal).
	env.expect(t, bc{bindReq{Network: "tcp", Addr: "2001:db8::1", Port: 6379, V6Only: true}, "EPERM"})
	if d, err = rd.Read(ctx); err != nil {
		t.Fatal(err)
	}
	if d.Addr != netip.MustParseAddr("2001:db8::1") || d.Port != 6379 || !d.V6Only || d.RuleName != "redis tcp/6379" {
		t.Errorf("denial %+v; want [2001:db8::1]:6379 v6only, rule redis tcp/6379", d)
	}
	st, err := EnforcementStatus(env.opts())
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 1 || !st[0].OK() || st[0].ID != env.cgID || st[0].Mode != EnforceDeny {
		t.Fatalf("status %+v", st)
	}
	for _, r := range st[0].Rules {
		want := uint64(0)
		if r.Name == "redis tcp/6379" {
			want = 2
		}
		if r.Denials != want {
			t.Errorf("rule %s: %d denials, want %d", r.Name, r.Denials, want)
		}
	}
}

// TestEnforcePinnedReloadRemove: enforcement applied by a process that then exits stays;
// re-applying changes a rule in place (the same links, dry-run now records and allows);
// remove detaches exactly bindguard's programs.
func TestEnforcePinnedReloadRemove(t *testing.T) {
	env := newEnforceEnv(t)
	e := compileTest(t, enforceTestPolicy, EnforceDeny, nil)
	js, _ := json.Marshal(applyReq{Cgroup: env.cg, PinRoot: env.pins, E: e})
	if out := env.helper(t, enforceApplyEnv+"="+string(js)); strings.TrimSpace(out) != "applied" {
		t.Fatalf("apply in a child: %s", out)
	}
	env.expect(t,
		bc{bindReq{Network: "tcp", Addr: "0.0.0.0", Port: 6379}, "EPERM"},
		bc{bindReq{Network: "tcp", Addr: "127.0.0.1", Port: 6379}, "ok"},
	)
	linkIDs := func() []string {
		st, err := EnforcementStatus(env.opts())
		if err != nil || len(st) != 1 {
			t.Fatalf("status %+v %v", st, err)
		}
		return st[0].Effective
	}
	if got := linkIDs(); len(got) != 4 {
		t.Fatalf("effective %v, want the four hooks", got)
	}
	// Reload: redis becomes public, a new port is declared loopback only.
	e2 := compileTest(t, strings.Replace(enforceTestPolicy, "port: 6379\n    access: localhost_only", "port: 6379\n    access: public", 1)+
		"  - name: extra\n    protocol: tcp\n    port: 7000\n    access: localhost_only\n", EnforceDeny, nil)
	if _, err := ApplyEnforcement(env.cg, e2, env.opts()); err != nil {
		t.Fatal(err)
	}
	env.expect(t,
		bc{bindReq{Network: "tcp", Addr: "0.0.0.0", Port: 6379}, "ok"},
		bc{bindReq{Network: "tcp", Addr: "0.0.0.0", Port: 7000}, "EPERM"},
		bc{bindReq{Network: "tcp", Addr: "0.0.0.0", Port: 9000}, "EPERM"},
	)
	// Dry-run: recorded, allowed.
	e3 := e2
	e3.Mode = EnforceDryRun
	if _, err := ApplyEnforcement(env.cg, e3, env.opts()); err != nil {
		t.Fatal(err)
	}
	env.expect(t, bc{bindReq{Network: "tcp", Addr: "0.0.0.0", Port: 7000}, "ok"})
	st, err := EnforcementStatus(env.opts())
	if err != nil || len(st) != 1 || st[0].Mode != EnforceDryRun {
		t.Fatalf("status %+v %v", st, err)
	}
	var extra uint64
	for _, r := range st[0].Rules {
		if r.Name == "extra tcp/7000" {
			extra = r.Denials
		}
	}
	if extra != 2 {
		t.Errorf("extra tcp/7000 counted %d, want 2 (one denial, one dry-run)", extra)
	}
	// The health of one cgroup (serve's scrapes): the same links, no rules; a directory that
	// is not the cgroup of that id has no effective programs.
	if h, err := EnforcementHealth(env.cg, env.cgID, env.opts()); err != nil || !h.OK() || h.Mode != EnforceDryRun || h.Rules != nil || h.Cgroup != env.cg {
		t.Errorf("health %+v %v", h, err)
	}
	if h, err := EnforcementHealth(t.TempDir(), env.cgID, env.opts()); err != nil || len(h.Links) != 4 || len(h.Effective) != 0 || h.OK() {
		t.Errorf("health through another directory %+v %v", h, err)
	}
	if err := RemoveEnforcement(env.cgID, env.opts()); err != nil {
		t.Fatal(err)
	}
	if _, err := EnforcementHealth(env.cg, env.cgID, env.opts()); !errors.Is(err, ErrNotEnforced) {
		t.Errorf("health after remove: %v, want ErrNotEnforced", err)
	}
	env.expect(t, bc{bindReq{Network: "tcp", Addr: "0.0.0.0", Port: 9000}, "ok"})
	cgf, err := os.Open(env.cg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cgf.Close() }()
	for _, h := range enforceHooks {
		q, err := queryAttached(int(cgf.Fd()), h.attach) // #nosec G115 -- an fd
		if err != nil {
			t.Fatal(err)
		}
		if q != 0 {
			t.Errorf("%s: %d programs still attached after remove", h.name, q)
		}
	}
	if _, err := os.Stat(pinDir(env.pins, env.cgID)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pin directory after remove: %v", err)
	}
}

// queryAttached counts the programs attached directly to the cgroup at the hook.
func queryAttached(fd int, attach ebpf.AttachType) (int, error) {
	q, err := link.QueryPrograms(link.QueryOptions{Target: fd, Attach: attach})
	if err != nil {
		return 0, err
	}
	return len(q.Programs), nil
}

// TestEnforceRewrite: in rewrite mode a wildcard bind of a localhost_only service is bound to
// loopback instead (0.0.0.0 to 127.0.0.1, :: to ::1, ::ffff:0.0.0.0 to ::ffff:127.0.0.1) and
// recorded; a forbidden bind that is not a wildcard, and a service of another class, still fail.
func TestEnforceRewrite(t *testing.T) {
	env := newEnforceEnv(t)
	e := compileTest(t, enforceTestPolicy+"  - {name: lan, protocol: tcp, port: 5000, access: lan, allow: [10.0.0.0/8]}\n", EnforceRewrite, nil)
	if _, err := ApplyEnforcement(env.cg, e, env.opts()); err != nil {
		t.Fatal(err)
	}
	env.expect(t,
		bc{bindReq{Network: "tcp", Addr: "0.0.0.0", Port: 6379}, "ok 127.0.0.1"},
		bc{bindReq{Network: "tcp", Addr: "::", Port: 6379, V6Only: true}, "ok ::1"},
		bc{bindReq{Network: "tcp", Addr: "::", Port: 6379}, "ok ::1"},
		bc{bindReq{Network: "tcp", Addr: "::ffff:0.0.0.0", Port: 6379}, "ok ::ffff:127.0.0.1"},
		bc{bindReq{Network: "tcp", Addr: "127.0.0.1", Port: 6379}, "ok 127.0.0.1"},
		bc{bindReq{Network: "tcp", Addr: "0.0.0.0", Port: 5000}, "EPERM"},
		bc{bindReq{Network: "tcp", Addr: "127.0.0.2", Port: 9000}, "EPERM"},
	)
	rd, err := OpenDenials(env.cgID, env.opts())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rd.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d, err := rd.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Rewritten || d.Errno != 0 || d.Addr != netip.IPv4Unspecified() || d.Port != 6379 {
		t.Errorf("first record %+v, want the rewrite of 0.0.0.0:6379", d)
	}
}

// TestEnforceListenWithoutBind names a hole the kernel leaves: listen() on a socket never
// bound takes an ephemeral port without running any bind hook, so even a guarded range that
// holds every ephemeral port does not see it (docs/enforce.md). An explicit bind to port 0
// off loopback in the same range is refused (post_bind).
func TestEnforceListenWithoutBind(t *testing.T) {
	env := newEnforceEnv(t)
	if out, err := exec.Command("ip", "netns", "exec", filepath.Base(env.netns), "sysctl", "-w", "net.ipv4.ip_local_port_range=40000 40100").CombinedOutput(); err != nil { // #nosec G204 -- our namespace
		t.Fatalf("sysctl: %v\n%s", err, out)
	}
	e := compileTest(t, enforceTestPolicy, EnforceDeny, []PortRange{{Lo: 40000, Hi: 40100}})
	if _, err := ApplyEnforcement(env.cg, e, env.opts()); err != nil {
		t.Fatal(err)
	}
	env.expect(t,
		bc{bindReq{Network: "tcp", Addr: "0.0.0.0", NoBind: true}, "ok 0.0.0.0"},
		bc{bindReq{Network: "tcp", Addr: "::", NoBind: true}, "ok ::"},
		bc{bindReq{Network: "tcp", Addr: "0.0.0.0", Port: 0}, "EPERM"},
	)
}

// TestEnforceRedis runs a real redis-server in the enforced cgroup and the test's network
// namespace: configured `bind 0.0.0.0` it fails to start with EPERM in its log, and the denial
// record names it; `bind 127.0.0.1` starts and runs.
func TestEnforceRedis(t *testing.T) {
	env := newEnforceEnv(t)
	redis, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal("redis-server not found; make deps installs it (Debian package redis-server)")
	}
	e := compileTest(t, enforceTestPolicy, EnforceDeny, nil)
	if _, err := ApplyEnforcement(env.cg, e, env.opts()); err != nil {
		t.Fatal(err)
	}
	cgf, err := os.Open(env.cg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cgf.Close() }()
	dir := t.TempDir()
	start := func(bind string) (*exec.Cmd, string) {
		log := filepath.Join(dir, "redis-"+bind+".log")
		cmd := exec.Command("nsenter", "--net="+env.netns, redis, "--bind", bind, "--port", "6379", "--save", "", // #nosec G204 -- fixed arguments
			"--appendonly", "no", "--daemonize", "no", "--dir", dir, "--logfile", log)
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cgf.Fd())} // #nosec G115 -- an fd
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, log
	}
	// bind 0.0.0.0: redis exits, saying why.
	cmd, log := start("0.0.0.0")
	err = cmd.Wait()
	out, _ := os.ReadFile(log) // #nosec G304 -- our file
	if err == nil || !strings.Contains(string(out), "Operation not permitted") {
		t.Errorf("redis with bind 0.0.0.0: exit %v, log:\n%s", err, out)
	}
	rd, err := OpenDenials(env.cgID, env.opts())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rd.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := rd.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d.Comm != "redis-server" || d.Addr != netip.IPv4Unspecified() || d.Port != 6379 || d.RuleName != "redis tcp/6379" || d.PID == 0 {
		t.Errorf("denial %+v, want redis-server on 0.0.0.0:6379", d)
	}
	// bind 127.0.0.1: it starts; wait for its log to say so, then stop it (our own pid).
	cmd, log = start("127.0.0.1")
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for ready := false; !ready; {
		select {
		case err := <-done:
			out, _ := os.ReadFile(log) // #nosec G304 -- our file
			t.Fatalf("redis with bind 127.0.0.1 exited: %v\n%s", err, out)
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			<-done
			t.Fatal("redis with bind 127.0.0.1: not ready")
		case <-time.After(50 * time.Millisecond):
			out, _ := os.ReadFile(log) // #nosec G304 -- our file
			ready = strings.Contains(string(out), "Ready to accept connections")
		}
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	<-done
}

// TestEnforceApplyFailsClean: a first apply that fails leaves nothing behind: to a plain
// directory (refused before anything is loaded), and to a cgroup where an exclusive program
// holds bind6 (the bind4 link is made, the bind6 link refused: bind4 is detached again and
// the pins removed).
func TestEnforceApplyFailsClean(t *testing.T) {
	env := newEnforceEnv(t)
	noPins := func(when string) {
		t.Helper()
		ents, err := os.ReadDir(env.pins)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		if len(ents) != 0 {
			t.Errorf("%s: pins left: %v", when, ents)
		}
	}
	if _, err := ApplyEnforcement(t.TempDir(), Enforcement{}, env.opts()); !errors.Is(err, ErrEnforcement) {
		t.Fatalf("apply to a plain directory: %v, want ErrEnforcement", err)
	}
	noPins("plain directory")

	spec, err := loadEnforce()
	if err != nil {
		t.Fatal(err)
	}
	var objs enforceObjects
	if err := spec.LoadAndAssign(&objs, nil); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = objs.Close() }()
	cgf, err := os.Open(env.cg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cgf.Close() }()
	excl := link.RawAttachProgramOptions{Target: int(cgf.Fd()), Program: objs.BindguardEnforceBind6, Attach: ebpf.AttachCGroupInet6Bind} // #nosec G115 -- an fd
	if err := link.RawAttachProgram(excl); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := link.RawDetachProgram(link.RawDetachProgramOptions{Target: excl.Target, Program: excl.Program, Attach: excl.Attach}); err != nil {
			t.Errorf("detach the exclusive program: %v", err)
		}
	}()
	e := compileTest(t, enforceTestPolicy, EnforceDeny, nil)
	if _, err := ApplyEnforcement(env.cg, e, env.opts()); !errors.Is(err, ErrEnforcement) || !strings.Contains(err.Error(), "bind6") {
		t.Fatalf("apply over an exclusive bind6 program: %v, want the bind6 attach refused", err)
	}
	noPins("exclusive program")
	if n, err := queryAttached(int(cgf.Fd()), ebpf.AttachCGroupInet4Bind); err != nil || n != 0 { // #nosec G115 -- an fd
		t.Errorf("bind4 programs after the failed apply: %d, %v", n, err)
	}
}
