package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/bindguard/bindguard/internal/kernel"
	"github.com/bindguard/bindguard/internal/netnstest"
)

// TestEnforceCommands: enforce apply --container (the scope that matches it) from a process
// that exits, a bind in the container's cgroup refused and one allowed, status with the
// counter, re-apply with --dry-run in place, remove.
func TestEnforceCommands(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to load BPF programs and create cgroups (run as root, as .ci/run does)")
	}
	ns := netnstest.New(t, "bgenf")
	mount, err := kernel.FindCgroup2()
	if err != nil {
		t.Skip("no cgroup2:", err)
	}
	parent := filepath.Join(mount, "bindguard-enforce-cli-"+filepath.Base(ns.Name))
	ct := "bgct-" + strings.TrimPrefix(ns.Name, "bgenf-")
	cg := filepath.Join(parent, "lxc.payload."+ct)
	if err := os.MkdirAll(cg, 0o755); err != nil { // #nosec G301 -- cgroup directories
		t.Fatal(err)
	}
	pins := filepath.Join("/sys/fs/bpf", "bindguard-cli-test-"+ct)
	t.Cleanup(func() {
		if id, err := kernel.CgroupID(cg); err == nil {
			if err := kernel.RemoveEnforcement(id, kernel.EnforceOptions{PinRoot: pins}); err != nil && !errors.Is(err, kernel.ErrNotEnforced) {
				t.Errorf("cleanup: %v", err)
			}
		}
		_ = os.RemoveAll(pins)
		_ = os.Remove(cg)
		_ = os.Remove(parent)
	})
	pol := filepath.Join(t.TempDir(), "bindguard.yaml")
	src := `version: 1
services:
  - {name: redis, protocol: tcp, port: 6379, access: public}
scopes:
  - name: cache
    match: ["bgct-*"]
    services:
      - {name: redis, protocol: tcp, port: 6379, access: localhost_only}
enforce:
  mode: deny
  guard: [tcp/7000-7099]
`
	if err := os.WriteFile(pol, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	cgf, err := os.Open(cg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cgf.Close() }()
	child := func(env string, args ...string) string {
		t.Helper()
		all := append([]string{"--net=" + ns.Path, os.Args[0], "-test.run=^$"}, args...)
		cmd := exec.Command("nsenter", all...) // #nosec G204 -- the test binary
		cmd.Env = append(os.Environ(), env)
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cgf.Fd())} // #nosec G115 -- an fd
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", env, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	bind := func(spec, want string) {
		t.Helper()
		if got := child(enforceBindEnv + "=" + spec); got != want {
			t.Errorf("bind %s: %s, want %s", spec, got, want)
		}
	}
	bind("tcp 0.0.0.0:6379", "ok") // before: the test can fail
	out := child(cliHelperEnv + "=" + strings.Join([]string{"enforce", "apply", "--container", ct, "--policy", pol, "--pin-root", pins}, "\x1f"))
	if !strings.Contains(out, "scope cache, mode deny, 1 rules, 1 guarded ranges") {
		t.Fatalf("apply: %s", out)
	}
	bind("tcp 0.0.0.0:6379", "EPERM")
	bind("tcp [::]:6379", "EPERM")
	bind("tcp 127.0.0.1:6379", "ok")
	bind("tcp 0.0.0.0:7050", "EPERM")
	bind("tcp 0.0.0.0:7100", "ok")
	bind("udp 0.0.0.0:6379", "ok")

	status := func() (string, error) {
		var o bytes.Buffer
		err := Run(context.Background(), []string{"enforce", "status", "--format", "json", "--pin-root", pins}, Streams{Out: &o, Err: &o})
		return o.String(), err
	}
	js, err := status()
	if err != nil {
		t.Fatalf("status: %v\n%s", err, js)
	}
	var st struct {
		Enforced []struct {
			Cgroup string `json:"cgroup"`
			Mode   string `json:"mode"`
			OK     bool   `json:"ok"`
			Rules  []struct {
				Name    string `json:"name"`
				Denials uint64 `json:"denials"`
			} `json:"rules"`
		} `json:"enforced"`
	}
	if err := json.Unmarshal([]byte(js), &st); err != nil {
		t.Fatal(err)
	}
	rel := strings.TrimPrefix(cg, mount)
	if len(st.Enforced) != 1 || st.Enforced[0].Cgroup != rel || !st.Enforced[0].OK || st.Enforced[0].Mode != "deny" || len(st.Enforced[0].Rules) != 2 ||
		st.Enforced[0].Rules[0].Name != "redis tcp/6379" || st.Enforced[0].Rules[0].Denials != 2 || st.Enforced[0].Rules[1].Denials != 1 {
		t.Errorf("status:\n%s", js)
	}
	// Re-apply in place, dry-run: nothing denied.
	var o bytes.Buffer
	if err := Run(context.Background(), []string{"enforce", "apply", "--container", ct, "--policy", pol, "--pin-root", pins, "--dry-run"}, Streams{Out: &o, Err: &o}); err != nil {
		t.Fatalf("re-apply: %v\n%s", err, o.String())
	}
	bind("tcp 0.0.0.0:6379", "ok")
	o.Reset()
	if err := Run(context.Background(), []string{"enforce", "remove", "--cgroup", strings.TrimPrefix(cg, mount), "--pin-root", pins}, Streams{Out: &o, Err: &o}); err != nil {
		t.Fatalf("remove: %v\n%s", err, o.String())
	}
	bind("tcp 0.0.0.0:7050", "ok")
	o.Reset()
	if err := Run(context.Background(), []string{"enforce", "status", "--pin-root", pins}, Streams{Out: &o, Err: &o}); err != nil || o.String() != "no cgroup is enforced\n" {
		t.Errorf("status after remove: %v %q", err, o.String())
	}
}

