package cli

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// unitCommand is one Exec line of a generated unit as systemd would run it: the prefixes
// ("+", "-") dropped, "%n" the unit's name, "%%" and "$$" unescaped, split on spaces (the
// generator writes no quotes into these lines).
func unitCommand(t *testing.T, unit []byte, key, name string) []string {
	t.Helper()
	var found []string
	for line := range strings.Lines(string(unit)) {
		v, ok := strings.CutPrefix(strings.TrimSpace(line), key+"=")
		if !ok {
			continue
		}
		if found != nil {
			t.Fatalf("two %s= lines in\n%s", key, unit)
		}
		if strings.ContainsAny(v, `"'\`) {
			t.Fatalf("%s= has quotes or backslashes: %s", key, v)
		}
		v = strings.TrimLeft(v, "+-")
		v = strings.ReplaceAll(v, "%n", name)
		v = strings.ReplaceAll(strings.ReplaceAll(v, "%%", "%"), "$$", "$")
		found = strings.Fields(v)
	}
	if found == nil {
		t.Fatalf("no %s= in\n%s", key, unit)
	}
	return found
}

// TestGenSystemdEnforce plays a generated unit's life as systemd would, in a unit cgroup the
// test makes (systemd is not PID 1 here): `gen systemd --run --enforce` writes
// ExecStartPre=+bindguard enforce apply --unit %n, ExecStart=bindguard run ... and
// ExecStopPost=-+bindguard enforce remove --unit %n. Before ExecStartPre the command's
// forbidden binds succeed; after it they get EPERM while the declared socket serves; after
// ExecStopPost they succeed again and nothing is left enforced. (The pin root is the test's
// own, a hidden flag added to the generated command lines.)
func TestGenSystemdEnforce(t *testing.T) {
	e := newRunEnforceEnv(t)
	name := "bg-gen-" + strings.TrimPrefix(e.ns.Name, "bgrenf-") + ".service"
	cg := filepath.Join(e.parent, name)
	if err := os.Mkdir(cg, 0o755); err != nil { // #nosec G301 -- a cgroup directory
		t.Fatal(err)
	}
	cgf, err := os.Open(cg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cgf.Close() }()
	probe, err := filepath.Abs(filepath.Join("testdata", "run", "bindprobe.py"))
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var o bytes.Buffer
	if err := Run(context.Background(), []string{"gen", "systemd", "-p", e.pol, "--service", "core", "--run", "--enforce", "--bindguard", self,
		"--exec", python + " " + probe + " 0.0.0.0:8002 127.0.0.1:8002 0.0.0.0:7050"}, Streams{Out: &o, Err: &o}); err != nil {
		t.Fatalf("gen systemd: %v\n%s", err, o.String())
	}
	unit := o.Bytes()
	// Each line runs as bindguard (the test binary, by TestMain's command-line helper) in the
	// unit's cgroup; ExecStart also in the namespace.
	run := func(key string, netns bool) string {
		t.Helper()
		argv := unitCommand(t, unit, key, name)
		if argv[0] != self {
			t.Fatalf("%s= runs %s, want the --bindguard binary %s", key, argv[0], self)
		}
		args := argv[1:]
		if args[0] == "enforce" {
			args = append(args, "--pin-root", e.pins)
		}
		cmdArgs := []string{"-test.run=^$"}
		bin := self
		if netns {
			bin, cmdArgs = "nsenter", append([]string{"--net=" + e.ns.Path, self}, cmdArgs...)
		}
		cmd := exec.Command(bin, cmdArgs...) // #nosec G204 -- the test binary
		cmd.Env = append(os.Environ(), cliHelperEnv+"="+strings.Join(args, "\x1f"))
		cmd.Dir = filepath.Dir(probe)
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cgf.Fd())} // #nosec G115 -- an fd
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s=%s: %v\n%s", key, strings.Join(argv, " "), err, out)
		}
		return string(out)
	}
	outFile := filepath.Join(t.TempDir(), "out")
	t.Setenv("OUT", outFile)
	start := func() string {
		t.Helper()
		run("ExecStart", true)
		b, err := os.ReadFile(outFile)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	rel := strings.TrimPrefix(cg, e.mount)
	open := "0.0.0.0:8002=ok 127.0.0.1:8002=ok 0.0.0.0:7050=ok fd3=x cgroup=" + rel
	if got := start(); got != open {
		t.Fatalf("before ExecStartPre:\n got %s\nwant %s", got, open)
	}
	if out := run("ExecStartPre", false); !strings.Contains(out, "enforcing "+cg+": scope host, mode deny") {
		t.Errorf("ExecStartPre: %s", out)
	}
	if got, want := start(), "0.0.0.0:8002=EPERM 127.0.0.1:8002=ok 0.0.0.0:7050=EPERM fd3=x cgroup="+rel; got != want {
		t.Errorf("after ExecStartPre:\n got %s\nwant %s", got, want)
	}
	if sts := e.status(t); len(sts) != 1 || sts[0].Cgroup != rel || !sts[0].OK() {
		t.Errorf("enforced: %+v", sts)
	}
	if out := run("ExecStopPost", false); !strings.Contains(out, "removed enforcement from "+cg) {
		t.Errorf("ExecStopPost: %s", out)
	}
	if got := start(); got != open {
		t.Errorf("after ExecStopPost:\n got %s\nwant %s", got, open)
	}
	if sts := e.status(t); len(sts) != 0 {
		t.Errorf("after ExecStopPost: %+v", sts)
	}
}