// TestEnforceApplyAll: --all (confined by the hidden --all-under to the test's own cgroup
// subtree) gives each container's payload cgroup its scope and every other cgroup the host's,
// descending into cgroups that hold containers; remove --all removes them all.
func TestEnforceApplyAll(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to load BPF programs and create cgroups (run as root, as .ci/run does)")
	}
	mount, err := kernel.FindCgroup2()
	if err != nil {
		t.Skip("no cgroup2:", err)
	}
	suffix := strings.TrimPrefix(netnstest.New(t, "bgall").Name, "bgall-")
	parent := filepath.Join(mount, "bindguard-enforce-all-"+suffix)
	dirs := []string{"lxc.payload.bgct-a", "app.service", "nest/lxc.payload.bgct-b", "nest/other", "nest/lxc.payload.zz"}
	for _, d := range dirs {
		if err := os.MkdirAll(filepath.Join(parent, d), 0o755); err != nil { // #nosec G301 -- cgroup directories
			t.Fatal(err)
		}
	}
	pins := filepath.Join("/sys/fs/bpf", "bindguard-cli-all-"+suffix)
	t.Cleanup(func() {
		var o bytes.Buffer
		_ = Run(context.Background(), []string{"enforce", "remove", "--all", "--pin-root", pins}, Streams{Out: &o, Err: &o})
		_ = os.RemoveAll(pins)
		for _, d := range []string{"lxc.payload.bgct-a", "app.service", "nest/lxc.payload.bgct-b", "nest/other", "nest/lxc.payload.zz", "nest", ""} {
			_ = os.Remove(filepath.Join(parent, d))
		}
	})
	pol := filepath.Join(t.TempDir(), "bindguard.yaml")
	src := "version: 1\nservices:\n  - {name: redis, protocol: tcp, port: 6379, access: public}\nscopes:\n  - name: cache\n    match: [\"bgct-*\"]\n    services:\n      - {name: redis, protocol: tcp, port: 6379, access: localhost_only}\n"
	if err := os.WriteFile(pol, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	var o bytes.Buffer
	if err := Run(context.Background(), []string{"enforce", "apply", "--all", "--all-under", parent, "--policy", pol, "--pin-root", pins}, Streams{Out: &o, Err: &o}); err != nil {
		t.Fatalf("apply --all: %v\n%s", err, o.String())
	}
	want := map[string]string{"lxc.payload.bgct-a": "cache", "app.service": "host", "nest/lxc.payload.bgct-b": "cache", "nest/other": "host", "nest/lxc.payload.zz": "host"}
	got := map[string]string{}
	for line := range strings.Lines(o.String()) {
		dir, rest, ok := strings.Cut(strings.TrimPrefix(line, "enforcing "), ": scope ")
		if !ok {
			t.Fatalf("apply --all printed %q", line)
		}
		scope, _, _ := strings.Cut(rest, ",")
		got[strings.TrimPrefix(dir, parent+"/")] = scope
	}
	if len(got) != len(want) {
		t.Errorf("apply --all enforced %v, want %v", got, want)
	}
	for d, sc := range want {
		if got[d] != sc {
			t.Errorf("%s: scope %q, want %q", d, got[d], sc)
		}
	}
	sts, err := kernel.EnforcementStatus(kernel.EnforceOptions{PinRoot: pins})
	if err != nil || len(sts) != len(want) {
		t.Fatalf("status: %d enforced, %v", len(sts), err)
	}
	for _, st := range sts {
		if !st.OK() {
			t.Errorf("%s not effective: %+v", st.Cgroup, st)
		}
	}
	// A cgroup removed under its enforcement: the kernel detached the programs, the pins stay.
	// status reports it as gone without failing (nothing can bind there), and remove --gone
	// clears exactly its pins.
	if err := os.Remove(filepath.Join(parent, "app.service")); err != nil {
		t.Fatal(err)
	}
	o.Reset()
	if err := Run(context.Background(), []string{"enforce", "status", "--pin-root", pins}, Streams{Out: &o, Err: &o}); err != nil ||
		strings.Count(o.String(), "(gone)") != 1 || !strings.Contains(o.String(), "enforce remove --gone clears the pins") || strings.Contains(o.String(), "NOT EFFECTIVE") {
		t.Errorf("status with a removed cgroup: %v\n%s", err, o.String())
	}
	o.Reset()
	_ = Run(context.Background(), []string{"enforce", "status", "--format", "json", "--pin-root", pins}, Streams{Out: &o, Err: &o})
	if strings.Count(o.String(), `"gone": true`) != 1 {
		t.Errorf("status --format json with a removed cgroup:\n%s", o.String())
	}
	o.Reset()
	if err := Run(context.Background(), []string{"enforce", "remove", "--gone", "--all", "--pin-root", pins}, Streams{Out: &o, Err: &o}); ExitCode(err) != 2 {
		t.Errorf("remove --gone --all: %v", err)
	}
	o.Reset()
	if err := Run(context.Background(), []string{"enforce", "remove", "--gone", "--pin-root", pins}, Streams{Out: &o, Err: &o}); err != nil || strings.Count(o.String(), "removed enforcement from a removed cgroup") != 1 {
		t.Errorf("remove --gone: %v\n%s", err, o.String())
	}
	if sts, err := kernel.EnforcementStatus(kernel.EnforceOptions{PinRoot: pins}); err != nil || len(sts) != len(want)-1 {
		t.Errorf("after remove --gone: %d enforced, %v", len(sts), err)
	}
	o.Reset()
	if err := Run(context.Background(), []string{"enforce", "remove", "--all", "--pin-root", pins}, Streams{Out: &o, Err: &o}); err != nil {
		t.Fatalf("remove --all: %v\n%s", err, o.String())
	}
	if sts, err := kernel.EnforcementStatus(kernel.EnforceOptions{PinRoot: pins}); err != nil || len(sts) != 0 {
		t.Errorf("after remove --all: %+v %v", sts, err)
	}
}
